// iris-convert: Hugging Face safetensors ⇄ Iris HDF5 checkpoints, offline resharding, verification
// and inspection. Conversions stream one tensor at a time (peak memory: about the largest tensor);
// resharding holds one target rank's shard at a time. Exit status: 0 ok, 1 verify found problems or
// an internal failure, 2 bad input.
#include <boost/program_options.hpp>
#include <cstdio>
#include <fstream>
#include <map>

#include "io/checkpoint.h"
#include "io/hf_tokenizer_export.h"
#include "io/sft_format.h"
#include "io/safetensors.h"
#include "parallel/offline_comm.h"
#include "src/core/check.h"
#include "src/core/dtype.h"
#include "src/core/log.h"
#include "src/model/llama_config.h"
#include "src/model/param_table.h"
#include "src/train/checkpoint.h"
#include "src/train/zero1_cpu_optimizer.h"
#include "src/train/config.h"
#include "src/core/tool_main.h"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace iris;

namespace {

const char* kUsage =
    "usage: iris-convert COMMAND [options]\n"
    "  hf-to-iris --hf DIR --out DIR [--tp T --pp P] [--dtype bf16|fp32]\n"
    "  iris-to-hf --checkpoint DIR --out DIR [--dtype bf16|fp16|fp32] [--tokenizer FILE]\n"
    "             [--template NAME|PATH [--templates-dir DIR]]   (chat_template for tokenizer_config.json)\n"
    "  reshard    --checkpoint DIR --out DIR --tp T --pp P --dp D\n"
    "  verify     --checkpoint DIR      (exit status 0: complete and intact)\n"
    "  inspect    --checkpoint DIR\n";

struct Options {
  std::string hf, out, checkpoint, dtype, tokenizer, template_name, templates_dir = "configs/templates";
  int tp = 1, pp = 1, dp = 1;
};

Options parse(const std::string& command, int argc, char** argv) {
  Options o;
  po::options_description desc("iris-convert " + command);
  desc.add_options()("hf", po::value(&o.hf))("out", po::value(&o.out))("checkpoint", po::value(&o.checkpoint))(
      "dtype", po::value(&o.dtype))("tp", po::value(&o.tp))("pp", po::value(&o.pp))("dp", po::value(&o.dp))(
      "tokenizer", po::value(&o.tokenizer))("template", po::value(&o.template_name))(
      "templates-dir", po::value(&o.templates_dir));
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UserError(fmt::format("iris-convert {}: {}\n{}", command, e.what(), kUsage));
  }
  IRIS_USER_CHECK(o.tp > 0 && o.pp > 0 && o.dp > 0, "iris-convert {}: --tp, --pp and --dp must be positive", command);
  return o;
}

void require(const std::string& value, const char* flag, const std::string& command) {
  IRIS_USER_CHECK(!value.empty(), "iris-convert {}: {} is required\n{}", command, flag, kUsage);
}

StageLayers layers_of(const LlamaConfig& config, const Topology& topo) {
  return stage_layers(config.num_hidden_layers, topo.pp, topo.pp_rank);
}

// Writes the manifest for rank files already in tmp (sizes, CRC32), renames to out/step_X, points latest.
void finish_checkpoint(const fs::path& out, const fs::path& tmp, io::Manifest manifest, int world) {
  for (int r = 0; r < world; ++r) {
    const fs::path p = tmp / io::rank_file_name(r);
    manifest.files.push_back({io::rank_file_name(r), fs::file_size(p), io::crc32_file(p)});
  }
  const std::string name = io::step_dir_name(manifest.step);
  io::finalize_checkpoint(tmp, out / name, manifest);
  io::write_latest(out, name);
  std::printf("wrote %s (layout tp=%d pp=%d dp=%d, %d files)\n", (out / name).c_str(), manifest.tp, manifest.pp,
              manifest.dp, world);
}

int hf_to_iris(const Options& o) {
  require(o.hf, "--hf", "hf-to-iris");
  require(o.out, "--out", "hf-to-iris");
  // The weights as stored in the checkpoint; training always loads them into fp32.
  const DType storage = o.dtype.empty() ? DType::F32 : parse_float_dtype(o.dtype, "iris-convert hf-to-iris: --dtype");
  const int storage_bytes = storage == DType::BF16 ? 2 : 4;
  const LlamaConfig config = LlamaConfig::load(fs::path(o.hf) / "config.json");
  validate_layout(config, o.tp, o.pp);
  const io::SafetensorsModel hf = io::SafetensorsModel::open(o.hf);
  const int world = o.tp * o.pp;
  const fs::path tmp = fs::path(o.out) / (io::step_dir_name(0) + ".tmp");
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  std::vector<float> global, block;
  for (int rank = 0; rank < world; ++rank) {
    const Topology topo = Topology::make(world, rank, o.tp, o.pp);
    const ParamTable table = ParamTable::build(config, topo, layers_of(config, topo));
    io::CheckpointFileWriter file(tmp / io::rank_file_name(rank));
    file.set_attribute("rank", rank);
    file.set_attribute("tp_rank", topo.tp_rank);
    file.set_attribute("pp_rank", topo.pp_rank);
    file.set_attribute("dp_rank", 0);
    file.set_attribute("step", 0);
    for (const auto& e : table.entries()) {
      IRIS_USER_CHECK(hf.contains(e.name), "{}: tensor {} is missing (the model config expects it)", o.hf, e.name);
      IRIS_USER_CHECK(hf.info(e.name).shape == e.global_shape, "{}: tensor {} has shape [{}] but config.json gives [{}]",
                      o.hf, e.name, fmt::join(hf.info(e.name).shape, ", "), fmt::join(e.global_shape, ", "));
      global.resize(static_cast<size_t>(hf.info(e.name).numel()));
      hf.read_f32(e.name, global.data(), global.size());
      block.resize(e.numel);
      for (size_t i = 0; i < e.numel; ++i) {
        const int64_t g = e.global_index(i);
        block[i] = g < 0 ? 0.0f : global[g];
      }
      io::SliceInfo slice = weight_slice(e);
      slice.storage_bytes = storage_bytes;
      file.write(slice, block.data());
    }
    file.close();
  }
  io::Manifest m;
  m.step = 0;
  m.tp = o.tp;
  m.pp = o.pp;
  m.dp = 1;
  m.model_config = config.raw;
  m.has_optimizer_state = false;
  finish_checkpoint(o.out, tmp, m, world);
  return kExitOk;
}

// The tokenizer the run used, from the run config INI text in the manifest ("" when none).
std::string tokenizer_of(const std::string& ini) {
  std::istringstream in(ini);
  std::string line, section;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '[') section = line;
    const auto eq = line.find('=');
    if (section == "[data]" && eq != std::string::npos && line.substr(0, line.find_first_of(" =")) == "tokenizer") {
      std::string v = line.substr(eq + 1);
      v.erase(0, v.find_first_not_of(' '));
      return v;
    }
  }
  return "";
}

int iris_to_hf(const Options& o) {
  require(o.checkpoint, "--checkpoint", "iris-to-hf");
  require(o.out, "--out", "iris-to-hf");
  const DType dtype = o.dtype.empty() ? DType::BF16 : parse_dtype(o.dtype);
  IRIS_USER_CHECK(dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16,
                  "iris-convert iris-to-hf: --dtype must be bf16, fp16 or fp32, got {}", o.dtype);
  const io::CheckpointDir ckpt = io::CheckpointDir::open(io::resolve_checkpoint(o.checkpoint, o.checkpoint));
  const LlamaConfig config = LlamaConfig::from_json(ckpt.manifest().model_config, ckpt.dir().string());
  // HF order: the parameter table of the whole model on one rank.
  const Topology one = Topology::make(1, 0, 1, 1);
  const ParamTable table = ParamTable::build(config, one, layers_of(config, one));
  // Shards of at most 5 GB, as transformers' save_pretrained does by default.
  const uint64_t max_shard = 5'000'000'000ull;
  std::vector<std::vector<const ParamEntry*>> shards(1);
  uint64_t bytes = 0, total = 0;
  for (const auto& e : table.entries()) {
    const uint64_t b = e.numel * dtype_size(dtype);
    if (!shards.back().empty() && bytes + b > max_shard) {
      shards.emplace_back();
      bytes = 0;
    }
    shards.back().push_back(&e);
    bytes += b;
    total += b;
  }
  fs::create_directories(o.out);
  nlohmann::json weight_map = nlohmann::json::object();
  std::vector<float> global;
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string name = shards.size() == 1 ? "model.safetensors"
                                                : fmt::format("model-{:05}-of-{:05}.safetensors", k + 1, shards.size());
    io::SafetensorsWriter writer(fs::path(o.out) / name, {{"format", "pt"}});
    for (const ParamEntry* e : shards[k]) writer.declare(e->name, dtype, e->global_shape);
    for (const ParamEntry* e : shards[k]) {
      global.assign(e->numel, 0.0f);
      ckpt.read_global("weights", e->name, global.data(), 0, e->global_shape[0]);
      writer.write_f32(e->name, global.data(), global.size());
      weight_map[e->name] = name;
    }
    writer.finish();
  }
  if (shards.size() > 1) {
    std::ofstream index(fs::path(o.out) / "model.safetensors.index.json");
    index << nlohmann::json{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}}.dump(2);
    IRIS_USER_CHECK(index.good(), "cannot write {}/model.safetensors.index.json", o.out);
  }
  nlohmann::json cfg = config.raw;
  cfg["torch_dtype"] = dtype == DType::F32 ? "float32" : dtype == DType::BF16 ? "bfloat16" : "float16";
  if (!cfg.contains("architectures")) cfg["architectures"] = {"LlamaForCausalLM"};
  std::ofstream(fs::path(o.out) / "config.json") << cfg.dump(2);
  // The tokenizer: --tokenizer, else the run's data.tokenizer.
  const std::string tok = o.tokenizer.empty() ? tokenizer_of(ckpt.manifest().run_config_ini) : o.tokenizer;
  IRIS_USER_CHECK(!o.tokenizer.empty() || o.template_name.empty() || !tok.empty(),
                  "iris-convert iris-to-hf: --template needs the tokenizer; the run has no data.tokenizer, so pass "
                  "--tokenizer FILE");
  if (!tok.empty() && (fs::exists(tok) || !o.tokenizer.empty())) {
    const io::SftTemplate tmpl = o.template_name.empty() ? io::SftTemplate{}
                                                         : io::SftTemplate::load(o.template_name, o.templates_dir);
    const std::vector<std::string> files =
        io::write_hf_tokenizer_files(o.out, tok, o.template_name.empty() ? nullptr : &tmpl, config.raw);
    std::string names;
    for (const std::string& f : files) names += (names.empty() ? "" : ", ") + f;
    std::printf("tokenizer %s: wrote %s\n", tok.c_str(), names.c_str());
  }
  std::printf("wrote %s: %zu tensors in %zu file(s), %s, %.3f GB\n", o.out.c_str(), table.entries().size(),
              shards.size(), std::string(dtype_name(dtype)).c_str(), total / 1e9);
  return kExitOk;
}

int reshard(const Options& o) {
  require(o.checkpoint, "--checkpoint", "reshard");
  require(o.out, "--out", "reshard");
  const io::CheckpointDir ckpt = io::CheckpointDir::open(io::resolve_checkpoint(o.checkpoint, o.checkpoint));
  const io::Manifest& src = ckpt.manifest();
  const LlamaConfig config = LlamaConfig::from_json(src.model_config, ckpt.dir().string());
  validate_layout(config, o.tp, o.pp);
  const int world = o.tp * o.pp * o.dp;
  const fs::path tmp = fs::path(o.out) / (io::step_dir_name(src.step) + ".tmp");
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  for (int rank = 0; rank < world; ++rank) {
    const Topology topo = Topology::make(world, rank, o.tp, o.pp);
    const ParamTable table = ParamTable::build(config, topo, layers_of(config, topo));
    // Stands in for the target's DP group when laying out its ZeRO-1 shard: the optimizer only asks it
    // for rank and size there.
    OfflineComm dp(topo.dp_rank, topo.dp, "dp (offline)");
    Zero1CpuOptimizer optimizer(table, AdamWConfig{}, &dp, 1 << 20);
    std::vector<float> params(optimizer.padded_size(), 0.0f);
    // All of this rank's state is at hand: the stream reads it without a DP group.
    HostStateStore store(params.data(), params.size(), {0, params.size()}, &optimizer.adam(), size_t{1} << 22);
    StateStream state(store, nullptr);
    load_checkpoint(CheckpointState{config, topo, table, state, src.has_optimizer_state, nullptr, src.run_config_ini},
                    ckpt.dir());
    io::CheckpointFileWriter file(tmp / io::rank_file_name(rank));
    file.set_attribute("rank", rank);
    file.set_attribute("tp_rank", topo.tp_rank);
    file.set_attribute("pp_rank", topo.pp_rank);
    file.set_attribute("dp_rank", topo.dp_rank);
    file.set_attribute("step", src.step);
    write_rank_slices(file, table, state, src.has_optimizer_state, topo.dp_rank == 0);
    file.close();
  }
  io::Manifest m = src;
  m.files.clear();
  m.tp = o.tp;
  m.pp = o.pp;
  m.dp = o.dp;
  finish_checkpoint(o.out, tmp, m, world);
  return kExitOk;
}

int verify(const Options& o) {
  require(o.checkpoint, "--checkpoint", "verify");
  const io::CheckpointDir ckpt = io::CheckpointDir::open(io::resolve_checkpoint(o.checkpoint, o.checkpoint));
  std::vector<std::string> problems = ckpt.verify();
  // Completeness: every tensor of every group covered by the files.
  std::vector<float> global;
  const std::vector<std::string> groups = ckpt.manifest().has_optimizer_state
                                              ? std::vector<std::string>{"weights", "exp_avg", "exp_avg_sq"}
                                              : std::vector<std::string>{"weights"};
  if (problems.empty()) {
    for (const auto& group : groups)
      for (const auto& name : ckpt.tensor_names(group)) {
        const io::SliceInfo s = ckpt.slices_of(group, name).front().second;
        global.assign(static_cast<size_t>(s.global_numel()), 0.0f);
        try {
          ckpt.read_global(group, name, global.data(), 0, s.global_shape[0]);
        } catch (const Error& e) {
          problems.push_back(e.what());
        }
      }
  }
  for (const auto& p : problems) std::printf("PROBLEM: %s\n", p.c_str());
  std::printf("%s: %s (%zu files)\n", ckpt.dir().c_str(), problems.empty() ? "OK" : "DAMAGED", ckpt.num_files());
  return problems.empty() ? 0 : 1;
}

int inspect(const Options& o) {
  require(o.checkpoint, "--checkpoint", "inspect");
  const io::CheckpointDir ckpt = io::CheckpointDir::open(io::resolve_checkpoint(o.checkpoint, o.checkpoint));
  const io::Manifest& m = ckpt.manifest();
  std::printf("checkpoint %s\n  format version %d, step %lld, consumed samples %lld, tokens %lld, skipped steps %d\n",
              ckpt.dir().c_str(), m.format_version, static_cast<long long>(m.step),
              static_cast<long long>(m.consumed_samples), static_cast<long long>(m.tokens), m.skipped_steps);
  std::printf("  layout tp=%d pp=%d dp=%d, optimizer state: %s\n", m.tp, m.pp, m.dp, m.has_optimizer_state ? "yes" : "no");
  uint64_t total = 0;
  for (const auto& f : m.files) {
    std::printf("  file %s  %llu bytes  crc32 %08x\n", f.name.c_str(), static_cast<unsigned long long>(f.size), f.crc32);
    total += f.size;
  }
  std::printf("  %.3f GB in %zu files\n", total / 1e9, m.files.size());
  for (const char* group : {"weights", "exp_avg", "exp_avg_sq"}) {
    for (const auto& name : ckpt.tensor_names(group)) {
      const auto slices = ckpt.slices_of(group, name);
      const io::SliceInfo& s = slices.front().second;
      std::printf("  %-10s %-48s [%s] %s %s, %zu piece(s), %.2f MB\n", group, name.c_str(),
                  fmt::format("{}", fmt::join(s.global_shape, ", ")).c_str(), s.storage_bytes == 2 ? "BF16" : "F32",
                  s.rule.c_str(), slices.size(), s.global_numel() * s.storage_bytes / 1e6);
    }
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  init_logging(0, 1);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::printf("%s", kUsage);
    return argc < 2 ? kExitUserError : kExitOk;
  }
  return run_tool("iris-convert", [&] {
    const std::string command = argv[1];
    const Options o = parse(command, argc - 1, argv + 1);
    if (command == "hf-to-iris") return hf_to_iris(o);
    if (command == "iris-to-hf") return iris_to_hf(o);
    if (command == "reshard") return reshard(o);
    if (command == "verify") return verify(o);
    if (command == "inspect") return inspect(o);
    throw UserError(fmt::format("unknown command '{}'\n{}", command, kUsage));
  });
}
