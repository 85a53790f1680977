// TensorView: numel and bytes from the shape, dtype-checked access, row-major shape-checked at().
#include <gtest/gtest.h>

#include <vector>

#include "src/core/error.h"
#include "src/core/tensor.h"

namespace iris {
namespace {

TEST(TensorView, SizesFromShape) {
  std::vector<float> buf(24);
  const TensorView t = TensorView::of(buf.data(), {2, 3, 4});
  EXPECT_EQ(t.dtype, DType::F32);
  EXPECT_EQ(t.rank(), 3);
  EXPECT_EQ(t.numel(), 24u);
  EXPECT_EQ(t.bytes(), 96u);
  EXPECT_EQ(t.describe(), "F32[2, 3, 4]");
  EXPECT_EQ(TensorView::of(buf.data(), {}).numel(), 1u);       // a scalar
  EXPECT_EQ(TensorView::of(buf.data(), {5, 0}).numel(), 0u);   // an empty tensor
  std::vector<uint16_t> half(6);
  EXPECT_EQ(TensorView(DType::BF16, {2, 3}, half.data()).bytes(), 12u);
}

TEST(TensorView, AtIsRowMajorAndChecksTheIndex) {
  std::vector<float> buf(12);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<float>(i);
  const TensorView t = TensorView::of(buf.data(), {3, 4});
  EXPECT_EQ(t.at<float>({0, 0}), 0.0f);
  EXPECT_EQ(t.at<float>({1, 2}), 6.0f);   // 1·4 + 2
  EXPECT_EQ(t.at<float>({2, 3}), 11.0f);
  t.at<float>({2, 1}) = -1.0f;            // writes through to the buffer
  EXPECT_EQ(buf[9], -1.0f);
  EXPECT_THROW(t.at<float>({3, 0}), Error);   // row out of range
  EXPECT_THROW(t.at<float>({0, 4}), Error);   // column out of range
  EXPECT_THROW(t.at<float>({-1, 0}), Error);
  EXPECT_THROW(t.at<float>({1}), Error);      // too few indices
}

TEST(TensorView, AsChecksTheElementType) {
  std::vector<float> buf(4);
  const TensorView t = TensorView::of(buf.data(), {4});
  EXPECT_EQ(t.as<float>(), buf.data());
  EXPECT_THROW(t.as<int32_t>(), Error);
  std::vector<uint16_t> bits(4);
  EXPECT_EQ(TensorView(DType::BF16, {4}, bits.data()).as<uint16_t>(), bits.data());  // raw bf16 bits
  EXPECT_THROW(TensorView(DType::BF16, {4}, bits.data()).as<float>(), Error);
  EXPECT_THROW(TensorView(DType::F32, {2, -1}, buf.data()), Error);
}

}  // namespace
}  // namespace iris
