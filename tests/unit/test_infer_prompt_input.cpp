// iris-generate's prompt input with a vocabulary whose ids the test controls (one id per byte, specials by
// name): a chat renders through a template up to where the final answer starts (so the prompt ends with the
// assistant header), earlier answers kept; the template's end-of-turn token is a stop id; malformed lines and
// misplaced roles are refused naming FILE:LINE; prompt_ids pass through untouched.
#include <gtest/gtest.h>

#include "src/infer/prompt_input.h"

namespace iris::infer {
namespace {

io::SftVocabulary byte_vocabulary() {
  io::SftVocabulary v;
  v.encode = [](std::string_view text) {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(10 + c);
    return ids;
  };
  v.piece_id = [](std::string_view piece) { return piece == "<|eot|>" ? 3 : piece == "<|hdr|>" ? 4 : -1; };
  v.bos_id = 1;
  v.eos_id = 2;
  return v;
}

std::vector<int32_t> bytes(std::string_view text) { return byte_vocabulary().encode(text); }

// A Llama 3-like template: the assistant header is an untrained part of the assistant segments.
const char* kChatTemplate = R"({
  "begin": [{"token": "bos"}],
  "system": [{"text": "S:{system}|"}],
  "user": [{"token": "<|hdr|>"}, {"text": "U:{content}|"}],
  "assistant": [{"token": "<|hdr|>"}, {"text": "A:"}, {"text": "{content}", "train": true},
                {"token": "<|eot|>", "train": true}]
})";

PromptEncoder encoder_with_template() {
  PromptEncoder enc;
  enc.formatter.emplace(io::SftTemplate::parse(kChatTemplate, "chat.json"), byte_vocabulary(), false);
  return enc;
}

TEST(InferPromptInput, ChatRendersUpToTheFinalAnswerWithTheAssistantHeader) {
  const PromptEncoder enc = encoder_with_template();
  // PromptEncoder::parse needs a tokenizer for messages; render_chat_prompt is its template step.
  io::SftSample sample;
  sample.system = "be brief";
  sample.turns = {io::SftTurn{"hi", "", "hi", "hello"}, io::SftTurn{"why", "", "why", ""}};
  const auto got = render_chat_prompt(*enc.formatter, sample, "in.jsonl:1");
  std::vector<int32_t> expected = {1};
  auto add = [&](std::vector<int32_t> ids) { expected.insert(expected.end(), ids.begin(), ids.end()); };
  add(bytes("S:be brief|"));
  add({4});
  add(bytes("U:hi|"));
  add({4});
  add(bytes("A:"));
  add(bytes("hello"));
  add({3});
  add({4});
  add(bytes("U:why|"));
  add({4});
  add(bytes("A:"));
  EXPECT_EQ(got, expected);
  EXPECT_EQ(template_stop_ids(enc.formatter->templ(), byte_vocabulary()), std::vector<int32_t>{3});
}

std::string error_of(const PromptEncoder& enc, const std::string& line) {
  try {
    enc.parse(line, "in.jsonl:7");
  } catch (const UserError& e) {
    return e.what();
  }
  return "no error";
}

TEST(InferPromptInput, PromptIdsPassThroughAndBadLinesNameTheirLine) {
  const PromptEncoder none;
  const Prompt p = none.parse(R"({"id": 5, "prompt_ids": [1, 7, 9]})", "in.jsonl:1");
  EXPECT_EQ(p.id, "5");
  EXPECT_EQ(p.ids, (std::vector<int32_t>{1, 7, 9}));
  EXPECT_EQ(p.where, "in.jsonl:1");
  EXPECT_NE(error_of(none, R"({"id": 1, "prompt_ids": [1, )").find("in.jsonl:7: malformed JSON"), std::string::npos);
  EXPECT_NE(error_of(none, R"({"prompt_ids": [1]})").find("in.jsonl:7: missing field \"id\""), std::string::npos);
  EXPECT_NE(error_of(none, R"({"id": "a", "prompt_ids": [1, -2]})").find("in.jsonl:7: prompt id -2"), std::string::npos);
  EXPECT_NE(error_of(none, R"({"id": "a", "prompt": "x"})").find("in.jsonl:7: a text prompt needs --tokenizer"),
            std::string::npos);
  EXPECT_NE(error_of(none, R"({"id": "a", "prompt": "x", "prompt_ids": [1]})").find("exactly one of"),
            std::string::npos);
}

}  // namespace
}  // namespace iris::infer
