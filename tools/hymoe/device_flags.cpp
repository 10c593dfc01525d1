#include "device_flags.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "hymoe/error.hpp"

namespace hymoe::cli {

void add_device_flags(CLI::App* cmd, DeviceFlags& flags) {
    cmd->add_option("--device", flags.device,
                    "Where to compute: auto (a GPU when present and the model fits, else the CPU), cpu, cuda, cuda:N")
        ->capture_default_str();
    cmd->add_option("--gpu-mem", flags.gpu_mem,
                    "GPU memory hymoe may hold, e.g. 24G or 512M (default: the GPU's free memory less 512 MiB)");
}

uint64_t parse_memory_size(const std::string& text, const char* flag) {
    const auto bad = [&] {
        return Error(fmt::format("{} '{}': expected a size such as 24G, 1.5G, 512M or a number of bytes", flag, text));
    };
    if (text.empty()) throw bad();
    size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == 0) throw bad();
    char* end = nullptr;
    const std::string number = text.substr(0, i);
    const double value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size() || !std::isfinite(value)) throw bad();
    std::string unit = text.substr(i);
    for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    double scale = 1;
    if (unit.empty() || unit == "b") {
        scale = 1;
    } else if (unit == "k" || unit == "kb" || unit == "kib") {
        scale = 1024.0;
    } else if (unit == "m" || unit == "mb" || unit == "mib") {
        scale = 1024.0 * 1024;
    } else if (unit == "g" || unit == "gb" || unit == "gib") {
        scale = 1024.0 * 1024 * 1024;
    } else if (unit == "t" || unit == "tb" || unit == "tib") {
        scale = 1024.0 * 1024 * 1024 * 1024;
    } else {
        throw bad();
    }
    const double bytes = value * scale;
    if (bytes < 1 || bytes > 1e18) throw bad();
    return static_cast<uint64_t>(bytes);
}

void apply_device_flags(const DeviceFlags& flags, LoadOptions& options) {
    options.device = flags.device;
    if (!flags.gpu_mem.empty()) options.gpu_mem = parse_memory_size(flags.gpu_mem, "--gpu-mem");
}

}  // namespace hymoe::cli
