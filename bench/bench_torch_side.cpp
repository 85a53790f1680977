// iris-bench, PyTorch side: torch_llama_step.py (built into this program and written to --out, so a
// bundle carries it inside iris-bench) under --python, on the same config.json and shapes. One run, with
// gradient checkpointing as asked: an out-of-memory is reported, not retried.
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <sstream>

#include "bench/bench_driver.h"

namespace fs = std::filesystem;

namespace iris::bench {

namespace {

// The script's JSON line: the last line of its output that parses as an object.
std::optional<nlohmann::json> last_json_line(const std::string& log) {
  std::istringstream lines(read_text(log));
  std::optional<nlohmann::json> found;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) found = j;
  }
  return found;
}

}  // namespace

SideResult run_torch(const Options& opt, const std::string& name, const std::string& config_path) {
  SideResult r;
  const std::string dir = fs::absolute(fs::path(opt.out) / "torch").string();
  std::string script = opt.torch_script;
  if (script.empty()) {
    script = dir + "/torch_llama_step.py";
    write_text(script, kTorchScript);
  }
  const std::string stem = model_stem(config_path);
  const std::string& checkpointing = opt.torch_checkpointing;
  std::vector<std::string> argv = {opt.python, script, "--config", config_path, "--seq", std::to_string(opt.seq),
                                   "--micro-batch", std::to_string(opt.micro_batch),
                                   "--grad-accum", std::to_string(opt.grad_accum),
                                   "--steps", std::to_string(opt.steps),
                                   "--warmup-steps", std::to_string(opt.warmup_steps),
                                   "--device", opt.device, "--grad-checkpointing", checkpointing,
                                   "--compile", opt.torch_compile};
  if (opt.threads > 0) argv.insert(argv.end(), {"--threads", std::to_string(opt.threads)});
  const std::string log = fmt::format("{}/{}-checkpointing-{}.log", dir, stem, checkpointing);
  std::printf("[%s] pytorch, gradient checkpointing %s: %s\n      log: %s\n", name.c_str(), checkpointing.c_str(),
              shell_command(argv).c_str(), log.c_str());
  std::fflush(stdout);
  const int status = run_logged(argv, log);
  r.attempts.push_back(fmt::format("gradient checkpointing {}: exit {} (log {})", checkpointing, status, log));
  const auto reported = last_json_line(log);
  const bool oom = (reported && reported->value("oom", false)) || log_says_out_of_memory(log);
  if (status != 0 || !reported || !(*reported)["tokens_per_s"].is_number() || !(*reported)["peak_memory_mib"].is_number()) {
    r.error = fmt::format("the PyTorch step exited with status {}{} (log {}):\n{}", status,
                          oom ? ", out of memory (--torch-checkpointing on saves activations)" : "", log, log_tail(log, 8));
    return r;
  }
  r.ok = true;
  r.raw = *reported;
  r.tokens_per_s = (*reported)["tokens_per_s"].get<double>();
  r.peak_memory_mib = (*reported)["peak_memory_mib"].get<double>();
  r.peak_memory_kind = reported->value("peak_memory_kind", "");
  r.memory_saving = "gradient checkpointing " + checkpointing;
  for (const auto& l : reported->value("losses", nlohmann::json::array()))
    r.losses.push_back(l.is_number() ? l.get<double>() : NAN);
  for (const auto& n : reported->value("notes", nlohmann::json::array())) r.notes.push_back(n.get<std::string>());
  r.notes.push_back(fmt::format("{}, {} attention, {}, {}{}", reported->value("precision", "?"),
                                reported->value("attention", "?"), reported->value("optimizer", "?"),
                                reported->value("compiled", false) ? "torch.compile" : "eager",
                                fmt::format(" (torch {}, transformers {})", reported->value("torch", "?"),
                                            reported->value("transformers", "?"))));
  return r;
}

}  // namespace iris::bench
