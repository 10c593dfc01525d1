// The flags that say where a command computes (--device, --gpu-mem), shared by run, chat,
// eval and bench so they read alike everywhere.
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "hymoe/engine.hpp"

namespace hymoe::cli {

struct DeviceFlags {
    std::string device = "auto";
    std::string gpu_mem;  // "" = the device's free memory less a margin
};

void add_device_flags(CLI::App* cmd, DeviceFlags& flags);

// Copies the flags into `options`; throws hymoe::Error naming the flag for a bad value.
void apply_device_flags(const DeviceFlags& flags, LoadOptions& options);

// "24G", "24GiB", "1.5g", "512M", "800MB", "1073741824" -> bytes (K/M/G/T are powers of 1024).
uint64_t parse_memory_size(const std::string& text, const char* flag);

}  // namespace hymoe::cli
