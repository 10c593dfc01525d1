// Matrix products against stored weights, on the CPU.
//
// The weight is used as stored (F32, F16, BF16 or any GGUF block type: Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS, MXFP4), never expanded to f32 in memory. The activations are
// first converted the way ggml's CPU backend converts them for that weight type (its
// vec_dot_type), so results match llama.cpp: F32 as is, F16 -> f16, BF16 -> bf16, Q8_0 blocks
// for Q4_0 / Q5_0 / Q8_0 / IQ4_NL / MXFP4, Q8_1 for Q4_1 / Q5_1, Q8_K for the K-quants and IQ4_XS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

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

// One product of a batch: y = x · wᵀ for n tokens, as matmul() computes it.
struct MatmulJob {
    MatrixRef w;
    const float* x = nullptr;  // [n][w.cols]
    int64_t n = 0;
    float* y = nullptr;  // [n][w.rows]
};

// Every job of `jobs`, with one wake-up of the pool for the conversions and one for all the rows
// (instead of two per job): an MoE layer's experts in one call. Each y equals what matmul() gives;
// jobs must not write to each other's x. Consecutive jobs with the same x, n and weight type and
// width (an expert's gate and up) share one conversion of x.
void matmul_batch(std::span<const MatmulJob> jobs, ThreadPool& pool);

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
