#include "src/train/cuda/device_optimizer.h"

#include <algorithm>

#include "src/core/check.h"
#include "src/core/dtype.h"
#include "src/kernels/cuda/adamw.cuh"
#include "src/kernels/cuda/elementwise.cuh"

namespace iris {
namespace {
float* as_floats(cuda::bf16* p) { return reinterpret_cast<float*>(p); }
}  // namespace

DeviceZero1::DeviceZero1(const DistributedOptimizer& host, Comm* dp, cudaStream_t stream, DType grad_dtype,
                         size_t all_reduce_max)
    : host_(host), dp_(dp), stream_(stream), grad_dtype_(grad_dtype) {
  dp_size_ = host.dp_size();
  IRIS_CHECK(dp_size_ == 1 || (dp != nullptr && dp->size() == dp_size_), "device DP group does not match the optimizer's");
  IRIS_CHECK(grad_dtype == DType::F32 || grad_dtype == DType::BF16, "device gradients are fp32 or bf16, not {}",
             dtype_name(grad_dtype));
  IRIS_CHECK(!(bf16_grads() && dp_size_ > 1 && host.overlaps_grad_reduce()),
             "bf16 gradients are reduced by the bucketed reduce-scatter; build the host optimizer without "
             "overlapped gradient reduction");
  padded_ = host.padded_size();
  shard_begin_ = host.shard_begin();
  shard_ = host.shard_end() - host.shard_begin();
  bucket_ = host.bucket();
  adam_begin_ = host.adam().begin();
  adam_end_ = host.adam().end();
  weights_ = DeviceBuffer<cuda::bf16>(padded_ + 1);
  if (bf16_grads()) {
    grads_bf16_ = DeviceBuffer<cuda::bf16>(padded_);
    if (dp_size_ > 1) shard_grads_ = DeviceBuffer<float>(shard_);
  } else {
    grads_ = DeviceBuffer<float>(padded_);
  }
  master_ = DeviceBuffer<float>(shard_);
  m_ = DeviceBuffer<float>(shard_);
  v_ = DeviceBuffer<float>(shard_);
  partials_ = DeviceBuffer<double>(cuda::kSumSquaresPartials);
  size_t send = 0;
  if (dp_size_ > 1) {
    if (host.overlaps_grad_reduce())
      overlap_ = std::make_unique<OverlappedGradReduce>(dp, padded_, bucket_);  // in place: no staging
    else
      send = bucket_ * dp_size_;
    if (shard_ % 2 != 0) gather_ = DeviceBuffer<cuda::bf16>((shard_ + 1) * dp_size_);
  }
  // all_reduce_grads on bf16 goes through send_ in chunks of at most its size (a bucket at least).
  if (bf16_grads() && all_reduce_max > 0) send = std::max(send, std::min(all_reduce_max, bucket_));
  if (send > 0) send_ = DeviceBuffer<float>(send);
}

void* DeviceZero1::grads() {
  if (bf16_grads()) return grads_bf16_.data();
  return grads_.data();
}

void DeviceZero1::begin_grad_reduce() {
  if (overlap_) overlap_->begin(grads_.data());
}

GradsReady DeviceZero1::grads_ready() {
  if (!overlap_) return nullptr;
  return [this](size_t offset) { overlap_->ready_from(offset); };
}

void DeviceZero1::finish_grad_reduce() {
  if (overlap_)
    overlap_->finish();
  else
    reduce_scatter_grads();
}

size_t DeviceZero1::allocated_bytes() const {
  return (weights_.size() + gather_.size() + grads_bf16_.size()) * sizeof(cuda::bf16) +
         (grads_.size() + shard_grads_.size() + master_.size() + m_.size() + v_.size() + send_.size()) * sizeof(float) +
         (sums_.size() + partials_.size()) * sizeof(double);
}

void DeviceZero1::upload(const float* params, const AdamW& adam) {
  // bf16 weights, converted on the host in chunks (iris::float_to_bf16 rounds to nearest even, as the
  // device cast does) so no full-size fp32 copy is needed on either side.
  const size_t chunk = size_t{1} << 24;
  std::vector<uint16_t> host_bf16(std::min(chunk, padded_));
  for (size_t off = 0; off < padded_; off += chunk) {
    const size_t n = std::min(chunk, padded_ - off);
    for (size_t i = 0; i < n; ++i) host_bf16[i] = float_to_bf16(params[off + i]);
    IRIS_CUDA_CHECK(cudaMemcpyAsync(weights_.data() + off, host_bf16.data(), n * sizeof(uint16_t),
                                    cudaMemcpyHostToDevice, stream_));
    IRIS_CUDA_CHECK(cudaStreamSynchronize(stream_));  // host_bf16 is reused
  }
  IRIS_CUDA_CHECK(cudaMemcpyAsync(master_.data(), params + shard_begin_, shard_ * sizeof(float), cudaMemcpyHostToDevice,
                                  stream_));
  IRIS_CHECK(adam.begin() == adam_begin_ && adam.end() == adam_end_, "upload: AdamW range differs from the optimizer's");
  const size_t n = adam_end_ - adam_begin_;
  if (n > 0) {  // then adam_begin_ == shard_begin_
    IRIS_CUDA_CHECK(cudaMemcpyAsync(m_.data(), adam.m().data(), n * sizeof(float), cudaMemcpyHostToDevice, stream_));
    IRIS_CUDA_CHECK(cudaMemcpyAsync(v_.data(), adam.v().data(), n * sizeof(float), cudaMemcpyHostToDevice, stream_));
  }
  IRIS_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void DeviceZero1::download(float* params, AdamW& adam) {
  IRIS_CUDA_CHECK(cudaMemcpyAsync(params + shard_begin_, master_.data(), shard_ * sizeof(float), cudaMemcpyDeviceToHost,
                                  stream_));
  const size_t n = adam_end_ - adam_begin_;
  if (n > 0) {
    IRIS_CUDA_CHECK(cudaMemcpyAsync(adam.m().data(), m_.data(), n * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    IRIS_CUDA_CHECK(cudaMemcpyAsync(adam.v().data(), v_.data(), n * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  }
  IRIS_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void DeviceZero1::zero_grads() {
  IRIS_CUDA_CHECK(cudaMemsetAsync(grads(), 0, padded_ * dtype_size(grad_dtype_), stream_));
}

void DeviceZero1::all_reduce_grads(Comm& comm, size_t offset, size_t count) {
  if (!bf16_grads()) {
    comm.all_reduce(grads_.data() + offset, count, ReduceOp::Sum);
    return;
  }
  IRIS_CHECK(count == 0 || send_.size() > 0, "all_reduce_grads of {} bf16 gradients: no fp32 staging (the "
             "optimizer was built with all_reduce_max = 0)", count);
  // Widening is exact; the sum is rounded to bf16 once, as a bf16 gradient accumulation would round it.
  for (size_t done = 0; done < count; done += send_.size()) {
    const size_t n = std::min(send_.size(), count - done);
    cuda::bf16* region = grads_bf16_.data() + offset + done;
    cuda::cast_bf16_to_f32(send_.data(), region, n, stream_);
    comm.all_reduce(send_.data(), n, ReduceOp::Sum);
    cuda::cast_f32_to_bf16(region, send_.data(), n, stream_);
  }
}

void DeviceZero1::reduce_scatter_grads() {
  if (dp_size_ == 1) return;  // bf16 included: sum_squares and step read the bf16 shard as it is
  if (bf16_grads()) {
    for (size_t off = 0; off < shard_; off += bucket_) {
      const size_t n = std::min(bucket_, shard_ - off);
      // send_ row r (n elements) = fp32(grads[r·shard + off, r·shard + off + n)): one cast per row gathers
      // and widens at once, so no bf16 staging is needed.
      for (int r = 0; r < dp_size_; ++r)
        cuda::cast_bf16_to_f32(send_.data() + r * n, grads_bf16_.data() + r * shard_ + off, n, stream_);
      dp_->reduce_scatter(send_.data(), shard_grads_.data() + off, n);
    }
    return;
  }
  for (size_t off = 0; off < shard_; off += bucket_) {
    const size_t n = std::min(bucket_, shard_ - off);
    // send_ row r (n elements) = grads[r·shard + off, r·shard + off + n)
    IRIS_CUDA_CHECK(cudaMemcpy2DAsync(send_.data(), n * sizeof(float), grads_.data() + off, shard_ * sizeof(float),
                                      n * sizeof(float), dp_size_, cudaMemcpyDeviceToDevice, stream_));
    dp_->reduce_scatter(send_.data(), grads_.data() + shard_begin_ + off, n);
  }
}

double DeviceZero1::sum_squares(const std::vector<std::pair<size_t, size_t>>& ranges) {
  if (ranges.empty()) return 0.0;
  if (sums_.size() < ranges.size()) sums_ = DeviceBuffer<double>(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    const auto [first, last] = ranges[i];
    if (!bf16_grads())
      cuda::sum_squares(sums_.data() + i, partials_.data(), grads_.data() + first, last - first, stream_);
    else if (dp_size_ == 1)
      cuda::sum_squares(sums_.data() + i, partials_.data(), grads_bf16_.data() + first, last - first, stream_);
    else
      cuda::sum_squares(sums_.data() + i, partials_.data(), shard_grads_.data() + (first - shard_begin_),
                        last - first, stream_);
  }
  std::vector<double> sums(ranges.size());
  IRIS_CUDA_CHECK(cudaMemcpyAsync(sums.data(), sums_.data(), sums.size() * sizeof(double), cudaMemcpyDeviceToHost, stream_));
  IRIS_CUDA_CHECK(cudaStreamSynchronize(stream_));
  double total = 0.0;
  for (double s : sums) total += s;
  return total;
}

void DeviceZero1::step(double lr, int step, float grad_scale) {
  const AdamWConfig& c = host_.adam().config();
  for (const AdamW::Segment& s : host_.adam().segments()) {
    const size_t local = s.begin - shard_begin_;
    const auto update = [&](const auto* segment_grads) {
      cuda::adamw_update(master_.data() + local, weights_.data() + s.begin, m_.data() + local, v_.data() + local,
                         segment_grads, s.end - s.begin, static_cast<float>(lr), static_cast<float>(c.beta1),
                         static_cast<float>(c.beta2), static_cast<float>(c.eps),
                         s.decay ? static_cast<float>(c.weight_decay) : 0.0f, step, grad_scale, stream_);
    };
    if (!bf16_grads())
      update(grads_.data() + s.begin);
    else if (dp_size_ == 1)
      update(grads_bf16_.data() + s.begin);
    else
      update(shard_grads_.data() + local);
  }
  all_gather_weights();
}

void DeviceZero1::all_gather_weights() {
  if (dp_size_ == 1) return;
  const int rank = dp_->rank();
  if (shard_ % 2 == 0) {  // in place: this rank's shard is block `rank` of the gathered buffer
    dp_->all_gather(as_floats(weights_.data() + shard_begin_), as_floats(weights_.data()), shard_ / 2);
    return;
  }
  const size_t pitch = shard_ + 1;  // even, so each block is whole floats
  IRIS_CUDA_CHECK(cudaMemcpyAsync(gather_.data() + rank * pitch, weights_.data() + shard_begin_,
                                  shard_ * sizeof(cuda::bf16), cudaMemcpyDeviceToDevice, stream_));
  dp_->all_gather(as_floats(gather_.data() + rank * pitch), as_floats(gather_.data()), pitch / 2);
  IRIS_CUDA_CHECK(cudaMemcpy2DAsync(weights_.data(), shard_ * sizeof(cuda::bf16), gather_.data(),
                                    pitch * sizeof(cuda::bf16), shard_ * sizeof(cuda::bf16), dp_size_,
                                    cudaMemcpyDeviceToDevice, stream_));
}

}  // namespace iris
