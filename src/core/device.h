// Where the math of a run runs: the CPU backend (fp32 reference) or one CUDA GPU per rank. Every tool
// spells it the same (cpu | cuda) and parses it once, here.
#pragma once
#include <string>

namespace iris {

enum class Device { Cpu, Cuda };
const char* to_string(Device device);  // "cpu" | "cuda"
// A UserError "<key> must be cpu or cuda, got "x"" for anything else.
Device parse_device(const std::string& text, const std::string& key);

}  // namespace iris
