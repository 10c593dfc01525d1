#include "fill.cuh"
#include "launch.hpp"

namespace hymoe::kernels {

cudaError_t launch_fill_f32(float* dst, size_t n, float value, cudaStream_t stream) {
    if (n == 0) return cudaSuccess;
    if (dst == nullptr) return cudaErrorInvalidValue;
    constexpr int kThreads = 256;
    const size_t blocks_needed = (n + kThreads - 1) / kThreads;
    const unsigned blocks = static_cast<unsigned>(blocks_needed < 65535 ? blocks_needed : 65535);
    fill_kernel<float><<<blocks, kThreads, 0, stream>>>(dst, n, value);
    return cudaGetLastError();
}

}  // namespace hymoe::kernels
