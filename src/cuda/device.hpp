// Host side of CUDA: device discovery. Only compiled when HYMOE_WITH_CUDA is set.
#pragma once

#include <string>
#include <vector>

namespace hymoe::cuda {

struct DeviceInfo {
    int index = 0;
    std::string name;
    int cc_major = 0;
    int cc_minor = 0;
    size_t total_memory = 0;
};

// The CUDA devices present now. Empty (not an error) when there is no driver or no GPU;
// `why_none` then says why, for the one-line notice the engine prints.
std::vector<DeviceInfo> list_devices(std::string* why_none = nullptr);

// Fills `n` floats on device 0 with `value` and reads them back; returns "" on success or a
// message naming the failing CUDA call. Used by `hymoe info --gpu-selftest` and the GPU test.
std::string fill_selftest(size_t n, float value);

}  // namespace hymoe::cuda
