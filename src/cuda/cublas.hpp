// cuBLAS for the dense products the hand-written kernels leave to it: F16/BF16/F32 weights times
// more than a few tokens (prefill), where cuBLAS's tensor-core GEMMs are the fastest there is.
//
// All products here are the forward pass's linear: y[n][rows] = x[n][cols] · W[rows][cols]ᵀ,
// both operands row-major, f32 output, f32 accumulation (CUBLAS_COMPUTE_32F; for f32 inputs that
// means no TF32, so results stay close to the CPU's).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "cuda/device_pool.hpp"

namespace hymoe::cuda {

// Throws hymoe::Error("<what> failed: <cuBLAS status name and text>") unless status is success.
void check_cublas(cublasStatus_t status, const char* what);

// A cuBLAS handle bound to one stream, with a workspace of its own from the pool. The explicit
// workspace is what lets its GEMMs be captured in a CUDA graph: without one, cuBLAS may allocate
// during the call, which a capture forbids.
class CublasHandle {
public:
    // On the pool's device (made current for the call); the workspace is charged as scratch.
    CublasHandle(DevicePool& pool, cudaStream_t stream);
    ~CublasHandle();
    CublasHandle(CublasHandle&& o) noexcept
        : handle_(std::exchange(o.handle_, nullptr)), workspace_(std::move(o.workspace_)) {}
    CublasHandle& operator=(CublasHandle&& o) noexcept;
    CublasHandle(const CublasHandle&) = delete;
    CublasHandle& operator=(const CublasHandle&) = delete;

    cublasHandle_t get() const { return handle_; }

    // What NVIDIA's docs recommend per architecture: 32 MiB on Hopper and newer, 4 MiB before.
    static uint64_t workspace_bytes(int cc_major);

private:
    cublasHandle_t handle_ = nullptr;
    DeviceAllocation workspace_;
};

// y [n][rows] f32 = x [n][cols] · W [rows][cols]ᵀ. W, x: bf16 (raw bits), contiguous rows.
void gemm_bf16(const CublasHandle& h, const void* w, const void* x, int64_t rows, int64_t cols, int64_t n, float* y);
// Same with f16 W and x.
void gemm_f16(const CublasHandle& h, const void* w, const void* x, int64_t rows, int64_t cols, int64_t n, float* y);
// Same with f32 W and x (full f32 products: no TF32).
void gemm_f32(const CublasHandle& h, const float* w, const float* x, int64_t rows, int64_t cols, int64_t n, float* y);

}  // namespace hymoe::cuda
