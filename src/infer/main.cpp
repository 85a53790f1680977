// iris-generate: completions from a trained model (src/infer/generator.h does the work; this file reads the
// options, the prompts and writes the answers). `mpirun -np T iris-generate --tp T ...` splits the model
// over T ranks (rank 0 reads and writes). Exit status as iris-train: 0 done, 2 bad input, 1 internal failure.
#include <mpi.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "parallel/mpi_tool_main.h"
#include "io/durable_file.h"
#include "src/core/check.h"
#include "src/core/log.h"
#include "src/core/tool_main.h"
#include "src/infer/prompt_input.h"

namespace fs = std::filesystem;
namespace po = boost::program_options;
using namespace iris;

namespace {

struct Options {
  std::string checkpoint, hf, tokenizer, template_name, templates_dir, input, output, prompt, device = "cpu";
  Device device_kind = Device::Cpu;  // parsed from device
  int max_new_tokens = 64, batch = 8, tp = 1, top_k = 0;
  bool greedy = false, ignore_eos = false;
  float temperature = 1.0f, top_p = 1.0f;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool sampled = false;  // any of --temperature --top-k --top-p --seed given
};

// false: --help printed.
bool parse_options(int argc, char** argv, Options& o, bool talk) {
  po::options_description d("iris-generate (--checkpoint CKPT | --hf DIR) (--input FILE --output FILE | --prompt TEXT)");
  d.add_options()("help", "this text")
      ("checkpoint", po::value(&o.checkpoint), "Iris checkpoint: a step_* directory or a root with `latest` (any layout)")
      ("hf", po::value(&o.hf), "Hugging Face directory: config.json + safetensors")
      ("tokenizer", po::value(&o.tokenizer), "sentencepiece model (needed for text prompts, messages and --stop)")
      ("template", po::value(&o.template_name), "chat template for \"messages\" lines (configs/templates/NAME.json or a path)")
      ("templates-dir", po::value(&o.templates_dir), "where template names are looked up (default: configs/templates)")
      ("input", po::value(&o.input), "JSONL: {\"id\", \"prompt\" | \"messages\" | \"prompt_ids\"} per line")
      ("output", po::value(&o.output), "JSONL answers in input order (written to OUTPUT.tmp, renamed when complete)")
      ("prompt", po::value(&o.prompt), "one text prompt; without --output the answer streams to stdout")
      ("max-new-tokens", po::value(&o.max_new_tokens)->default_value(64), "tokens to generate at most")
      ("greedy", po::bool_switch(&o.greedy), "argmax decoding (the default unless a sampling option is given)")
      ("temperature", po::value(&o.temperature), "sample: logits / T (HF's order: temperature, top-k, top-p)")
      ("top-k", po::value(&o.top_k), "sample among the k most likely tokens (0: all)")
      ("top-p", po::value(&o.top_p), "sample from the nucleus of probability p (1: all)")
      ("seed", po::value(&o.seed), "sampling seed; a token depends on (seed, prompt id, position) only")
      ("batch", po::value(&o.batch)->default_value(8), "sequences decoded together")
      ("stop", po::value(&o.stop)->multitoken(), "stop strings (finish_reason \"stop\"; cut from the completion)")
      ("ignore-eos", po::bool_switch(&o.ignore_eos), "never stop at EOS / end of turn (benchmarks: always max-new-tokens)")
      ("device", po::value(&o.device)->default_value("cpu"), "cpu (fp32) | cuda (bf16 weights, fp32 logits; tp 1; not yet run on a GPU)")
      ("tp", po::value(&o.tp)->default_value(1), "tensor-parallel ranks (mpirun -np TP)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, d), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UserError(fmt::format("{} (iris-generate --help lists the options)", e.what()));
  }
  if (vm.count("help")) {
    if (talk) std::cout << d << "\n";
    return false;
  }
  o.sampled = vm.count("temperature") || vm.count("top-k") || vm.count("top-p") || vm.count("seed");
  IRIS_USER_CHECK(!(o.greedy && o.sampled), "--greedy and --temperature/--top-k/--top-p/--seed exclude each other");
  IRIS_USER_CHECK(o.checkpoint.empty() != o.hf.empty(), "give exactly one of --checkpoint and --hf");
  IRIS_USER_CHECK(o.input.empty() != o.prompt.empty(), "give exactly one of --input and --prompt");
  IRIS_USER_CHECK(o.prompt.empty() || !o.tokenizer.empty(), "--prompt needs --tokenizer");
  IRIS_USER_CHECK(!o.input.empty() ? !o.output.empty() : true, "--input needs --output");
  o.device_kind = parse_device(o.device, "--device");
  IRIS_USER_CHECK(o.temperature > 0.0f, "--temperature must be > 0, got {}", o.temperature);
  IRIS_USER_CHECK(o.top_k >= 0, "--top-k must be >= 0, got {}", o.top_k);
  IRIS_USER_CHECK(o.top_p > 0.0f && o.top_p <= 1.0f, "--top-p must be in (0, 1], got {}", o.top_p);
  IRIS_USER_CHECK(o.stop.empty() || !o.tokenizer.empty(), "--stop needs --tokenizer (stop strings match decoded text)");
  return true;
}


infer::PromptEncoder make_encoder(const Options& o) {
  infer::PromptEncoder enc;
  if (!o.tokenizer.empty()) enc.tokenizer = io::Tokenizer::load(o.tokenizer);
  if (!o.template_name.empty()) {
    IRIS_USER_CHECK(enc.tokenizer.has_value(), "--template needs --tokenizer");
    const std::string dir = o.templates_dir.empty() ? io::default_templates_dir() : o.templates_dir;
    enc.formatter.emplace(io::SftTemplate::load(o.template_name, dir), io::SftVocabulary::of(*enc.tokenizer), false);
  }
  return enc;
}

nlohmann::json answer_line(const infer::Prompt& p, const infer::Completion& c, bool has_text) {
  nlohmann::json j;
  j["id"] = p.id;
  j["completion"] = has_text ? nlohmann::json(c.text) : nlohmann::json(nullptr);
  j["completion_ids"] = c.ids;
  j["prompt_tokens"] = p.ids.size();
  j["completion_tokens"] = c.ids.size();
  j["finish_reason"] = infer::to_string(c.finish);
  return j;
}

void write_answers(const std::string& path, const std::vector<infer::Prompt>& prompts,
                   const std::vector<infer::Completion>& out, bool has_text) {
  std::string text;
  for (size_t i = 0; i < prompts.size(); ++i) text += answer_line(prompts[i], out[i], has_text).dump() + "\n";
  io::write_text_durably(path, text);  // only a complete file carries the final name
}

int run(const Options& o, int rank, int world) {
  IRIS_USER_CHECK(o.tp == world, "--tp {} needs exactly {} MPI ranks (mpirun -np {}), got {}", o.tp, o.tp, o.tp, world);
  const Topology topo = Topology::make(world, rank, o.tp, 1);
  Communicators comms;
  if (world > 1) comms = make_mpi_communicators(topo, false, 1800.0);
  const infer::PromptEncoder enc = make_encoder(o);
  std::vector<infer::Prompt> prompts;
  if (!o.input.empty()) {
    IRIS_USER_CHECK(fs::is_directory(fs::absolute(o.output).parent_path()), "--output {}: its directory does not exist",
                    o.output);
    prompts = infer::read_prompts(o.input, enc);
  } else {
    prompts.push_back(enc.parse(nlohmann::json{{"id", "prompt"}, {"prompt", o.prompt}}.dump(), "--prompt"));
  }
  infer::Generator gen = o.hf.empty() ? infer::Generator::from_checkpoint(o.checkpoint, topo, comms.tp.get())
                                      : infer::Generator::from_hf(o.hf, topo, comms.tp.get());
  gen.set_device(o.device_kind);
  gen.validate(prompts);
  infer::GenerationSettings s;
  s.max_new_tokens = o.max_new_tokens;
  s.batch = o.batch;
  s.sampling = {!o.sampled, o.temperature, o.top_k, o.top_p, o.seed};
  if (!o.ignore_eos) {  // the tokenizer's and template's, and the model's own eos_token_id as HF generate() stops at
    s.stop_ids = enc.stop_ids();
    if (gen.config().eos_token_id >= 0) s.stop_ids.push_back(gen.config().eos_token_id);
  }
  s.stop_strings = o.stop;
  if (enc.tokenizer) {
    const io::Tokenizer tok = *enc.tokenizer;
    s.decode = [tok](std::span<const int32_t> ids) { return tok.decode(ids); };
  }
  const bool stream = o.output.empty() && rank == 0;
  size_t printed = 0, hold = 0;
  for (const auto& stop : o.stop) hold = std::max(hold, stop.size());  // text that may still become a stop string
  infer::TokenCallback on_token = nullptr;
  if (stream) {
    on_token = [&](size_t, const infer::Completion& c) {
      const bool done = c.finish != infer::FinishReason::Length || c.ids.size() >= static_cast<size_t>(o.max_new_tokens);
      const size_t ready = done ? c.text.size() : (c.text.size() > hold ? c.text.size() - hold : 0);
      if (ready > printed) {
        std::fwrite(c.text.data() + printed, 1, ready - printed, stdout);
        std::fflush(stdout);
        printed = ready;
      }
    };
  }
  const auto out = gen.generate(prompts, s, on_token);
  if (rank != 0) return 0;
  const infer::GenerationStats& st = gen.last_stats();
  spdlog::info("prefill: {} prompt tokens in {:.3f} s ({:.1f} tokens/s); decode: {} tokens in {:.3f} s ({:.1f} tokens/s), "
               "batch {}", st.prompt_tokens, st.prefill_s, st.prompt_tokens / std::max(st.prefill_s, 1e-9),
               st.decode_tokens, st.decode_s, st.decode_tokens / std::max(st.decode_s, 1e-9), s.batch);
  if (stream) {
    if (printed < out[0].text.size()) std::fwrite(out[0].text.data() + printed, 1, out[0].text.size() - printed, stdout);
    std::printf("\n");
    spdlog::info("{} prompt tokens, {} new tokens, finish_reason {}", prompts[0].ids.size(), out[0].ids.size(),
                 infer::to_string(out[0].finish));
  } else {
    write_answers(o.output, prompts, out, enc.tokenizer.has_value());
    spdlog::info("{} answers written to {}", out.size(), o.output);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_mpi_tool("iris-generate", argc, argv, [&](int rank, int world) {
    Options o;
    return parse_options(argc, argv, o, rank == 0) ? run(o, rank, world) : kExitOk;
  });
}
