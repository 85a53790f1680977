// Safetensors reader and writer: round trips per dtype, the exact header layout Hugging Face's
// loader expects, sharded models through the index, row slices, the .tmp/rename protocol, and a
// UserError naming the file (and tensor) for every kind of malformed input.
#include "io/safetensors.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "src/core/error.h"

namespace iris::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(IRIS_BINARY_DIR) / "tmp" / "test_io_safetensors" /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  fs::path dir_;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Removes first: on ext4, truncating a file that has data flushes it, which is 100x slower.
void write_file(const fs::path& p, const std::string& bytes) {
  fs::remove(p);
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A hand-made safetensors file: u64 header length (the real one unless overridden) | header | data.
std::string make_file(const std::string& header, const std::string& data,
                      std::optional<uint64_t> header_len = std::nullopt) {
  uint64_t n = header_len.value_or(header.size());
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

// Runs fn, expecting a UserError whose message contains every one of `parts`.
void expect_user_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected a UserError mentioning " << parts.front();
  } catch (const UserError& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << "'" << e.what() << "' lacks '" << part << "'";
    }
  }
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 2.f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Finite values that bf16 (or f16) represents exactly, from random bit patterns.
std::vector<float> representable(DType t, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v;
  while (v.size() < n) {
    uint16_t bits = static_cast<uint16_t>(rng());
    float f = t == DType::BF16 ? bf16_to_float(bits) : f16_to_float(bits);
    if (std::isfinite(f)) v.push_back(f);
  }
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

TEST_F(SafetensorsTest, F32RoundTripWithInfoAndNames) {
  const auto w = random_floats(6, 1);
  const auto b = random_floats(4, 2);
  const float scalar = 3.25f;
  {
    SafetensorsWriter writer(dir_ / "m.safetensors");
    writer.declare("z.weight", DType::F32, {2, 3});
    writer.declare("a.bias", DType::F32, {4});
    writer.declare("scalar", DType::F32, {});
    writer.declare("empty", DType::F32, {0, 5});
    writer.write_f32("z.weight", w.data(), w.size());
    writer.write_f32("a.bias", b.data(), b.size());
    writer.write_f32("scalar", &scalar, 1);
    writer.write_f32("empty", nullptr, 0);
    writer.finish();
  }
  auto model = SafetensorsModel::open(dir_ / "m.safetensors");
  EXPECT_EQ(model.names(), (std::vector<std::string>{"a.bias", "empty", "scalar", "z.weight"}));
  EXPECT_TRUE(model.contains("a.bias"));
  EXPECT_FALSE(model.contains("b.bias"));
  EXPECT_TRUE(same_bits(model.read_f32("z.weight"), w));
  EXPECT_TRUE(same_bits(model.read_f32("a.bias"), b));
  EXPECT_EQ(model.read_f32("scalar"), std::vector<float>{scalar});
  EXPECT_TRUE(model.read_f32("empty").empty());

  const TensorInfo& info = model.info("z.weight");
  EXPECT_EQ(info.name, "z.weight");
  EXPECT_EQ(info.dtype, DType::F32);
  EXPECT_EQ(info.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(info.numel(), 6);
  EXPECT_EQ(info.data_begin, 0u);  // declaration order is data order
  EXPECT_EQ(info.data_end, 24u);
  EXPECT_EQ(info.file, (dir_ / "m.safetensors").string());
  EXPECT_EQ(model.info("a.bias").data_begin, 24u);
  EXPECT_EQ(model.info("scalar").numel(), 1);
  EXPECT_EQ(model.info("empty").numel(), 0);
  EXPECT_TRUE(model.metadata().empty());
}

TEST_F(SafetensorsTest, Bf16AndF16RoundTripBitExact) {
  for (DType t : {DType::BF16, DType::F16}) {
    const auto values = representable(t, 1000, 7);
    const fs::path path = dir_ / (std::string(dtype_name(t)) + ".safetensors");
    {
      SafetensorsWriter writer(path);
      writer.declare("x", t, {10, 100});
      writer.write_f32("x", values.data(), values.size());
      writer.finish();
    }
    auto model = SafetensorsModel::open(path);
    EXPECT_EQ(model.info("x").dtype, t);
    EXPECT_TRUE(same_bits(model.read_f32("x"), values)) << dtype_name(t);
    auto raw = model.raw("x");
    ASSERT_EQ(raw.size(), values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
      uint16_t stored;
      std::memcpy(&stored, raw.data() + 2 * i, 2);
      ASSERT_EQ(stored, t == DType::BF16 ? float_to_bf16(values[i]) : float_to_f16(values[i])) << i;
    }
  }
}

TEST_F(SafetensorsTest, WriteF32RoundsToNearestEven) {
  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to the even one, 1.
  const std::vector<float> values = {1.0f + 1.0f / 256, 1.0f + 3.0f / 256, 0.1f};
  SafetensorsWriter writer(dir_ / "r.safetensors");
  writer.declare("x", DType::BF16, {3});
  writer.write_f32("x", values.data(), values.size());
  writer.finish();
  auto back = SafetensorsModel::open(dir_ / "r.safetensors").read_f32("x");
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_EQ(back[1], 1.0f + 4.0f / 256);
  EXPECT_EQ(back[2], bf16_to_float(float_to_bf16(0.1f)));
}

TEST_F(SafetensorsTest, IntegerTensorsRoundTripRaw) {
  const std::vector<int32_t> ids = {0, -1, 2147483647, -2147483647 - 1, 42};
  const std::vector<int64_t> big = {int64_t{1} << 40, -5};
  {
    SafetensorsWriter writer(dir_ / "i.safetensors");
    writer.declare("ids", DType::I32, {5});
    writer.declare("big", DType::I64, {2});
    writer.write_raw("ids", ids.data(), ids.size() * 4);
    writer.write_raw("big", big.data(), big.size() * 8);
    writer.finish();
  }
  auto model = SafetensorsModel::open(dir_ / "i.safetensors");
  auto raw = model.raw("ids");
  ASSERT_EQ(raw.size(), 20u);
  std::vector<int32_t> back(5);
  std::memcpy(back.data(), raw.data(), 20);
  EXPECT_EQ(back, ids);
  std::vector<int64_t> back64(2);
  std::memcpy(back64.data(), model.raw("big").data(), 16);
  EXPECT_EQ(back64, big);
  EXPECT_EQ(model.info("big").dtype, DType::I64);
  expect_user_error([&] { model.read_f32("ids"); }, {"ids", "I32", "i.safetensors"});
}

TEST_F(SafetensorsTest, MetadataRoundTrip) {
  SafetensorsWriter writer(dir_ / "m.safetensors", {{"format", "pt"}, {"iris_step", "1000"}});
  writer.declare("x", DType::F32, {1});
  float one = 1.f;
  writer.write_f32("x", &one, 1);
  writer.finish();
  auto meta = SafetensorsModel::open(dir_ / "m.safetensors").metadata();
  EXPECT_EQ(meta, (std::map<std::string, std::string>{{"format", "pt"}, {"iris_step", "1000"}}));
}

// The layout Python's safetensors checks: offsets contiguous from 0 in data order and covering the
// whole data section, __metadata__ values strings, header padded with spaces to a multiple of 8.
TEST_F(SafetensorsTest, HeaderLayoutMatchesHuggingFace) {
  const auto a = random_floats(3, 3);
  const auto b = random_floats(5, 4);
  {
    SafetensorsWriter writer(dir_ / "h.safetensors", {{"format", "pt"}});
    writer.declare("b", DType::BF16, {5});
    writer.declare("a", DType::F32, {3, 1});
    writer.write_f32("b", b.data(), b.size());
    writer.write_f32("a", a.data(), a.size());
    writer.finish();
  }
  const std::string bytes = read_file(dir_ / "h.safetensors");
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + n + 10 + 12);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  const size_t last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');
  EXPECT_LT(header.size() - last - 1, 8u);
  json j = json::parse(header);
  EXPECT_EQ(j["__metadata__"], (json{{"format", "pt"}}));
  EXPECT_EQ(j["b"]["dtype"], "BF16");
  EXPECT_EQ(j["b"]["shape"], json::array({5}));
  EXPECT_EQ(j["b"]["data_offsets"], json::array({0, 10}));
  EXPECT_EQ(j["a"]["dtype"], "F32");
  EXPECT_EQ(j["a"]["shape"], json::array({3, 1}));
  EXPECT_EQ(j["a"]["data_offsets"], json::array({10, 22}));
  std::vector<float> a_back(3);
  std::memcpy(a_back.data(), bytes.data() + 8 + n + 10, 12);
  EXPECT_TRUE(same_bits(a_back, a));
}

TEST_F(SafetensorsTest, RowSlices) {
  const auto values = representable(DType::BF16, 6 * 4, 11);
  {
    SafetensorsWriter writer(dir_ / "s.safetensors");
    writer.declare("w", DType::BF16, {6, 2, 2});
    writer.write_f32("w", values.data(), values.size());
    writer.finish();
  }
  auto model = SafetensorsModel::open(dir_ / "s.safetensors");
  std::vector<float> rows(3 * 4);
  model.read_f32_rows("w", 2, 5, rows.data());
  EXPECT_TRUE(same_bits(rows, std::vector<float>(values.begin() + 8, values.begin() + 20)));
  model.read_f32_rows("w", 5, 5, nullptr);  // an empty slice touches nothing
  expect_user_error([&] { model.read_f32_rows("w", 4, 7, rows.data()); }, {"w", "s.safetensors", "[4, 7)"});
  expect_user_error([&] { model.read_f32_rows("w", -1, 1, rows.data()); }, {"w"});
}

// A header whose length is odd leaves the data section unaligned; reads must still be exact.
TEST_F(SafetensorsTest, ReadsUnalignedDataSection) {
  const auto values = representable(DType::F16, 5, 5);
  std::string data(10, '\0');
  for (size_t i = 0; i < 5; ++i) {
    uint16_t h = float_to_f16(values[i]);
    std::memcpy(data.data() + 2 * i, &h, 2);
  }
  std::string header = R"({"x":{"dtype":"F16","shape":[5],"data_offsets":[0,10]}})";
  if (header.size() % 2 == 0) header += ' ';
  write_file(dir_ / "u.safetensors", make_file(header, data));
  auto model = SafetensorsModel::open(dir_ / "u.safetensors");
  EXPECT_TRUE(same_bits(model.read_f32("x"), values));
  std::vector<float> row(2);
  model.read_f32_rows("x", 3, 5, row.data());
  EXPECT_EQ(row[0], values[3]);
  EXPECT_EQ(row[1], values[4]);
}

TEST_F(SafetensorsTest, LargeTensorConvertsInParallelChunks) {
  const auto values = representable(DType::BF16, (1 << 20) + 3, 9);
  {
    SafetensorsWriter writer(dir_ / "big.safetensors");
    writer.declare("x", DType::BF16, {static_cast<int64_t>(values.size())});
    writer.write_f32("x", values.data(), values.size());
    writer.finish();
  }
  EXPECT_TRUE(same_bits(SafetensorsModel::open(dir_ / "big.safetensors").read_f32("x"), values));
}

TEST_F(SafetensorsTest, WriterWritesTmpThenRenames) {
  const fs::path path = dir_ / "w.safetensors";
  const fs::path tmp = dir_ / "w.safetensors.tmp";
  const auto v = random_floats(4, 1);
  {
    SafetensorsWriter writer(path);
    writer.declare("a", DType::F32, {4});
    writer.declare("b", DType::F32, {4});
    writer.write_f32("a", v.data(), 4);
    EXPECT_TRUE(fs::exists(tmp));
    EXPECT_FALSE(fs::exists(path));
    writer.write_f32("b", v.data(), 4);
    writer.finish();
    EXPECT_TRUE(fs::exists(path));
    EXPECT_FALSE(fs::exists(tmp));
  }
  EXPECT_TRUE(fs::exists(path));
  EXPECT_EQ(SafetensorsModel::open(path).names().size(), 2u);
}

TEST_F(SafetensorsTest, WriterDestroyedWithoutFinishLeavesNothing) {
  const fs::path path = dir_ / "w.safetensors";
  const auto v = random_floats(4, 1);
  {
    SafetensorsWriter writer(path);
    writer.declare("a", DType::F32, {4});
    writer.declare("b", DType::F32, {4});
    writer.write_f32("a", v.data(), 4);
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(dir_ / "w.safetensors.tmp"));

  // An existing file is left untouched by an abandoned rewrite.
  write_file(path, "previous");
  {
    SafetensorsWriter writer(path);
    writer.declare("a", DType::F32, {4});
    writer.write_f32("a", v.data(), 4);
  }
  EXPECT_EQ(read_file(path), "previous");
  EXPECT_FALSE(fs::exists(dir_ / "w.safetensors.tmp"));
}

TEST_F(SafetensorsTest, WriterRejectsMisuse) {
  const auto v = random_floats(4, 1);
  SafetensorsWriter writer(dir_ / "w.safetensors");
  writer.declare("a", DType::F32, {4});
  writer.declare("b", DType::F32, {2, 2});
  EXPECT_THROW(writer.declare("a", DType::F32, {1}), UserError);
  EXPECT_THROW(writer.declare("__metadata__", DType::F32, {1}), UserError);
  EXPECT_THROW(writer.declare("neg", DType::F32, {-1}), UserError);
  EXPECT_THROW(writer.write_f32("b", v.data(), 4), Error);     // out of declaration order
  EXPECT_THROW(writer.write_f32("c", v.data(), 4), Error);     // never declared
  EXPECT_THROW(writer.write_f32("a", v.data(), 3), Error);     // wrong count
  EXPECT_THROW(writer.write_raw("a", v.data(), 12), Error);    // wrong byte count
  writer.write_f32("a", v.data(), 4);
  EXPECT_THROW(writer.declare("late", DType::F32, {1}), Error);  // header already written
  EXPECT_THROW(writer.finish(), Error);                          // "b" missing
  EXPECT_FALSE(fs::exists(dir_ / "w.safetensors"));
}

TEST_F(SafetensorsTest, ModelFitsInOneFile) {
  const auto a = random_floats(6, 1);
  const auto b = random_floats(2, 2);
  write_safetensors_model(dir_ / "m", {{"a", DType::F32, {2, 3}, a.data()}, {"b", DType::BF16, {2}, b.data()}},
                          1 << 20);
  EXPECT_TRUE(fs::exists(dir_ / "m" / "model.safetensors"));
  EXPECT_FALSE(fs::exists(dir_ / "m" / "model.safetensors.index.json"));
  auto model = SafetensorsModel::open(dir_ / "m");
  EXPECT_TRUE(same_bits(model.read_f32("a"), a));
  EXPECT_EQ(model.info("b").dtype, DType::BF16);
  EXPECT_EQ(model.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
}

TEST_F(SafetensorsTest, ShardedWriteAndReadThroughIndex) {
  // Five 400-byte tensors with at most 1000 bytes per shard: greedy in order gives 2 + 2 + 1.
  std::vector<std::vector<float>> data;
  std::vector<TensorToWrite> tensors;
  for (int i = 0; i < 5; ++i) data.push_back(random_floats(100, 100 + i));
  for (int i = 0; i < 5; ++i) {
    tensors.push_back({fmt::format("layers.{}.weight", 4 - i), DType::F32, {10, 10}, data[i].data()});
  }
  const fs::path dir = dir_ / "sharded";
  write_safetensors_model(dir, tensors, 1000);
  for (int k = 1; k <= 3; ++k) EXPECT_TRUE(fs::exists(dir / fmt::format("model-{:05d}-of-00003.safetensors", k)));
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));

  json index = json::parse(read_file(dir / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 2000);
  EXPECT_EQ(index["weight_map"]["layers.4.weight"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["layers.3.weight"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["layers.2.weight"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["layers.0.weight"], "model-00003-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"].size(), 5u);

  for (const fs::path& p : {dir, dir / "model.safetensors.index.json"}) {
    auto model = SafetensorsModel::open(p);
    EXPECT_EQ(model.names().size(), 5u);
    for (int i = 0; i < 5; ++i) {
      EXPECT_TRUE(same_bits(model.read_f32(tensors[i].name), data[i])) << tensors[i].name;
    }
    EXPECT_EQ(model.info("layers.0.weight").file, (dir / "model-00003-of-00003.safetensors").string());
    EXPECT_EQ(model.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
    std::vector<float> rows(20);
    model.read_f32_rows("layers.2.weight", 3, 5, rows.data());
    EXPECT_TRUE(same_bits(rows, std::vector<float>(data[2].begin() + 30, data[2].begin() + 50)));
  }
  // A shard read on its own holds just its tensors.
  EXPECT_EQ(SafetensorsModel::open(dir / "model-00002-of-00003.safetensors").names(),
            (std::vector<std::string>{"layers.1.weight", "layers.2.weight"}));
}

TEST_F(SafetensorsTest, TensorLargerThanShardLimitGetsItsOwnShard) {
  const auto small = random_floats(10, 1);
  const auto big = random_floats(1000, 2);
  write_safetensors_model(dir_, {{"s0", DType::F32, {10}, small.data()}, {"big", DType::F32, {1000}, big.data()},
                                 {"s1", DType::F32, {10}, small.data()}}, 100);
  json index = json::parse(read_file(dir_ / "model.safetensors.index.json"));
  EXPECT_EQ(index["weight_map"]["s0"], "model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["big"], "model-00002-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["s1"], "model-00003-of-00003.safetensors");
  EXPECT_TRUE(same_bits(SafetensorsModel::open(dir_).read_f32("big"), big));
}

TEST_F(SafetensorsTest, RewritingAModelRemovesThePreviousSavesFiles) {
  const auto v = random_floats(100, 1);
  std::vector<TensorToWrite> tensors;
  for (int i = 0; i < 4; ++i) tensors.push_back({fmt::format("t{}", i), DType::F32, {100}, v.data()});
  write_safetensors_model(dir_, tensors, 400);  // 4 shards
  write_file(dir_ / "config.json", "{}");
  write_safetensors_model(dir_, tensors, 800);  // 2 shards
  EXPECT_FALSE(fs::exists(dir_ / "model-00001-of-00004.safetensors"));
  EXPECT_FALSE(fs::exists(dir_ / "model-00004-of-00004.safetensors"));
  EXPECT_TRUE(fs::exists(dir_ / "model-00002-of-00002.safetensors"));
  write_safetensors_model(dir_, tensors, 1 << 20);  // one file
  EXPECT_FALSE(fs::exists(dir_ / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir_ / "model-00001-of-00002.safetensors"));
  EXPECT_TRUE(fs::exists(dir_ / "config.json"));
  EXPECT_EQ(SafetensorsModel::open(dir_).names().size(), 4u);
  write_safetensors_model(dir_, tensors, 800);  // back to shards: the single file goes
  EXPECT_FALSE(fs::exists(dir_ / "model.safetensors"));
  EXPECT_EQ(SafetensorsModel::open(dir_).names().size(), 4u);
}

// ---- malformed input ----

TEST_F(SafetensorsTest, MissingPathsAndTensors) {
  expect_user_error([&] { SafetensorsModel::open(dir_ / "nope.safetensors"); }, {"nope.safetensors", "does not exist"});
  fs::create_directories(dir_ / "empty_dir");
  expect_user_error([&] { SafetensorsModel::open(dir_ / "empty_dir"); }, {"empty_dir", "model.safetensors"});

  const float x = 1.f;
  write_safetensors_model(dir_ / "m", {{"x", DType::F32, {1}, &x}}, 1 << 20);
  auto model = SafetensorsModel::open(dir_ / "m");
  expect_user_error([&] { model.info("model.norm.weight"); }, {"model.norm.weight", (dir_ / "m").string()});
  expect_user_error([&] { model.raw("y"); }, {"'y'"});
  float out[2];
  expect_user_error([&] { model.read_f32("x", out, 2); }, {"'x'", "1 elements", "2"});
}

TEST_F(SafetensorsTest, TruncatedFileAndBadHeaderLength) {
  const fs::path p = dir_ / "bad.safetensors";
  write_file(p, "");
  expect_user_error([&] { SafetensorsModel::open(p); }, {p.string(), "truncated"});
  write_file(p, "abc");
  expect_user_error([&] { SafetensorsModel::open(p); }, {p.string(), "truncated"});
  write_file(p, make_file("{}", "", 1000));
  expect_user_error([&] { SafetensorsModel::open(p); }, {p.string(), "header length 1000"});
  write_file(p, make_file("{}", "", ~uint64_t{1}));  // 2^64 - 2: must not overflow into a small number
  expect_user_error([&] { SafetensorsModel::open(p); }, {p.string(), "header length"});

  // A valid file cut short in its data section.
  const auto v = random_floats(16, 1);
  write_safetensors_model(dir_ / "m", {{"model.embed_tokens.weight", DType::F32, {4, 4}, v.data()}}, 1 << 20);
  const fs::path file = dir_ / "m" / "model.safetensors";
  std::string bytes = read_file(file);
  write_file(file, bytes.substr(0, bytes.size() - 4));
  expect_user_error([&] { SafetensorsModel::open(dir_ / "m"); },
                    {file.string(), "model.embed_tokens.weight", "data_offsets"});
}

TEST_F(SafetensorsTest, MalformedHeaders) {
  const fs::path p = dir_ / "bad.safetensors";
  const std::string data(64, '\0');
  struct Case {
    std::string header;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {R"({"x": {"dtype": "F32", )", {"not valid JSON"}},
      {"\xff\xfe", {"not valid JSON"}},
      {R"([1, 2])", {"JSON object"}},
      {R"({"w": 5})", {"'w'", "not an object"}},
      {R"({"w": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}})", {"'w'", "F64"}},
      {R"({"w": {"dtype": "Q4_K", "shape": [2], "data_offsets": [0, 8]}})", {"'w'", "Q4_K"}},
      {R"({"w": {"dtype": "fp32", "shape": [2], "data_offsets": [0, 8]}})", {"'w'", "fp32"}},
      {R"({"w": {"dtype": 3, "shape": [2], "data_offsets": [0, 8]}})", {"'w'", "dtype"}},
      {R"({"w": {"dtype": "F32", "data_offsets": [0, 8]}})", {"'w'", "shape"}},
      {R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", {"'w'", "shape"}},
      {R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})", {"'w'", "shape"}},
      {R"({"w": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}})", {"'w'", "shape"}},
      {R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", {"'w'", "too large"}},
      {R"({"w": {"dtype": "F32", "shape": [2]}})", {"'w'", "data_offsets"}},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", {"'w'", "data_offsets"}},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}})", {"'w'", "data_offsets"}},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", {"'w'", "end before"}},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [60, 68]}})", {"'w'", "outside"}},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 18446744073709551615]}})", {"'w'", "outside"}},
      {R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", {"'w'", "needs 12 bytes"}},
      {R"({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 16]}})", {"'w'", "needs 8 bytes"}},
      {R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", {"'a'", "'b'", "overlap"}},
      {R"({"__metadata__": {"format": 1}})", {"__metadata__", "format"}},
      {R"({"__metadata__": ["pt"]})", {"__metadata__"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header);
    write_file(p, make_file(c.header, data));
    std::vector<std::string> expected = c.expected;
    expected.push_back(p.string());
    expect_user_error([&] { SafetensorsModel::open(p); }, expected);
  }
}

TEST_F(SafetensorsTest, MalformedIndexes) {
  const auto v = random_floats(4, 1);
  write_safetensors_model(dir_, {{"a", DType::F32, {4}, v.data()}, {"b", DType::F32, {4}, v.data()}}, 16);
  const fs::path index = dir_ / "model.safetensors.index.json";
  const std::string shard1 = "model-00001-of-00002.safetensors";
  ASSERT_TRUE(fs::exists(dir_ / shard1));

  write_file(index, R"({"weight_map": {"a": ")" + shard1 + R"(", "b": "model-00002-of-00009.safetensors"}})");
  expect_user_error([&] { SafetensorsModel::open(dir_); },
                    {index.string(), "'b'", "model-00002-of-00009.safetensors", "does not exist"});
  write_file(index, R"({"weight_map": {"a": ")" + shard1 + R"(", "c": ")" + shard1 + R"("}})");
  expect_user_error([&] { SafetensorsModel::open(dir_); }, {index.string(), "'c'", shard1, "no such tensor"});
  write_file(index, R"({"weight_map": {"a": "../)" + shard1 + R"("}})");
  expect_user_error([&] { SafetensorsModel::open(dir_); }, {index.string(), "'a'", "plain file name"});
  write_file(index, R"({"weight_map": {"a": 1}})");
  expect_user_error([&] { SafetensorsModel::open(dir_); }, {index.string(), "'a'"});
  write_file(index, R"({"metadata": {}})");
  expect_user_error([&] { SafetensorsModel::open(dir_); }, {index.string(), "weight_map"});
  write_file(index, R"({"weight_map": {}})");
  expect_user_error([&] { SafetensorsModel::open(dir_); }, {index.string(), "no tensors"});
  write_file(index, R"({"weight_map": )");
  expect_user_error([&] { SafetensorsModel::open(dir_); }, {index.string(), "not valid JSON"});
  // A shard that is itself broken is named as such.
  write_file(index, R"({"weight_map": {"a": ")" + shard1 + R"("}})");
  write_file(dir_ / shard1, "xyz");
  expect_user_error([&] { SafetensorsModel::open(dir_); }, {(dir_ / shard1).string(), "truncated"});
}

// Hostile bytes never crash the reader: every truncation and many random corruptions of a valid
// file either open (and then read consistently) or throw UserError.
TEST_F(SafetensorsTest, CorruptedFilesNeverCrash) {
  const auto v = random_floats(12, 1);
  write_safetensors_model(dir_ / "m", {{"a", DType::BF16, {3, 4}, v.data()}, {"b", DType::F32, {2}, v.data()}},
                          1 << 20);
  const std::string good = read_file(dir_ / "m" / "model.safetensors");
  const fs::path p = dir_ / "c.safetensors";
  auto try_open = [&](const std::string& bytes) {
    write_file(p, bytes);
    try {
      auto model = SafetensorsModel::open(p);
      for (const std::string& name : model.names()) {
        const TensorInfo& info = model.info(name);
        if (info.dtype == DType::F32 || info.dtype == DType::BF16 || info.dtype == DType::F16) {
          EXPECT_EQ(model.read_f32(name).size(), static_cast<size_t>(info.numel()));
        } else {
          EXPECT_EQ(model.raw(name).size(), info.numel() * dtype_size(info.dtype));
        }
      }
    } catch (const UserError&) {
    }
  };
  for (size_t len = 0; len < good.size(); ++len) try_open(good.substr(0, len));
  std::mt19937 rng(123);
  for (int i = 0; i < 2000; ++i) {
    std::string bad = good;
    for (int k = 0; k < 1 + i % 3; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
    try_open(bad);
  }
}

}  // namespace
}  // namespace iris::io
