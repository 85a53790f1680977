// iris-eval: evaluation as a job of Iris (docs/eval.md). Tasks:
//   mcq   multiple choice by log-likelihood (lm-evaluation-harness conventions; src/eval/mcq.h)
//   ppl   perplexity over windows of a token stream (src/eval/ppl.h)
//   text  generated answers scored by ROUGE-L and BLEU (src/eval/text_task.h)
// `mpirun -np W iris-eval TASK --tp T --pp P ...` splits the model as in training and spreads the work over
// dp = W / (T·P) replicas; rank 0 writes OUTPUT/summary.json and OUTPUT/items.jsonl. Exit status as
// iris-train: 0 done, 2 bad input, 1 internal failure.
#include <mpi.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <optional>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "parallel/mpi_tool_main.h"
#include "io/durable_file.h"
#include "io/indexed_dataset.h"
#include "io/tokenizer.h"
#include "src/core/check.h"
#include "src/core/log.h"
#include "src/core/tool_main.h"
#include "src/eval/mcq.h"
#include "src/eval/ppl.h"
#include "src/eval/text_task.h"
#include "src/infer/prompt_input.h"

namespace fs = std::filesystem;
namespace po = boost::program_options;
using namespace iris;
using namespace iris::eval;

namespace {

constexpr const char* kUsage =
    "iris-eval mcq  (--checkpoint CKPT | --hf DIR) [--tokenizer FILE] --format medmcqa|pubmedqa|generic --input FILE "
    "--output DIR [--num-fewshot K] [--template NAME] [--mode loglik|generate]\n"
    "iris-eval ppl  (--checkpoint CKPT | --hf DIR) (--data PREFIX | --input FILE --tokenizer FILE) --seq-len N "
    "[--stride S] --output DIR\n"
    "iris-eval text (--checkpoint CKPT | --hf DIR) --tokenizer FILE --input FILE --output DIR [--template NAME] "
    "[generation flags of iris-generate]\n";

struct Options {
  std::string task, checkpoint, hf, tokenizer, input, output, format, template_name, templates_dir, mode = "loglik",
      data;
  int tp = 1, pp = 1, batch = 4, num_fewshot = 0, seq_len = 0, stride = 0, max_new_tokens = 128;
  uint64_t fewshot_seed = 1234;
  TextOptions text;
};

bool parse_options(int argc, char** argv, Options& o, bool talk) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "help") {
    if (talk) std::cout << kUsage;
    if (argc < 2) throw UserError(std::string("no task given; usage:\n") + kUsage);
    return false;
  }
  o.task = argv[1];
  IRIS_USER_CHECK(o.task == "mcq" || o.task == "ppl" || o.task == "text", "unknown task \"{}\": expected mcq, ppl or text",
                  o.task);
  po::options_description d(kUsage);
  d.add_options()("help", "this text")
      ("checkpoint", po::value(&o.checkpoint), "Iris checkpoint: a step_* directory or a root with `latest` (any layout)")
      ("hf", po::value(&o.hf), "Hugging Face directory: config.json + safetensors")
      ("tokenizer", po::value(&o.tokenizer), "sentencepiece model (default: DIR/tokenizer.model of --hf)")
      ("input", po::value(&o.input), "mcq/text: JSONL records; ppl: a text file or JSONL {\"text\"} records")
      ("output", po::value(&o.output), "directory for summary.json and items.jsonl (created)")
      ("tp", po::value(&o.tp)->default_value(1), "tensor-parallel ranks")
      ("pp", po::value(&o.pp)->default_value(1), "pipeline stages (mcq, ppl); dp = ranks / (tp·pp)")
      ("batch", po::value(&o.batch)->default_value(4), "sequences per forward (mcq, ppl) or decoded together (text)")
      ("format", po::value(&o.format), "mcq: medmcqa | pubmedqa | generic")
      ("num-fewshot", po::value(&o.num_fewshot)->default_value(0), "mcq: K solved items of the file before each question")
      ("fewshot-seed", po::value(&o.fewshot_seed)->default_value(1234), "mcq: seed of the few-shot choice")
      ("template", po::value(&o.template_name), "chat template (configs/templates/NAME.json or a path)")
      ("templates-dir", po::value(&o.templates_dir), "where template names are looked up (default: configs/templates)")
      ("mode", po::value(&o.mode)->default_value("loglik"), "mcq: loglik | generate (the generated answer letter)")
      ("data", po::value(&o.data), "ppl: indexed token dataset PREFIX (.bin + .idx)")
      ("seq-len", po::value(&o.seq_len), "ppl: window length in tokens")
      ("stride", po::value(&o.stride), "ppl: sliding windows every S tokens (default: seq-len, no overlap)")
      ("max-new-tokens", po::value(&o.text.max_new_tokens)->default_value(128), "text/generate: tokens to generate at most")
      ("temperature", po::value(&o.text.temperature), "text: sample at temperature T (default greedy)")
      ("top-k", po::value(&o.text.top_k), "text: sample among the k most likely tokens")
      ("top-p", po::value(&o.text.top_p), "text: sample from the nucleus of probability p")
      ("seed", po::value(&o.text.seed), "text: sampling seed")
      ("stop", po::value(&o.text.stop)->multitoken(), "text: stop strings")
      ("scorer", po::value(&o.text.scorer)->default_value("python3"), "text: the Python that runs tools/eval_scorer.py (METEOR with nltk, SemScore with sentence-transformers); \"\" to skip")
      ("semscore-model", po::value(&o.text.semscore_model), "text: sentence-transformers model directory for SemScore");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc - 1, argv + 1, d), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UserError(fmt::format("{} (iris-eval {} --help lists the options)", e.what(), o.task));
  }
  if (vm.count("help")) {
    if (talk) std::cout << d << "\n";
    return false;
  }
  o.text.sampled = vm.count("temperature") || vm.count("top-k") || vm.count("top-p") || vm.count("seed");
  o.text.batch = o.batch;
  IRIS_USER_CHECK(o.checkpoint.empty() != o.hf.empty(), "give exactly one of --checkpoint and --hf");
  IRIS_USER_CHECK(!o.output.empty(), "--output DIR is required");
  if (o.tokenizer.empty() && !o.hf.empty() && fs::exists(fs::path(o.hf) / "tokenizer.model"))
    o.tokenizer = (fs::path(o.hf) / "tokenizer.model").string();
  if (o.task == "mcq") {
    IRIS_USER_CHECK(!o.format.empty(), "mcq needs --format medmcqa|pubmedqa|generic");
    IRIS_USER_CHECK(!o.input.empty(), "mcq needs --input FILE");
    IRIS_USER_CHECK(!o.tokenizer.empty(), "mcq needs --tokenizer FILE (or an --hf directory with tokenizer.model)");
    IRIS_USER_CHECK(o.mode == "loglik" || o.mode == "generate", "--mode must be loglik or generate, got \"{}\"", o.mode);
    IRIS_USER_CHECK(o.num_fewshot >= 0, "--num-fewshot must be >= 0, got {}", o.num_fewshot);
  } else if (o.task == "ppl") {
    IRIS_USER_CHECK(o.data.empty() != o.input.empty(), "ppl needs exactly one of --data PREFIX and --input FILE");
    IRIS_USER_CHECK(o.data.empty() ? !o.tokenizer.empty() : true, "ppl --input needs --tokenizer FILE");
    IRIS_USER_CHECK(vm.count("seq-len"), "ppl needs --seq-len N");
    if (!vm.count("stride")) o.stride = o.seq_len;
  } else {
    IRIS_USER_CHECK(!o.input.empty(), "text needs --input FILE");
    IRIS_USER_CHECK(!o.tokenizer.empty(), "text needs --tokenizer FILE");
  }
  return true;
}


std::optional<io::SftFormatter> make_formatter(const Options& o, const io::Tokenizer& tok) {
  if (o.template_name.empty()) return std::nullopt;
  const std::string dir = o.templates_dir.empty() ? io::default_templates_dir() : o.templates_dir;
  return io::SftFormatter(io::SftTemplate::load(o.template_name, dir), io::SftVocabulary::of(tok), false);
}

void write_outputs(const Options& o, const nlohmann::json& summary, const std::string& items) {
  fs::create_directories(o.output);
  io::write_text_durably(fs::path(o.output) / "items.jsonl", items);
  io::write_text_durably(fs::path(o.output) / "summary.json", summary.dump(2) + "\n");
}

EvalModel load_model(const Options& o, const Topology& topo, const Communicators& comms) {
  return o.hf.empty() ? EvalModel::from_checkpoint(o.checkpoint, topo, comms) : EvalModel::from_hf(o.hf, topo, comms);
}

int run_mcq(const Options& o, const Topology& topo, const Communicators& comms) {
  const io::Tokenizer tok = io::Tokenizer::load(o.tokenizer);
  std::vector<McqItem> items = read_mcq(o.input, parse_mcq_format(o.format));
  add_fewshot(items, o.num_fewshot, o.fewshot_seed);
  const auto formatter = make_formatter(o, tok);
  if (o.mode == "generate") {
    IRIS_USER_CHECK(o.pp == 1, "--mode generate runs the whole model on each rank (pp = 1), got --pp {}", o.pp);
    return run_mcq_generate(ModelSource{o.checkpoint, o.hf}, tok, formatter, items, o.format, o.output, o.text,
                            topo, comms);
  }
  // Requests: every choice of every item, in order.
  std::vector<ScoreRequest> requests;
  std::vector<size_t> first(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    first[i] = requests.size();
    for (const auto& c : items[i].choices) {
      if (formatter) {  // the chat prompt (BOS, the template's turn around the question), then the bare choice
        ScoreRequest r;
        io::SftSample sample;
        sample.turns.push_back(io::SftTurn{"", "", items[i].context, ""});
        r.tokens = infer::render_chat_prompt(*formatter, sample, items[i].where);
        const auto cont = tok.encode(c);
        r.tokens.insert(r.tokens.end(), cont.begin(), cont.end());
        r.scored = static_cast<int>(cont.size());
        requests.push_back(std::move(r));
      } else {
        requests.push_back(encode_pair(tok, {}, items[i].context, " " + c, items[i].where));
      }
    }
  }
  const EvalModel model = load_model(o, topo, comms);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<double> ll = model.score(requests, o.batch);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (topo.rank != 0) return 0;
  std::vector<McqResult> results;
  std::string lines;
  for (size_t i = 0; i < items.size(); ++i) {
    std::vector<double> l(ll.begin() + first[i], ll.begin() + first[i] + items[i].choices.size());
    results.push_back(score_item(items[i], l));
    const McqResult& r = results.back();
    nlohmann::json j{{"id", items[i].id}, {"doc_index", i}, {"loglikelihoods", r.loglik}, {"choices", items[i].choices},
                     {"context", items[i].context},
                     {"pred", r.pred}, {"pred_norm", r.pred_norm}, {"gold", items[i].gold}, {"acc", r.acc ? 1 : 0},
                     {"acc_norm", r.acc_norm ? 1 : 0}};
    lines += j.dump() + "\n";
  }
  const McqSummary s = summarize(results);
  nlohmann::json summary{{"task", "mcq"}, {"format", o.format}, {"mode", "loglik"}, {"input", o.input},
                         {"acc", s.acc}, {"acc_norm", s.acc_norm}, {"acc_stderr", s.acc_stderr},
                         {"acc_norm_stderr", s.acc_norm_stderr}, {"n", s.n}, {"num_fewshot", o.num_fewshot},
                         {"requests", requests.size()}, {"seconds", seconds},
                         {"items_per_second", static_cast<double>(s.n) / std::max(seconds, 1e-9)},
                         {"layout", topo.describe()}};
  write_outputs(o, summary, lines);
  std::printf("| mcq | %s | n %lld | acc %.4f ± %.4f | acc_norm %.4f ± %.4f | %.2f items/s |\n", o.format.c_str(),
              static_cast<long long>(s.n), s.acc, s.acc_stderr, s.acc_norm, s.acc_norm_stderr,
              static_cast<double>(s.n) / std::max(seconds, 1e-9));
  return 0;
}

std::vector<int32_t> ppl_stream(const Options& o) {
  std::vector<int32_t> stream;
  if (!o.data.empty()) {
    const io::IndexedDataset ds = io::IndexedDataset::open(o.data);
    stream.resize(ds.num_tokens());
    ds.read_tokens(0, stream.size(), stream.data());
    return stream;
  }
  const io::Tokenizer tok = io::Tokenizer::load(o.tokenizer);
  auto add_document = [&](const std::string& text) {
    if (tok.bos_id() >= 0) stream.push_back(tok.bos_id());
    const auto ids = tok.encode(text);
    stream.insert(stream.end(), ids.begin(), ids.end());
  };
  std::ifstream in(o.input, std::ios::binary);
  IRIS_USER_CHECK(in.good(), "--input {}: cannot be read", o.input);
  if (fs::path(o.input).extension() == ".jsonl") {  // one document per record's "text"
    std::string line;
    for (uint64_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error& e) {
        throw UserError(fmt::format("{}:{}: malformed JSON: {}", o.input, n, e.what()));
      }
      IRIS_USER_CHECK(j.is_object() && j.contains("text") && j["text"].is_string(),
                      "{}:{}: expected an object with a string field \"text\"", o.input, n);
      add_document(j["text"].get<std::string>());
    }
  } else {
    add_document(std::string(std::istreambuf_iterator<char>(in), {}));
  }
  return stream;
}

int run_ppl(const Options& o, const Topology& topo, const Communicators& comms) {
  const std::vector<int32_t> stream = ppl_stream(o);
  const EvalModel model = load_model(o, topo, comms);
  IRIS_USER_CHECK(o.seq_len <= model.config().max_position_embeddings,
                  "--seq-len {} exceeds the model's max_position_embeddings ({})", o.seq_len,
                  model.config().max_position_embeddings);
  const auto windows = ppl_windows(static_cast<int64_t>(stream.size()), o.seq_len, o.stride);
  const std::vector<double> ll = model.score(ppl_requests(stream, windows), o.batch);
  if (topo.rank != 0) return 0;
  double nll = 0;
  int64_t tokens = 0;
  std::string lines;
  for (size_t i = 0; i < windows.size(); ++i) {
    nll -= ll[i];
    tokens += windows[i].scored;
    lines += nlohmann::json{{"window", i}, {"begin", windows[i].begin}, {"end", windows[i].end},
                            {"scored", windows[i].scored}, {"nll", -ll[i]}}.dump() + "\n";
  }
  const double loss = nll / static_cast<double>(tokens);
  nlohmann::json summary{{"task", "ppl"}, {"loss", loss}, {"perplexity", std::exp(loss)}, {"tokens", tokens},
                         {"windows", windows.size()}, {"seq_len", o.seq_len}, {"stride", o.stride},
                         {"layout", topo.describe()}};
  write_outputs(o, summary, lines);
  std::printf("| ppl | tokens %lld | windows %zu | loss %.6f | perplexity %.4f |\n", static_cast<long long>(tokens),
              windows.size(), loss, std::exp(loss));
  return 0;
}

int run(const Options& o, int rank, int world) {
  IRIS_USER_CHECK(o.tp >= 1 && o.pp >= 1, "--tp and --pp must be at least 1");
  const Topology topo = Topology::make(world, rank, o.tp, o.pp);
  Communicators comms;
  if (world > 1) comms = make_mpi_communicators(topo, false, 1800.0);
  if (o.task == "mcq") return run_mcq(o, topo, comms);
  if (o.task == "ppl") return run_ppl(o, topo, comms);
  IRIS_USER_CHECK(o.pp == 1, "text generates with the whole model on each rank (pp = 1), got --pp {}", o.pp);
  const io::Tokenizer tok = io::Tokenizer::load(o.tokenizer);
  return run_text(ModelSource{o.checkpoint, o.hf}, tok, make_formatter(o, tok), o.input, o.output, o.text, topo,
                  comms);
}

}  // namespace

int main(int argc, char** argv) {
  return run_mpi_tool("iris-eval", argc, argv, [&](int rank, int world) {
    Options o;
    return parse_options(argc, argv, o, rank == 0) ? run(o, rank, world) : kExitOk;
  });
}
