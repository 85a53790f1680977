#include "io/bpe_files.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "src/core/check.h"

namespace iris::io {
namespace fs = std::filesystem;
using nlohmann::json;

const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// Meta's llama3/tokenizer.py: 12 named tokens, then reserved ones up to 256.
std::vector<std::string> llama3_special_tokens() {
  std::vector<std::string> names = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                                    "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
                                    "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
                                    "<|python_tag|>", "<|image|>"};
  for (int i = 0; names.size() < 256; ++i) names.push_back("<|reserved_special_token_" + std::to_string(2 + i) + "|>");
  return names;
}

bool decode_base64(std::string_view in, std::string& out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out.clear();
  if (in.empty() || in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else {
        if (pad > 0) return false;
        v[k] = value(c);
        if (v[k] < 0) return false;
      }
    }
    const uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>(n >> 16);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(n & 0xFF);
  }
  return true;
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  IRIS_USER_CHECK(in.is_open(), "cannot open tokenizer file {}", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// "<|x|>" or {"content": "<|x|>", ...} (tokenizer_config.json's two spellings).
std::string token_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

}  // namespace

TokenizerFileKind detect_tokenizer_file(const std::string& path) {
  std::error_code ec;
  IRIS_USER_CHECK(fs::is_regular_file(path, ec),
                  "tokenizer {} not found (expected a sentencepiece .model, a tiktoken tokenizer.model such as "
                  "Llama 3's original/tokenizer.model, or a Hugging Face tokenizer.json)", path);
  std::ifstream in(path, std::ios::binary);
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  const size_t first = head.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && head[first] == '{') return TokenizerFileKind::HfJson;
  // tiktoken: the first line is BASE64 SPACE DIGITS.
  const size_t eol = head.find('\n');
  if (eol != std::string::npos) {
    const std::string line = head.substr(0, eol);
    const size_t space = line.find(' ');
    bool ok = space != std::string::npos && space > 0 && space + 1 < line.size();
    for (size_t i = 0; ok && i < line.size(); ++i) {
      const char c = line[i];
      ok = i < space ? (std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=')
                     : i == space || std::isdigit(static_cast<unsigned char>(c)) || (c == '\r' && i + 1 == line.size());
    }
    if (ok) return TokenizerFileKind::Tiktoken;
  }
  return TokenizerFileKind::SentencePiece;
}

BpeModelSpec read_tiktoken_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  IRIS_USER_CHECK(in.is_open(), "cannot open tokenizer file {}", path);
  BpeModelSpec spec;
  spec.source = path;
  spec.pattern = kLlama3Pattern;
  std::string line, bytes;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    IRIS_USER_CHECK(space != std::string::npos, "{}:{}: expected \"BASE64-BYTES RANK\" (a tiktoken file)", path,
                    line_no);
    IRIS_USER_CHECK(decode_base64(std::string_view(line).substr(0, space), bytes) && !bytes.empty(),
                    "{}:{}: \"{}\" is not base64", path, line_no, line.substr(0, space));
    size_t used = 0;
    long long rank = -1;
    try {
      rank = std::stoll(line.substr(space + 1), &used);
    } catch (const std::exception&) {
    }
    IRIS_USER_CHECK(rank >= 0 && used == line.size() - space - 1, "{}:{}: rank \"{}\" is not a non-negative integer",
                    path, line_no, line.substr(space + 1));
    IRIS_USER_CHECK(static_cast<size_t>(rank) == spec.token_bytes.size(),
                    "{}:{}: rank {} out of order (expected {}: ranks must run 0, 1, 2, ...)", path, line_no, rank,
                    spec.token_bytes.size());
    spec.token_bytes.push_back(bytes);
  }
  IRIS_USER_CHECK(!spec.token_bytes.empty(), "{}: no tokens (expected \"BASE64-BYTES RANK\" lines)", path);
  const int32_t base = static_cast<int32_t>(spec.token_bytes.size());
  const std::vector<std::string> names = llama3_special_tokens();
  for (size_t i = 0; i < names.size(); ++i) {
    spec.specials.emplace_back(names[i], base + static_cast<int32_t>(i));
    spec.token_bytes.push_back(names[i]);
  }
  spec.bos_id = base;      // <|begin_of_text|>
  spec.eos_id = base + 1;  // <|end_of_text|>
  return spec;
}

namespace {

// The regex of root["pre_tokenizer"]: ByteLevel(use_regex) alone (GPT-2's), or a Sequence of a
// Split regex (Isolated) and ByteLevel(use_regex=false) (Llama 3's).
std::string read_pre_tokenizer(const json& root, const std::string& path) {
  auto need = [&](bool ok, const std::string& key, const std::string& what) {
    IRIS_USER_CHECK(ok, "tokenizer {}: \"{}\" {}", path, key, what);
  };
  std::string pattern;
  // Pre-tokenizer: ByteLevel(use_regex) alone, or Sequence[Split(Regex, Isolated), ByteLevel(use_regex=false)].
  need(root.contains("pre_tokenizer") && root["pre_tokenizer"].is_object(), "pre_tokenizer",
       "must be a ByteLevel pre-tokenizer (or a Sequence of a Split regex and ByteLevel)");
  std::vector<json> steps;
  const json& pre = root["pre_tokenizer"];
  if (pre.value("type", "") == "Sequence") {
    need(pre.contains("pretokenizers") && pre["pretokenizers"].is_array(), "pre_tokenizer.pretokenizers",
         "must be a list");
    for (const json& p : pre["pretokenizers"]) steps.push_back(p);
  } else {
    steps.push_back(pre);
  }
  bool byte_level = false;
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& p = steps[i];
    const std::string key = fmt::format("pre_tokenizer step {} ({})", i + 1, p.value("type", "?"));
    const std::string type = p.value("type", "");
    if (type == "Split") {
      need(pattern.empty() && !byte_level, key, "must come first, once");
      need(p.contains("pattern") && p["pattern"].is_object() && p["pattern"].contains("Regex"), key + ".pattern",
           "must be {\"Regex\": \"...\"}");
      need(p.value("behavior", "") == "Isolated" && !p.value("invert", false), key,
           "must have behavior Isolated and invert false");
      pattern = p["pattern"]["Regex"].get<std::string>();
    } else if (type == "ByteLevel") {
      need(!p.value("add_prefix_space", false), key + ".add_prefix_space", "is not supported (must be false)");
      if (p.value("use_regex", true)) {
        need(pattern.empty(), key + ".use_regex", "cannot follow a Split (set it to false)");
        pattern = kGpt2Pattern;
      }
      byte_level = true;
    } else {
      need(false, key, "is not supported (expected Split or ByteLevel)");
    }
  }
  need(byte_level && !pattern.empty(), "pre_tokenizer", "must include ByteLevel and a regex");
  return pattern;
}

// BOS/EOS: tokenizer_config.json beside the file when it names them, else the usual names.
void set_bos_eos(BpeModelSpec& spec, const std::string& path) {
  std::string bos, eos;
  const fs::path config = fs::path(path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (fs::is_regular_file(config, ec)) {
    try {
      const json c = json::parse(read_whole(config.string()));
      if (c.contains("bos_token")) bos = token_text(c["bos_token"]);
      if (c.contains("eos_token")) eos = token_text(c["eos_token"]);
    } catch (const json::parse_error& e) {
      IRIS_USER_CHECK(false, "{}: not valid JSON ({})", config.string(), e.what());
    }
  }
  for (const auto& [text, id] : spec.specials) {
    if (text == bos || (bos.empty() && text == "<|begin_of_text|>")) spec.bos_id = id;
    if (text == eos || (eos.empty() && (text == "<|end_of_text|>" || text == "<|endoftext|>"))) spec.eos_id = id;
  }
}

}  // namespace

BpeModelSpec read_hf_tokenizer_json(const std::string& path) {
  json root;
  try {
    root = json::parse(read_whole(path));
  } catch (const json::parse_error& e) {
    IRIS_USER_CHECK(false, "tokenizer {}: not valid JSON ({})", path, e.what());
  }
  auto need = [&](bool ok, const std::string& key, const std::string& what) {
    IRIS_USER_CHECK(ok, "tokenizer {}: \"{}\" {}", path, key, what);
  };
  need(root.is_object() && root.contains("model") && root["model"].is_object(), "model", "must be an object");
  const json& model = root["model"];
  need(model.value("type", "") == "BPE", "model.type",
       "must be \"BPE\" (a byte-level BPE tokenizer.json such as Llama 3's or GPT-2's)");
  for (const char* key : {"dropout", "continuing_subword_prefix", "end_of_word_suffix"}) {
    need(!model.contains(key) || model[key].is_null() || (model[key].is_string() && model[key] == ""),
         std::string("model.") + key, "is not supported (must be null)");
  }
  need(!model.value("byte_fallback", false), "model.byte_fallback", "is not supported by a byte-level BPE (must be false)");
  need(!root.contains("normalizer") || root["normalizer"].is_null(), "normalizer", "is not supported (must be null)");

  BpeModelSpec spec;
  spec.source = path;
  spec.whole_piece_lookup = model.value("ignore_merges", false);
  spec.pattern = read_pre_tokenizer(root, path);

  need(model.contains("vocab") && model["vocab"].is_object(), "model.vocab", "must be an object");
  std::string bytes;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    need(it->is_number_integer() && it->get<int64_t>() >= 0 && it->get<int64_t>() < (1LL << 30),
         "model.vocab." + it.key(), "must be a non-negative id");
    const size_t id = it->get<size_t>();
    need(unicode_to_bytes(it.key(), bytes) && !bytes.empty(), "model.vocab." + it.key(),
         "is not in the byte-level alphabet (GPT-2's byte-to-unicode mapping)");
    if (spec.token_bytes.size() <= id) spec.token_bytes.resize(id + 1);
    need(spec.token_bytes[id].empty(), "model.vocab." + it.key(), fmt::format("repeats id {}", id));
    spec.token_bytes[id] = bytes;
  }
  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    for (const json& t : root["added_tokens"]) {
      need(t.is_object() && t.contains("id") && t["id"].is_number_integer() && t.contains("content") &&
               t["content"].is_string(), "added_tokens", "entries need an integer id and a string content");
      const size_t id = t["id"].get<size_t>();
      if (spec.token_bytes.size() <= id) spec.token_bytes.resize(id + 1);
      spec.specials.emplace_back(t["content"].get<std::string>(), static_cast<int32_t>(id));
    }
  }
  need(model.contains("merges") && model["merges"].is_array(), "model.merges", "must be a list");
  auto id_of = [&](const std::string& piece, size_t line) -> int32_t {
    const auto it = model["vocab"].find(piece);
    need(it != model["vocab"].end(), fmt::format("model.merges[{}]", line), "names \"" + piece + "\", not in vocab");
    return it->get<int32_t>();
  };
  const json& merges = model["merges"];
  spec.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    std::string l, r;
    if (merges[i].is_string()) {  // "left right" (tokenizers < 0.20)
      const std::string m = merges[i].get<std::string>();
      const size_t space = m.find(' ', 1);
      need(space != std::string::npos, fmt::format("model.merges[{}]", i), "must be \"LEFT RIGHT\"");
      l = m.substr(0, space);
      r = m.substr(space + 1);
    } else {
      need(merges[i].is_array() && merges[i].size() == 2 && merges[i][0].is_string() && merges[i][1].is_string(),
           fmt::format("model.merges[{}]", i), "must be \"LEFT RIGHT\" or [LEFT, RIGHT]");
      l = merges[i][0].get<std::string>();
      r = merges[i][1].get<std::string>();
    }
    spec.merges.push_back({id_of(l, i), id_of(r, i), id_of(l + r, i)});
  }
  set_bos_eos(spec, path);
  return spec;
}

}  // namespace iris::io
