// Megatron indexed dataset: write/read round trips for both token widths, the exact .idx byte
// layout, the token-stream view across sequence boundaries, and the errors for broken files.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <random>

#include "io/indexed_dataset.h"
#include "src/core/error.h"

namespace fs = std::filesystem;
using iris::io::IndexedDataset;
using iris::io::IndexedDatasetWriter;
using iris::io::IndexedDType;

namespace {

class IndexedDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / fmt::format("iris_idx_{}_{}", ::getpid(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string prefix(const std::string& name = "data") const { return (dir_ / name).string(); }

  fs::path dir_;
};

std::vector<std::vector<int32_t>> random_documents(int vocab, std::vector<int> lengths, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> token(0, vocab - 1);
  std::vector<std::vector<int32_t>> docs;
  for (int n : lengths) {
    std::vector<int32_t> doc(n);
    for (int32_t& t : doc) t = token(rng);
    docs.push_back(std::move(doc));
  }
  return docs;
}

void write_dataset(const std::string& prefix, int vocab, const std::vector<std::vector<int32_t>>& docs) {
  IndexedDatasetWriter writer(prefix, vocab);
  for (const auto& d : docs) writer.add_document(d);
  writer.finalize();
}

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

template <typename T>
T at(const std::vector<unsigned char>& bytes, size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

// Expects IndexedDataset::open(prefix) to throw UserError whose message holds every one of `parts`.
void expect_open_error(const std::string& prefix, const std::vector<std::string>& parts) {
  try {
    IndexedDataset::open(prefix);
    FAIL() << "open(" << prefix << ") did not throw";
  } catch (const iris::UserError& e) {
    for (const std::string& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
        << "message '" << e.what() << "' lacks '" << part << "'";
  }
}

void expect_round_trip(const std::string& prefix, int vocab, IndexedDType dtype, const std::vector<int>& lengths) {
  const auto docs = random_documents(vocab, lengths, 7);
  write_dataset(prefix, vocab, docs);
  const IndexedDataset ds = IndexedDataset::open(prefix);
  ASSERT_EQ(ds.dtype(), dtype);
  ASSERT_EQ(ds.num_sequences(), docs.size());
  ASSERT_EQ(ds.num_documents(), docs.size());
  uint64_t total = 0;
  std::vector<int32_t> seq;
  for (size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(ds.sequence_length(i), docs[i].size());
    EXPECT_EQ(ds.sequence_offset(i), total);
    EXPECT_EQ(ds.document_index(i), i);
    ds.read_sequence(i, seq);
    EXPECT_EQ(seq, docs[i]) << "sequence " << i;
    total += docs[i].size();
  }
  EXPECT_EQ(ds.document_index(docs.size()), docs.size());
  EXPECT_EQ(ds.num_tokens(), total);
  EXPECT_EQ(fs::file_size(prefix + ".bin"), total * (dtype == IndexedDType::U16 ? 2 : 4));
}

TEST_F(IndexedDatasetTest, DtypeFollowsMegatronVocabRule) {
  EXPECT_EQ(iris::io::token_dtype_for_vocab(32000), IndexedDType::U16);
  EXPECT_EQ(iris::io::token_dtype_for_vocab(65499), IndexedDType::U16);
  EXPECT_EQ(iris::io::token_dtype_for_vocab(65500), IndexedDType::I32);
  EXPECT_EQ(iris::io::token_dtype_for_vocab(128256), IndexedDType::I32);
}

TEST_F(IndexedDatasetTest, RoundTripUint16) {
  expect_round_trip(prefix(), 32000, IndexedDType::U16, {5, 0, 3, 17, 1, 64});
}

TEST_F(IndexedDatasetTest, RoundTripInt32) {
  expect_round_trip(prefix(), 128256, IndexedDType::I32, {9, 2, 0, 33, 7});
}

TEST_F(IndexedDatasetTest, Uint16KeepsTheTopOfTheVocabulary) {
  write_dataset(prefix(), 65499, {{0, 65498, 32768, 1}});
  std::vector<int32_t> seq;
  IndexedDataset::open(prefix()).read_sequence(0, seq);
  EXPECT_EQ(seq, (std::vector<int32_t>{0, 65498, 32768, 1}));
}

TEST_F(IndexedDatasetTest, IndexBytesMatchMegatronLayout) {
  write_dataset(prefix(), 1000, {{1, 2, 3}, {4}, {5, 6}});
  const auto idx = read_bytes(prefix() + ".idx");
  ASSERT_EQ(idx.size(), 34u + 3 * 4 + 3 * 8 + 4 * 8);
  EXPECT_EQ(std::memcmp(idx.data(), "MMIDIDX\0\0", 9), 0);
  EXPECT_EQ(at<uint64_t>(idx, 9), 1u);   // version
  EXPECT_EQ(idx[17], 8);                 // Megatron DType.uint16
  EXPECT_EQ(at<uint64_t>(idx, 18), 3u);  // sequence count
  EXPECT_EQ(at<uint64_t>(idx, 26), 4u);  // document index entries: documents + 1
  const std::vector<int32_t> lengths = {at<int32_t>(idx, 34), at<int32_t>(idx, 38), at<int32_t>(idx, 42)};
  EXPECT_EQ(lengths, (std::vector<int32_t>{3, 1, 2}));
  const std::vector<int64_t> pointers = {at<int64_t>(idx, 46), at<int64_t>(idx, 54), at<int64_t>(idx, 62)};
  EXPECT_EQ(pointers, (std::vector<int64_t>{0, 6, 8}));  // bytes
  const std::vector<int64_t> doc_idx = {at<int64_t>(idx, 70), at<int64_t>(idx, 78), at<int64_t>(idx, 86),
                                        at<int64_t>(idx, 94)};
  EXPECT_EQ(doc_idx, (std::vector<int64_t>{0, 1, 2, 3}));
  const auto bin = read_bytes(prefix() + ".bin");
  ASSERT_EQ(bin.size(), 12u);
  EXPECT_EQ(at<uint16_t>(bin, 10), 6);

  write_dataset(prefix("wide"), 100000, {{70000, 2}});
  const auto wide = read_bytes(prefix("wide") + ".idx");
  EXPECT_EQ(wide[17], 4);  // Megatron DType.int32
  EXPECT_EQ(at<int32_t>(read_bytes(prefix("wide") + ".bin"), 0), 70000);
}

TEST_F(IndexedDatasetTest, ReadTokensCrossesSequenceBoundaries) {
  const auto docs = random_documents(500, {4, 0, 1, 6, 3, 0, 5}, 11);
  write_dataset(prefix(), 500, docs);
  std::vector<int32_t> stream;
  for (const auto& d : docs) stream.insert(stream.end(), d.begin(), d.end());
  const IndexedDataset ds = IndexedDataset::open(prefix());
  ASSERT_EQ(ds.num_tokens(), stream.size());
  for (size_t offset = 0; offset <= stream.size(); ++offset) {
    for (size_t count = 0; offset + count <= stream.size(); ++count) {
      std::vector<int32_t> out(count, -1);
      ds.read_tokens(offset, count, out.data());
      ASSERT_TRUE(std::equal(out.begin(), out.end(), stream.begin() + offset)) << offset << "+" << count;
    }
  }
  int32_t one;
  EXPECT_THROW(ds.read_tokens(stream.size(), 1, &one), iris::Error);
}

TEST_F(IndexedDatasetTest, ReadsMultiSequenceDocumentsWrittenByMegatron) {
  // Megatron's builder can put several sequences in one document: here sequences {0,1} and {2}.
  write_dataset(prefix(), 1000, {{1, 2}, {3}, {4, 5, 6}});
  auto idx = read_bytes(prefix() + ".idx");
  const std::vector<int64_t> doc_idx = {0, 2, 3};
  idx.resize(34 + 3 * 12);
  const uint64_t entries = doc_idx.size();
  std::memcpy(idx.data() + 26, &entries, 8);
  for (int64_t v : doc_idx) {
    const auto* p = reinterpret_cast<const unsigned char*>(&v);
    idx.insert(idx.end(), p, p + 8);
  }
  write_bytes(prefix() + ".idx", idx);
  const IndexedDataset ds = IndexedDataset::open(prefix());
  EXPECT_EQ(ds.num_sequences(), 3u);
  EXPECT_EQ(ds.num_documents(), 2u);
  EXPECT_EQ(ds.document_index(1), 2u);
  EXPECT_EQ(ds.document_index(2), 3u);
  std::vector<int32_t> out(6);
  ds.read_tokens(0, 6, out.data());
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));
}

TEST_F(IndexedDatasetTest, EmptyDatasetRoundTrips) {
  write_dataset(prefix(), 1000, {});
  const IndexedDataset ds = IndexedDataset::open(prefix());
  EXPECT_EQ(ds.num_sequences(), 0u);
  EXPECT_EQ(ds.num_documents(), 0u);
  EXPECT_EQ(ds.num_tokens(), 0u);
}

TEST_F(IndexedDatasetTest, MissingFilesAreNamed) {
  expect_open_error(prefix("absent"), {prefix("absent") + ".idx", "not found"});
  write_dataset(prefix(), 1000, {{1, 2}});
  fs::remove(prefix() + ".bin");
  expect_open_error(prefix(), {prefix() + ".bin", "not found"});
}

TEST_F(IndexedDatasetTest, TruncatedIndexIsReported) {
  write_dataset(prefix(), 1000, {{1, 2, 3}, {4, 5}});
  const auto idx = read_bytes(prefix() + ".idx");
  write_bytes(prefix() + ".idx", std::vector<unsigned char>(idx.begin(), idx.end() - 8));
  expect_open_error(prefix(), {prefix() + ".idx", "truncated"});
  write_bytes(prefix() + ".idx", std::vector<unsigned char>(idx.begin(), idx.begin() + 20));
  expect_open_error(prefix(), {prefix() + ".idx", "truncated", "header"});
  write_bytes(prefix() + ".idx", {});
  expect_open_error(prefix(), {prefix() + ".idx", "truncated"});
}

TEST_F(IndexedDatasetTest, CorruptIndexIsReported) {
  write_dataset(prefix(), 1000, {{1, 2, 3}, {4, 5}});
  const auto good = read_bytes(prefix() + ".idx");
  auto corrupt = [&](size_t offset, unsigned char value, const std::vector<std::string>& parts) {
    auto bytes = good;
    bytes[offset] = value;
    write_bytes(prefix() + ".idx", bytes);
    expect_open_error(prefix(), parts);
  };
  corrupt(0, 'X', {prefix() + ".idx", "magic"});
  corrupt(9, 2, {prefix() + ".idx", "version 2"});
  corrupt(17, 7, {prefix() + ".idx", "dtype code 7"});          // float32 tokens
  corrupt(18, 200, {prefix() + ".idx", "200 sequences"});       // sequence count
  corrupt(34, 9, {prefix() + ".idx", "sequence 1 starts at byte 6, expected 18"});  // length 3 → 9
  corrupt(34 + 8 + 16 + 8, 5, {prefix() + ".idx", "document index"});  // doc_idx[1] = 5 > S
}

TEST_F(IndexedDatasetTest, BinSizeMismatchIsReported) {
  write_dataset(prefix(), 1000, {{1, 2, 3}, {4, 5}});
  const auto bin = read_bytes(prefix() + ".bin");
  write_bytes(prefix() + ".bin", std::vector<unsigned char>(bin.begin(), bin.end() - 2));
  expect_open_error(prefix(), {prefix() + ".bin", "truncated"});
  auto longer = bin;
  longer.push_back(0);
  write_bytes(prefix() + ".bin", longer);
  expect_open_error(prefix(), {prefix() + ".bin", "too long"});
}

TEST_F(IndexedDatasetTest, UnfinishedWriterLeavesNothing) {
  {
    IndexedDatasetWriter writer(prefix(), 1000);
    writer.add_document(std::vector<int32_t>{1, 2, 3});
    EXPECT_TRUE(fs::exists(prefix() + ".bin.tmp"));
    EXPECT_FALSE(fs::exists(prefix() + ".bin"));
  }
  EXPECT_TRUE(fs::is_empty(dir_)) << "left files in " << dir_;
}

TEST_F(IndexedDatasetTest, OutOfVocabularyTokenIsRejectedAndCleanedUp) {
  {
    IndexedDatasetWriter writer(prefix(), 1000);
    writer.add_document(std::vector<int32_t>{1, 2});
    try {
      writer.add_document(std::vector<int32_t>{3, 1000});
      FAIL() << "token 1000 accepted with vocab 1000";
    } catch (const iris::UserError& e) {
      EXPECT_NE(std::string(e.what()).find("token 1000 at position 1 of document 1"), std::string::npos) << e.what();
    }
    EXPECT_THROW(writer.add_document(std::vector<int32_t>{-1}), iris::UserError);
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(IndexedDatasetTest, OldOutputSurvivesUntilNewOneIsFinalized) {
  write_dataset(prefix(), 1000, {{7, 8, 9}});
  {
    IndexedDatasetWriter writer(prefix(), 1000);
    writer.add_document(std::vector<int32_t>{1});
  }  // abandoned
  std::vector<int32_t> seq;
  IndexedDataset::open(prefix()).read_sequence(0, seq);
  EXPECT_EQ(seq, (std::vector<int32_t>{7, 8, 9}));

  write_dataset(prefix(), 1000, {{4}, {5, 6}});
  const IndexedDataset ds = IndexedDataset::open(prefix());
  EXPECT_EQ(ds.num_sequences(), 2u);
  ds.read_sequence(1, seq);
  EXPECT_EQ(seq, (std::vector<int32_t>{5, 6}));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"data.bin", "data.idx"}));
}

TEST_F(IndexedDatasetTest, UnwritableOutputIsNamed) {
  const std::string bad = (dir_ / "no_such_dir" / "data").string();
  try {
    IndexedDatasetWriter writer(bad, 1000);
    FAIL() << "writer opened " << bad;
  } catch (const iris::UserError& e) {
    EXPECT_NE(std::string(e.what()).find(bad + ".bin.tmp"), std::string::npos) << e.what();
  }
}

TEST_F(IndexedDatasetTest, DatasetIsMovable) {
  write_dataset(prefix(), 1000, {{1, 2, 3}});
  IndexedDataset a = IndexedDataset::open(prefix());
  IndexedDataset b = std::move(a);
  std::vector<int32_t> seq;
  b.read_sequence(0, seq);
  EXPECT_EQ(seq, (std::vector<int32_t>{1, 2, 3}));
}

}  // namespace
