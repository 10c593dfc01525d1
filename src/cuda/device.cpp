#include "cuda/device.hpp"

#include <cuda_runtime.h>

#include <vector>

#include <fmt/format.h>

#include "launch.hpp"

namespace hymoe::cuda {

namespace {

std::string describe(const char* call, cudaError_t err) {
    return fmt::format("{} failed: {} ({})", call, cudaGetErrorString(err), cudaGetErrorName(err));
}

// Owns a device allocation for the self-test.
struct DeviceBuffer {
    void* ptr = nullptr;
    ~DeviceBuffer() {
        if (ptr != nullptr) cudaFree(ptr);
    }
};

}  // namespace

std::vector<DeviceInfo> list_devices(std::string* why_none) {
    std::vector<DeviceInfo> out;
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        if (why_none) *why_none = describe("cudaGetDeviceCount", err);
        cudaGetLastError();  // clear the sticky error so later calls are not confused
        return out;
    }
    if (count == 0 && why_none) *why_none = "no CUDA device found";
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
        out.push_back({i, prop.name, prop.major, prop.minor, prop.totalGlobalMem});
    }
    return out;
}

std::string fill_selftest(size_t n, float value) {
    DeviceBuffer buf;
    if (auto e = cudaMalloc(&buf.ptr, n * sizeof(float)); e != cudaSuccess) return describe("cudaMalloc", e);
    if (auto e = kernels::launch_fill_f32(static_cast<float*>(buf.ptr), n, value, nullptr); e != cudaSuccess) {
        return describe("launch_fill_f32", e);
    }
    std::vector<float> host(n, 0.0f);
    if (auto e = cudaMemcpy(host.data(), buf.ptr, n * sizeof(float), cudaMemcpyDeviceToHost); e != cudaSuccess) {
        return describe("cudaMemcpy", e);
    }
    for (size_t i = 0; i < n; ++i) {
        if (host[i] != value) return fmt::format("element {} is {} after fill with {}", i, host[i], value);
    }
    return "";
}

}  // namespace hymoe::cuda
