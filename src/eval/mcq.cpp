#include "src/eval/mcq.h"
#include "src/eval/records.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/input_record.h"
#include "src/core/check.h"

namespace iris::eval {

McqFormat parse_mcq_format(const std::string& text) {
  if (text == "medmcqa") return McqFormat::MedMcqa;
  if (text == "pubmedqa") return McqFormat::PubMedQa;
  if (text == "generic") return McqFormat::Generic;
  throw UserError("--format must be medmcqa, pubmedqa or generic, got \"" + text + "\"");
}

namespace {

[[noreturn]] void bad(const std::string& where, const std::string& reason, const std::string& detail) {
  bad_record(where, reason, detail);
}

const nlohmann::json& field(const nlohmann::json& j, const char* name, const std::string& where) {
  if (!j.contains(name)) bad(where, std::string("missing field \"") + name + "\"", std::string("missing field \"") + name + "\"");
  return j.at(name);
}

std::string text_field(const nlohmann::json& j, const char* name, const std::string& where) {
  const auto& v = field(j, name, where);
  if (!v.is_string()) bad(where, "mistyped field", std::string("field \"") + name + "\" must be a string");
  return v.get<std::string>();
}

std::string choice_field(const nlohmann::json& j, const char* name, const std::string& where) {
  std::string s = text_field(j, name, where);
  if (s.find_first_not_of(" \t\r\n") == std::string::npos)
    bad(where, "empty choice", std::string("choice \"") + name + "\" is empty");
  return s;
}

McqItem parse_item(const nlohmann::json& j, McqFormat format, const std::string& where) {
  McqItem item;
  item.where = where;
  const std::string question = text_field(j, "question", where);
  switch (format) {
    case McqFormat::MedMcqa: {
      const char* names[] = {"opa", "opb", "opc", "opd"};
      item.context = "Question: " + question + "\nChoices:\n";
      const char* letters[] = {"A", "B", "C", "D"};
      for (int i = 0; i < 4; ++i) item.context += std::string(letters[i]) + ". " + choice_field(j, names[i], where) + "\n";
      item.context += "Answer:";
      item.lettered = item.context;
      item.choices = {"A", "B", "C", "D"};
      const auto& cop = field(j, "cop", where);
      if (!cop.is_number_integer()) bad(where, "mistyped field", "field \"cop\" must be an integer 0-3");
      item.gold = cop.get<int>();
      if (item.gold < 0 || item.gold > 3)
        bad(where, "answer out of range", "\"cop\" is " + std::to_string(item.gold) + ", expected 0-3 (opa-opd)");
      break;
    }
    case McqFormat::PubMedQa: {
      const auto& ctx = field(j, "context", where);
      if (!ctx.is_object() || !ctx.contains("contexts") || !ctx["contexts"].is_array())
        bad(where, "missing field \"context.contexts\"", "missing field \"context.contexts\" (an array of strings)");
      std::string abstract;
      for (size_t i = 0; i < ctx["contexts"].size(); ++i) {
        if (!ctx["contexts"][i].is_string()) bad(where, "mistyped field", "\"context.contexts\" must hold strings");
        abstract += (i ? "\n" : "") + ctx["contexts"][i].get<std::string>();
      }
      item.context = "Abstract: " + abstract + "\nQuestion: " + question + "\nAnswer:";
      item.lettered = item.context;
      item.answered_by_word = true;
      item.choices = {"yes", "no", "maybe"};
      const std::string decision = text_field(j, "final_decision", where);
      item.gold = decision == "yes" ? 0 : decision == "no" ? 1 : decision == "maybe" ? 2 : -1;
      if (item.gold < 0)
        bad(where, "answer out of range", "\"final_decision\" is \"" + decision + "\", expected yes, no or maybe");
      break;
    }
    case McqFormat::Generic: {
      item.context = "Question: " + question + "\nAnswer:";
      const auto& choices = field(j, "choices", where);
      if (!choices.is_array() || choices.size() < 2)
        bad(where, "mistyped field", "field \"choices\" must be an array of at least 2 strings");
      for (size_t i = 0; i < choices.size(); ++i) {
        if (!choices[i].is_string()) bad(where, "mistyped field", "choice " + std::to_string(i) + " is not a string");
        const std::string c = choices[i].get<std::string>();
        if (c.find_first_not_of(" \t\r\n") == std::string::npos)
          bad(where, "empty choice", "choice " + std::to_string(i) + " is empty");
        item.choices.push_back(c);
      }
      item.lettered = "Question: " + question + "\nChoices:\n";
      for (size_t i = 0; i < item.choices.size(); ++i)
        item.lettered += std::string(1, static_cast<char>('A' + i)) + ". " + item.choices[i] + "\n";
      item.lettered += "Answer:";
      if (item.choices.size() > 26) bad(where, "too many choices", "more than 26 choices");
      const auto& answer = field(j, "answer", where);
      if (!answer.is_number_integer()) bad(where, "mistyped field", "field \"answer\" must be an integer index");
      item.gold = answer.get<int>();
      if (item.gold < 0 || item.gold >= static_cast<int>(item.choices.size()))
        bad(where, "answer out of range",
            "\"answer\" is " + std::to_string(item.gold) + ", expected an index 0-" + std::to_string(item.choices.size() - 1));
      break;
    }
  }
  return item;
}

}  // namespace

std::vector<McqItem> read_mcq(const std::string& path, McqFormat format) {
  std::vector<McqItem> items;
  for_each_record(path, "a JSON object", [&](const nlohmann::json& j, const std::string& where, uint64_t n) {
    McqItem item = parse_item(j, format, where);
    item.id = record_id(j, n);
    items.push_back(std::move(item));
  });
  return items;
}

namespace {
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

void add_fewshot(std::vector<McqItem>& items, int k, uint64_t seed) {
  if (k <= 0) return;
  IRIS_USER_CHECK(static_cast<size_t>(k) < items.size(), "--num-fewshot {} needs more than {} items in the file", k,
                  k);
  std::vector<std::string> shots(items.size()), lettered_shots(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    shots[i] = items[i].context + " " + items[i].choices[items[i].gold];
    lettered_shots[i] = items[i].lettered + " " +
                        (items[i].answered_by_word ? items[i].choices[items[i].gold]
                                                   : std::string(1, static_cast<char>('A' + items[i].gold)));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    // A seeded Fisher-Yates over the other items, per item (state from the seed and the item's index).
    std::vector<size_t> pool;
    for (size_t j = 0; j < items.size(); ++j)
      if (j != i) pool.push_back(j);
    uint64_t state = seed * 0x100000001B3ull + i;
    std::string prefix, lettered_prefix;
    for (int s = 0; s < k; ++s) {
      const size_t pick = s + splitmix64(state) % (pool.size() - s);
      std::swap(pool[s], pool[pick]);
      prefix += shots[pool[s]] + "\n\n";
      lettered_prefix += lettered_shots[pool[s]] + "\n\n";
    }
    items[i].context = prefix + items[i].context;
    items[i].lettered = lettered_prefix + items[i].lettered;
  }
}

ScoreRequest encode_pair(const io::Tokenizer& tok, const std::vector<int32_t>& prefix, const std::string& context_in,
                         const std::string& continuation_in, const std::string& where) {
  std::string context = context_in, continuation = continuation_in;
  const size_t keep = context.find_last_not_of(" \t\r\n\f\v");
  const size_t n_spaces = keep == std::string::npos ? context.size() : context.size() - keep - 1;
  if (n_spaces > 0) {
    continuation = context.substr(context.size() - n_spaces) + continuation;
    context.resize(context.size() - n_spaces);
  }
  std::vector<int32_t> whole = tok.encode(context + continuation);
  const size_t n_context = tok.encode(context).size();
  IRIS_USER_CHECK(whole.size() > n_context, "{}: the choice \"{}\" adds no tokens to the context", where,
                  continuation_in);
  ScoreRequest r;
  r.tokens = prefix;
  r.tokens.insert(r.tokens.end(), whole.begin(), whole.end());
  r.scored = static_cast<int>(whole.size() - n_context);
  IRIS_USER_CHECK(r.tokens.size() >= 2 && r.scored < static_cast<int>(r.tokens.size()),
                  "{}: the context is empty (no token before the choice)", where);
  return r;
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

McqResult score_item(const McqItem& item, const std::vector<double>& loglik) {
  McqResult r;
  r.loglik = loglik;
  // np.argmax: the first of equal maxima.
  double best = -INFINITY, best_norm = -INFINITY;
  for (size_t i = 0; i < loglik.size(); ++i) {
    const double norm = loglik[i] / static_cast<double>(utf8_length(item.choices[i]));
    if (loglik[i] > best) best = loglik[i], r.pred = static_cast<int>(i);
    if (norm > best_norm) best_norm = norm, r.pred_norm = static_cast<int>(i);
  }
  r.acc = r.pred == item.gold;
  r.acc_norm = r.pred_norm == item.gold;
  return r;
}

McqSummary summarize(const std::vector<McqResult>& results) {
  McqSummary s;
  s.n = static_cast<int64_t>(results.size());
  auto mean_stderr = [&](auto get, double& mean, double& stderr_) {
    double sum = 0;
    for (const auto& r : results) sum += get(r);
    mean = sum / s.n;
    double sq = 0;
    for (const auto& r : results) sq += (get(r) - mean) * (get(r) - mean);
    stderr_ = s.n > 1 ? std::sqrt(sq / (s.n - 1)) / std::sqrt(static_cast<double>(s.n)) : NAN;
  };
  mean_stderr([](const McqResult& r) { return r.acc ? 1.0 : 0.0; }, s.acc, s.acc_stderr);
  mean_stderr([](const McqResult& r) { return r.acc_norm ? 1.0 : 0.0; }, s.acc_norm, s.acc_norm_stderr);
  return s;
}

}  // namespace iris::eval
