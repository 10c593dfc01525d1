// The flags that say where a command computes and where its experts live (--device, --gpu-mem,
// --ram-experts-gb, --cache-policy, ...), shared by run, chat, eval, bench and trace so they read
// alike everywhere.
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "hymoe/engine.hpp"

namespace hymoe::cli {

struct DeviceFlags {
    std::string device = "auto";
    std::string gpu_mem;  // "" = the device's free memory less a margin
    // Expert offloading (docs/offload.md)
    std::string ram_experts_gb;   // "" = every expert stays mapped
    std::string expert_cache_gb;  // "" = the GPU tier's default
    std::string cache_policy = "adaptive";
    std::string attn = "auto";
    std::string misses = "auto";
    bool no_prefetch = false;
};

void add_device_flags(CLI::App* cmd, DeviceFlags& flags);

// Copies the flags into `options`; throws hymoe::Error naming the flag for a bad value.
void apply_device_flags(const DeviceFlags& flags, LoadOptions& options);

// One line on what the RAM expert tier did (hit rate, bytes read, prefetch accuracy), or "" when
// the model has no RAM tier.
std::string expert_cache_summary(const ExpertCacheStats& stats);

// "1.5" -> 1.5 GiB in bytes; "0" is valid. Throws hymoe::Error naming the flag otherwise.
int64_t parse_gib(const std::string& text, const char* flag);

// "24G", "24GiB", "1.5g", "512M", "800MB", "1073741824" -> bytes (K/M/G/T are powers of 1024).
uint64_t parse_memory_size(const std::string& text, const char* flag);

}  // namespace hymoe::cli
