// The scalar reference decoder of every block format: ggml's dequantize_row_* re-written here.
//
// The floats must equal ggml's (and gguf-py's) bit for bit, so each formula keeps ggml's order of
// operations: the sub-block scale is formed first (`d * sc`, an f32 product) and then applied to
// the integer element (`* q - dmin * m`). gguf-py evaluates the same products in numpy f32.
// sources.cmake compiles this file with -ffp-contract=off so no FMA fuses a multiply and a
// subtraction into one rounding. tests/test_quant.cpp checks every type against gguf-py.
#include <cstring>

#include <fmt/format.h>

#include "hymoe/error.hpp"
#include "quant/blocks.hpp"
#include "quant/fp16.hpp"
#include "quant/quant.hpp"

namespace hymoe::quant {

namespace {

float h2f(half_bits h) {
    return fp16_to_f32(h);
}

// Blocks are read with memcpy: rows in a file are only 2-byte aligned, and memcpy into a local
// struct is what the compiler turns into plain loads anyway.
template <class Block>
Block load(const std::byte* src, int64_t i) {
    Block b;
    std::memcpy(&b, src + i * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
    return b;
}

// ---- 32-element blocks: y [nb * 32] ----

void dq_q4_0(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const auto b = load<BlockQ4_0>(src, i);
        const float d = h2f(b.d);
        for (int j = 0; j < kQK / 2; ++j) {
            y[j] = static_cast<float>((b.qs[j] & 0x0f) - 8) * d;
            y[j + kQK / 2] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
        }
    }
}

void dq_q4_1(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const auto b = load<BlockQ4_1>(src, i);
        const float d = h2f(b.d);
        const float m = h2f(b.m);
        for (int j = 0; j < kQK / 2; ++j) {
            y[j] = static_cast<float>(b.qs[j] & 0x0f) * d + m;
            y[j + kQK / 2] = static_cast<float>(b.qs[j] >> 4) * d + m;
        }
    }
}

// The fifth bit of element j is bit j of the little-endian 32-bit qh.
uint32_t load_qh(const uint8_t (&qh)[4]) {
    return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 | static_cast<uint32_t>(qh[2]) << 16 |
           static_cast<uint32_t>(qh[3]) << 24;
}

void dq_q5_0(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const auto b = load<BlockQ5_0>(src, i);
        const float d = h2f(b.d);
        const uint32_t qh = load_qh(b.qh);
        for (int j = 0; j < kQK / 2; ++j) {
            const int hi0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int hi1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
            y[j] = static_cast<float>(((b.qs[j] & 0x0f) | hi0) - 16) * d;
            y[j + kQK / 2] = static_cast<float>(((b.qs[j] >> 4) | hi1) - 16) * d;
        }
    }
}

void dq_q5_1(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const auto b = load<BlockQ5_1>(src, i);
        const float d = h2f(b.d);
        const float m = h2f(b.m);
        const uint32_t qh = load_qh(b.qh);
        for (int j = 0; j < kQK / 2; ++j) {
            const int hi0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int hi1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
            y[j] = static_cast<float>((b.qs[j] & 0x0f) | hi0) * d + m;
            y[j + kQK / 2] = static_cast<float>((b.qs[j] >> 4) | hi1) * d + m;
        }
    }
}

void dq_q8_0(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const auto b = load<BlockQ8_0>(src, i);
        const float d = h2f(b.d);
        for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
    }
}

// ggml has no dequantize_row_q8_1 (Q8_1 is an activation format); s is redundant and ignored.
void dq_q8_1(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const auto b = load<BlockQ8_1>(src, i);
        const float d = h2f(b.d);
        for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
    }
}

void dq_iq4_nl(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const auto b = load<BlockIq4Nl>(src, i);
        const float d = h2f(b.d);
        for (int j = 0; j < kQK / 2; ++j) {
            y[j] = d * static_cast<float>(kValuesIq4nl[b.qs[j] & 0x0f]);
            y[j + kQK / 2] = d * static_cast<float>(kValuesIq4nl[b.qs[j] >> 4]);
        }
    }
}

void dq_mxfp4(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i, y += kQK) {
        const auto b = load<BlockMxfp4>(src, i);
        const float d = e8m0_to_f32_half(b.e);
        for (int j = 0; j < kQK / 2; ++j) {
            y[j] = static_cast<float>(kValuesMxfp4[b.qs[j] & 0x0f]) * d;
            y[j + kQK / 2] = static_cast<float>(kValuesMxfp4[b.qs[j] >> 4]) * d;
        }
    }
}

// ---- 256-element super-blocks: y [nb * 256] ----

void dq_q2_k(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i) {
        const auto b = load<BlockQ2_K>(src, i);
        const float d = h2f(b.d);
        const float dmin = h2f(b.dmin);
        // Two halves of 128; in each, qs[32] holds four 2-bit planes (shift 0, 2, 4, 6), and each
        // plane is two sub-blocks of 16 with their own scale byte.
        int is = 0;
        for (int half = 0; half < 2; ++half) {
            const uint8_t* q = b.qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; ++part) {
                    const uint8_t sc = b.scales[is++];
                    const float dl = d * static_cast<float>(sc & 0x0f);
                    const float ml = dmin * static_cast<float>(sc >> 4);
                    for (int l = 0; l < 16; ++l) {
                        *y++ = dl * static_cast<float>((q[l + 16 * part] >> shift) & 3) - ml;
                    }
                }
            }
        }
    }
}

// The 16 6-bit scales of Q3_K: low 4 bits in bytes 0..7 (scale j in the low nibble of byte j for
// j < 8, in the high nibble of byte j - 8 otherwise), high 2 bits in bytes 8..11 (scale j at bit
// 2 * (j / 4) of byte 8 + j % 4). Returned with the offset 32 removed.
void unpack_q3_k_scales(const uint8_t (&packed)[12], int (&scales)[16]) {
    for (int j = 0; j < 16; ++j) {
        const int lo = j < 8 ? packed[j] & 0x0f : packed[j - 8] >> 4;
        const int hi = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        scales[j] = (lo | hi << 4) - 32;
    }
}

void dq_q3_k(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i) {
        const auto b = load<BlockQ3_K>(src, i);
        const float d_all = h2f(b.d);
        int scales[16];
        unpack_q3_k_scales(b.scales, scales);
        int is = 0;
        uint8_t m = 1;  // the hmask bit of the current 2-bit plane: one bit per plane over the block
        for (int half = 0; half < 2; ++half) {
            const uint8_t* q = b.qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
                for (int part = 0; part < 2; ++part) {
                    const float dl = d_all * static_cast<float>(scales[is++]);
                    for (int l = 16 * part; l < 16 * part + 16; ++l) {
                        const int v = ((q[l] >> shift) & 3) - ((b.hmask[l] & m) ? 0 : 4);
                        *y++ = dl * static_cast<float>(v);
                    }
                }
            }
        }
    }
}

// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j of Q4_K / Q5_K.
void scale_min_k4(int j, const uint8_t* q, int& sc, int& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

void dq_q4_k(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i) {
        const auto b = load<BlockQ4_K>(src, i);
        const float d = h2f(b.d);
        const float dmin = h2f(b.dmin);
        // Four chunks of 64: qs[32] per chunk, low nibbles are sub-block 2c, high ones 2c + 1.
        for (int c = 0; c < 4; ++c) {
            const uint8_t* q = b.qs + 32 * c;
            for (int part = 0; part < 2; ++part) {
                int sc = 0, m = 0;
                scale_min_k4(2 * c + part, b.scales, sc, m);
                const float d1 = d * static_cast<float>(sc);
                const float m1 = dmin * static_cast<float>(m);
                for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((q[l] >> (4 * part)) & 0x0f) - m1;
            }
        }
    }
}

void dq_q5_k(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i) {
        const auto b = load<BlockQ5_K>(src, i);
        const float d = h2f(b.d);
        const float dmin = h2f(b.dmin);
        // As Q4_K; the fifth bit of sub-block s is bit s of qh[l].
        for (int c = 0; c < 4; ++c) {
            const uint8_t* ql = b.qs + 32 * c;
            for (int part = 0; part < 2; ++part) {
                const int s = 2 * c + part;
                int sc = 0, m = 0;
                scale_min_k4(s, b.scales, sc, m);
                const float d1 = d * static_cast<float>(sc);
                const float m1 = dmin * static_cast<float>(m);
                for (int l = 0; l < 32; ++l) {
                    const int q = ((ql[l] >> (4 * part)) & 0x0f) + (((b.qh[l] >> s) & 1) << 4);
                    *y++ = d1 * static_cast<float>(q) - m1;
                }
            }
        }
    }
}

void dq_q6_k(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i, y += kQK_K) {
        const auto b = load<BlockQ6_K>(src, i);
        const float d = h2f(b.d);
        // Two halves of 128: ql[64], qh[32], scales[8] each. Element l + 32 * k of a half takes
        // its low nibble from ql[l + 32 * (k % 2)] (high nibble for k >= 2) and its top two bits
        // from bits 2k of qh[l].
        for (int half = 0; half < 2; ++half) {
            const uint8_t* ql = b.ql + 64 * half;
            const uint8_t* qh = b.qh + 32 * half;
            const int8_t* sc = b.scales + 8 * half;
            float* yh = y + 128 * half;
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                for (int k = 0; k < 4; ++k) {
                    const int lo = (ql[l + 32 * (k % 2)] >> (4 * (k / 2))) & 0x0f;
                    const int q = (lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
                    yh[l + 32 * k] = d * static_cast<float>(sc[is + 2 * k]) * static_cast<float>(q);
                }
            }
        }
    }
}

// Q8_K is read unaligned too: its f32 d needs 4-byte alignment that rows need not have.
void dq_q8_k(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i, y += kQK_K) {
        const auto b = load<BlockQ8_K>(src, i);
        for (int j = 0; j < kQK_K; ++j) y[j] = b.d * static_cast<float>(b.qs[j]);
    }
}

void dq_iq4_xs(const std::byte* src, int64_t nb, float* y) {
    for (int64_t i = 0; i < nb; ++i) {
        const auto b = load<BlockIq4Xs>(src, i);
        const float d = h2f(b.d);
        for (int ib = 0; ib < kQK_K / 32; ++ib) {
            const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((b.scales_h >> (2 * ib)) & 3) << 4);
            const float dl = d * static_cast<float>(ls - 32);
            const uint8_t* qs = b.qs + 16 * ib;
            for (int j = 0; j < 16; ++j) {
                y[j] = dl * static_cast<float>(kValuesIq4nl[qs[j] & 0x0f]);
                y[j + 16] = dl * static_cast<float>(kValuesIq4nl[qs[j] >> 4]);
            }
            y += 32;
        }
    }
}

// ---- one element per "block" ----

void dq_f32(const std::byte* src, int64_t n, float* y) {
    std::memcpy(y, src, static_cast<size_t>(n) * sizeof(float));
}

void dq_f16(const std::byte* src, int64_t n, float* y) {
    for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        y[i] = fp16_to_f32(h);
    }
}

void dq_bf16(const std::byte* src, int64_t n, float* y) {
    for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        y[i] = bf16_to_f32(h);
    }
}

using DequantFn = void (*)(const std::byte* src, int64_t n_blocks, float* dst);

// The decoder of `type`, or nullptr. Exhaustive on purpose: a new TensorType must be decided here.
DequantFn dequant_fn(TensorType type) {
    using enum TensorType;
    switch (type) {
        case F32: return dq_f32;
        case F16: return dq_f16;
        case BF16: return dq_bf16;
        case Q4_0: return dq_q4_0;
        case Q4_1: return dq_q4_1;
        case Q5_0: return dq_q5_0;
        case Q5_1: return dq_q5_1;
        case Q8_0: return dq_q8_0;
        case Q8_1: return dq_q8_1;
        case Q2_K: return dq_q2_k;
        case Q3_K: return dq_q3_k;
        case Q4_K: return dq_q4_k;
        case Q5_K: return dq_q5_k;
        case Q6_K: return dq_q6_k;
        case Q8_K: return dq_q8_k;
        case IQ4_NL: return dq_iq4_nl;
        case IQ4_XS: return dq_iq4_xs;
        case MXFP4: return dq_mxfp4;
        case Q4_2:
        case Q4_3:
        case IQ2_XXS:
        case IQ2_XS:
        case IQ3_XXS:
        case IQ1_S:
        case IQ3_S:
        case IQ2_S:
        case I8:
        case I16:
        case I32:
        case I64:
        case F64:
        case IQ1_M:
        case Q4_0_4_4:
        case Q4_0_4_8:
        case Q4_0_8_8:
        case TQ1_0:
        case TQ2_0:
        case IQ4_NL_4_4:
        case IQ4_NL_4_8:
        case IQ4_NL_8_8:
        case NVFP4:
        case Q1_0:
        case U8:
        case BOOL:
        case F8_E4M3:
        case F8_E5M2:
        case F8_E8M0:
        case U16:
        case U32:
        case U64: return nullptr;
    }
    return nullptr;
}

}  // namespace

bool can_dequantize(TensorType type) {
    return dequant_fn(type) != nullptr;
}

void dequantize_row(TensorType type, const std::byte* src, int64_t n, float* dst) {
    const DequantFn fn = dequant_fn(type);
    if (fn == nullptr)
        throw Error(fmt::format("dequantize_row: cannot decode type {} (row of {})", type_name(type), n));
    const int64_t block = type_traits(type).block_size;
    if (n < 0 || n % block != 0) {
        throw Error(fmt::format("dequantize_row: a {} row of {} elements is not a whole number of {}-element blocks",
                                type_name(type), n, block));
    }
    fn(src, n / block, dst);
}

}  // namespace hymoe::quant
