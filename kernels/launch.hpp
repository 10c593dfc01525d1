// Host-callable launchers of the kernels in this folder. Each takes a stream, checks its
// preconditions, and returns the launch's error; callers in src/cuda/ turn errors into
// hymoe::Error. This header includes only the CUDA runtime.
#pragma once

#include <cstddef>

#include <cuda_runtime.h>

namespace hymoe::kernels {

// dst[0..n) = value. dst: device memory of n floats.
cudaError_t launch_fill_f32(float* dst, size_t n, float value, cudaStream_t stream);

}  // namespace hymoe::kernels
