// SFT formatting against hand-written expected token lists. The vocabulary is a word-level fake
// whose pieces the test controls: words split at spaces, each '\n' its own piece, so every
// expected list below is written out by hand. "+" marks a token whose loss-mask value must be 1.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "io/sft_format.h"

namespace {
using namespace iris::io;
namespace fs = std::filesystem;

const std::string kTemplates = std::string(IRIS_SOURCE_DIR) + "/configs/templates";

struct WordVocab {
  std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
  std::map<std::string, int> ids = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  int id(const std::string& w) {
    auto [it, added] = ids.emplace(w, static_cast<int>(pieces.size()));
    if (added) pieces.push_back(w);
    return it->second;
  }
  SftVocabulary vocabulary() {
    SftVocabulary v;
    v.encode = [this](std::string_view text) {
      std::vector<int32_t> out;
      std::string word;
      for (char c : text) {
        if (c == ' ' || c == '\n') {
          if (!word.empty()) out.push_back(id(word));
          word.clear();
          if (c == '\n') out.push_back(id("\\n"));
        } else {
          word += c;
        }
      }
      if (!word.empty()) out.push_back(id(word));
      return out;
    };
    v.piece_id = [this](std::string_view p) { auto it = ids.find(std::string(p)); return it == ids.end() ? -1 : it->second; };
    v.bos_id = 1;
    v.eos_id = 2;
    return v;
  }
  // "+piece" for trained tokens, "piece" otherwise.
  std::vector<std::string> describe(const FormattedSample& s) const {
    std::vector<std::string> out;
    for (size_t i = 0; i < s.tokens.size(); ++i) out.push_back((s.loss_mask[i] ? "+" : "") + pieces.at(s.tokens[i]));
    return out;
  }
};

std::vector<std::string> words(std::initializer_list<const char*> list) { return {list.begin(), list.end()}; }

std::vector<std::string> concat(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

FormattedSample format_with(WordVocab& vocab, const std::string& name, const SftSample& sample, bool on_inputs = false) {
  SftFormatter f(SftTemplate::load(name, kTemplates), vocab.vocabulary(), on_inputs);
  FormattedSample out;
  f.format(sample, out, "test");
  return out;
}

SftSample alpaca(const std::string& instruction, const std::string& input, const std::string& output) {
  SftSample s;
  s.turns.push_back({instruction, input, input.empty() ? instruction : instruction + "\n\n" + input, output});
  return s;
}

// The invariants of the issue, checked on every sample on top of the exact lists.
void expect_invariants(const FormattedSample& s) {
  ASSERT_EQ(s.tokens.size(), s.loss_mask.size());
  int bos = 0;
  for (int32_t t : s.tokens) bos += t == 1;
  EXPECT_EQ(bos, 1) << "exactly one BOS";
  EXPECT_EQ(s.tokens.front(), 1);
  EXPECT_EQ(s.loss_mask.front(), 0) << "BOS is never a target";
  EXPECT_EQ(s.tokens.back(), 2);
  EXPECT_EQ(s.loss_mask.back(), 1) << "the EOS closing the answer is trained";
}

TEST(SftFormat, AlpacaWithInput) {
  WordVocab v;
  const FormattedSample s = format_with(v, "alpaca", alpaca("Name the layer.", "Outer eye", "The cornea."));
  const auto expected = words({"<s>", "Below", "is", "an", "instruction", "that", "describes", "a", "task,", "paired",
      "with", "an", "input", "that", "provides", "further", "context.", "Write", "a", "response", "that",
      "appropriately", "completes", "the", "request.", "\\n", "\\n", "###", "Instruction:", "\\n", "Name", "the",
      "layer.", "\\n", "\\n", "###", "Input:", "\\n", "Outer", "eye", "\\n", "\\n", "###", "Response:", "\\n",
      "+The", "+cornea.", "+</s>"});
  EXPECT_EQ(v.describe(s), expected);
  expect_invariants(s);
}

TEST(SftFormat, AlpacaWithoutInput) {
  WordVocab v;
  const FormattedSample s = format_with(v, "alpaca", alpaca("Name it.", "", "Iris"));
  const auto expected = words({"<s>", "Below", "is", "an", "instruction", "that", "describes", "a", "task.", "Write",
      "a", "response", "that", "appropriately", "completes", "the", "request.", "\\n", "\\n", "###", "Instruction:",
      "\\n", "Name", "it.", "\\n", "\\n", "###", "Response:", "\\n", "+Iris", "+</s>"});
  EXPECT_EQ(v.describe(s), expected);
  expect_invariants(s);
}

TEST(SftFormat, MedAlpaca) {
  WordVocab v;
  const FormattedSample s =
      format_with(v, "medalpaca", alpaca("Answer this question truthfully", "What is a cataract?", "A cloudy lens."));
  const auto expected = words({"<s>", "\\n", "\\n", "###", "System:", "\\n", "Answer", "this", "question",
      "truthfully", "\\n", "\\n", "###", "User:", "\\n", "What", "is", "a", "cataract?", "\\n", "\\n", "###",
      "Assistant:", "\\n", "+A", "+cloudy", "+lens.", "+</s>"});
  EXPECT_EQ(v.describe(s), expected);
  expect_invariants(s);
}

TEST(SftFormat, Llama2ChatMultiTurnWithSystem) {
  WordVocab v;
  SftSample chat;
  chat.system = "Be brief.";
  chat.turns.push_back({"Hi there", "", "Hi there", "Hello."});
  chat.turns.push_back({"What is IOP?", "", "What is IOP?", "Eye pressure."});
  const FormattedSample s = format_with(v, "llama2-chat", chat);
  const auto expected = words({"<s>", "[INST]", "<<SYS>>", "\\n", "Be", "brief.", "\\n", "<</SYS>>", "\\n", "\\n",
      "Hi", "there", "[/INST]", "+Hello.", "+</s>", "[INST]", "What", "is", "IOP?", "[/INST]", "+Eye", "+pressure.",
      "+</s>"});
  EXPECT_EQ(v.describe(s), expected);
  expect_invariants(s);
}

TEST(SftFormat, Llama2ChatWithoutSystemHasNoSysBlock) {
  WordVocab v;
  SftSample chat;
  chat.turns.push_back({"Hi", "", "Hi", "Yes"});
  EXPECT_EQ(v.describe(format_with(v, "llama2-chat", chat)), words({"<s>", "[INST]", "Hi", "[/INST]", "+Yes", "+</s>"}));
}

TEST(SftFormat, MistralInstructMultiTurn) {
  WordVocab v;
  SftSample chat;
  chat.turns.push_back({"Hi", "", "Hi", "Yes"});
  chat.turns.push_back({"Why?", "", "Why?", "Because."});
  const FormattedSample s = format_with(v, "mistral-instruct", chat);
  EXPECT_EQ(v.describe(s), words({"<s>", "[INST]", "Hi", "[/INST]", "+Yes", "+</s>", "[INST]", "Why?", "[/INST]",
                                  "+Because.", "+</s>"}));
  expect_invariants(s);
  chat.system = "Be brief.";
  FormattedSample out;
  SftFormatter f(SftTemplate::load("mistral-instruct", kTemplates), v.vocabulary(), false);
  EXPECT_THROW(f.format(chat, out, "test"), iris::io::BadRecordError);  // HF's template refuses a system message
}

// The same rules as llama3-chat (system block always, |trim, {today_date}) on a word vocabulary.
TEST(SftFormat, SystemAlwaysTrimAndTodayDate) {
  WordVocab v;
  v.id("<|eot_id|>");
  SftTemplate t = SftTemplate::parse(R"({"system_always": true, "trim": true, "today_date": "26 Jul 2024",
      "begin": [{"token": "bos"}],
      "system": [{"text": "Date {today_date}:{system}"}, {"token": "<|eot_id|>"}],
      "user": [{"text": "U {content}"}, {"token": "<|eot_id|>"}],
      "assistant": [{"text": "A"}, {"text": "{content}", "train": true}, {"token": "<|eot_id|>", "train": true}]})",
                                     "inline");
  SftSample chat;
  chat.turns.push_back({"  Hi \n", "", "  Hi \n", "\tYes\u3000 "});
  FormattedSample out;
  SftFormatter(t, v.vocabulary(), false).format(chat, out, "test");
  EXPECT_EQ(v.describe(out), words({"<s>", "Date", "26", "Jul", "2024:", "<|eot_id|>", "U", "Hi", "<|eot_id|>", "A",
                                    "+Yes", "+<|eot_id|>"}));
  t.set_today_date("1 Jan 2030");
  chat.system = " Be brief. ";
  SftFormatter(t, v.vocabulary(), false).format(chat, out, "test");
  EXPECT_EQ(v.describe(out), words({"<s>", "Date", "1", "Jan", "2030:Be", "brief.", "<|eot_id|>", "U", "Hi",
                                    "<|eot_id|>", "A", "+Yes", "+<|eot_id|>"}));
}

TEST(SftFormat, Llama3ChatTemplateLoads) {
  const SftTemplate t = SftTemplate::load("llama3-chat", kTemplates);
  EXPECT_TRUE(t.system_always());
  EXPECT_TRUE(t.trim());
  EXPECT_EQ(t.today_date(), "26 Jul 2024");
}

TEST(SftFormat, TrainOnInputsTrainsEverythingButBos) {
  WordVocab v;
  SftSample chat;
  chat.turns.push_back({"Hi", "", "Hi", "Yes"});
  const FormattedSample s = format_with(v, "llama2-chat", chat, /*on_inputs=*/true);
  EXPECT_EQ(v.describe(s), words({"<s>", "+[INST]", "+Hi", "+[/INST]", "+Yes", "+</s>"}));
}

TEST(SftFormat, SystemPromptWithoutPlaceIsAnError) {
  WordVocab v;
  SftSample s = alpaca("a", "", "b");
  s.system = "Be brief.";
  try {
    format_with(v, "alpaca", s);
    FAIL() << "expected an error";
  } catch (const BadRecordError& e) {
    EXPECT_NE(std::string(e.what()).find("no place"), std::string::npos) << e.what();
  }
}

TEST(SftFormat, SeqLenTruncateAndDrop) {
  WordVocab v;
  const FormattedSample full = format_with(v, "llama2-chat", [] { SftSample s; s.turns.push_back({"Hi", "", "Hi", "a b c"}); return s; }());
  ASSERT_EQ(full.tokens.size(), 8u);  // <s> [INST] Hi [/INST] a b c </s>
  FormattedSample cut = full;
  bool truncated = false;
  EXPECT_EQ(fit_to_seq_len(cut, 6, SftOverflow::Truncate, &truncated), "");
  EXPECT_TRUE(truncated);
  EXPECT_EQ(v.describe(cut), words({"<s>", "[INST]", "Hi", "[/INST]", "+a", "+b"}));
  FormattedSample dropped = full;
  EXPECT_NE(fit_to_seq_len(dropped, 6, SftOverflow::Drop), "");
  FormattedSample no_answer = full;
  EXPECT_NE(fit_to_seq_len(no_answer, 4, SftOverflow::Truncate), "") << "no trained token left";
  FormattedSample fits = full;
  EXPECT_EQ(fit_to_seq_len(fits, 8, SftOverflow::Drop, &truncated), "");
  EXPECT_FALSE(truncated);
}

class SftTemplateFile : public ::testing::Test {
 protected:
  fs::path dir_ = fs::temp_directory_path() / ("iris_sft_tpl_" + std::to_string(::getpid()));
  void SetUp() override { fs::create_directories(dir_); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::string load_error(const std::string& path) {
    try {
      SftTemplate::load(path, kTemplates);
    } catch (const iris::UserError& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(SftTemplateFile, UnknownPlaceholderNamesFileAndPlaceholder) {
  const std::string path = write("typo.json", R"({"user": [{"text": "Q: {instrucion}"}],
      "assistant": [{"text": "{output}", "train": true}]})");
  const std::string msg = load_error(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown placeholder {instrucion}"), std::string::npos) << msg;
}

TEST_F(SftTemplateFile, MisplacedPlaceholderAndBadKeys) {
  EXPECT_NE(load_error(write("a.json", R"({"user": [{"text": "{output}"}], "assistant": [{"text": "{output}", "train": true}]})"))
                .find("not available in \"user\""), std::string::npos);
  EXPECT_NE(load_error(write("b.json", R"({"user": [{"text": "x"}], "assistant": [{"text": "{output}"}]})"))
                .find("nothing would be trained"), std::string::npos);
  EXPECT_NE(load_error(write("c.json", R"({"usr": []})")).find("unknown key \"usr\""), std::string::npos);
  EXPECT_NE(load_error(write("d.json", R"({"user": [{"text": "{input"}]})")).find("unclosed"), std::string::npos);
  EXPECT_NE(load_error("no_such_template").find("alpaca"), std::string::npos) << "lists the known templates";
}

TEST_F(SftTemplateFile, LiteralBracesAndSpecialTokens) {
  WordVocab v;
  v.id("<|eot|>");
  const std::string path = write("l3.json", R"({"user": [{"text": "{{x}} {content}"}],
      "assistant": [{"text": "{content}", "train": true}, {"token": "<|eot|>", "train": true}]})");
  SftFormatter f(SftTemplate::load(path, kTemplates), v.vocabulary(), false);
  FormattedSample s;
  f.format(alpaca("q", "", "a"), s);
  EXPECT_EQ(v.describe(s), words({"{x}", "q", "+a", "+<|eot|>"}));
  const std::string bad = write("l3bad.json", R"({"user": [{"text": "x"}],
      "assistant": [{"text": "{content}", "train": true}, {"token": "<|nope|>", "train": true}]})");
  EXPECT_THROW(SftFormatter(SftTemplate::load(bad, kTemplates), v.vocabulary(), false), iris::UserError);
}

InputRecord jsonl(const std::string& line) { return {line, "data.jsonl", 7, InputFormat::JsonLines}; }

TEST(SftRecord, AlpacaAndChatRecords) {
  const SftSample a = parse_sft_record(jsonl(R"({"instruction": "I", "input": "X", "output": "O"})"), {});
  ASSERT_EQ(a.turns.size(), 1u);
  EXPECT_EQ(a.turns[0].content, "I\n\nX");
  EXPECT_EQ(a.turns[0].answer, "O");
  SftFields f;
  f.messages = "conv";
  const SftSample c = parse_sft_record(jsonl(R"({"conv": [{"role": "system", "content": "S"},
      {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"},
      {"role": "user", "content": "U2"}, {"role": "assistant", "content": "A2"}]})"), f);
  EXPECT_EQ(c.system, "S");
  ASSERT_EQ(c.turns.size(), 2u);
  EXPECT_EQ(c.turns[1].content, "U2");
  EXPECT_EQ(c.turns[1].answer, "A2");
}

std::string record_error(const std::string& line) {
  try {
    parse_sft_record(jsonl(line), {});
  } catch (const BadRecordError& e) {
    return e.what();
  }
  return "";
}

TEST(SftRecord, BadRecordsNameFileAndLine) {
  const std::string missing = record_error(R"({"instruction": "I", "input": "X"})");
  EXPECT_NE(missing.find("data.jsonl:7"), std::string::npos) << missing;
  EXPECT_NE(missing.find("\"output\""), std::string::npos) << missing;
  EXPECT_NE(record_error(R"({"instruction": "I", "output": )").find("malformed JSON"), std::string::npos);
  EXPECT_NE(record_error(R"({"messages": [{"role": "user", "content": "U"}]})").find("ends with a user"),
            std::string::npos);
  EXPECT_NE(record_error(R"({"messages": [{"role": "bot", "content": "U"}]})").find("unknown role"), std::string::npos);
  EXPECT_NE(record_error(R"({"instruction": 3, "output": "O"})").find("expected a string"), std::string::npos);
}

}  // namespace
