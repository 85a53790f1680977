// GPU and interconnect figures for the planner, read from configs/hardware/gpus.json (users add their
// own entries there). Bandwidths are GB/s (1e9 bytes/s) per GPU in one direction; memory is GiB.
#pragma once
#include <filesystem>
#include <map>
#include <string>

namespace iris::plan {

struct GpuSpec {
  std::string name;              // key in the file, e.g. "a100-80gb"
  std::string description;
  double peak_bf16_tflops = 0;   // dense bf16 tensor-core peak
  double memory_gib = 0;
  double nvlink_gb_s = 0;        // intra-node, per GPU, one direction
  double network_gb_s = 0;       // inter-node, per GPU, one direction
  double gemm_efficiency = 0.5;  // achieved fraction of peak on the model's compute (assumption)
  double comm_efficiency = 0.7;  // achieved fraction of link bandwidth in ring collectives (assumption)
};

// Every entry of the file; keys starting with '_' are comments. UserError names the file and key.
std::map<std::string, GpuSpec> load_gpus(const std::filesystem::path& path);
// One entry; an unknown name is a UserError listing the known ones.
GpuSpec find_gpu(const std::filesystem::path& path, const std::string& name);

}  // namespace iris::plan
