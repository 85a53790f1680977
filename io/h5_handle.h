// Owning handles for HDF5 identifiers (file, group, dataset, dataspace, property list, attribute, datatype):
// each id is closed exactly once, when its owner leaves scope, on error paths too. An id left open is closed
// by HDF5's own exit handler after main returns, where a file whose last write failed crashes the process
// (docs/design.md decision 9; a full disk must end with exit status 2, not a signal).
// Ids are int64_t here (HDF5 >= 1.10's hid_t) so headers need not include hdf5.h.
#pragma once
#include <cstdint>
#include <utility>

namespace iris::io {

class H5Id {
 public:
  using CloseFn = int (*)(int64_t);  // H5Fclose, H5Dclose, H5Sclose, H5Pclose, H5Aclose, H5Tclose, H5Gclose

  H5Id() = default;
  H5Id(int64_t id, CloseFn close) : id_(id), close_(close) {}
  ~H5Id() { reset(); }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  H5Id(H5Id&& o) noexcept : id_(std::exchange(o.id_, -1)), close_(o.close_) {}
  H5Id& operator=(H5Id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, -1);
      close_ = o.close_;
    }
    return *this;
  }

  int64_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes the id now and returns HDF5's status (negative: failed, e.g. the file's last metadata did not
  // reach a full disk). The id is given up either way: it is never closed a second time.
  int close() {
    if (id_ < 0) return 0;
    const int rc = close_(std::exchange(id_, -1));
    return rc;
  }
  void reset() noexcept { (void)close(); }

 private:
  int64_t id_ = -1;
  CloseFn close_ = nullptr;
};

}  // namespace iris::io
