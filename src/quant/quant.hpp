// Converting rows between f32 and the stored tensor types: the scalar reference of every block
// format (dequantize), and the quantizers the tools write with (quantize).
//
// Both follow ggml exactly: dequantize_row gives the floats ggml's dequantize_row_* (and the gguf
// Python package) give, bit for bit; quantize_row writes the bytes ggml's quantize_row_*_ref
// writes (the functions llama-quantize uses when no importance matrix is given).
#pragma once

#include <cstddef>
#include <cstdint>

#include "format/tensor_type.hpp"

namespace hymoe::quant {

// Whether dequantize_row / quantize_row handle `type`.
bool can_dequantize(TensorType type);
bool can_quantize(TensorType type);

// Decodes `n` elements (a multiple of the type's block size) of one row stored as `type`.
//   src: row_bytes(type, n) bytes; dst: [n] f32.
// Throws hymoe::Error for a type it cannot decode or a length that is not a whole number of blocks.
void dequantize_row(TensorType type, const std::byte* src, int64_t n, float* dst);

// Encodes `n` f32 values (a multiple of the type's block size) as one row of `type`.
//   src: [n] f32; dst: row_bytes(type, n) bytes.
// Throws hymoe::Error for a type it cannot encode or a length that is not a whole number of blocks.
void quantize_row(TensorType type, const float* src, int64_t n, std::byte* dst);

namespace detail {
// The encoders of quantize_k.cpp and quantize_iq4.cpp (ggml's quantize_row_*_ref), which
// quantize_row calls after checking its arguments.
//   src: [n_blocks * 256] f32; dst: n_blocks blocks of the type.
void quantize_q2_k(const float* src, int64_t n_blocks, std::byte* dst);
void quantize_q3_k(const float* src, int64_t n_blocks, std::byte* dst);
void quantize_q4_k(const float* src, int64_t n_blocks, std::byte* dst);
void quantize_q5_k(const float* src, int64_t n_blocks, std::byte* dst);
void quantize_q6_k(const float* src, int64_t n_blocks, std::byte* dst);
void quantize_q8_k(const float* src, int64_t n_blocks, std::byte* dst);
// quantize_iq4.cpp: src [n_blocks * 32] (IQ4_NL) or [n_blocks * 256] (IQ4_XS) f32.
void quantize_iq4_nl(const float* src, int64_t n_blocks, std::byte* dst);
void quantize_iq4_xs(const float* src, int64_t n_blocks, std::byte* dst);
}  // namespace detail

}  // namespace hymoe::quant
