#include "cuda/cublas.hpp"

#include <climits>

#include <fmt/format.h>

#include "cuda/memory.hpp"
#include "hymoe/error.hpp"

namespace hymoe::cuda {

void check_cublas(cublasStatus_t status, const char* what) {
    if (status == CUBLAS_STATUS_SUCCESS) return;
    throw Error(fmt::format("{} failed: {} ({})", what, cublasGetStatusString(status), cublasGetStatusName(status)));
}

uint64_t CublasHandle::workspace_bytes(int cc_major) {
    return cc_major >= 9 ? (32ull << 20) : (4ull << 20);
}

CublasHandle::CublasHandle(DevicePool& pool, cudaStream_t stream) {
    ScopedDevice on(pool.device());
    int cc_major = 0;
    check(cudaDeviceGetAttribute(&cc_major, cudaDevAttrComputeCapabilityMajor, pool.device()),
          "cudaDeviceGetAttribute(compute capability)");
    workspace_ = pool.allocate(workspace_bytes(cc_major), MemoryUse::Scratch, "the cuBLAS workspace");
    check_cublas(cublasCreate(&handle_), "cublasCreate");
    try {
        check_cublas(cublasSetStream(handle_, stream), "cublasSetStream");
        check_cublas(cublasSetWorkspace(handle_, workspace_.get(), workspace_.bytes()), "cublasSetWorkspace");
        // The default math mode: tensor cores for f16/bf16 inputs, and no TF32 for f32 (that would
        // take CUBLAS_TF32_TENSOR_OP_MATH), so f32 products keep f32 inputs.
        check_cublas(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    } catch (...) {
        cublasDestroy(handle_);
        throw;
    }
}

CublasHandle::~CublasHandle() {
    if (handle_ != nullptr) cublasDestroy(handle_);
}

CublasHandle& CublasHandle::operator=(CublasHandle&& o) noexcept {
    if (this != &o) {
        if (handle_ != nullptr) cublasDestroy(handle_);
        handle_ = std::exchange(o.handle_, nullptr);
        workspace_ = std::move(o.workspace_);
    }
    return *this;
}

namespace {

int as_int(int64_t v, const char* what) {
    if (v < 0 || v > INT_MAX) throw Error(fmt::format("cuBLAS GEMM: {} = {} does not fit an int", what, v));
    return static_cast<int>(v);
}

// cuBLAS is column-major. A row-major matrix M[a][b] with leading dimension b is, read
// column-major, the b×a matrix Mᵀ with the same leading dimension. So:
//   W [rows][cols] row-major  = column-major Wc (cols × rows, ld = cols), Wc = Wᵀ
//   x [n][cols]    row-major  = column-major Xc (cols × n,    ld = cols), Xc = xᵀ
//   y [n][rows]    row-major  = column-major Yc (rows × n,    ld = rows), Yc = yᵀ
// and y = x · Wᵀ  <=>  yᵀ = W · xᵀ  <=>  Yc = Wcᵀ · Xc:
//   C = op(A) · op(B) with A = Wc (transa = T), B = Xc (transb = N), m = rows, n = n, k = cols,
//   lda = cols, ldb = cols, ldc = rows.
void gemm(const CublasHandle& h, const void* w, const void* x, cudaDataType in_type, int64_t rows, int64_t cols,
          int64_t n, float* y, const char* what) {
    if (rows == 0 || n == 0) return;
    const int m_ = as_int(rows, "rows"), n_ = as_int(n, "n"), k_ = as_int(cols, "cols");
    const float alpha = 1.0f, beta = 0.0f;  // host scalars (pointer mode host): captured by value
    check_cublas(cublasGemmEx(h.get(), CUBLAS_OP_T, CUBLAS_OP_N, m_, n_, k_, &alpha, w, in_type, k_, x, in_type, k_,
                              &beta, y, CUDA_R_32F, m_, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 what);
}

}  // namespace

void gemm_bf16(const CublasHandle& h, const void* w, const void* x, int64_t rows, int64_t cols, int64_t n, float* y) {
    gemm(h, w, x, CUDA_R_16BF, rows, cols, n, y, "cublasGemmEx (bf16)");
}

void gemm_f16(const CublasHandle& h, const void* w, const void* x, int64_t rows, int64_t cols, int64_t n, float* y) {
    gemm(h, w, x, CUDA_R_16F, rows, cols, n, y, "cublasGemmEx (f16)");
}

void gemm_f32(const CublasHandle& h, const float* w, const float* x, int64_t rows, int64_t cols, int64_t n, float* y) {
    gemm(h, w, x, CUDA_R_32F, rows, cols, n, y, "cublasGemmEx (f32)");
}

}  // namespace hymoe::cuda
