// Matrix products against stored weights, on the CPU.
//
// The weight is used as stored (F32, F16, BF16, Q8_0, MXFP4 rows), never expanded to f32 in
// memory. The activations are first converted the way ggml's CPU backend converts them for
// that weight type, so results match llama.cpp: F32 as is, F16 -> f16, BF16 -> bf16,
// Q8_0 and MXFP4 -> Q8_0 blocks (d = amax/127 stored as f16).
#pragma once

#include <cstddef>
#include <cstdint>

#include "format/tensor_type.hpp"

namespace hymoe::cpu {

class ThreadPool;

// A weight matrix as stored: `rows` output features, each a row of `cols` input features in
// `type`, rows contiguous (row stride = row_bytes(type, cols)). Like an HF Linear.weight.
struct MatrixRef {
    TensorType type = TensorType::F32;
    const std::byte* data = nullptr;
    int64_t rows = 0;  // output features
    int64_t cols = 0;  // input features (a multiple of the type's block size)
};

// Whether matmul/dequantize_row support this weight type.
bool supports_matmul(TensorType type);

// y[t][r] = sum_c W[r][c] * x[t][c] for t < n.
//   x: [n][w.cols] f32, y: [n][w.rows] f32 (no aliasing with x).
// Work is split over the pool's threads. Throws hymoe::Error for an unsupported type.
void matmul(const MatrixRef& w, const float* x, int64_t n, float* y, ThreadPool& pool);

// The scalar reference with the same semantics (same activation conversion), one thread.
void matmul_reference(const MatrixRef& w, const float* x, int64_t n, float* y);

// The kernels matmul() runs on this CPU: "avx512", "avx2" or "scalar". Chosen once, at the
// first call, from what the CPU supports; HYMOE_CPU_ISA=scalar|avx2|avx512 forces a lower one
// (for tests; a higher one than the CPU has is lowered to what it has). Throws hymoe::Error
// when HYMOE_CPU_ISA holds another value.
const char* matmul_isa();

// Decodes `n` elements of one row stored as `type` (a multiple of its block size) to f32.
void dequantize_row(TensorType type, const std::byte* row, int64_t n, float* out);

}  // namespace hymoe::cpu
