// GGUF's quantized block layouts, byte for byte as ggml-common.h defines them, so a block read
// from any GGUF file can be reinterpreted as one of these structs (every field is naturally
// aligned inside the block; rows start at 2-byte alignment in ggml's files, which is all these
// need except BlockQ8K, an activation format that never comes from a file).
//
// Plain structs and constants only: the SIMD kernel files include this too and must not share
// inline code with the rest of the program (cpu/matmul_kernels.hpp says why).
#pragma once

#include <cstdint>

namespace hymoe::quant {

constexpr int kQK = 32;      // elements per block of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, IQ4_NL, MXFP4
constexpr int kQK_K = 256;           // elements per super-block of the K-quants and IQ4_XS
constexpr int kKScaleSize = 12;      // bytes of packed 6-bit scales and mins in Q4_K / Q5_K
using half_bits = uint16_t;          // an IEEE f16 stored as its bits

// value = d * (q - 8), q the 4-bit element: element j in the low nibble of qs[j], element j + 16
// in the high nibble.
struct BlockQ4_0 {
    half_bits d;
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// value = d * q + m
struct BlockQ4_1 {
    half_bits d;
    half_bits m;
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

// value = d * (q - 16), q = nibble | (bit j of qh) << 4 (qh little-endian 32 bits)
struct BlockQ5_0 {
    half_bits d;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

// value = d * q + m
struct BlockQ5_1 {
    half_bits d;
    half_bits m;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

// value = d * qs[j]
struct BlockQ8_0 {
    half_bits d;
    int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34);

// value = d * qs[j]; s = d * sum(qs) (the activation format of Q4_1 / Q5_1 dot products)
struct BlockQ8_1 {
    half_bits d;
    half_bits s;
    int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_1) == 36);

// 16 sub-blocks of 16: scales[i] = (4-bit min << 4) | 4-bit scale; qs 2-bit elements;
// value = d * scale * q - dmin * min
struct BlockQ2_K {
    uint8_t scales[kQK_K / 16];
    uint8_t qs[kQK_K / 4];
    half_bits d;
    half_bits dmin;
};
static_assert(sizeof(BlockQ2_K) == 84);

// 16 sub-blocks of 16: 6-bit signed scales (offset 32) packed in 12 bytes; 2 low bits in qs,
// the high bit in hmask (a set bit means +0, a clear one -4); value = d * (scale - 32) * q
struct BlockQ3_K {
    uint8_t hmask[kQK_K / 8];
    uint8_t qs[kQK_K / 4];
    uint8_t scales[12];
    half_bits d;
};
static_assert(sizeof(BlockQ3_K) == 110);

// 8 sub-blocks of 32: 6-bit scale and min each, packed in 12 bytes (get_scale_min_k4);
// value = d * scale * q - dmin * min
struct BlockQ4_K {
    half_bits d;
    half_bits dmin;
    uint8_t scales[kKScaleSize];
    uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// As Q4_K with a fifth bit per element in qh.
struct BlockQ5_K {
    half_bits d;
    half_bits dmin;
    uint8_t scales[kKScaleSize];
    uint8_t qh[kQK_K / 8];
    uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

// 16 sub-blocks of 16: int8 scales; 6-bit elements, 4 low bits in ql, 2 high in qh;
// value = d * scale * (q - 32)
struct BlockQ6_K {
    uint8_t ql[kQK_K / 2];
    uint8_t qh[kQK_K / 4];
    int8_t scales[kQK_K / 16];
    half_bits d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// The activation format of K-quant dot products: value = d * qs[j]; bsums[i] = sum of the 16
// elements of group i. d is an f32 here, not an f16.
struct BlockQ8_K {
    float d;
    int8_t qs[kQK_K];
    int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 292);

// value = d * kValuesIq4nl[q], nibbles laid out as Q4_0
struct BlockIq4Nl {
    half_bits d;
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockIq4Nl) == 18);

// 8 sub-blocks of 32 with 6-bit scales (low 4 bits in scales_l, high 2 in scales_h), offset 32;
// value = d * (scale - 32) * kValuesIq4nl[q]
struct BlockIq4Xs {
    half_bits d;
    uint16_t scales_h;
    uint8_t scales_l[kQK_K / 64];
    uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockIq4Xs) == 136);

// OCP MXFP4: value = 2^(e - 127) * E2M1(q), nibbles laid out as Q4_0. ggml stores the E2M1
// values doubled (kValuesMxfp4) and halves the scale instead.
struct BlockMxfp4 {
    uint8_t e;
    uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockMxfp4) == 17);

// ggml's kvalues_iq4nl: the non-linear 4-bit code book of IQ4_NL and IQ4_XS.
inline constexpr int8_t kValuesIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};
// ggml's kvalues_mxfp4: the E2M1 magnitudes doubled (bit 3 = sign).
inline constexpr int8_t kValuesMxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

}  // namespace hymoe::quant
