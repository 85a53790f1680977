// A non-owning tensor view: element type, row-major shape and a data pointer. Views name pieces of
// buffers owned elsewhere (the flat parameter/gradient buffers of src/model/param_table, file data);
// they never allocate or free. Accessors check the dtype and, in at(), the index against the shape.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "src/core/check.h"
#include "src/core/dtype.h"

namespace iris {

// The element type a C++ type stands for. uint16_t stands for U16 here, but also reads BF16 and F16
// data as raw bits (there is no C++ bf16 type on the CPU backend).
template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::U16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::U8; }

struct TensorView {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // row-major; {} is a scalar (one element)
  void* data = nullptr;

  TensorView() = default;
  TensorView(DType t, std::vector<int64_t> s, void* d) : dtype(t), shape(std::move(s)), data(d) {
    for (int64_t n : shape) IRIS_CHECK(n >= 0, "negative dimension in tensor shape {}", describe());
  }
  template <typename T>
  static TensorView of(T* d, std::vector<int64_t> s) { return TensorView(dtype_of<T>(), std::move(s), d); }

  size_t numel() const {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
  }
  size_t bytes() const { return numel() * dtype_size(dtype); }
  int rank() const { return static_cast<int>(shape.size()); }

  // The data as T*; an Error when T is not the view's element type (uint16_t: U16, BF16 or F16 bits).
  template <typename T>
  T* as() const {
    const bool same = dtype == dtype_of<T>() ||
                      (std::is_same_v<T, uint16_t> && (dtype == DType::BF16 || dtype == DType::F16));
    IRIS_CHECK(same, "tensor {} viewed as {}", describe(), dtype_name(dtype_of<T>()));
    return static_cast<T*>(data);
  }

  // Element (i0, i1, ...) of the row-major tensor: one index per dimension, each within its extent.
  template <typename T>
  T& at(std::initializer_list<int64_t> index) const {
    IRIS_CHECK(index.size() == shape.size(), "tensor {} indexed with {} indices", describe(), index.size());
    size_t flat = 0, d = 0;
    for (int64_t i : index) {
      IRIS_CHECK(i >= 0 && i < shape[d], "index {} out of range for dimension {} of tensor {}", i, d, describe());
      flat = flat * static_cast<size_t>(shape[d]) + static_cast<size_t>(i);
      ++d;
    }
    return as<T>()[flat];
  }

  std::string describe() const {  // "F32[2048, 256]"
    std::string s = std::string(dtype_name(dtype)) + "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
  }
};

}  // namespace iris
