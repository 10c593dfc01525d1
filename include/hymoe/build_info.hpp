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

namespace hymoe {

// What one GPU can do, measured now: the limits `hymoe bench` reads GPU figures against.
struct GpuProbe {
    double copy_gbs = 0;     // device-to-device copy, bytes read + written per second / 1e9
    double bf16_tflops = 0;  // cuBLAS dense bf16 GEMM 8192^3 with f32 accumulation, TFLOP/s
    std::string error;       // non-empty when it could not be measured (then both are 0)
};
GpuProbe probe_gpu(int index);

}  // namespace hymoe
