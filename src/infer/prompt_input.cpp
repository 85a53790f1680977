#include "src/infer/prompt_input.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "src/core/check.h"

namespace iris::infer {
namespace {

[[noreturn]] void bad(const std::string& where, const std::string& reason, const std::string& detail) {
  throw io::BadRecordError(reason, fmt::format("{}: {}", where, detail));
}

std::string id_of(const nlohmann::json& j, const std::string& where) {
  if (!j.contains("id")) bad(where, "missing id", "missing field \"id\" (a string or number naming the prompt)");
  const auto& id = j["id"];
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number_integer()) return std::to_string(id.get<int64_t>());
  bad(where, "bad id", "field \"id\" must be a string or an integer");
}

io::SftSample chat_of(const nlohmann::json& messages, const std::string& where) {
  if (!messages.is_array() || messages.empty())
    bad(where, "bad messages", "\"messages\" must be a non-empty array of {\"role\", \"content\"}");
  io::SftSample sample;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      bad(where, "bad messages", fmt::format("message {}: expected {{\"role\": string, \"content\": string}}", i + 1));
    const std::string role = m["role"], content = m["content"];
    const bool expect_user = sample.turns.empty() || !sample.turns.back().answer.empty();
    if (role == "system" && i == 0) {
      sample.system = content;
    } else if (role == "user" && expect_user) {
      io::SftTurn turn;
      turn.instruction = turn.content = content;
      sample.turns.push_back(turn);
    } else if (role == "assistant" && !expect_user) {
      sample.turns.back().answer = content;
    } else {
      bad(where, "bad messages",
          fmt::format("message {}: role \"{}\" out of place (an optional system message first, then user and "
                      "assistant alternating, ending with a user message)", i + 1, role));
    }
  }
  if (sample.turns.empty() || !sample.turns.back().answer.empty())
    bad(where, "bad messages", "the conversation must end with a user message (the model writes the answer)");
  return sample;
}

}  // namespace

std::vector<int32_t> render_chat_prompt(const io::SftFormatter& formatter, const io::SftSample& sample,
                                        const std::string& where) {
  io::FormattedSample formatted;
  formatter.format(sample, formatted, where);
  // The final answer's spans are the last run of trained spans (the formatter is built with
  // train_on_inputs = false, so only answers train); the prompt stops where that run begins.
  size_t cut = formatted.tokens.size();
  for (auto span = formatted.spans.rbegin(); span != formatted.spans.rend() && span->trained; ++span)
    cut = span->begin;
  formatted.tokens.resize(cut);
  return formatted.tokens;
}

Prompt PromptEncoder::parse(const std::string& line, const std::string& where) const {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    bad(where, "malformed JSON", fmt::format("malformed JSON ({})", e.what()));
  }
  if (!j.is_object())
    bad(where, "not an object", "expected a JSON object {\"id\", \"prompt\" | \"messages\" | \"instruction\" | \"prompt_ids\"}");
  Prompt p;
  p.where = where;
  p.id = id_of(j, where);
  const int kinds = int(j.contains("prompt")) + int(j.contains("messages")) + int(j.contains("prompt_ids")) +
                    int(j.contains("instruction"));
  if (kinds != 1)
    bad(where, "bad record", "expected exactly one of \"prompt\", \"messages\", \"instruction\", \"prompt_ids\"");
  if (j.contains("prompt_ids")) {
    const auto& ids = j["prompt_ids"];
    if (!ids.is_array()) bad(where, "bad prompt_ids", "\"prompt_ids\" must be an array of integers");
    for (const auto& x : ids) {
      if (!x.is_number_integer()) bad(where, "bad prompt_ids", "\"prompt_ids\" must be an array of integers");
      const int64_t v = x.get<int64_t>();
      if (v < 0 || v > INT32_MAX) bad(where, "bad prompt_ids", fmt::format("prompt id {} is not a token id", v));
      p.ids.push_back(static_cast<int32_t>(v));
    }
    return p;
  }
  if (!tokenizer) bad(where, "no tokenizer", "a text prompt needs --tokenizer (or give \"prompt_ids\")");
  if (j.contains("prompt")) {
    if (!j["prompt"].is_string()) bad(where, "bad prompt", "\"prompt\" must be a string");
    if (tokenizer->bos_id() >= 0) p.ids.push_back(tokenizer->bos_id());
    const auto ids = tokenizer->encode(j["prompt"].get<std::string>());
    p.ids.insert(p.ids.end(), ids.begin(), ids.end());
    return p;
  }
  if (!formatter) bad(where, "no template", "a \"messages\" or \"instruction\" record needs --template (e.g. llama2-chat)");
  if (j.contains("messages")) {
    p.ids = render_chat_prompt(*formatter, chat_of(j["messages"], where), where);
    return p;
  }
  // An Alpaca record without its output, as the SFT data was formatted (io/sft_format.h).
  io::SftTurn turn;
  for (const char* key : {"instruction", "input"})
    if (j.contains(key) && !j[key].is_string()) bad(where, "bad record", fmt::format("\"{}\" must be a string", key));
  turn.instruction = j["instruction"].get<std::string>();
  turn.input = j.value("input", std::string());
  turn.content = turn.input.empty() ? turn.instruction : turn.instruction + "\n\n" + turn.input;
  io::SftSample sample;
  sample.turns.push_back(turn);
  p.ids = render_chat_prompt(*formatter, sample, where);
  return p;
}

std::vector<int32_t> template_stop_ids(const io::SftTemplate& tmpl, const io::SftVocabulary& vocab) {
  std::vector<int32_t> ids;
  for (const auto& segment : tmpl.assistant()) {
    if (segment.kind != io::SftTemplateSegment::Kind::Token || !segment.train) continue;
    const int id = segment.token == "eos" ? vocab.eos_id : segment.token == "bos" ? vocab.bos_id
                                                                                  : vocab.piece_id(segment.token);
    if (id >= 0) ids.push_back(id);
  }
  return ids;
}

std::vector<int32_t> PromptEncoder::stop_ids() const {
  std::vector<int32_t> ids;
  if (tokenizer && tokenizer->eos_id() >= 0) ids.push_back(tokenizer->eos_id());
  if (formatter && tokenizer) {
    const auto more = template_stop_ids(formatter->templ(), io::SftVocabulary::of(*tokenizer));
    ids.insert(ids.end(), more.begin(), more.end());
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::vector<Prompt> read_prompts(const std::string& path, const PromptEncoder& encoder) {
  std::ifstream in(path);
  IRIS_USER_CHECK(in.good(), "--input {}: cannot open the file", path);
  std::vector<Prompt> prompts;
  std::string line;
  for (uint64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    prompts.push_back(encoder.parse(line, fmt::format("{}:{}", path, n)));
  }
  IRIS_USER_CHECK(!in.bad(), "--input {}: read error", path);
  return prompts;
}

}  // namespace iris::infer
