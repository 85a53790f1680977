#include "src/train/state_stream.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "src/core/check.h"

namespace iris {

StateStream::StateStream(StateStore& store, Comm* dp) : store_(store), dp_(dp) {
  IRIS_CHECK(store.staging_elements() > 0, "state stream without a staging buffer");
}

void StateStream::gather_weights(size_t begin, size_t count, float* dst) {
  const size_t S = store_.staging_elements();
  const auto [own_begin, own_end] = store_.weight_range();
  const size_t shard = own_end - own_begin;
  const int dp = dp_ ? dp_->size() : 1;
  for (size_t off = begin; off < begin + count;) {
    // A piece lies inside one shard, so one rank owns it (dp = 1: this rank owns everything).
    size_t end = std::min(off + S, begin + count);
    int owner = 0;
    if (dp > 1) {
      owner = static_cast<int>(off / shard);
      end = std::min(end, (owner + 1) * shard);
    }
    const size_t n = end - off;
    if (dp == 1 || owner == dp_->rank()) store_.read(StatePart::Weights, off, n);
    if (dp > 1) dp_->broadcast(store_.staging(), n, owner);  // bit for bit
    std::memcpy(dst + (off - begin), store_.staging(), n * sizeof(float));
    off = end;
  }
}

void StateStream::read_moments(StatePart part, size_t begin, size_t count, float* dst) {
  IRIS_CHECK(part != StatePart::Weights, "read_moments of the weights (gather_weights reads those)");
  const size_t S = store_.staging_elements();
  for (size_t done = 0; done < count; done += S) {
    const size_t n = std::min(S, count - done);
    store_.read(part, begin + done, n);
    std::memcpy(dst + done, store_.staging(), n * sizeof(float));
  }
}

void StateStream::write(StatePart part, size_t begin, size_t count, const float* src) {
  const size_t S = store_.staging_elements();
  for (size_t done = 0; done < count; done += S) {
    const size_t n = std::min(S, count - done);
    std::memcpy(store_.staging(), src + done, n * sizeof(float));
    store_.write(part, begin + done, n);
  }
}

HostStateStore::HostStateStore(float* params, size_t params_size, std::pair<size_t, size_t> weight_range, AdamW* adam,
                               size_t staging_elements)
    : params_(params), params_size_(params_size), weight_range_(weight_range), adam_(adam),
      staging_size_(std::max<size_t>(1, staging_elements)), staging_(new float[staging_size_]) {}

std::pair<size_t, size_t> HostStateStore::moment_range() const {
  if (!adam_) return {0, 0};
  return {adam_->begin(), adam_->end()};
}

float* HostStateStore::locate(StatePart part, size_t begin, size_t count) {
  if (part == StatePart::Weights) {
    IRIS_CHECK(begin + count <= params_size_, "weights [{}, {}) outside the buffer of {}", begin, begin + count,
               params_size_);
    return params_ + begin;
  }
  IRIS_CHECK(adam_ && begin >= adam_->begin() && begin + count <= adam_->end(),
             "Adam moments [{}, {}) outside this rank's range", begin, begin + count);
  std::vector<float>& state = part == StatePart::ExpAvg ? adam_->m() : adam_->v();
  return state.data() + (begin - adam_->begin());
}

void HostStateStore::read(StatePart part, size_t begin, size_t count) {
  IRIS_CHECK(count <= staging_size_, "read of {} elements through a staging buffer of {}", count, staging_size_);
  IRIS_CHECK(part != StatePart::Weights || (begin >= weight_range_.first && begin + count <= weight_range_.second),
             "weights [{}, {}) read outside this rank's shard [{}, {})", begin, begin + count, weight_range_.first,
             weight_range_.second);
  std::memcpy(staging_.get(), locate(part, begin, count), count * sizeof(float));
}

void HostStateStore::write(StatePart part, size_t begin, size_t count) {
  IRIS_CHECK(count <= staging_size_, "write of {} elements through a staging buffer of {}", count, staging_size_);
  std::memcpy(locate(part, begin, count), staging_.get(), count * sizeof(float));
}

size_t staging_elements_from_env(size_t default_bytes) {
  size_t bytes = default_bytes;
  if (const char* text = std::getenv("IRIS_STAGING_BYTES")) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(text, &end, 10);
    IRIS_USER_CHECK(end != text && *end == '\0' && v >= sizeof(float),
                    "IRIS_STAGING_BYTES='{}': expected a whole number of bytes, at least 4", text);
    bytes = static_cast<size_t>(v);
  }
  return bytes / sizeof(float);
}

}  // namespace iris
