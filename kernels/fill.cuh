// Fills a buffer with one value. The first kernel of the project: it proves that the CUDA
// toolchain path (nvcc, per-arch code, host launcher, linking into libhymoe) works.
#pragma once

#include <cstddef>

namespace hymoe::kernels {

template <typename T>
__global__ void fill_kernel(T* __restrict__ dst, size_t n, T value) {
    // grid-stride loop: any grid size covers any n
    for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
        dst[i] = value;
    }
}

}  // namespace hymoe::kernels
