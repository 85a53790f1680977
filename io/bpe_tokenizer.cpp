#include "io/bpe_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "io/utf8.h"
#include "src/core/check.h"

namespace iris::io {
namespace {

constexpr uint64_t kEmpty = std::numeric_limits<uint64_t>::max();

uint64_t mix(uint64_t h) {  // splitmix64 finaliser
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

uint64_t hash_bytes(std::string_view s) {
  uint64_t h = s.size() * 0x9E3779B97F4A7C15ULL;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = mix(h ^ w);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  return mix(h ^ tail);
}

size_t table_capacity(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  return cap;
}

}  // namespace

// Open-addressing tables (linear probing, at most half full): pair → (priority, merged id) and
// token bytes → id. They are the whole hot path of encode(), so no std::unordered_map here.
class BpeTables {
 public:
  BpeTables(const BpeModelSpec& spec, const std::vector<bool>& special) {
    const auto& tb = spec.token_bytes;
    size_t n = 0;
    for (size_t id = 0; id < tb.size(); ++id) n += !special[id] && !tb[id].empty();
    bytes_slots_.assign(table_capacity(n), -1);
    for (size_t id = 0; id < tb.size(); ++id) {
      if (special[id] || tb[id].empty()) continue;
      size_t at = hash_bytes(tb[id]) & (bytes_slots_.size() - 1);
      while (bytes_slots_[at] >= 0) {
        IRIS_USER_CHECK(tb[bytes_slots_[at]] != tb[id], "tokenizer {}: ids {} and {} have the same bytes", spec.source,
                        bytes_slots_[at], id);
        at = (at + 1) & (bytes_slots_.size() - 1);
      }
      bytes_slots_[at] = static_cast<int32_t>(id);
    }
    token_bytes_ = &tb;
    for (int b = 0; b < 256; ++b) {
      const std::string one(1, static_cast<char>(b));
      byte_ids_[b] = find_bytes(one);
      IRIS_USER_CHECK(byte_ids_[b] >= 0, "tokenizer {}: no token for the byte 0x{:02x}; a byte-level BPE vocabulary "
                      "needs all 256", spec.source, b);
    }
    if (spec.merges.empty()) {
      // tiktoken's rule: a pair merges when its concatenation is a token, the lower id first.
      std::vector<std::array<int32_t, 3>> derived;
      for (size_t id = 0; id < tb.size(); ++id) {
        if (special[id] || tb[id].size() < 2) continue;
        const std::string_view t = tb[id];
        for (size_t k = 1; k < t.size(); ++k) {
          const int32_t l = find_bytes(t.substr(0, k)), r = find_bytes(t.substr(k));
          if (l >= 0 && r >= 0) derived.push_back({l, r, static_cast<int32_t>(id)});
        }
      }
      build_pairs(derived, true);
    } else {
      build_pairs(spec.merges, false);
    }
  }

  int32_t find_bytes(std::string_view s) const {
    size_t at = hash_bytes(s) & (bytes_slots_.size() - 1);
    while (true) {
      const int32_t id = bytes_slots_[at];
      if (id < 0) return -1;
      if ((*token_bytes_)[id] == s) return id;
      at = (at + 1) & (bytes_slots_.size() - 1);
    }
  }

  // (priority << 32 | merged id), or kEmpty when the pair does not merge.
  uint64_t find_pair(int32_t left, int32_t right) const {
    const uint64_t key = (static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right);
    size_t at = mix(key) & (pair_keys_.size() - 1);
    while (true) {
      const uint64_t k = pair_keys_[at];
      if (k == key) return pair_values_[at];
      if (k == kEmpty) return kEmpty;
      at = (at + 1) & (pair_keys_.size() - 1);
    }
  }

  int32_t byte_id(unsigned char b) const { return byte_ids_[b]; }

 private:
  void build_pairs(const std::vector<std::array<int32_t, 3>>& merges, bool priority_is_merged_id) {
    pair_keys_.assign(table_capacity(merges.size()), kEmpty);
    pair_values_.assign(pair_keys_.size(), kEmpty);
    for (size_t i = 0; i < merges.size(); ++i) {
      const auto& [l, r, merged] = merges[i];
      const uint64_t key = (static_cast<uint64_t>(l) << 32) | static_cast<uint32_t>(r);
      const uint64_t priority = priority_is_merged_id ? static_cast<uint64_t>(merged) : i;
      size_t at = mix(key) & (pair_keys_.size() - 1);
      while (pair_keys_[at] != kEmpty && pair_keys_[at] != key) at = (at + 1) & (pair_keys_.size() - 1);
      if (pair_keys_[at] == key) continue;  // a repeated merge: the first (lowest priority) wins
      pair_keys_[at] = key;
      pair_values_[at] = (priority << 32) | static_cast<uint32_t>(merged);
    }
  }

  const std::vector<std::string>* token_bytes_ = nullptr;
  std::vector<int32_t> bytes_slots_;
  std::vector<uint64_t> pair_keys_, pair_values_;
  int32_t byte_ids_[256];
};

namespace {

struct Pcre2Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Pcre2Code() { pcre2_code_free(code); }
};

// Per-thread match state, shared by every pattern (one ovector pair is all we read).
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

struct Symbol {
  int32_t id;
  int32_t prev, next;  // -1 at the ends
};

struct Candidate {
  uint32_t priority;
  int32_t pos;
  int32_t left, right;  // the ids the pair had when queued (a stale entry no longer matches)
  bool operator>(const Candidate& o) const { return priority != o.priority ? priority > o.priority : pos > o.pos; }
};

const std::vector<std::string>& byte_unicode_table() {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const int cp = printable ? b : 256 + extra++;
      std::string s;
      if (cp < 0x80) {
        s += static_cast<char>(cp);
      } else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
      t[b] = s;
    }
    return t;
  }();
  return table;
}

}  // namespace

std::string byte_to_unicode(unsigned char b) { return byte_unicode_table()[b]; }

bool unicode_to_bytes(std::string_view text, std::string& bytes) {
  static const std::unordered_map<std::string, unsigned char> inverse = [] {
    std::unordered_map<std::string, unsigned char> m;
    for (int b = 0; b < 256; ++b) m[byte_unicode_table()[b]] = static_cast<unsigned char>(b);
    return m;
  }();
  bytes.clear();
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : 0;
    if (n == 0 || i + n > text.size()) return false;
    auto it = inverse.find(std::string(text.substr(i, n)));
    if (it == inverse.end()) return false;
    bytes += static_cast<char>(it->second);
    i += n;
  }
  return true;
}

struct BpeRegex {
  Pcre2Code compiled;
};

namespace {

// Unicode White_Space, what \s means to tiktoken's and tokenizers' regex engines. PCRE2's \s with UCP
// also matches U+180E (it is in PCRE2's \h), so the pattern spells the class out.
constexpr const char* kWhiteSpace = R"(\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// `pattern` with \s and \S (outside and \s inside character classes) replaced by kWhiteSpace.
std::string with_unicode_white_space(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's' || (e == 'S' && !in_class)) {
        if (!in_class) out += e == 's' ? "[" : "[^";
        out += kWhiteSpace;
        if (!in_class) out += ']';
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];  // a literal ']' first
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

BpeTokenizer::BpeTokenizer(BpeModelSpec spec) : spec_(std::move(spec)) {
  std::vector<bool> special(spec_.token_bytes.size(), false);
  for (const auto& [text, id] : spec_.specials) {
    IRIS_USER_CHECK(id >= 0 && static_cast<size_t>(id) < spec_.token_bytes.size(),
                    "tokenizer {}: special token {} has id {} outside the vocabulary", spec_.source, text, id);
    special[id] = true;
    spec_.token_bytes[id] = text;
  }
  special_ = std::move(special);
  tables_ = std::make_unique<BpeTables>(spec_, special_);
  std::sort(spec_.specials.begin(), spec_.specials.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });  // longest match first
  for (const auto& s : spec_.specials)
    if (!s.first.empty()) special_first_byte_[static_cast<unsigned char>(s.first[0])] = true;

  int error = 0;
  PCRE2_SIZE error_offset = 0;
  regex_ = std::make_unique<BpeRegex>();
  const std::string pattern = with_unicode_white_space(spec_.pattern);
  regex_->compiled.code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                        PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
  if (regex_->compiled.code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    IRIS_USER_CHECK(false, "tokenizer {}: pre-tokenizer regex is not valid PCRE2 at offset {}: {} (pattern {})",
                    spec_.source, error_offset, reinterpret_cast<const char*>(message), spec_.pattern);
  }
  regex_->compiled.jit = pcre2_jit_compile(regex_->compiled.code, PCRE2_JIT_COMPLETE) == 0;
}

BpeTokenizer::~BpeTokenizer() = default;

bool BpeTokenizer::is_special(int id) const {
  return id >= 0 && static_cast<size_t>(id) < special_.size() && special_[id];
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() == 1) {
    out.push_back(tables_->byte_id(static_cast<unsigned char>(piece[0])));
    return;
  }
  if (spec_.whole_piece_lookup) {
    const int32_t id = tables_->find_bytes(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  // Merge by priority with a heap over adjacent pairs; symbols form a linked list in text order, so
  // equal priorities pop leftmost first (what tiktoken's and HF's loops both do).
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;  // a min-heap by (priority, position), kept across calls
  symbols.resize(piece.size());
  for (size_t i = 0; i < piece.size(); ++i)
    symbols[i] = {tables_->byte_id(static_cast<unsigned char>(piece[i])), static_cast<int32_t>(i) - 1,
                  i + 1 < piece.size() ? static_cast<int32_t>(i + 1) : -1};
  heap.clear();
  auto push = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    const uint64_t p = tables_->find_pair(symbols[pos].id, symbols[next].id);
    if (p == kEmpty) return;
    heap.push_back({static_cast<uint32_t>(p >> 32), pos, symbols[pos].id, symbols[next].id});
    std::push_heap(heap.begin(), heap.end(), std::greater<>{});
  };
  for (size_t i = 0; i + 1 < piece.size(); ++i) push(static_cast<int32_t>(i));
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& s = symbols[c.pos];
    if (s.id != c.left || s.next < 0 || symbols[s.next].id != c.right) continue;  // stale
    const uint64_t p = tables_->find_pair(c.left, c.right);
    const int32_t gone = s.next;
    s.id = static_cast<int32_t>(p & 0xFFFFFFFFu);
    s.next = symbols[gone].next;
    if (s.next >= 0) symbols[s.next].prev = c.pos;
    symbols[gone].id = -1;
    if (s.prev >= 0) push(s.prev);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

void BpeTokenizer::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  MatchState& m = match_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start < text.size()) {
    const int rc = regex_->compiled.jit
                       ? pcre2_jit_match(regex_->compiled.code, subject, text.size(), start, PCRE2_NO_UTF_CHECK,
                                         m.data, m.context)
                       : pcre2_match(regex_->compiled.code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, m.data,
                                     m.context);
    if (rc == PCRE2_ERROR_NOMATCH) {  // a tail no alternative matches stays one piece (HF's Split keeps it)
      encode_piece(text.substr(start), out);
      return;
    }
    IRIS_CHECK(rc >= 0, "PCRE2 match failed with code {} in tokenizer {}", rc, spec_.source);
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(m.data);
    size_t begin = ov[0], end = ov[1];
    if (begin > start) encode_piece(text.substr(start, begin - start), out);
    if (end == begin) {  // an empty match: take one character so the scan moves on
      end = begin + 1;
      while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    }
    encode_piece(text.substr(begin, end - begin), out);
    start = end;
  }
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool allow_special) const {
  const size_t bad = find_invalid_utf8(text);
  IRIS_USER_CHECK(bad == std::string_view::npos, "tokenizer {}: text is not valid UTF-8 (byte 0x{:02x} at offset {})",
                  spec_.source, bad == std::string_view::npos ? 0 : static_cast<unsigned char>(text[bad]), bad);
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (!allow_special || spec_.specials.empty()) {
    encode_ordinary(text, out);
    return out;
  }
  size_t plain = 0;  // start of the text not yet encoded
  for (size_t i = 0; i < text.size(); ++i) {
    if (!special_first_byte_[static_cast<unsigned char>(text[i])]) continue;
    for (const auto& [s, id] : spec_.specials) {
      if (text.compare(i, s.size(), s) != 0) continue;
      encode_ordinary(text.substr(plain, i - plain), out);
      out.push_back(id);
      plain = i + s.size();
      i = plain - 1;
      break;
    }
  }
  encode_ordinary(text.substr(plain), out);
  return out;
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  for (int32_t id : ids) {
    IRIS_USER_CHECK(id >= 0 && id < vocab_size() && !spec_.token_bytes[id].empty(),
                    "token id {} is outside the vocabulary [0, {}) of tokenizer {}", id, vocab_size(), spec_.source);
    text += spec_.token_bytes[id];
  }
  return text;
}

std::string BpeTokenizer::piece(int id) const {
  IRIS_USER_CHECK(id >= 0 && id < vocab_size() && !spec_.token_bytes[id].empty(),
                  "token id {} is outside the vocabulary [0, {}) of tokenizer {}", id, vocab_size(), spec_.source);
  if (is_special(id)) return spec_.token_bytes[id];
  std::string out;
  for (unsigned char b : spec_.token_bytes[id]) out += byte_to_unicode(b);
  return out;
}

int BpeTokenizer::token_id(std::string_view piece) const {
  for (const auto& [s, id] : spec_.specials)
    if (s == piece) return id;
  std::string bytes;
  if (!unicode_to_bytes(piece, bytes) || bytes.empty()) return -1;
  return tables_->find_bytes(bytes);
}

std::string BpeTokenizer::hf_tokenizer_json() const {
  using nlohmann::ordered_json;
  auto unicode = [](std::string_view bytes) {
    std::string out;
    for (unsigned char b : bytes) out += byte_to_unicode(b);
    return out;
  };
  ordered_json vocab = ordered_json::object();
  for (size_t id = 0; id < spec_.token_bytes.size(); ++id)
    if (!special_[id] && !spec_.token_bytes[id].empty()) vocab[unicode(spec_.token_bytes[id])] = id;
  ordered_json merges = ordered_json::array();
  if (!spec_.merges.empty()) {
    for (const auto& [l, r, merged] : spec_.merges)
      merges.push_back(unicode(spec_.token_bytes[l]) + " " + unicode(spec_.token_bytes[r]));
  } else {
    // TikTokenConverter's order: by the merged token's rank, then by the ranks of its two halves.
    for (size_t id = 0; id < spec_.token_bytes.size(); ++id) {
      const std::string_view t = spec_.token_bytes[id];
      if (special_[id] || t.size() < 2) continue;
      std::vector<std::pair<int32_t, int32_t>> splits;
      for (size_t k = 1; k < t.size(); ++k) {
        const int32_t l = tables_->find_bytes(t.substr(0, k)), r = tables_->find_bytes(t.substr(k));
        if (l >= 0 && r >= 0) splits.emplace_back(l, r);
      }
      std::sort(splits.begin(), splits.end());
      for (const auto& [l, r] : splits) merges.push_back(unicode(spec_.token_bytes[l]) + " " + unicode(spec_.token_bytes[r]));
    }
  }
  ordered_json added = ordered_json::array();
  std::vector<std::pair<std::string, int32_t>> specials = spec_.specials;
  std::sort(specials.begin(), specials.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  for (const auto& [text, id] : specials)
    added.push_back({{"id", id}, {"content", text}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  const ordered_json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                                   {"use_regex", false}};
  ordered_json root = {
      {"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", ordered_json::array({
          {{"type", "Split"}, {"pattern", {{"Regex", spec_.pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
          byte_level})}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                 {"ignore_merges", spec_.whole_piece_lookup}, {"vocab", vocab}, {"merges", merges}}}};
  return root.dump();
}

}  // namespace iris::io
