#include "src/train/cuda/zero1_cuda_optimizer.h"

#include <algorithm>

#include "src/core/check.h"
#include "src/core/dtype.h"
#include "src/kernels/cuda/adamw.cuh"
#include "src/kernels/cuda/elementwise.cuh"

namespace iris {
namespace {
float* as_floats(cuda::bf16* p) { return reinterpret_cast<float*>(p); }
}  // namespace

Zero1CudaOptimizer::Zero1CudaOptimizer(const Zero1Layout& layout, AdamWConfig adam, Comm* dp, cudaStream_t stream, DType grad_dtype,
                         size_t all_reduce_max)
    : layout_(layout), adam_(adam), dp_(dp), stream_(stream), grad_dtype_(grad_dtype), reduce_(layout, dp) {
  dp_size_ = layout.dp_size;
  IRIS_CHECK(grad_dtype == DType::F32 || grad_dtype == DType::BF16, "device gradients are fp32 or bf16, not {}",
             dtype_name(grad_dtype));
  IRIS_CHECK(!(bf16_grads() && layout.overlap),
             "bf16 gradients are reduced by the bucketed reduce-scatter; build the layout without overlapped "
             "gradient reduction");
  padded_ = layout.padded;
  shard_begin_ = layout.shard_begin;
  shard_ = layout.shard();
  bucket_ = layout.bucket;
  adam_begin_ = layout.adam_begin;
  adam_end_ = layout.adam_end;
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
    if (!layout.overlap) send = bucket_ * dp_size_;  // overlapped: reduced in place, no staging
    if (shard_ % 2 != 0) gather_ = DeviceBuffer<cuda::bf16>((shard_ + 1) * dp_size_);
  }
  // all_reduce_grads on bf16 goes through send_ in chunks of at most its size (a bucket at least).
  if (bf16_grads() && all_reduce_max > 0) send = std::max(send, std::min(all_reduce_max, bucket_));
  if (send > 0) send_ = DeviceBuffer<float>(send);
}

void* Zero1CudaOptimizer::grads() {
  if (bf16_grads()) return grads_bf16_.data();
  return grads_.data();
}

void Zero1CudaOptimizer::begin_grad_reduce() { reduce_.begin(grads_.data()); }

GradsReady Zero1CudaOptimizer::grads_ready() { return reduce_.grads_ready(); }

void Zero1CudaOptimizer::finish_grad_reduce() {
  reduce_.finish([this] { reduce_scatter_grads(); });
}

size_t Zero1CudaOptimizer::allocated_bytes() const {
  return (weights_.size() + gather_.size() + grads_bf16_.size()) * sizeof(cuda::bf16) +
         (grads_.size() + shard_grads_.size() + master_.size() + m_.size() + v_.size() + send_.size()) * sizeof(float) +
         (sums_.size() + partials_.size()) * sizeof(double);
}

float* Zero1CudaOptimizer::state_piece(StatePart part, size_t begin, size_t count) {
  if (part == StatePart::Weights) {
    IRIS_CHECK(begin >= shard_begin_ && begin + count <= shard_begin_ + shard_,
               "master weights [{}, {}) outside this rank's shard", begin, begin + count);
    return master_.data() + (begin - shard_begin_);
  }
  IRIS_CHECK(begin >= adam_begin_ && begin + count <= adam_end_, "Adam moments [{}, {}) outside this rank's shard",
             begin, begin + count);
  return (part == StatePart::ExpAvg ? m_.data() : v_.data()) + (begin - shard_begin_);  // adam_begin_ = shard_begin_
}

void Zero1CudaOptimizer::read_state(StatePart part, size_t begin, size_t count, float* host) {
  IRIS_CUDA_CHECK(cudaMemcpyAsync(host, state_piece(part, begin, count), count * sizeof(float), cudaMemcpyDeviceToHost,
                                  stream_));
  IRIS_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void Zero1CudaOptimizer::write_state(StatePart part, size_t begin, size_t count, const float* src) {
  if (part != StatePart::Weights) {
    IRIS_CUDA_CHECK(cudaMemcpyAsync(state_piece(part, begin, count), src, count * sizeof(float),
                                    cudaMemcpyDeviceToDevice, stream_));
  } else {
    IRIS_CHECK(begin + count <= padded_, "weights [{}, {}) outside the flat buffer of {}", begin, begin + count, padded_);
    // bf16 rounds to nearest even, as the host's iris::float_to_bf16 and the optimizer's update do.
    cuda::cast_f32_to_bf16(weights_.data() + begin, src, count, stream_);
    const size_t b = std::max(begin, shard_begin_), f = std::min(begin + count, shard_begin_ + shard_);
    if (b < f)
      IRIS_CUDA_CHECK(cudaMemcpyAsync(master_.data() + (b - shard_begin_), src + (b - begin), (f - b) * sizeof(float),
                                      cudaMemcpyDeviceToDevice, stream_));
  }
  IRIS_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the caller reuses src
}

void Zero1CudaOptimizer::zero_moments() {
  IRIS_CUDA_CHECK(cudaMemsetAsync(m_.data(), 0, m_.size() * sizeof(float), stream_));
  IRIS_CUDA_CHECK(cudaMemsetAsync(v_.data(), 0, v_.size() * sizeof(float), stream_));
  IRIS_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void Zero1CudaOptimizer::zero_grads() {
  IRIS_CUDA_CHECK(cudaMemsetAsync(grads(), 0, padded_ * dtype_size(grad_dtype_), stream_));
}

void Zero1CudaOptimizer::all_reduce_grads(Comm& comm, size_t offset, size_t count) {
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

void Zero1CudaOptimizer::reduce_scatter_grads() {
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

double Zero1CudaOptimizer::sum_squares(const std::vector<std::pair<size_t, size_t>>& ranges) {
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

void Zero1CudaOptimizer::step(double lr, int step, float grad_scale) {
  const AdamWConfig& c = adam_;
  for (const AdamW::Segment& s : layout_.segments) {
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

void Zero1CudaOptimizer::all_gather_weights() {
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
