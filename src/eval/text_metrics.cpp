#include "src/eval/text_metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include "src/core/check.h"

namespace iris::eval {

// ---- Porter stemmer (NLTK 3.9.1, NLTK_EXTENSIONS mode) -----------------------------------------------
namespace {

bool is_consonant(const std::string& w, size_t i) {
  const char c = w[i];
  if (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u') return false;
  if (c == 'y') return i == 0 ? true : !is_consonant(w, i - 1);
  return true;
}

// The number of "vc" pairs in the consonant/vowel pattern ([C](VC){m}[V]).
int measure(const std::string& stem) {
  int m = 0;
  for (size_t i = 0; i + 1 < stem.size(); ++i)
    if (!is_consonant(stem, i) && is_consonant(stem, i + 1)) ++m;
  return m;
}

bool contains_vowel(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (!is_consonant(s, i)) return true;
  return false;
}

bool ends_double_consonant(const std::string& w) {
  return w.size() >= 2 && w.back() == w[w.size() - 2] && is_consonant(w, w.size() - 1);
}

bool ends_cvc(const std::string& w) {
  const size_t n = w.size();
  return (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) && w.back() != 'w' &&
          w.back() != 'x' && w.back() != 'y') ||
         (n == 2 && !is_consonant(w, 0) && is_consonant(w, 1));  // the NLTK extension
}

bool ends_with(const std::string& w, std::string_view suffix) {
  return w.size() >= suffix.size() && w.compare(w.size() - suffix.size(), suffix.size(), suffix) == 0;
}
std::string cut(const std::string& w, size_t n) { return w.substr(0, w.size() - n); }

struct Rule {
  std::string_view suffix, replacement;
  int condition;  // 0 none, 1 m > 0, 2 m > 1
};

bool holds(int condition, const std::string& stem) {
  return condition == 0 || (condition == 1 ? measure(stem) > 0 : measure(stem) > 1);
}

// NLTK's _apply_rule_list: the first rule whose suffix matches decides (its condition failing leaves the word).
std::string apply_rules(const std::string& w, const std::vector<Rule>& rules) {
  for (const Rule& r : rules) {
    if (!ends_with(w, r.suffix)) continue;
    const std::string stem = cut(w, r.suffix.size());
    return holds(r.condition, stem) ? stem + std::string(r.replacement) : w;
  }
  return w;
}

std::string step1a(const std::string& w) {
  if (ends_with(w, "ies") && w.size() == 4) return cut(w, 3) + "ie";
  return apply_rules(w, {{"sses", "ss", 0}, {"ies", "i", 0}, {"ss", "ss", 0}, {"s", "", 0}});
}

std::string step1b(const std::string& w) {
  if (ends_with(w, "ied")) return cut(w, 3) + (w.size() == 4 ? "ie" : "i");
  if (ends_with(w, "eed")) {
    const std::string stem = cut(w, 3);
    return measure(stem) > 0 ? stem + "ee" : w;
  }
  std::string s;
  bool ok = false;
  for (std::string_view suffix : {std::string_view("ed"), std::string_view("ing")}) {
    if (ends_with(w, suffix)) {
      s = cut(w, suffix.size());
      if (contains_vowel(s)) {
        ok = true;
        break;
      }
    }
  }
  if (!ok) return w;
  if (ends_with(s, "at")) return s + "e";
  if (ends_with(s, "bl")) return s + "e";
  if (ends_with(s, "iz")) return s + "e";
  if (ends_double_consonant(s)) {
    const char last = s.back();
    return (last != 'l' && last != 's' && last != 'z') ? cut(s, 2) + last : s;
  }
  return (measure(s) == 1 && ends_cvc(s)) ? s + "e" : s;  // the "" suffix rule
}

std::string step1c(const std::string& w) {
  if (!ends_with(w, "y")) return w;
  const std::string stem = cut(w, 1);
  return (stem.size() > 1 && is_consonant(stem, stem.size() - 1)) ? stem + "i" : w;
}

std::string step2(const std::string& w) {
  if (ends_with(w, "alli") && measure(cut(w, 4)) > 0) return step2(cut(w, 4) + "al");
  static const std::vector<Rule> rules = {
      {"ational", "ate", 1}, {"tional", "tion", 1}, {"enci", "ence", 1}, {"anci", "ance", 1}, {"izer", "ize", 1},
      {"bli", "ble", 1},     {"alli", "al", 1},     {"entli", "ent", 1}, {"eli", "e", 1},     {"ousli", "ous", 1},
      {"ization", "ize", 1}, {"ation", "ate", 1},   {"ator", "ate", 1},  {"alism", "al", 1},  {"iveness", "ive", 1},
      {"fulness", "ful", 1}, {"ousness", "ous", 1}, {"aliti", "al", 1},  {"iviti", "ive", 1}, {"biliti", "ble", 1},
      {"fulli", "ful", 1}};
  for (const Rule& r : rules) {
    if (!ends_with(w, r.suffix)) continue;
    const std::string stem = cut(w, r.suffix.size());
    return measure(stem) > 0 ? stem + std::string(r.replacement) : w;
  }
  // ("logi", "log", m(word[:-3]) > 0): its condition reads the word less three letters, not the stem.
  if (ends_with(w, "logi")) return measure(cut(w, 3)) > 0 ? cut(w, 4) + "log" : w;
  return w;
}

std::string step3(const std::string& w) {
  return apply_rules(w, {{"icate", "ic", 1}, {"ative", "", 1}, {"alize", "al", 1}, {"iciti", "ic", 1},
                         {"ical", "ic", 1}, {"ful", "", 1}, {"ness", "", 1}});
}

std::string step4(const std::string& w) {
  static const std::vector<std::string_view> suffixes = {"al",  "ance", "ence", "er",  "ic",  "able", "ible",
                                                         "ant", "ement", "ment", "ent", "ion", "ou",  "ism",
                                                         "ate", "iti",  "ous",  "ive", "ize"};
  for (std::string_view suffix : suffixes) {
    if (!ends_with(w, suffix)) continue;
    const std::string stem = cut(w, suffix.size());
    bool ok = measure(stem) > 1;
    if (suffix == "ion") ok = ok && !stem.empty() && (stem.back() == 's' || stem.back() == 't');
    return ok ? stem : w;
  }
  return w;
}

std::string step5a(const std::string& w) {
  if (!ends_with(w, "e")) return w;
  const std::string stem = cut(w, 1);
  const int m = measure(stem);
  if (m > 1) return stem;
  if (m == 1 && !ends_cvc(stem)) return stem;
  return w;
}

std::string step5b(const std::string& w) {
  if (!ends_with(w, "ll")) return w;
  return measure(cut(w, 1)) > 1 ? cut(w, 1) : w;
}

}  // namespace

std::string porter_stem(const std::string& word) {
  static const std::unordered_map<std::string, std::string> pool = {
      {"sky", "sky"},       {"skies", "sky"},     {"dying", "die"},      {"lying", "lie"},     {"tying", "tie"},
      {"news", "news"},     {"innings", "inning"}, {"inning", "inning"}, {"outings", "outing"}, {"outing", "outing"},
      {"cannings", "canning"}, {"canning", "canning"}, {"howe", "howe"}, {"proceed", "proceed"}, {"exceed", "exceed"},
      {"succeed", "succeed"}};
  if (auto it = pool.find(word); it != pool.end()) return it->second;
  if (word.size() <= 2) return word;
  return step5b(step5a(step4(step3(step2(step1c(step1b(step1a(word))))))));
}

// ---- UTF-8 ---------------------------------------------------------------------------------------------
namespace {

// Decodes the code point at s[i] (advancing i); malformed bytes are taken one at a time as themselves.
char32_t next_code_point(std::string_view s, size_t& i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
  if (extra <= 0 || i + extra >= s.size()) {
    ++i;
    return c;
  }
  char32_t cp = c & (0x3F >> extra);
  for (int k = 1; k <= extra; ++k) {
    const unsigned char d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) {
      ++i;
      return c;
    }
    cp = (cp << 6) | (d & 0x3F);
  }
  i += extra + 1;
  return cp;
}

// Python's str.isspace() (Unicode White_Space plus the ASCII separators 0x1C-0x1F).
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Python's " ".join(s.split()).
std::string normalize_spaces(std::string_view s) {
  std::string out, word;
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    const char32_t c = next_code_point(s, i);
    if (is_python_space(c)) {
      if (!word.empty()) {
        if (!out.empty()) out += ' ';
        out += word;
        word.clear();
      }
    } else {
      word.append(s.substr(start, i - start));
    }
  }
  if (!word.empty()) {
    if (!out.empty()) out += ' ';
    out += word;
  }
  return out;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

}  // namespace

// ---- ROUGE-L --------------------------------------------------------------------------------------------
std::vector<std::string> rouge_tokens(std::string_view text) {
  // text.lower(), then re.sub("[^a-z0-9]+", " "): only ASCII letters and digits survive. The two
  // non-ASCII characters whose Python lowercase holds an ASCII letter: U+0130 (-> "i" + U+0307) and the
  // Kelvin sign U+212A (-> "k").
  std::string ascii;
  for (size_t i = 0; i < text.size();) {
    const char32_t c = next_code_point(text, i);
    if (c >= 'A' && c <= 'Z')
      ascii += static_cast<char>(c - 'A' + 'a');
    else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
      ascii += static_cast<char>(c);
    else if (c == 0x130)
      ascii += "i ";
    else if (c == 0x212A)
      ascii += 'k';
    else
      ascii += ' ';
  }
  std::vector<std::string> tokens;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    tokens.push_back(word.size() > 3 ? porter_stem(word) : word);
    if (tokens.back().empty()) tokens.pop_back();
    word.clear();
  };
  for (char c : ascii) {
    if (c == ' ')
      flush();
    else
      word += c;
  }
  flush();
  return tokens;
}

double rouge_l_f1(std::string_view reference, std::string_view prediction) {
  const auto ref = rouge_tokens(reference), pred = rouge_tokens(prediction);
  if (ref.empty() || pred.empty()) return 0.0;
  std::vector<int> prev(pred.size() + 1, 0), row(pred.size() + 1, 0);
  for (size_t i = 1; i <= ref.size(); ++i) {
    for (size_t j = 1; j <= pred.size(); ++j)
      row[j] = ref[i - 1] == pred[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], row[j - 1]);
    std::swap(prev, row);
  }
  const double lcs = prev[pred.size()];
  const double precision = lcs / static_cast<double>(pred.size()), recall = lcs / static_cast<double>(ref.size());
  return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
}

// ---- BLEU -----------------------------------------------------------------------------------------------
std::string tokenize_13a(std::string_view raw) {
  std::string line = replace_all(std::string(raw), "<skipped>", "");
  line = replace_all(line, "-\n", "");
  line = replace_all(line, "\n", " ");
  if (line.find('&') != std::string::npos) {
    line = replace_all(line, "&quot;", "\"");
    line = replace_all(line, "&amp;", "&");
    line = replace_all(line, "&lt;", "<");
    line = replace_all(line, "&gt;", ">");
  }
  line = " " + line + " ";
  // 1. ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 "
  auto punct = [](unsigned char c) {
    return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
           (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == '/';
  };
  std::string a;
  for (char c : line) {
    if (punct(static_cast<unsigned char>(c))) {
      a += ' ';
      a += c;
      a += ' ';
    } else {
      a += c;
    }
  }
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  auto period_comma = [](char c) { return c == '.' || c == ','; };
  // Each of the next three is re.sub's left-to-right scan of non-overlapping two-character matches (on UTF-8
  // bytes, which gives the same result as on code points: no byte of a multi-byte character is a digit, "."
  // or "," or "-").
  auto pairs = [](const std::string& s, auto first, auto second, auto emit) {
    std::string out;
    for (size_t i = 0; i < s.size();) {
      if (i + 1 < s.size() && first(s[i]) && second(s[i + 1])) {
        emit(out, s[i], s[i + 1]);
        i += 2;
      } else {
        out += s[i++];
      }
    }
    return out;
  };
  // 2. ([^0-9])([\.,]) -> "\1 \2 "
  std::string b = pairs(a, [&](char c) { return !digit(c); }, period_comma, [](std::string& o, char x, char y) {
    o += x;
    o += ' ';
    o += y;
    o += ' ';
  });
  // 3. ([\.,])([^0-9]) -> " \1 \2"
  std::string c3 = pairs(b, period_comma, [&](char c) { return !digit(c); }, [](std::string& o, char x, char y) {
    o += ' ';
    o += x;
    o += ' ';
    o += y;
  });
  // 4. ([0-9])(-) -> "\1 \2 "
  std::string d = pairs(c3, digit, [](char c) { return c == '-'; }, [](std::string& o, char x, char y) {
    o += x;
    o += ' ';
    o += y;
    o += ' ';
  });
  return normalize_spaces(d);
}

namespace {

// Python's str.rstrip() (Unicode whitespace).
std::string_view rstrip(std::string_view s) {
  size_t end = 0;
  for (size_t i = 0; i < s.size();) {
    const char32_t c = next_code_point(s, i);
    if (!is_python_space(c)) end = i;
  }
  return s.substr(0, end);
}

std::vector<std::string> split_tokens(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t j = s.find(' ', i);
    out.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  if (s.empty()) out.clear();
  return out;
}

std::map<std::vector<std::string>, long long> ngrams(const std::vector<std::string>& tokens) {
  std::map<std::vector<std::string>, long long> counts;
  for (size_t n = 1; n <= 4; ++n)
    for (size_t i = 0; i + n <= tokens.size(); ++i)
      ++counts[std::vector<std::string>(tokens.begin() + i, tokens.begin() + i + n)];
  return counts;
}

}  // namespace

BleuStats bleu_segment(std::string_view hypothesis, std::string_view reference) {
  const auto hyp = split_tokens(tokenize_13a(rstrip(hypothesis)));
  const auto ref = split_tokens(tokenize_13a(rstrip(reference)));
  BleuStats s;
  s.hyp_len = static_cast<long long>(hyp.size());
  s.ref_len = static_cast<long long>(ref.size());
  const auto ref_counts = ngrams(ref);
  for (const auto& [gram, count] : ngrams(hyp)) {
    const size_t n = gram.size() - 1;
    s.total[n] += count;
    if (auto it = ref_counts.find(gram); it != ref_counts.end()) s.correct[n] += std::min(count, it->second);
  }
  return s;
}

BleuScore bleu_from_stats(const BleuStats& st) {
  BleuScore b;
  b.hyp_len = st.hyp_len;
  b.ref_len = st.ref_len;
  b.bp = st.hyp_len < st.ref_len ? (st.hyp_len > 0 ? std::exp(1.0 - static_cast<double>(st.ref_len) / st.hyp_len) : 0.0)
                                 : 1.0;
  bool any = false;
  for (long long c : st.correct) any = any || c != 0;
  if (!any) return b;
  double smooth = 1.0;
  for (int n = 0; n < 4; ++n) {
    if (st.total[n] == 0) break;
    if (st.correct[n] == 0) {
      smooth *= 2;  // 'exp' smoothing (mteval-v13a's)
      b.precisions[n] = 100.0 / (smooth * static_cast<double>(st.total[n]));
    } else {
      b.precisions[n] = 100.0 * static_cast<double>(st.correct[n]) / static_cast<double>(st.total[n]);
    }
  }
  double sum = 0;
  for (double p : b.precisions) sum += p == 0.0 ? -9999999999.0 : std::log(p);  // sacrebleu's my_log
  b.score = b.bp * std::exp(sum / 4);
  return b;
}

BleuScore corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references) {
  IRIS_CHECK(hypotheses.size() == references.size(), "{} hypotheses, {} references", hypotheses.size(),
             references.size());
  BleuStats total;
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    const BleuStats s = bleu_segment(hypotheses[i], references[i]);
    total.hyp_len += s.hyp_len;
    total.ref_len += s.ref_len;
    for (int n = 0; n < 4; ++n) {
      total.correct[n] += s.correct[n];
      total.total[n] += s.total[n];
    }
  }
  return bleu_from_stats(total);
}

}  // namespace iris::eval
