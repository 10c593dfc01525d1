// Launchers of the row and elementwise ops, with the plain (non-template) kernels that only they
// use; the templates are in elementwise.cuh. Each launcher checks its arguments, launches on the
// caller's stream and returns the launch's error; none allocates or synchronizes, so all of them
// can be captured in a CUDA graph.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "elementwise.cuh"
#include "launch.hpp"

namespace hymoe::kernels {
namespace {

constexpr int kThreads = 256;
// Grid-stride loops cover any size; more blocks than this only add scheduling work.
constexpr int64_t kMaxBlocks = 4096;
constexpr int64_t kMaxGridY = 65535;

unsigned blocks_for(int64_t n, int64_t threads = kThreads, int64_t cap = kMaxBlocks) {
    return static_cast<unsigned>(std::clamp<int64_t>((n + threads - 1) / threads, 1, cap));
}

// Rows on y (strided by the kernels past 65535), a row's columns on x.
dim3 rows_grid(int64_t rows, int64_t width, int64_t threads = kThreads) {
    return dim3(blocks_for(width, threads, 64), static_cast<unsigned>(std::min(rows, kMaxGridY)), 1);
}

bool aligned(const void* p, size_t a) {
    return reinterpret_cast<uintptr_t>(p) % a == 0;
}

__global__ void add_kernel(float* __restrict__ x, const float* __restrict__ a, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        x[i] += a[i];
}

// Rows over blockIdx.y (strided), columns over blockIdx.x * blockDim.x + threadIdx.x (strided).
__global__ void add_bias_kernel(float* __restrict__ y, const float* __restrict__ bias, int64_t rows, int64_t width) {
    for (int64_t t = blockIdx.y; t < rows; t += gridDim.y)
        for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < width;
             j += int64_t(gridDim.x) * blockDim.x)
            y[t * width + j] += bias[j];
}

// s_t * src + out, rounded as the reference's `out += gate[t] * shared[...]` (no FMA).
__global__ void add_gated_kernel(float* __restrict__ out, const float* __restrict__ src,
                                 const float* __restrict__ gate_logit, int64_t rows, int64_t width) {
    for (int64_t t = blockIdx.y; t < rows; t += gridDim.y) {
        // cpu::sigmoid: 1 / (1 + exp(-x)); exp in double rounded once matches glibc's expf.
        const float s =
            gate_logit != nullptr ? 1.0f / (1.0f + static_cast<float>(exp(-static_cast<double>(gate_logit[t])))) : 1.0f;
        for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < width;
             j += int64_t(gridDim.x) * blockDim.x)
            out[t * width + j] = __fadd_rn(out[t * width + j], __fmul_rn(s, src[t * width + j]));
    }
}

__global__ void copy_rows_kernel(float* __restrict__ dst, int64_t dst_stride, const float* __restrict__ src,
                                 int64_t src_stride, int64_t rows, int64_t width) {
    for (int64_t t = blockIdx.y; t < rows; t += gridDim.y)
        for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < width;
             j += int64_t(gridDim.x) * blockDim.x)
            dst[t * dst_stride + j] = src[t * src_stride + j];
}

__global__ void f32_to_bf16_kernel(const float* __restrict__ src, int64_t n, uint16_t* __restrict__ dst) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        dst[i] = f32_to_bf16_bits(src[i]);
}

__global__ void f32_to_f16_kernel(const float* __restrict__ src, int64_t n, uint16_t* __restrict__ dst) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        dst[i] = __half_as_ushort(__float2half_rn(src[i]));
}

}  // namespace

cudaError_t rms_norm(const float* x, int64_t x_stride, const float* w, int64_t rows, int64_t width, float eps,
                     float* out, int64_t out_stride, cudaStream_t stream) {
    if (rows < 0 || width < 0) return cudaErrorInvalidValue;
    if (rows == 0 || width == 0) return cudaSuccess;
    if (x == nullptr || out == nullptr || x_stride < width || out_stride < width) return cudaErrorInvalidValue;
    // Where a warp per row leaves each thread at most 32 elements it saves the block barrier;
    // wider rows (d_model) take a whole block of 8 warps each.
    if (width <= 1024) {
        const unsigned blocks = blocks_for(rows, 8, int64_t(1) << 20);
        rms_norm_kernel<1><<<blocks, kThreads, 0, stream>>>(x, x_stride, w, rows, width, eps, out, out_stride);
    } else {
        const unsigned blocks = blocks_for(rows, 1, int64_t(1) << 20);
        rms_norm_kernel<8><<<blocks, kThreads, 0, stream>>>(x, x_stride, w, rows, width, eps, out, out_stride);
    }
    return cudaGetLastError();
}

cudaError_t add(float* x, const float* a, int64_t n, cudaStream_t stream) {
    if (n < 0) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    if (x == nullptr || a == nullptr) return cudaErrorInvalidValue;
    add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, a, n);
    return cudaGetLastError();
}

cudaError_t add_bias(float* y, const float* bias, int64_t rows, int64_t width, cudaStream_t stream) {
    if (rows < 0 || width < 0) return cudaErrorInvalidValue;
    if (rows == 0 || width == 0) return cudaSuccess;
    if (y == nullptr || bias == nullptr) return cudaErrorInvalidValue;
    add_bias_kernel<<<rows_grid(rows, width), kThreads, 0, stream>>>(y, bias, rows, width);
    return cudaGetLastError();
}

cudaError_t add_gated(float* out, const float* src, const float* gate_logit, int64_t rows, int64_t width,
                      cudaStream_t stream) {
    if (rows < 0 || width < 0) return cudaErrorInvalidValue;
    if (rows == 0 || width == 0) return cudaSuccess;
    if (out == nullptr || src == nullptr) return cudaErrorInvalidValue;
    add_gated_kernel<<<rows_grid(rows, width), kThreads, 0, stream>>>(out, src, gate_logit, rows, width);
    return cudaGetLastError();
}

cudaError_t glu(const GluParams& p, const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream) {
    if (n < 0) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    if (gate == nullptr || up == nullptr || out == nullptr) return cudaErrorInvalidValue;
    // The one place the activation kind becomes a template parameter.
    switch (p.kind) {
        case Glu::SwiGlu:
            glu_kernel<Glu::SwiGlu><<<blocks_for(n), kThreads, 0, stream>>>(gate, up, n, p.alpha, p.limit, out);
            return cudaGetLastError();
        case Glu::SwiGluOai:
            glu_kernel<Glu::SwiGluOai><<<blocks_for(n), kThreads, 0, stream>>>(gate, up, n, p.alpha, p.limit, out);
            return cudaGetLastError();
    }
    return cudaErrorInvalidValue;
}

cudaError_t copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows, int64_t width,
                      cudaStream_t stream) {
    if (rows < 0 || width < 0) return cudaErrorInvalidValue;
    if (rows == 0 || width == 0) return cudaSuccess;
    if (dst == nullptr || src == nullptr || dst_stride < width || src_stride < width) return cudaErrorInvalidValue;
    copy_rows_kernel<<<rows_grid(rows, width), kThreads, 0, stream>>>(dst, dst_stride, src, src_stride, rows, width);
    return cudaGetLastError();
}

cudaError_t embed_rows(WeightType type, const void* table, int64_t row_bytes, int64_t width, const int32_t* ids,
                       int64_t n, float* out, cudaStream_t stream) {
    if (n < 0 || width < 0) return cudaErrorInvalidValue;
    if (n == 0 || width == 0) return cudaSuccess;
    if (table == nullptr || ids == nullptr || out == nullptr) return cudaErrorInvalidValue;
    const int block = weight_block_elems(type);
    if (block == 0 || width % block != 0 || row_bytes < weight_row_bytes(type, width)) return cudaErrorInvalidValue;
    const auto* bytes = static_cast<const uint8_t*>(table);
    cudaError_t err = cudaErrorInvalidValue;
    // The one place the table's type becomes a template parameter.
    dispatch_weight_type(type, [&](auto tag) {
        constexpr WeightType T = decltype(tag)::value;
        using Tr = WeightTraits<T>;
        if constexpr (Tr::block_elems == 1) {
            // Float rows are read as whole words: rows must start on a word boundary.
            if (!aligned(table, Tr::block_bytes) || row_bytes % Tr::block_bytes != 0) return;
            embed_float_kernel<T><<<rows_grid(n, width), kThreads, 0, stream>>>(bytes, row_bytes, width, ids, n, out);
        } else {
            constexpr int kGroupThreads = 64;  // a group is 32 elements: rows are short in threads
            embed_block_kernel<T><<<rows_grid(n, width / 32, kGroupThreads), kGroupThreads, 0, stream>>>(
                bytes, row_bytes, width, ids, n, out);
        }
        err = cudaGetLastError();
    });
    return err;
}

cudaError_t f32_to_bf16(const float* src, int64_t n, uint16_t* dst, cudaStream_t stream) {
    if (n < 0) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    if (src == nullptr || dst == nullptr) return cudaErrorInvalidValue;
    f32_to_bf16_kernel<<<blocks_for(n), kThreads, 0, stream>>>(src, n, dst);
    return cudaGetLastError();
}

cudaError_t f32_to_f16(const float* src, int64_t n, uint16_t* dst, cudaStream_t stream) {
    if (n < 0) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    if (src == nullptr || dst == nullptr) return cudaErrorInvalidValue;
    f32_to_f16_kernel<<<blocks_for(n), kThreads, 0, stream>>>(src, n, dst);
    return cudaGetLastError();
}

}  // namespace hymoe::kernels
