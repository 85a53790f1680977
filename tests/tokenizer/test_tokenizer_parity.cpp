// Byte-level BPE parity: Iris's tokenizer against tiktoken (Llama 3's tokenizer.model) and Hugging
// Face tokenizers (a tokenizer.json of the same tokenizer, and a GPT-2-style one) on the bundled
// corpus, the SFT sample and edge_cases.txt (make_reference.py writes the ids). Ids must be identical,
// element for element; decode(encode(x)) must give x back byte for byte.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <sstream>

#include "io/tokenizer.h"
#include "src/core/error.h"

namespace {
using iris::io::Tokenizer;
using nlohmann::json;

const json& reference() {
  static const json ref = [] {
    std::ifstream in(std::string(IRIS_TOKENIZER_REF_DIR) + "/reference.json");
    EXPECT_TRUE(in.is_open()) << "run the tokenizer_reference test first (make_reference.py)";
    std::stringstream s;
    s << in.rdbuf();
    return json::parse(s.str());
  }();
  return ref;
}

const std::map<std::string, std::string> kFiles = {
    {"tiktoken", "llama3/tokenizer.model"},
    {"llama3-hf", "llama3-hf/tokenizer.json"},
    {"gpt2-style", "gpt2-style/tokenizer.json"},
};

class Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(Parity, IdsEqualReferenceAndDecodeRoundTrips) {
  const Tokenizer tok = Tokenizer::load(std::string(IRIS_TOKENIZER_REF_DIR) + "/" + kFiles.at(GetParam()));
  ASSERT_TRUE(tok.byte_level());
  size_t cases = 0, ids_compared = 0;
  for (const json& c : reference()["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<int32_t> want = c["ids"][GetParam()].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = tok.encode(text, c["allow_special"].get<bool>());
    ASSERT_EQ(got, want) << "case " << c["name"].get<std::string>();
    ASSERT_EQ(tok.decode(got), text) << "case " << c["name"].get<std::string>();
    ++cases;
    ids_compared += want.size();
  }
  EXPECT_GT(cases, 400u);
  EXPECT_GT(ids_compared, 60000u);
}

INSTANTIATE_TEST_SUITE_P(Files, Parity, ::testing::Values("tiktoken", "llama3-hf", "gpt2-style"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

TEST(Llama3, SpecialTokensHaveMetasIds) {
  for (const char* file : {"llama3/tokenizer.model", "llama3-hf/tokenizer.json"}) {
    const Tokenizer tok = Tokenizer::load(std::string(IRIS_TOKENIZER_REF_DIR) + "/" + file);
    EXPECT_EQ(tok.vocab_size(), 128256) << file;
    EXPECT_EQ(tok.bos_id(), 128000) << file;
    EXPECT_EQ(tok.eos_id(), 128001) << file;
    EXPECT_EQ(tok.token_id("<|start_header_id|>"), 128006) << file;
    EXPECT_EQ(tok.token_id("<|end_header_id|>"), 128007) << file;
    EXPECT_EQ(tok.token_id("<|eot_id|>"), 128009) << file;
    EXPECT_EQ(tok.token_id("<|reserved_special_token_245|>"), 128255) << file;
    EXPECT_EQ(tok.piece(128009), "<|eot_id|>") << file;
    // Ordinary text never yields a special token; with allow_special it does.
    const std::vector<int32_t> plain = tok.encode("<|eot_id|>");
    EXPECT_GT(plain.size(), 1u) << file;
    for (int32_t id : plain) EXPECT_LT(id, 128000) << file;
    EXPECT_EQ(tok.encode("<|eot_id|>", true), std::vector<int32_t>{128009}) << file;
    const int the = tok.token_id("\xC4\xA0the");  // "Ġthe": " the" in the byte-level alphabet
    ASSERT_GE(the, 0) << file;
    EXPECT_EQ(tok.encode(" the"), std::vector<int32_t>{the}) << file;
  }
}

TEST(Llama3, InvalidUtf8IsRefused) {
  const Tokenizer tok = Tokenizer::load(std::string(IRIS_TOKENIZER_REF_DIR) + "/llama3/tokenizer.model");
  try {
    tok.encode("ok \xC3\x28 bad");
    FAIL() << "invalid UTF-8 accepted";
  } catch (const iris::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("not valid UTF-8"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("offset 3"), std::string::npos) << e.what();
  }
}

}  // namespace
