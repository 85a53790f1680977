// iris-loader-bench: how fast the data loaders serve training rows (tokens/s), against how fast one GPU
// consumes them (the planner's predicted tokens/s for a model on one GPU), so that the loader is never
// what limits a step. Writes a synthetic indexed dataset (random documents) and a synthetic SFT dataset
// (random lengths, half the tokens masked) to --dir first; one thread, as one rank's loader runs.
//   iris-loader-bench --dir /tmp/loader-bench --tokens 50000000 --seq 4096 --batch 8
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>

#include "io/indexed_dataset.h"
#include "io/sft_dataset.h"
#include "src/model/llama_config.h"
#include "src/plan/hardware.h"
#include "src/plan/plan.h"
#include "src/train/data_loader.h"
#include "src/train/sft_loader.h"
#include "src/core/tool_main.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace iris;

namespace {

// Rows served per second over at least `seconds`, reading consecutive global batches as the trainer does.
double rows_per_second(const SampleSource& source, int B, double seconds) {
  Batch batch;
  uint64_t first = 0, rows = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < seconds) {
    source.fill(first, B, batch);
    first += B;
    rows += B;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return rows / elapsed;
}

}  // namespace

int run(int argc, char** argv) {
  std::string dir = "loader-bench", model = "configs/models/llama3.2-1b.json", gpu = "h100-80gb",
              hardware = "configs/hardware/gpus.json";
  uint64_t tokens = 50'000'000;
  int T = 4096, B = 8, vocab = 32000;
  double seconds = 3;
  po::options_description desc("iris-loader-bench options");
  desc.add_options()("help", "print this help")("dir", po::value(&dir)->default_value(dir), "scratch directory")(
      "tokens", po::value(&tokens)->default_value(tokens), "tokens in the synthetic datasets")(
      "seq", po::value(&T)->default_value(T), "sequence length")("batch", po::value(&B)->default_value(B),
                                                                 "rows per fill (one micro-batch)")(
      "seconds", po::value(&seconds)->default_value(seconds), "time per measurement")(
      "model", po::value(&model)->default_value(model), "model whose one-GPU speed is the yardstick")(
      "gpu", po::value(&gpu)->default_value(gpu), "GPU of the yardstick")(
      "hardware", po::value(&hardware)->default_value(hardware), "GPU table");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::printf("%s\n", (std::ostringstream() << desc).str().c_str());
    return 0;
  }
  fs::create_directories(dir);
  const std::string text = dir + "/text", sft = dir + "/sft";
  std::mt19937_64 rng(1234);
  {
    io::IndexedDatasetWriter w(text, vocab);
    std::vector<int32_t> doc;
    for (uint64_t n = 0; n < tokens;) {
      doc.resize(200 + rng() % 8000);
      for (auto& t : doc) t = static_cast<int32_t>(rng() % vocab);
      w.add_document(doc);
      n += doc.size();
    }
    w.finalize();
    // SFT: question/answer samples of 100..1100 tokens, the second half of each in the loss.
    io::IndexedDatasetWriter ws(sft, vocab);
    io::ByteSequenceWriter wm(io::loss_mask_prefix(sft));
    std::vector<uint8_t> mask;
    for (uint64_t n = 0; n < tokens / 10;) {
      doc.resize(100 + rng() % 1000);
      mask.assign(doc.size(), 0);
      for (size_t i = 0; i < doc.size(); ++i) {
        doc[i] = static_cast<int32_t>(rng() % vocab);
        mask[i] = i >= doc.size() / 2;
      }
      ws.add_document(doc);
      wm.add_sequence(mask);
      n += doc.size();
    }
    ws.finalize();
    wm.finalize();
  }
  const LlamaConfig config = LlamaConfig::load(model);
  const plan::GpuSpec spec = plan::find_gpu(hardware, gpu);
  plan::Job job;
  job.gpus = 1;
  job.gpus_per_node = 1;
  job.seq = T;
  job.micro_batch = 1;
  job.global_batch = 1;
  const plan::LayoutPlan p = plan::plan_layout(config, spec, job, 1, 1);
  const double gpu_tokens = p.time.tokens_per_s;
  std::printf("yardstick: %s on one %s, planner's prediction %.0f tokens/s at seq %d\n", model.c_str(), gpu.c_str(),
              gpu_tokens, T);

  const PretrainLoader pretrain(text, T, 1234, vocab);
  const SftLoader packed(sft, T, 1234, vocab, true), unpacked(sft, T, 1234, vocab, false);
  struct Case { const char* name; const SampleSource* source; };
  for (const Case& c : {Case{"pretrain (memory-mapped windows)", &pretrain}, Case{"sft, packed", &packed},
                        Case{"sft, one sample per row", &unpacked}}) {
    const double rows = rows_per_second(*c.source, B, seconds);
    const double tok = rows * T;
    std::printf("%-34s %10.0f rows/s %14.0f tokens/s  = %8.1f x the GPU's tokens/s\n", c.name, rows, tok,
                tok / gpu_tokens);
  }
  return 0;
}

int main(int argc, char** argv) {
  return iris::run_tool("iris-loader-bench", [&] { return run(argc, argv); });
}
