// Byte-level BPE on tiny hand-made vocabularies (tests/tokenizer/ checks Llama 3's real files against
// tiktoken and tokenizers): the file kind is decided by content, merge order follows priorities with
// the leftmost pair first, file errors name the file and line or key, and the UTF-8 helpers match
// Python's bytes.decode("utf-8", errors="replace").
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "io/bpe_files.h"
#include "io/tokenizer.h"
#include "io/utf8.h"
#include "src/core/error.h"

namespace fs = std::filesystem;
using iris::io::Tokenizer;

namespace {

std::string base64(const std::string& in) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += abc[(n >> 18) & 63];
    out += abc[(n >> 12) & 63];
    out += i + 1 < in.size() ? abc[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? abc[n & 63] : '=';
  }
  return out;
}

class BpeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("iris_bpe_{}", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // A tiktoken file: the 256 bytes, then `extra` tokens in rank order. Named .json on purpose: the
  // kind comes from the content.
  std::string tiktoken_file(const std::vector<std::string>& extra) {
    const std::string path = (dir_ / "ranks.json").string();
    std::ofstream f(path);
    int rank = 0;
    for (int b = 0; b < 256; ++b) f << base64(std::string(1, static_cast<char>(b))) << " " << rank++ << "\n";
    for (const auto& t : extra) f << base64(t) << " " << rank++ << "\n";
    return path;
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  fs::path dir_;
};

TEST_F(BpeTest, KindComesFromContentAndMergesFollowRanks) {
  // "ab" (256) merges before "bc" (257); "abc" (258) is reachable only through "ab"+"c".
  const Tokenizer tok = Tokenizer::load(tiktoken_file({"ab", "bc", "abc", "aa"}));
  EXPECT_EQ(tok.kind(), iris::io::TokenizerKind::Tiktoken);
  EXPECT_EQ(tok.vocab_size(), 260 + 256);  // + Llama 3's special tokens
  EXPECT_EQ(tok.bos_id(), 260);
  EXPECT_EQ(tok.encode("abc"), std::vector<int32_t>{258});
  EXPECT_EQ(tok.encode("bcab"), (std::vector<int32_t>{257, 256}));
  EXPECT_EQ(tok.encode("aaa"), (std::vector<int32_t>{259, 'a'}));  // leftmost pair first
  EXPECT_EQ(tok.encode("xbc"), (std::vector<int32_t>{'x', 257}));
  EXPECT_EQ(tok.decode(tok.encode("aaa bc\n")), "aaa bc\n");
  EXPECT_EQ(tok.encode("<|eot_id|>", true), std::vector<int32_t>{260 + 9});
}

TEST_F(BpeTest, TiktokenErrorsNameFileAndLine) {
  const std::string path = write("bad.model", "IQ== 0\nIg== 5\n");
  try {
    Tokenizer::load(path);
    FAIL() << "ranks out of order accepted";
  } catch (const iris::UserError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":2"), std::string::npos) << e.what();
  }
  const std::string short_vocab = write("short.model", "IQ== 0\n");
  EXPECT_THROW(Tokenizer::load(short_vocab), iris::UserError);  // byte tokens missing
}

TEST_F(BpeTest, TokenizerJsonErrorsNameTheKey) {
  const std::string path = write("tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {}}})");
  try {
    Tokenizer::load(path);
    FAIL() << "a WordPiece tokenizer.json accepted";
  } catch (const iris::UserError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.type"), std::string::npos) << e.what();
  }
  const std::string norm = write("norm.json", R"({"model": {"type": "BPE", "vocab": {}, "merges": []},
      "normalizer": {"type": "NFC"}, "pre_tokenizer": {"type": "ByteLevel"}})");
  try {
    Tokenizer::load(norm);
    FAIL() << "a normalizer accepted";
  } catch (const iris::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("normalizer"), std::string::npos) << e.what();
  }
}

TEST(Utf8, ReplacementMatchesPython) {
  using iris::io::replace_invalid_utf8;
  const std::string r = "\xEF\xBF\xBD";
  // Expected values from Python 3.11: bytes.decode("utf-8", errors="replace").
  EXPECT_EQ(replace_invalid_utf8("\xE0\x80" "a"), r + r + "a");
  EXPECT_EQ(replace_invalid_utf8("\xE2\x82"), r);
  EXPECT_EQ(replace_invalid_utf8("\xF0\x9F\x98x"), r + "x");
  EXPECT_EQ(replace_invalid_utf8("\xED\xA0\x80"), r + r + r);
  EXPECT_EQ(replace_invalid_utf8("\xC0\xAF"), r + r);
  EXPECT_EQ(replace_invalid_utf8("\xF4\x90\x80\x80"), r + r + r + r);
  EXPECT_EQ(replace_invalid_utf8("ok\xFF"), "ok" + r);
  EXPECT_EQ(replace_invalid_utf8("caf\xC3\xA9 \xF0\x9F\x98\x80"), "caf\xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(iris::io::find_invalid_utf8("0123456789abcdef\xC3\xA9\xC3"), 18u);
  EXPECT_EQ(iris::io::find_invalid_utf8("all ascii, long enough for the fast path"), std::string::npos);
}

}  // namespace
