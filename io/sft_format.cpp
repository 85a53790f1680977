#include "io/sft_format.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "io/tokenizer.h"
#include "src/core/check.h"

namespace iris::io {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::set<std::string> kAllPlaceholders = {"system", "instruction", "input", "content", "output", "today_date"};
const std::set<std::string> kBeginFields = {"today_date"};
const std::set<std::string> kSystemFields = {"system", "today_date"};
const std::set<std::string> kUserFields = {"system", "instruction", "input", "content", "today_date"};
const std::set<std::string> kAssistantFields = {"output", "content"};

std::string join(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "{" : ", {") + n + "}";
  return out.empty() ? "none" : out;
}

// Python's str.strip() whitespace (what Jinja's |trim removes): ASCII \t\n\v\f\r, \x1c-\x1f, space, and
// the Unicode White_Space code points U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F,
// U+205F, U+3000.
size_t whitespace_at(const std::string& s, size_t i) {  // byte length of the whitespace at s[i], or 0
  const auto b = [&](size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u; };
  const unsigned c = b(i);
  if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) return 1;
  if (c == 0xC2 && (b(i + 1) == 0x85 || b(i + 1) == 0xA0)) return 2;
  if (c == 0xE1 && b(i + 1) == 0x9A && b(i + 2) == 0x80) return 3;
  if (c == 0xE2 && b(i + 1) == 0x80 && (b(i + 2) <= 0x8A || b(i + 2) == 0xA8 || b(i + 2) == 0xA9 || b(i + 2) == 0xAF))
    return b(i + 2) >= 0x80 ? 3 : 0;
  if (c == 0xE2 && b(i + 1) == 0x81 && b(i + 2) == 0x9F) return 3;
  if (c == 0xE3 && b(i + 1) == 0x80 && b(i + 2) == 0x80) return 3;
  return 0;
}

std::string trimmed(const std::string& s) {
  size_t begin = 0;
  while (begin < s.size()) {
    const size_t n = whitespace_at(s, begin);
    if (n == 0) break;
    begin += n;
  }
  size_t end = begin;  // one past the last non-whitespace character
  for (size_t i = begin; i < s.size();) {
    const size_t n = whitespace_at(s, i);
    if (n == 0) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      i += c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      end = i;
    } else {
      i += n;
    }
  }
  return s.substr(begin, end - begin);
}

// ---- records ----

// A string field by name or dotted path (an array of strings is joined with blank lines, as for
// --text-field); `flag` is the option that names it.
std::string string_field(const json& object, const std::string& name, const std::string& where, bool required,
                         const std::string& flag) {
  const json* field = find_field(object, name);
  if (field == nullptr) {
    if (!required) return "";
    throw BadRecordError(fmt::format("no \"{}\" field", name),
                         fmt::format("{}: SFT record has no \"{}\" field (choose field names with {})", where, name,
                                     flag));
  }
  if (field->is_array() && std::all_of(field->begin(), field->end(), [](const json& v) { return v.is_string(); })) {
    std::string joined;
    for (const json& v : *field) joined += (joined.empty() ? "" : "\n\n") + v.get<std::string>();
    return joined;
  }
  if (!field->is_string()) {
    throw BadRecordError(fmt::format("\"{}\" not a string", name),
                         fmt::format("{}: field \"{}\" is a JSON {}, expected a string", where, name,
                                     field->type_name()));
  }
  return field->get<std::string>();
}

SftSample parse_chat(const json& messages, const SftFields& f, const std::string& where) {
  auto bad = [&](const std::string& reason, const std::string& detail) {
    throw BadRecordError(reason, fmt::format("{}: {}", where, detail));
  };
  if (!messages.is_array()) bad("bad messages", fmt::format("\"{}\" must be an array of messages", f.messages));
  SftSample sample;
  bool expect_user = true;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object()) bad("bad messages", fmt::format("message {} is not a JSON object", i + 1));
    const std::string role = string_field(m, f.role, where, true, "--sft.role-field");
    const std::string content = string_field(m, f.content, where, true, "--sft.content-field");
    if (role == "system") {
      if (i != 0) bad("bad messages", fmt::format("message {}: a system message may only come first", i + 1));
      sample.system = content;
    } else if (role == "user") {
      if (!expect_user) bad("bad messages", fmt::format("message {}: two user messages in a row", i + 1));
      sample.turns.push_back({content, "", content, ""});
      expect_user = false;
    } else if (role == "assistant") {
      if (expect_user) bad("bad messages", fmt::format("message {}: an assistant message must follow a user message",
                                                       i + 1));
      sample.turns.back().answer = content;
      expect_user = true;
    } else {
      bad("bad messages", fmt::format("message {}: unknown role \"{}\" (expected system, user or assistant)", i + 1,
                                      role));
    }
  }
  if (sample.turns.empty()) bad("no answer", "the conversation has no user/assistant exchange");
  if (!expect_user) bad("no answer", "the conversation ends with a user message; it needs the assistant's answer");
  return sample;
}

// ---- template parsing ----

std::vector<SftTemplateSegment::Part> split_placeholders(const std::string& text, const std::string& where) {
  std::vector<SftTemplateSegment::Part> parts;
  std::string literal;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      literal += c;
      ++i;
    } else if (c == '{') {
      const size_t close = text.find('}', i);
      IRIS_USER_CHECK(close != std::string::npos, "{}: unclosed '{{' in \"{}\" (write {{{{ for a literal brace)",
                      where, text);
      if (!literal.empty()) parts.push_back({false, std::move(literal)});
      literal.clear();
      parts.push_back({true, text.substr(i + 1, close - i - 1)});
      i = close;
    } else {
      IRIS_USER_CHECK(c != '}', "{}: unmatched '}}' in \"{}\" (write }}}} for a literal brace)", where, text);
      literal += c;
    }
  }
  if (!literal.empty()) parts.push_back({false, std::move(literal)});
  return parts;
}

std::vector<SftTemplateSegment> parse_segments(const json& root, const std::string& key, const std::string& source,
                                               const std::set<std::string>& allowed) {
  std::vector<SftTemplateSegment> segments;
  auto it = root.find(key);
  if (it == root.end()) return segments;
  IRIS_USER_CHECK(it->is_array(), "template {}: \"{}\" must be a list of segments", source, key);
  for (size_t i = 0; i < it->size(); ++i) {
    const json& s = (*it)[i];
    const std::string where = fmt::format("template {}: \"{}\" segment {}", source, key, i + 1);
    IRIS_USER_CHECK(s.is_object(), "{}: expected an object such as {{\"text\": \"...\"}}", where);
    for (auto k = s.begin(); k != s.end(); ++k) {
      IRIS_USER_CHECK(k.key() == "text" || k.key() == "token" || k.key() == "train" || k.key() == "when",
                      "{}: unknown key \"{}\" (expected text or token, train, when)", where, k.key());
    }
    SftTemplateSegment seg;
    const bool has_text = s.contains("text"), has_token = s.contains("token");
    IRIS_USER_CHECK(has_text != has_token, "{}: give exactly one of \"text\" and \"token\"", where);
    if (has_text) {
      IRIS_USER_CHECK(s["text"].is_string(), "{}: \"text\" must be a string", where);
      seg.parts = split_placeholders(s["text"].get<std::string>(), where);
      for (const auto& part : seg.parts) {
        if (!part.is_placeholder) continue;
        IRIS_USER_CHECK(kAllPlaceholders.count(part.text), "{}: unknown placeholder {{{}}} (known: {})", where,
                        part.text, join(kAllPlaceholders));
        IRIS_USER_CHECK(allowed.count(part.text), "{}: placeholder {{{}}} is not available in \"{}\" segments "
                        "(available there: {})", where, part.text, key, join(allowed));
      }
    } else {
      seg.kind = SftTemplateSegment::Kind::Token;
      IRIS_USER_CHECK(s["token"].is_string() && !s["token"].get<std::string>().empty(),
                      "{}: \"token\" must be \"bos\", \"eos\" or a piece of the tokenizer", where);
      seg.token = s["token"].get<std::string>();
    }
    if (s.contains("train")) {
      IRIS_USER_CHECK(s["train"].is_boolean(), "{}: \"train\" must be true or false", where);
      seg.train = s["train"].get<bool>();
    }
    if (s.contains("when")) {
      IRIS_USER_CHECK(s["when"].is_string(), "{}: \"when\" must be a string such as \"input\" or \"!input\"", where);
      seg.when = s["when"].get<std::string>();
      if (seg.when.starts_with("!")) {
        seg.when_negated = true;
        seg.when.erase(0, 1);
      }
      IRIS_USER_CHECK(kAllPlaceholders.count(seg.when), "{}: unknown field \"{}\" in \"when\" (known: {})", where,
                      seg.when, join(kAllPlaceholders));
      IRIS_USER_CHECK(allowed.count(seg.when), "{}: \"when\" field {} is not available in \"{}\" segments "
                      "(available there: {})", where, seg.when, key, join(allowed));
    }
    segments.push_back(std::move(seg));
  }
  return segments;
}

// ---- rendering ----

struct Values {
  const std::string* system = nullptr;
  const SftTurn* turn = nullptr;
  bool assistant = false;
  const std::string* today_date = nullptr;
  const std::string& get(const std::string& name) const {
    static const std::string empty;
    if (name == "today_date") return today_date ? *today_date : empty;
    if (name == "system") return system ? *system : empty;
    if (!turn) return empty;
    if (assistant) return turn->answer;  // {output} and {content}
    if (name == "instruction") return turn->instruction;
    if (name == "input") return turn->input;
    return turn->content;
  }
};

struct Piece {  // a joined run of text, or one special token
  std::string text;
  int token = -1;
  bool train = false;
};

}  // namespace

SftSample parse_sft_record(const InputRecord& record, const SftFields& fields) {
  const json value = parse_json_record(record);
  const std::string where = record.where();
  const json* messages = find_field(value, fields.messages);
  if (messages != nullptr) return parse_chat(*messages, fields, where);
  SftTurn turn;
  turn.instruction = string_field(value, fields.instruction, where, true, "--sft.instruction-field (or "
                                  "--sft.messages-field for chats)");
  turn.input = string_field(value, fields.input, where, false, "--sft.input-field");
  turn.answer = string_field(value, fields.output, where, true, "--sft.output-field");
  turn.content = turn.input.empty() ? turn.instruction : turn.instruction + "\n\n" + turn.input;
  SftSample sample;
  sample.turns.push_back(std::move(turn));
  return sample;
}

SftTemplate SftTemplate::load(const std::string& name_or_path, const std::string& templates_dir) {
  std::string path = name_or_path;
  const bool is_path = name_or_path.find('/') != std::string::npos || name_or_path.ends_with(".json");
  if (!is_path) path = (fs::path(templates_dir) / (name_or_path + ".json")).string();
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    std::string known;
    std::error_code ec;
    if (!is_path && fs::is_directory(templates_dir, ec)) {
      std::set<std::string> names;
      for (const auto& e : fs::directory_iterator(templates_dir, ec))
        if (e.path().extension() == ".json") names.insert(e.path().stem().string());
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    }
    IRIS_USER_CHECK(false, "SFT template {} not found{}", path,
                    known.empty() ? "" : fmt::format(" (templates in {}: {})", templates_dir, known));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

SftTemplate SftTemplate::parse(const std::string& json_text, const std::string& source) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    IRIS_USER_CHECK(false, "template {}: not valid JSON ({})", source, e.what());
  }
  IRIS_USER_CHECK(root.is_object(), "template {}: expected a JSON object", source);
  for (auto k = root.begin(); k != root.end(); ++k) {
    static const std::set<std::string> keys = {"description", "default_system", "begin", "system", "user",
                                               "assistant", "system_always", "trim", "today_date",
                                               "hf_chat_template"};
    IRIS_USER_CHECK(keys.count(k.key()), "template {}: unknown key \"{}\" (expected description, default_system, "
                    "begin, system, user, assistant, system_always, trim, today_date, hf_chat_template)", source, k.key());
  }
  SftTemplate t;
  t.source_ = source;
  if (root.contains("default_system")) {
    IRIS_USER_CHECK(root["default_system"].is_string(), "template {}: \"default_system\" must be a string", source);
    t.default_system_ = root["default_system"].get<std::string>();
  }
  for (const char* key : {"system_always", "trim"}) {
    if (!root.contains(key)) continue;
    IRIS_USER_CHECK(root[key].is_boolean(), "template {}: \"{}\" must be true or false", source, key);
    (std::string(key) == "trim" ? t.trim_ : t.system_always_) = root[key].get<bool>();
  }
  if (root.contains("today_date")) {
    IRIS_USER_CHECK(root["today_date"].is_string(), "template {}: \"today_date\" must be a string such as "
                    "\"26 Jul 2024\"", source);
    t.today_date_ = root["today_date"].get<std::string>();
  }
  if (root.contains("hf_chat_template")) {
    IRIS_USER_CHECK(root["hf_chat_template"].is_string(), "template {}: \"hf_chat_template\" must be a string", source);
    t.hf_chat_template_ = root["hf_chat_template"].get<std::string>();
  }
  t.begin_ = parse_segments(root, "begin", source, kBeginFields);
  t.system_ = parse_segments(root, "system", source, kSystemFields);
  t.user_ = parse_segments(root, "user", source, kUserFields);
  t.assistant_ = parse_segments(root, "assistant", source, kAssistantFields);
  IRIS_USER_CHECK(!t.user_.empty() && !t.assistant_.empty(), "template {}: needs \"user\" and \"assistant\" segments",
                  source);
  bool trains = false;
  for (const auto& s : t.assistant_) trains = trains || s.train;
  IRIS_USER_CHECK(trains, "template {}: no assistant segment has \"train\": true, so nothing would be trained",
                  source);
  return t;
}

std::string SftTemplate::answer_end_token() const {
  std::string token;
  for (const auto& s : assistant_)
    if (s.kind == SftTemplateSegment::Kind::Token && s.train) token = s.token;
  return token;
}

bool SftTemplate::places_system() const {
  if (!system_.empty()) return true;
  for (const auto& s : user_)
    for (const auto& p : s.parts)
      if (p.is_placeholder && p.text == "system") return true;
  return false;
}

SftVocabulary SftVocabulary::of(const Tokenizer& tokenizer, bool allow_special) {
  SftVocabulary v;
  v.encode = [tokenizer, allow_special](std::string_view text) { return tokenizer.encode(text, allow_special); };
  v.piece_id = [tokenizer](std::string_view piece) { return tokenizer.token_id(piece); };
  v.bos_id = tokenizer.bos_id();
  v.eos_id = tokenizer.eos_id();
  return v;
}

size_t FormattedSample::trained_tokens() const {
  size_t n = 0;
  for (uint8_t m : loss_mask) n += m;
  return n;
}

SftFormatter::SftFormatter(SftTemplate tmpl, SftVocabulary vocab, bool train_on_inputs)
    : template_(std::move(tmpl)), vocab_(std::move(vocab)), train_on_inputs_(train_on_inputs) {
  for (const auto* segments : {&template_.begin(), &template_.system(), &template_.user(), &template_.assistant()}) {
    for (const SftTemplateSegment& s : *segments) {
      if (s.kind != SftTemplateSegment::Kind::Token || token_ids_.count(s.token)) continue;
      const int id = s.token == "bos" ? vocab_.bos_id : s.token == "eos" ? vocab_.eos_id : vocab_.piece_id(s.token);
      IRIS_USER_CHECK(id >= 0, "template {}: token \"{}\" is not defined by this tokenizer", template_.source(),
                      s.token);
      token_ids_[s.token] = id;
    }
  }
}

void SftFormatter::format(const SftSample& original, FormattedSample& out, const std::string& where) const {
  const SftTemplate& t = template_;
  SftSample trimmed_copy;
  if (t.trim()) {
    trimmed_copy.system = trimmed(original.system);
    for (const SftTurn& turn : original.turns)
      trimmed_copy.turns.push_back({trimmed(turn.instruction), trimmed(turn.input), trimmed(turn.content),
                                    trimmed(turn.answer)});
  }
  const SftSample& sample = t.trim() ? trimmed_copy : original;
  const std::string* date = &t.today_date();
  const std::string& system = sample.system.empty() ? t.default_system() : sample.system;
  if (!sample.system.empty() && !t.places_system()) {
    throw BadRecordError("system prompt unsupported",
                         fmt::format("{}: the record has a system message but template {} has no place for one "
                                     "(no \"system\" segments and no {{system}} in \"user\")", where, t.source()));
  }
  std::vector<Piece> pieces;
  auto emit = [&](const std::vector<SftTemplateSegment>& segments, const Values& values) {
    for (const SftTemplateSegment& s : segments) {
      if (!s.when.empty() && values.get(s.when).empty() != s.when_negated) continue;
      if (s.kind == SftTemplateSegment::Kind::Token) {
        pieces.push_back({"", token_ids_.at(s.token), s.train});
        continue;
      }
      std::string text;
      for (const auto& p : s.parts) text += p.is_placeholder ? values.get(p.text) : p.text;
      if (text.empty()) continue;
      if (!pieces.empty() && pieces.back().token < 0 && pieces.back().train == s.train) {
        pieces.back().text += text;
      } else {
        pieces.push_back({std::move(text), -1, s.train});
      }
    }
  };
  emit(t.begin(), Values{nullptr, nullptr, false, date});
  if (!system.empty() || t.system_always()) emit(t.system(), Values{&system, nullptr, false, date});
  for (size_t i = 0; i < sample.turns.size(); ++i) {
    const std::string no_system;
    emit(t.user(), Values{i == 0 ? &system : &no_system, &sample.turns[i], false, date});
    emit(t.assistant(), Values{nullptr, &sample.turns[i], true, date});
  }

  out.tokens.clear();
  out.loss_mask.clear();
  out.spans.clear();
  for (const Piece& p : pieces) {
    SftSpan span{out.tokens.size(), 0, p.train, p.token >= 0};
    if (p.token >= 0) {
      out.tokens.push_back(p.token);
    } else {
      const std::vector<int32_t> ids = vocab_.encode(p.text);
      out.tokens.insert(out.tokens.end(), ids.begin(), ids.end());
    }
    span.end = out.tokens.size();
    const bool trained = p.train || train_on_inputs_;
    for (size_t k = span.begin; k < span.end; ++k) {
      // Nothing predicts a BOS (it has no preceding token), so it is never a target.
      const bool is_bos = out.tokens[k] == vocab_.bos_id && p.token >= 0;
      out.loss_mask.push_back(trained && !is_bos ? 1 : 0);
    }
    if (span.end > span.begin) out.spans.push_back(span);
  }
}

std::string fit_to_seq_len(FormattedSample& sample, size_t seq_len, SftOverflow overflow, bool* truncated) {
  if (truncated) *truncated = false;
  if (seq_len == 0 || sample.tokens.size() <= seq_len) return "";
  if (overflow == SftOverflow::Drop) return "longer than --seq-len (dropped)";
  sample.tokens.resize(seq_len);
  sample.loss_mask.resize(seq_len);
  while (!sample.spans.empty() && sample.spans.back().begin >= seq_len) sample.spans.pop_back();
  if (!sample.spans.empty()) sample.spans.back().end = std::min(sample.spans.back().end, seq_len);
  if (sample.trained_tokens() == 0) return "no answer token within --seq-len (dropped)";
  if (truncated) *truncated = true;
  return "";
}

std::string render_for_inspection(const FormattedSample& sample, const Tokenizer& tokenizer, bool color) {
  std::string out;
  bool open = false;  // inside ⟦ ⟧
  for (const SftSpan& span : sample.spans) {
    const bool trained = sample.loss_mask[span.begin] != 0 || (span.end - span.begin > 1 &&
                                                                sample.loss_mask[span.end - 1] != 0);
    if (!trained && !open) out += color ? "\033[2m⟦" : "⟦";
    if (trained && open) out += color ? "⟧\033[0m" : "⟧";
    open = !trained;
    const std::span<const int32_t> ids(sample.tokens.data() + span.begin, span.end - span.begin);
    out += span.special ? tokenizer.piece(ids[0]) : tokenizer.decode(ids);
  }
  if (open) out += color ? "⟧\033[0m" : "⟧";
  return out;
}

std::string default_templates_dir() {
  namespace fs = std::filesystem;
  if (fs::is_directory("configs/templates")) return "configs/templates";
  std::error_code ec;
  const fs::path base = fs::canonical("/proc/self/exe", ec).parent_path();
  for (const fs::path& p : {base / "../../configs/templates", base / "../configs/templates"})
    if (!ec && fs::is_directory(p, ec)) return p.lexically_normal().string();
  return "configs/templates";
}

}  // namespace iris::io
