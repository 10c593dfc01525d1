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
    cmd->add_option("--ram-experts-gb", flags.ram_experts_gb,
                    "GiB of RAM for routed experts; the rest are read from the model file when used (0: all of them)");
    cmd->add_option("--expert-cache-gb", flags.expert_cache_gb, "GiB of GPU memory for cached experts (GPU tier)");
    cmd->add_option("--cache-policy", flags.cache_policy, "which cached expert to give up: lru, lfu, score or adaptive (default)")
        ->capture_default_str();
    cmd->add_option("--attn", flags.attn,
                    "where attention and its KV cache live: gpu or cpu (beside a GPU, cpu keeps the KV cache in "
                    "host RAM and computes attention on the CPU; default: where the rest runs)");
    cmd->add_option("--misses", flags.misses, "where an uncached expert runs: cpu or gpu (GPU tier)");
    cmd->add_flag("--no-prefetch", flags.no_prefetch, "do not predict and load the next layer's experts ahead");
}

std::string expert_cache_summary(const ExpertCacheStats& s) {
    if (s.policy.empty()) return "";
    const auto& t = s.total;
    const double mib = 1024.0 * 1024.0;
    const uint64_t needs = t.hits + t.misses;
    std::string line = fmt::format(
        "experts: RAM cache {:.1f} MiB ({} slots, policy {}), hit rate {:.1f}% of {} expert uses, {:.1f} MiB read "
        "from the model file",
        static_cast<double>(s.cache_bytes) / mib, t.slots, s.policy,
        needs == 0 ? 0.0 : 100.0 * static_cast<double>(t.hits) / static_cast<double>(needs), needs,
        static_cast<double>(t.bytes_loaded) / mib);
    if (s.read_seconds > 0)
        line += fmt::format(" ({:.2f} GB/s per read)", static_cast<double>(t.bytes_loaded) / s.read_seconds / 1e9);
    if (t.used > 0)
        line += fmt::format(", prefetch: {} loaded, {} of them used, next-layer prediction {:.1f}% right",
                            t.prefetched, t.prefetch_used,
                            100.0 * static_cast<double>(t.predicted_right) / static_cast<double>(t.used));
    return line;
}

int64_t parse_gib(const std::string& text, const char* flag) {
    const auto bad = [&] {
        return Error(fmt::format("{} '{}': expected a number of GiB such as 0, 1.5 or 24", flag, text));
    };
    if (text.empty()) throw bad();
    for (char ch : text)
        if (!std::isdigit(static_cast<unsigned char>(ch)) && ch != '.') throw bad();
    char* end = nullptr;
    const double gib = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !std::isfinite(gib) || gib < 0 || gib > 1e9) throw bad();
    return static_cast<int64_t>(gib * 1024.0 * 1024.0 * 1024.0);
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
    if (!flags.ram_experts_gb.empty()) options.offload.ram_experts = parse_gib(flags.ram_experts_gb, "--ram-experts-gb");
    if (!flags.expert_cache_gb.empty())
        options.offload.expert_cache = parse_gib(flags.expert_cache_gb, "--expert-cache-gb");
    options.offload.cache_policy = flags.cache_policy;
    options.offload.attn = flags.attn;
    options.offload.misses = flags.misses;
    options.offload.prefetch = !flags.no_prefetch;
}

}  // namespace hymoe::cli
