#include "src/core/device.h"

#include <fmt/format.h>

#include "src/core/error.h"

namespace iris {

const char* to_string(Device device) { return device == Device::Cuda ? "cuda" : "cpu"; }

Device parse_device(const std::string& text, const std::string& key) {
  if (text == "cpu") return Device::Cpu;
  if (text == "cuda") return Device::Cuda;
  throw UserError(fmt::format("{} must be cpu or cuda, got \"{}\"", key, text));
}

}  // namespace iris
