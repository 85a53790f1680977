// Supervised fine-tuning (SFT) formatting: a JSONL record (Alpaca/medAlpaca {instruction, input,
// output} or chat {messages: [{role, content}, ...]}) + a prompt template → token ids and a per-token
// loss mask. mask[i] = 1 means token i is a training target (predicted from tokens < i); only answer
// tokens and the token closing each answer (EOS) are targets, unless train_on_inputs. BOS is never
// a target. Templates are JSON files (configs/templates/NAME.json), format:
//
//   { "description": "...",                        free text
//     "default_system": "",                        system prompt used when a record has none
//     "begin":     [SEGMENT, ...],                 once, at the start of a sample
//     "system":    [SEGMENT, ...],                 once after "begin", when there is a system prompt
//     "user":      [SEGMENT, ...],                 every user turn (an Alpaca record is one turn)
//     "assistant": [SEGMENT, ...],                 every answer
//     "system_always": false,                      true: render "system" even when the system prompt is empty
//     "trim": false,                               true: strip leading/trailing whitespace of every message
//                                                  (Jinja's |trim, as HF chat templates do)
//     "today_date": "26 Jul 2024",                 the {today_date} placeholder (iris-tokenize --sft.today-date)
//     "hf_chat_template": "{{ bos_token }}..." }   the Jinja chat_template this reproduces, written to
//                                                  tokenizer_config.json by iris-convert iris-to-hf --template
//   SEGMENT = {"text": "...{placeholder}..."} or {"token": "bos" | "eos" | "<piece>"} (a piece such as
//             "<|eot_id|>" or "</s>": inserted by id, never read from text),
//             plus optional "train": true (a target) and "when": "FIELD" / "!FIELD" (rendered only
//             when FIELD is non-empty / empty).
//   Placeholders ({{ and }} are literal braces): {today_date} in begin, system and user segments;
//   {system} in system and user segments (in user
//   segments it is the system prompt in the first turn and empty later), {instruction} {input}
//   {content} in user segments, {output} {content} in assistant segments. Chat records give
//   instruction = content and input = ""; Alpaca records give content = instruction [+ "\n\n" + input].
//
// Tokenization: consecutive text segments with the same "train" flag are joined and encoded as one
// string, so a mask boundary never falls inside a token; each joined string is encoded on its own
// (sentencepiece adds its dummy-prefix space at its start, as Meta's Llama 2 chat code does per turn).
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "io/input_record.h"

namespace iris::io {

class Tokenizer;

// ---- records ----

struct SftTurn {
  std::string instruction, input, content;  // the user's side
  std::string answer;                       // the assistant's reply (trained)
};

struct SftSample {
  std::string system;  // empty when the record has none
  std::vector<SftTurn> turns;
};

// JSON field names of the two record kinds (iris-tokenize --sft.*-field).
struct SftFields {
  std::string instruction = "instruction", input = "input", output = "output";
  std::string messages = "messages", role = "role", content = "content";
};

// A record with the messages field is a chat (optional leading system message, then user/assistant
// alternating, ending with an assistant answer); otherwise it needs instruction and output (input is
// optional). BadRecordError naming record.where() for anything else.
SftSample parse_sft_record(const InputRecord& record, const SftFields& fields);

// ---- templates ----
// configs/templates in the working directory, else the one beside the source tree the running binary was
// built in (build/bin/../../configs/templates, or a bundle's bin/../configs/templates), else
// "configs/templates": the default --templates-dir of iris-generate and iris-eval.
std::string default_templates_dir();


struct SftTemplateSegment {
  enum class Kind { Text, Token };
  struct Part {              // a text segment, split at its placeholders
    bool is_placeholder = false;
    std::string text;        // literal text or placeholder name
  };
  Kind kind = Kind::Text;
  std::vector<Part> parts;   // Kind::Text
  std::string token;         // Kind::Token: "bos", "eos" or a piece
  bool train = false;
  std::string when;          // field name or "" (always)
  bool when_negated = false;
};

class SftTemplate {
 public:
  // NAME (configs/templates/NAME.json under `templates_dir`) or a path to a .json file. UserError
  // naming the file for unreadable JSON, unknown keys, an unknown or misplaced placeholder.
  static SftTemplate load(const std::string& name_or_path, const std::string& templates_dir);
  // Same checks on JSON text; `source` names it in messages.
  static SftTemplate parse(const std::string& json_text, const std::string& source);

  const std::string& source() const { return source_; }
  const std::string& default_system() const { return default_system_; }
  const std::string& today_date() const { return today_date_; }
  void set_today_date(std::string date) { today_date_ = std::move(date); }
  bool system_always() const { return system_always_; }
  bool trim() const { return trim_; }
  const std::string& hf_chat_template() const { return hf_chat_template_; }
  // The token that closes each answer (the last trained "token" segment: "eos", "<|eot_id|>"), or "".
  std::string answer_end_token() const;
  const std::vector<SftTemplateSegment>& begin() const { return begin_; }
  const std::vector<SftTemplateSegment>& system() const { return system_; }
  const std::vector<SftTemplateSegment>& user() const { return user_; }
  const std::vector<SftTemplateSegment>& assistant() const { return assistant_; }
  bool places_system() const;  // a system segment list, or {system} in a user segment

 private:
  std::string source_, default_system_, today_date_, hf_chat_template_;
  bool system_always_ = false, trim_ = false;
  std::vector<SftTemplateSegment> begin_, system_, user_, assistant_;
};

// ---- rendering ----

// What the formatter needs from a tokenizer; tests substitute one whose pieces they control.
struct SftVocabulary {
  std::function<std::vector<int32_t>(std::string_view)> encode;  // no BOS/EOS added
  std::function<int(std::string_view)> piece_id;                 // -1 when unknown
  int bos_id = -1, eos_id = -1;
  // allow_special: special-token text inside records becomes the token (iris-tokenize --allow-special).
  static SftVocabulary of(const Tokenizer& tokenizer, bool allow_special = false);
};

struct SftSpan {  // tokens [begin, end) came from one joined segment
  size_t begin = 0, end = 0;
  bool trained = false;
  bool special = false;  // a "token" segment
};

struct FormattedSample {
  std::vector<int32_t> tokens;     // (T,)
  std::vector<uint8_t> loss_mask;  // (T,) 0/1
  std::vector<SftSpan> spans;
  size_t trained_tokens() const;
};

class SftFormatter {
 public:
  // UserError naming the template file when a "token" segment names a piece the vocabulary lacks.
  SftFormatter(SftTemplate tmpl, SftVocabulary vocab, bool train_on_inputs);
  // Thread-safe (const). BadRecordError when the sample needs a slot the template lacks (a system
  // prompt with no place for it).
  void format(const SftSample& sample, FormattedSample& out, const std::string& where = "") const;
  const SftTemplate& templ() const { return template_; }

 private:
  SftTemplate template_;
  SftVocabulary vocab_;
  bool train_on_inputs_;
  std::map<std::string, int> token_ids_;  // "token" segments resolved once
};

enum class SftOverflow { Truncate, Drop };

// Applies --seq-len: keeps samples of at most seq_len tokens; longer ones are cut to seq_len
// (Truncate) or rejected (Drop). Returns "" when the sample is kept, otherwise the skip reason (a
// truncated sample with no trained token left is also rejected). `truncated` (optional) is set when
// a kept sample was cut.
std::string fit_to_seq_len(FormattedSample& sample, size_t seq_len, SftOverflow overflow, bool* truncated = nullptr);

// The sample as text for --inspect: untrained text inside ⟦ ⟧ (dimmed too when `color`), special
// tokens as their pieces, e.g. "⟦<s>[INST] Hi [/INST]⟧ Hello</s>".
std::string render_for_inspection(const FormattedSample& sample, const Tokenizer& tokenizer, bool color);

}  // namespace iris::io
