// iris-bench, Iris side: a random-token dataset in Megatron's indexed format, then iris-train (one rank,
// no mpirun) on it from a random init; tokens/s, MFU, peak memory and the losses come from its
// metrics.jsonl. One run, with the recompute mode the planner chose (bench_checks.cpp): no retries.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <sstream>

#include "bench/bench_driver.h"
#include "io/indexed_dataset.h"
#include "src/core/check.h"
#include "src/core/rng.h"

namespace fs = std::filesystem;

namespace iris::bench {

std::string model_stem(const std::string& name) {
  std::string file = fs::path(name).filename().string();
  if (file.ends_with(".json")) file.resize(file.size() - 5);
  return file;
}

std::string materialize_model_config(const std::string& name, const std::string& out_dir) {
  const bool is_path = name.find('/') != std::string::npos || name.ends_with(".json");
  std::string text;
  if (is_path) {
    text = read_text(name);
  } else {
    std::string known;
    for (int i = 0; i < kNumModelConfigs; ++i) {
      if (name == kModelConfigs[i].name) text = kModelConfigs[i].json;
      known += std::string(i ? ", " : "") + kModelConfigs[i].name;
    }
    IRIS_USER_CHECK(!text.empty(), "--models: no model named \"{}\" (known: {}; or give a path to a config.json)", name, known);
  }
  const std::string stem = model_stem(name);
  const std::string path = fs::absolute(fs::path(out_dir) / "models" / (stem + ".json")).string();
  write_text(path, text);
  return path;
}

void write_random_dataset(const std::string& prefix, int vocab_size, long long tokens) {
  const int kDocument = 8192;  // tokens per document; the loader reads windows across documents
  const long long documents = (tokens + kDocument - 1) / kDocument;
  if (fs::exists(prefix + ".idx")) {
    const auto existing = io::IndexedDataset::open(prefix);
    if (static_cast<long long>(existing.num_tokens()) >= documents * kDocument) return;
  }
  fs::create_directories(fs::path(prefix).parent_path());
  io::IndexedDatasetWriter writer(prefix, vocab_size);
  std::vector<int32_t> doc(kDocument);  // (kDocument,)
  for (long long d = 0; d < documents; ++d) {
    for (int i = 0; i < kDocument; ++i) {
      const double u = (random_u64(/*seed=*/7, /*stream=*/vocab_size, d * kDocument + i) >> 11) * 0x1.0p-53;  // [0, 1)
      doc[i] = static_cast<int32_t>(std::min<double>(vocab_size - 1, vocab_size * (u * u) * (u * u)));
    }
    writer.add_document(doc);
  }
  writer.finalize();
}

namespace {

// Averages the steps after the warm-up: tokens/s as total tokens over total time (the harmonic mean of
// the per-step rates), MFU scaled from the same steps, peak memory over the whole run.
void read_metrics(const Options& opt, const std::string& path, SideResult& r) {
  std::istringstream lines(read_text(path));
  double inverse_rate = 0, mfu_per_rate = 0;
  int timed = 0, with_mfu = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto m = nlohmann::json::parse(line);
    const bool device_memory = m.contains("device_peak_memory_mib") && m["device_peak_memory_mib"].is_number();
    const double memory = device_memory ? m["device_peak_memory_mib"].get<double>() : m["peak_memory_mib"].get<double>();
    r.peak_memory_mib = std::max(r.peak_memory_mib.value_or(0.0), memory);
    r.peak_memory_kind = device_memory ? "device_peak_memory_mib" : "peak_memory_mib (peak RSS)";
    r.losses.push_back(m.contains("loss") && m["loss"].is_number() ? m["loss"].get<double>() : NAN);
    if (m["step"].get<int>() <= opt.warmup_steps) continue;
    const double rate = m["tokens_per_s"].get<double>();
    IRIS_USER_CHECK(rate > 0, "{}: step {} has tokens_per_s {}", path, m["step"].get<int>(), rate);
    inverse_rate += 1.0 / rate;
    ++timed;
    if (m["mfu"].is_number()) {
      mfu_per_rate += m["mfu"].get<double>() / rate;
      ++with_mfu;
    }
  }
  IRIS_USER_CHECK(timed > 0, "{} has no step after the {} warm-up steps", path, opt.warmup_steps);
  r.tokens_per_s = timed / inverse_rate;
  if (with_mfu == timed) r.mfu = mfu_per_rate / timed * r.tokens_per_s;
}

}  // namespace

SideResult run_iris(const Options& opt, const std::string& name, const std::string& config_path,
                    const std::string& dataset_prefix, const std::string& recompute) {
  SideResult r;
  const std::string binary = opt.iris_train.empty() ? executable_dir() + "/iris-train" : opt.iris_train;
  const std::string stem = model_stem(config_path);
  const std::string dir = fs::absolute(fs::path(opt.out) / "iris").string();
  fs::create_directories(dir);
  IRIS_USER_CHECK(fs::exists(binary), "no iris-train at {} (build it, or pass --iris-train PATH)", binary);
  std::vector<std::string> env;
  if (opt.threads > 0) env.push_back(fmt::format("OMP_NUM_THREADS={}", opt.threads));
  const std::string run_dir = fmt::format("{}/{}-recompute-{}", dir, stem, recompute);
  fs::remove_all(run_dir);
  // iris-train settings, KEY → VALUE in order; --iris-arg replaces a key given here (a repeated option is an error).
  std::vector<std::pair<std::string, std::string>> settings = {
      {"model.config", config_path}, {"data.path", dataset_prefix}, {"train.seq_len", std::to_string(opt.seq)},
      {"train.micro_batch", std::to_string(opt.micro_batch)}, {"train.grad_accum", std::to_string(opt.grad_accum)},
      {"train.steps", std::to_string(opt.warmup_steps + opt.steps)}, {"train.log_every", "1"},
      // Llama 2's peak learning rate after a one-step warm-up: the trainer's default 1e-3 risks a loss spike in
      // the few steps the validity check reads (bench_checks.cpp); the speed does not depend on it.
      {"optim.warmup_steps", "1"}, {"optim.lr", "3e-4"}, {"output.dir", run_dir}, {"train.device", opt.device},
      {"train.recompute", recompute}};
  if (opt.peak_tflops > 0) settings.emplace_back("train.peak_tflops", fmt::format("{}", opt.peak_tflops));
  for (const auto& kv : opt.iris_args) {
    const auto eq = kv.find('=');
    IRIS_USER_CHECK(eq != std::string::npos && eq > 0, "--iris-arg must be KEY=VALUE (e.g. optim.lr=3e-4), got \"{}\"", kv);
    const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    auto it = std::find_if(settings.begin(), settings.end(), [&](const auto& s) { return s.first == key; });
    if (it != settings.end()) it->second = value;
    else settings.emplace_back(key, value);
    r.notes.push_back("iris-train --" + key + " " + value);
  }
  std::vector<std::string> argv = {binary};
  for (const auto& [key, value] : settings) argv.insert(argv.end(), {"--" + key, value});
  const std::string log = run_dir + ".log";
  std::printf("[%s] iris-train, recompute %s: %s\n      log: %s\n", name.c_str(), recompute.c_str(),
              shell_command(argv).c_str(), log.c_str());
  std::fflush(stdout);
  const int status = run_logged(argv, log, env);
  r.attempts.push_back(fmt::format("recompute {}: exit {} (log {})", recompute, status, log));
  r.memory_saving = "recompute " + recompute;
  if (status != 0) {
    const bool oom = log_says_out_of_memory(log);
    r.error = fmt::format("iris-train exited with status {}{} (log {}):\n{}", status,
                          oom ? ", out of memory although the planner said it fits (docs/planning.md's model is off)" : "",
                          log, log_tail(log, 8));
    return r;
  }
  try {  // a malformed metrics file fails this side only; the other side and the other models still run
    read_metrics(opt, run_dir + "/metrics.jsonl", r);
  } catch (const std::exception& e) {
    r.error = fmt::format("reading {}/metrics.jsonl: {}", run_dir, e.what());
    return r;
  }
  r.ok = true;
  return r;
}

}  // namespace iris::bench
