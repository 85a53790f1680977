#include "src/eval/text_task.h"
#include "src/eval/records.h"

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/durable_file.h"
#include "io/input_record.h"
#include "src/core/check.h"
#include "src/eval/text_metrics.h"
#include "src/infer/generator.h"
#include "src/infer/prompt_input.h"

namespace fs = std::filesystem;

namespace iris::eval {
namespace {

[[noreturn]] void bad(const std::string& where, const std::string& reason, const std::string& detail) {
  bad_record(where, reason, detail);
}

infer::Generator load_generator(const ModelSource& m, const Topology& topo, const Communicators& comms) {
  return m.hf.empty() ? infer::Generator::from_checkpoint(m.checkpoint, topo, comms.tp.get())
                      : infer::Generator::from_hf(m.hf, topo, comms.tp.get());
}

// Every rank's `mine`, concatenated in rank order, on every rank (broadcast_bytes from each rank in turn).
std::string all_gather_text(Comm* world, const std::string& mine) {
  if (!world || world->size() == 1) return mine;
  std::string all;
  for (int r = 0; r < world->size(); ++r) {
    uint64_t n = world->rank() == r ? mine.size() : 0;
    world->broadcast_bytes(&n, sizeof n, r);
    std::string part = world->rank() == r ? mine : std::string(n, '\0');
    if (n) world->broadcast_bytes(part.data(), n, r);
    all += part;
  }
  return all;
}

// Completions of prompts (each "where" naming its record), spread over the DP replicas: prompt i on replica
// i % dp; every rank returns all of them, in order.
std::vector<std::string> generate_all(const ModelSource& model, const io::Tokenizer& tok,
                                      const std::vector<infer::Prompt>& prompts, const std::vector<int32_t>& stop_ids,
                                      const TextOptions& o, const Topology& topo, const Communicators& comms) {
  infer::Generator gen = load_generator(model, topo, comms);
  gen.validate(prompts);
  std::vector<infer::Prompt> mine;
  std::vector<size_t> index;
  for (size_t i = 0; i < prompts.size(); ++i)
    if (static_cast<int>(i % topo.dp) == topo.dp_rank) {
      mine.push_back(prompts[i]);
      index.push_back(i);
    }
  infer::GenerationSettings s;
  s.max_new_tokens = o.max_new_tokens;
  s.batch = o.batch;
  s.sampling = {!o.sampled, o.temperature, o.top_k, o.top_p, o.seed};
  s.stop_ids = stop_ids;
  if (gen.config().eos_token_id >= 0) s.stop_ids.push_back(gen.config().eos_token_id);
  s.stop_strings = o.stop;
  s.decode = [tok](std::span<const int32_t> ids) { return tok.decode(ids); };
  const auto out = mine.empty() ? std::vector<infer::Completion>{} : gen.generate(mine, s);
  nlohmann::json part = nlohmann::json::array();
  if (topo.tp_rank == 0)
    for (size_t k = 0; k < out.size(); ++k) part.push_back({index[k], out[k].text});
  // One JSON array per reporting rank, newline-separated.
  const std::string all = all_gather_text(comms.world.get(), topo.tp_rank == 0 ? part.dump() + "\n" : "");
  std::vector<std::string> texts(prompts.size());
  size_t begin = 0;
  while (begin < all.size()) {
    const size_t end = all.find('\n', begin);
    for (const auto& e : nlohmann::json::parse(all.substr(begin, end - begin))) texts[e[0].get<size_t>()] = e[1];
    begin = end + 1;
  }
  return texts;
}

infer::Prompt make_prompt(const infer::PromptEncoder& enc, const std::string& id, const std::string& user_text,
                          const std::string& where) {
  nlohmann::json j{{"id", id}};
  if (enc.formatter)
    j["messages"] = nlohmann::json::array({{{"role", "user"}, {"content", user_text}}});
  else
    j["prompt"] = user_text;
  return enc.parse(j.dump(), where);
}

double mean_stderr(const std::vector<double>& x, double& mean) {
  mean = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(x.size());
  double sq = 0;
  for (double v : x) sq += (v - mean) * (v - mean);
  return x.size() > 1 ? std::sqrt(sq / static_cast<double>(x.size() - 1)) / std::sqrt(static_cast<double>(x.size()))
                      : NAN;
}

std::string scorer_script(const TextOptions& o) {
  if (!o.scorer_script.empty()) return o.scorer_script;
  std::error_code ec;
  const fs::path base = fs::canonical("/proc/self/exe", ec).parent_path();
  for (const fs::path& p : {fs::path("tools/eval_scorer.py"), base / "../../tools/eval_scorer.py",
                            base / "../tools/eval_scorer.py"})
    if (!ec && fs::exists(p, ec)) return p.lexically_normal().string();
  return "";
}

// METEOR and SemScore from tools/eval_scorer.py, or each {"value": null, "unavailable": why}.
nlohmann::json optional_scores(const std::vector<std::string>& preds, const std::vector<std::string>& refs,
                               const TextOptions& o, const fs::path& out_dir) {
  auto unavailable = [](const std::string& why) {
    return nlohmann::json{{"meteor", nullptr}, {"meteor_unavailable", why}, {"semscore", nullptr},
                          {"semscore_unavailable", why}};
  };
  if (o.scorer.empty()) return unavailable("no scorer Python (--scorer)");
  const std::string script = scorer_script(o);
  if (script.empty()) return unavailable("tools/eval_scorer.py not found");
  const fs::path in = out_dir / "scorer_input.json", result = out_dir / "scorer_output.json";
  io::write_text_durably(in, nlohmann::json{{"predictions", preds}, {"references", refs},
                                            {"semscore_model", o.semscore_model}}.dump());
  const std::string cmd = "'" + o.scorer + "' '" + script + "' '" + in.string() + "' '" + result.string() + "' 2>&1";
  std::string log;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, p)) log += buf;
    const int status = pclose(p);
    fs::remove(in);
    std::ifstream r(result);
    if (status == 0 && r.good()) {
      nlohmann::json j = nlohmann::json::parse(r);
      fs::remove(result);
      return j;
    }
  }
  fs::remove(in);
  return unavailable("the scorer " + o.scorer + " " + script + " failed: " + log.substr(0, 300));
}

}  // namespace

std::vector<TextRecord> read_text_records(const std::string& path) {
  std::vector<TextRecord> out;
  for_each_record(path, "a JSON object {question, reference}",
                  [&](const nlohmann::json& j, const std::string& where, uint64_t n) {
    TextRecord r;
    r.where = where;
    for (auto [key, dst] : {std::pair{"question", &r.question}, std::pair{"reference", &r.reference}}) {
      if (!j.contains(key)) bad(where, std::string("missing field \"") + key + "\"", std::string("missing field \"") + key + "\"");
      if (!j[key].is_string()) bad(where, "mistyped field", std::string("field \"") + key + "\" must be a string");
      *dst = j[key].get<std::string>();
    }
    r.id = record_id(j, n);
    out.push_back(std::move(r));
  });
  return out;
}

int run_text(const ModelSource& model, const io::Tokenizer& tok, const std::optional<io::SftFormatter>& formatter,
             const std::string& input, const std::string& output, const TextOptions& o, const Topology& topo,
             const Communicators& comms) {
  const auto records = read_text_records(input);
  infer::PromptEncoder enc;
  enc.tokenizer = tok;
  enc.formatter = formatter;
  std::vector<infer::Prompt> prompts;
  for (const auto& r : records)
    prompts.push_back(make_prompt(enc, r.id, formatter ? r.question : "Question: " + r.question + "\nAnswer:", r.where));
  const auto texts = generate_all(model, tok, prompts, enc.stop_ids(), o, topo, comms);
  if (topo.rank != 0) return 0;
  fs::create_directories(output);
  std::vector<std::string> refs;
  std::vector<double> rouge;
  std::string lines;
  for (size_t i = 0; i < records.size(); ++i) {
    refs.push_back(records[i].reference);
    rouge.push_back(rouge_l_f1(records[i].reference, texts[i]));
    const BleuScore b = bleu_from_stats(bleu_segment(texts[i], records[i].reference));
    lines += nlohmann::json{{"id", records[i].id}, {"question", records[i].question},
                            {"reference", records[i].reference}, {"generated", texts[i]}, {"rougeL", rouge[i]},
                            {"bleu", b.score}}.dump() + "\n";
  }
  double rouge_mean = 0;
  const double rouge_se = mean_stderr(rouge, rouge_mean);
  const BleuScore bleu = corpus_bleu(texts, refs);
  nlohmann::json summary{{"task", "text"}, {"input", input}, {"n", records.size()}, {"rougeL", rouge_mean},
                         {"rougeL_stderr", rouge_se}, {"bleu", bleu.score}, {"bleu_01", bleu.score / 100.0},
                         {"bleu_precisions", std::vector<double>(bleu.precisions, bleu.precisions + 4)},
                         {"bleu_bp", bleu.bp}, {"layout", topo.describe()}};
  summary.update(optional_scores(texts, refs, o, output));
  io::write_text_durably(fs::path(output) / "items.jsonl", lines);
  io::write_text_durably(fs::path(output) / "summary.json", summary.dump(2) + "\n");
  auto shown = [&](const char* key) {
    return summary[key].is_null() ? std::string("unavailable") : fmt::format("{:.4f}", summary[key].get<double>());
  };
  std::printf("| text | n %zu | rougeL %.4f ± %.4f | bleu %.2f | meteor %s | semscore %s |\n", records.size(),
              rouge_mean, rouge_se, bleu.score, shown("meteor").c_str(), shown("semscore").c_str());
  return 0;
}

int parse_generated_choice(const std::string& text, size_t choices, bool words) {
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (words) {
    std::string lower = text;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    static const char* kWords[] = {"yes", "no", "maybe"};
    size_t best_at = std::string::npos;
    int best = -1;
    for (int w = 0; w < 3; ++w) {
      const std::string word = kWords[w];
      for (size_t at = lower.find(word); at != std::string::npos; at = lower.find(word, at + 1)) {
        const bool starts = at == 0 || !alnum(lower[at - 1]);
        const bool ends = at + word.size() == lower.size() || !alnum(lower[at + word.size()]);
        if (starts && ends) {
          if (at < best_at) best_at = at, best = w;
          break;
        }
      }
    }
    return best;
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c < 'A' || c >= static_cast<char>('A' + choices)) continue;
    const bool starts = i == 0 || !alnum(text[i - 1]);
    const bool ends = i + 1 == text.size() || !alnum(text[i + 1]);
    if (starts && ends) return c - 'A';
  }
  return -1;
}

int run_mcq_generate(const ModelSource& model, const io::Tokenizer& tok,
                     const std::optional<io::SftFormatter>& formatter, const std::vector<McqItem>& items,
                     const std::string& format, const std::string& output, const TextOptions& o,
                     const Topology& topo, const Communicators& comms) {
  infer::PromptEncoder enc;
  enc.tokenizer = tok;
  enc.formatter = formatter;
  std::vector<infer::Prompt> prompts;
  for (const auto& item : items) prompts.push_back(make_prompt(enc, item.id, item.lettered, item.where));
  const auto texts = generate_all(model, tok, prompts, enc.stop_ids(), o, topo, comms);
  if (topo.rank != 0) return 0;
  std::vector<double> correct;
  std::string lines;
  for (size_t i = 0; i < items.size(); ++i) {
    const int pred = parse_generated_choice(texts[i], items[i].choices.size(), items[i].answered_by_word);
    correct.push_back(pred == items[i].gold ? 1.0 : 0.0);
    lines += nlohmann::json{{"id", items[i].id}, {"doc_index", i}, {"generated", texts[i]}, {"pred", pred},
                            {"gold", items[i].gold}, {"acc", static_cast<int>(correct.back())}}.dump() + "\n";
  }
  double acc = 0;
  const double se = mean_stderr(correct, acc);
  nlohmann::json summary{{"task", "mcq"}, {"format", format}, {"mode", "generate"}, {"acc", acc},
                         {"acc_stderr", se}, {"acc_norm", nullptr}, {"acc_norm_stderr", nullptr},
                         {"n", items.size()}, {"layout", topo.describe()}};
  fs::create_directories(output);
  io::write_text_durably(fs::path(output) / "items.jsonl", lines);
  io::write_text_durably(fs::path(output) / "summary.json", summary.dump(2) + "\n");
  std::printf("| mcq generate | %s | n %zu | acc %.4f ± %.4f |\n", format.c_str(), items.size(), acc, se);
  return 0;
}

}  // namespace iris::eval
