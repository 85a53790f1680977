// Tokenizer over sentencepiece: trains a tiny model with Llama 2's tokenizer settings (BPE, unk 0,
// bos 1, eos 2, byte fallback, identity normalization that keeps whitespace and newlines) on generated
// text, then checks encode/decode round trips, special ids and load errors.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "io/tokenizer.h"
#include "src/core/error.h"

namespace fs = std::filesystem;
using iris::io::Tokenizer;

namespace {

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / fmt::format("iris_tok_{}", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::vector<std::string> words = {"the", "retina", "lens", "cornea", "pressure", "optic", "nerve",
                                            "glaucoma", "patient", "eye", "drops", "vision", "of", "and", "a",
                                            "with", "angle", "closure", "treatment", "field", "loss", "is"};
    std::mt19937 rng(3);
    std::ofstream corpus(dir_ / "corpus.txt");
    for (int line = 0; line < 2000; ++line) {
      const int n = 4 + static_cast<int>(rng() % 10);
      for (int i = 0; i < n; ++i) corpus << (i ? " " : "") << words[rng() % words.size()];
      corpus << " " << rng() % 1000 << ".\n";
    }
    corpus.close();
    train("llama", "--bos_id=1 --eos_id=2 --unk_id=0 --pad_id=-1");
    train("plain", "--bos_id=-1 --eos_id=-1 --unk_id=0 --pad_id=-1");
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static void train(const std::string& name, const std::string& ids) {
    const auto status = sentencepiece::SentencePieceTrainer::Train(fmt::format(
        "--input={} --model_prefix={} --vocab_size=400 --model_type=bpe --character_coverage=1.0 "
        "--byte_fallback=true --split_digits=true --normalization_rule_name=identity --remove_extra_whitespaces=false "
        "--allow_whitespace_only_pieces=true --num_threads=1 --minloglevel=2 {}",
        (dir_ / "corpus.txt").string(), (dir_ / name).string(), ids));
    ASSERT_TRUE(status.ok()) << status.ToString();
  }
  static std::string model(const std::string& name) { return (dir_ / (name + ".model")).string(); }

  static fs::path dir_;
};
fs::path TokenizerTest::dir_;

TEST_F(TokenizerTest, SpecialIdsAndVocabulary) {
  const Tokenizer tok = Tokenizer::load(model("llama"));
  EXPECT_EQ(tok.vocab_size(), 400);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.piece(0), "<unk>");
  EXPECT_EQ(tok.piece(1), "<s>");
  EXPECT_EQ(tok.piece(2), "</s>");
  EXPECT_EQ(tok.piece(3), "<0x00>");  // byte fallback pieces follow the specials, as in Llama 2
  EXPECT_EQ(tok.path(), model("llama"));

  const Tokenizer plain = Tokenizer::load(model("plain"));
  EXPECT_EQ(plain.bos_id(), -1);
  EXPECT_EQ(plain.eos_id(), -1);
}

TEST_F(TokenizerTest, EncodeDecodeRoundTrip) {
  const Tokenizer tok = Tokenizer::load(model("llama"));
  const std::vector<std::string> texts = {
      "the patient with angle closure glaucoma",
      "Optic nerve 42 and field loss.\nSecond line,  two spaces.",
      "unseen characters: café, 視神経, ✓",  // byte fallback covers what training never saw
      ""};
  for (const std::string& text : texts) {
    const std::vector<int32_t> ids = tok.encode(text);
    for (int32_t id : ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, tok.vocab_size());
      EXPECT_NE(id, tok.bos_id()) << "encode must not add BOS";
      EXPECT_NE(id, tok.eos_id()) << "encode must not add EOS";
      EXPECT_NE(id, 0) << "nothing should be unknown with byte fallback";
    }
    EXPECT_EQ(tok.decode(ids), text);
  }
  EXPECT_LT(tok.encode("the patient").size(), std::string("the patient").size()) << "BPE merged nothing";
  EXPECT_TRUE(tok.encode("").empty());
}

TEST_F(TokenizerTest, CopiesShareTheModel) {
  const Tokenizer a = Tokenizer::load(model("llama"));
  const Tokenizer b = a;
  EXPECT_EQ(a.encode("retina and lens"), b.encode("retina and lens"));
}

TEST_F(TokenizerTest, DecodeRejectsIdsOutsideTheVocabulary) {
  const Tokenizer tok = Tokenizer::load(model("llama"));
  const std::vector<int32_t> ids = {5, 400};
  EXPECT_THROW(tok.decode(ids), iris::UserError);
  EXPECT_THROW(tok.piece(-1), iris::UserError);
}

TEST_F(TokenizerTest, LoadErrorsNameThePath) {
  const std::string missing = (dir_ / "missing.model").string();
  try {
    Tokenizer::load(missing);
    FAIL() << "loaded a missing file";
  } catch (const iris::UserError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  const std::string garbage = (dir_ / "garbage.model").string();
  std::ofstream(garbage) << "this is not a protobuf model";
  try {
    Tokenizer::load(garbage);
    FAIL() << "loaded a text file as a model";
  } catch (const iris::UserError& e) {
    EXPECT_NE(std::string(e.what()).find(garbage), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("sentencepiece"), std::string::npos) << e.what();
  }
}

}  // namespace
