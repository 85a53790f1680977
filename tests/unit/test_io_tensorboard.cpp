// io/tensorboard_events: CRC-32C against its published check value, and the TFRecord framing of the
// event file (length, masked CRC of the length, payload, masked CRC of the payload). That TensorBoard's
// own reader takes the files is tests/e2e/train_tensorboard.sh.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "io/tensorboard_events.h"

namespace fs = std::filesystem;

namespace iris::io {
namespace {

TEST(Crc32c, CheckValueAndMask) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC-32C check value (RFC 3720, B.4)
  EXPECT_EQ(crc32c(""), 0u);
  const uint32_t c = crc32c("abc");
  EXPECT_EQ(masked_crc32c("abc"), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST(TensorBoardWriter, RecordsAreFramedAndChecksummed) {
  const fs::path dir = fs::temp_directory_path() / ("iris_tb_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::path path;
  {
    TensorBoardWriter w(dir, /*resumed_at=*/4);
    w.add_scalar("loss", 5, 2.5, 1.0);
    w.flush();
    path = w.path();
  }
  EXPECT_NE(path.filename().string().find("events.out.tfevents."), std::string::npos);
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = 0;
  int records = 0;
  while (at < bytes.size()) {
    ASSERT_LE(at + 12, bytes.size());
    uint64_t length = 0;
    uint32_t length_crc = 0, payload_crc = 0;
    std::memcpy(&length, bytes.data() + at, 8);  // little-endian host (x86-64)
    std::memcpy(&length_crc, bytes.data() + at + 8, 4);
    EXPECT_EQ(length_crc, masked_crc32c(std::string_view(bytes.data() + at, 8)));
    ASSERT_LE(at + 12 + length + 4, bytes.size());
    const std::string_view payload(bytes.data() + at + 12, length);
    std::memcpy(&payload_crc, bytes.data() + at + 12 + length, 4);
    EXPECT_EQ(payload_crc, masked_crc32c(payload));
    if (records == 0) EXPECT_NE(payload.find("brain.Event:2"), std::string_view::npos);
    if (records == 2) EXPECT_NE(payload.find("loss"), std::string_view::npos);
    at += 12 + length + 4;
    ++records;
  }
  EXPECT_EQ(records, 3);  // file version, the resume's session start, the scalar
  fs::remove_all(dir);
}

}  // namespace
}  // namespace iris::io
