// How this copy of hymoe was built, and which GPUs it can see.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace hymoe {

struct BuildInfo {
    std::string version;
    bool cuda = false;  // built with the CUDA backend
    std::string compiler;
};

BuildInfo build_info();

struct GpuDevice {
    int index = 0;
    std::string name;
    int compute_capability = 0;  // 90 for sm_90
    size_t memory_bytes = 0;
};

// GPUs visible now; empty when hymoe was built without CUDA or none is present, with the
// reason in `why_none`.
std::vector<GpuDevice> list_gpus(std::string* why_none = nullptr);

// Runs the fill kernel on GPU 0 and checks the result: "" when it works, else the failure.
std::string gpu_selftest();

}  // namespace hymoe
