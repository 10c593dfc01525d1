// The encoders of the 32-element block formats and the plain float types, and quantize_row's
// dispatch (the K-quants live in quantize_k.cpp, IQ4_NL / IQ4_XS in quantize_iq4.cpp).
//
// Each encoder writes the bytes of ggml's quantize_row_*_ref: the same search for the block
// maximum, the same f32 expressions in the same order (sources.cmake turns off FMA contraction
// for these files), and the same float-to-integer conversions. Where ggml converts a float
// straight to a narrow integer ((int8_t)(x + 8.5f)), the C compiler on x86 truncates to an int32
// (cvttss2si) and keeps the low bits; to_int32 does that without C++'s undefined behaviour for
// out-of-range values, so NaN or inf inputs give ggml's bytes too.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "hymoe/error.hpp"
#include "quant/blocks.hpp"
#include "quant/fp16.hpp"
#include "quant/quant.hpp"

namespace hymoe::quant {

namespace {

// cvttss2si: truncation toward zero; NaN and out-of-range values give INT32_MIN.
int32_t to_int32(float f) {
    if (!(f > -2147483904.0f && f < 2147483648.0f)) return INT32_MIN;
    return static_cast<int32_t>(f);
}
int8_t to_i8(float f) {
    return static_cast<int8_t>(to_int32(f));  // modular, as the C cast of the low byte
}
uint8_t to_u8(float f) {
    return static_cast<uint8_t>(to_int32(f));
}

template <class Block>
void store(std::byte* dst, int64_t i, const Block& b) {
    std::memcpy(dst + i * static_cast<int64_t>(sizeof(Block)), &b, sizeof(Block));
}

void store_qh(uint8_t (&qh)[4], uint32_t bits) {
    for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(bits >> (8 * k));
}

// The element of largest magnitude, the first one on ties (ggml's `amax < fabsf(v)`), signed.
float signed_absmax(const float* x, int n) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < n; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    return max;
}

// ---- 32-element blocks: x [nb * 32] ----

// d = -max / 8 so the element of largest magnitude maps to q = 0 (value -8 d = max) exactly;
// q = trunc(x / d + 8.5) rounds to nearest, clamped to 15 on the opposite side.
void q_q4_0(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        const float d = signed_absmax(x, kQK) / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ4_0 b{};
        b.d = f32_to_fp16(d);
        for (int j = 0; j < kQK / 2; ++j) {
            const int q0 = std::min(15, static_cast<int>(to_i8(x[j] * id + 8.5f)));
            const int q1 = std::min(15, static_cast<int>(to_i8(x[j + kQK / 2] * id + 8.5f)));
            b.qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
        }
        store(dst, i, b);
    }
}

// d = (max - min) / 15, m = min; q = trunc((x - min) / d + 0.5).
void q_q4_1(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        float min = FLT_MAX;
        float max = -FLT_MAX;
        for (int j = 0; j < kQK; ++j) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ4_1 b{};
        b.d = f32_to_fp16(d);
        b.m = f32_to_fp16(min);
        for (int j = 0; j < kQK / 2; ++j) {
            const int q0 = std::min(15, static_cast<int>(to_i8((x[j] - min) * id + 0.5f)));
            const int q1 = std::min(15, static_cast<int>(to_i8((x[j + kQK / 2] - min) * id + 0.5f)));
            b.qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
        }
        store(dst, i, b);
    }
}

// As Q4_0 with 5 bits: d = -max / 16, the fifth bits gathered into qh.
void q_q5_0(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        const float d = signed_absmax(x, kQK) / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ5_0 b{};
        b.d = f32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            const int q0 = std::min(31, static_cast<int>(to_i8(x[j] * id + 16.5f)));
            const int q1 = std::min(31, static_cast<int>(to_i8(x[j + kQK / 2] * id + 16.5f)));
            b.qs[j] = static_cast<uint8_t>((q0 & 0x0f) | (q1 & 0x0f) << 4);
            qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
            qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + kQK / 2);
        }
        store_qh(b.qh, qh);
        store(dst, i, b);
    }
}

// As Q4_1 with 5 bits. ggml does not clamp here ((uint8_t)(x + 0.5f)); nor does this.
void q_q5_1(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        float min = FLT_MAX;
        float max = -FLT_MAX;
        for (int j = 0; j < kQK; ++j) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ5_1 b{};
        b.d = f32_to_fp16(d);
        b.m = f32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            const uint8_t q0 = to_u8((x[j] - min) * id + 0.5f);
            const uint8_t q1 = to_u8((x[j + kQK / 2] - min) * id + 0.5f);
            b.qs[j] = static_cast<uint8_t>((q0 & 0x0f) | (q1 & 0x0f) << 4);
            qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
            qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + kQK / 2);
        }
        store_qh(b.qh, qh);
        store(dst, i, b);
    }
}

// ggml's MAX(amax, fabsf(v)): a NaN element makes amax NaN, as in ggml.
float absmax(const float* x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; ++j) {
        const float a = std::fabs(x[j]);
        amax = amax > a ? amax : a;
    }
    return amax;
}

// d = amax / 127; q = roundf(x / d): ties away from zero.
void q_q8_0(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        const float d = absmax(x, kQK) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ8_0 b{};
        b.d = f32_to_fp16(d);
        for (int j = 0; j < kQK; ++j) b.qs[j] = to_i8(std::round(x[j] * id));
        store(dst, i, b);
    }
}

// As Q8_0, plus s = d * sum(q) for the Q4_1 / Q5_1 dot products.
void q_q8_1(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        const float d = absmax(x, kQK) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ8_1 b{};
        b.d = f32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < kQK; ++j) {
            b.qs[j] = to_i8(std::round(x[j] * id));
            sum += b.qs[j];
        }
        b.s = f32_to_fp16(static_cast<float>(sum) * d);
        store(dst, i, b);
    }
}

// The code whose value (kValuesMxfp4[i] * e) is nearest to x; the first one on ties.
int best_index_mxfp4(float x, float e) {
    int best = 0;
    float best_err = std::fabs(static_cast<float>(kValuesMxfp4[0]) * e - x);
    for (int i = 1; i < 16; ++i) {
        const float err = std::fabs(static_cast<float>(kValuesMxfp4[i]) * e - x);
        if (err < best_err) {
            best = i;
            best_err = err;
        }
    }
    return best;
}

// The shared exponent puts amax in [4, 8) times 2^(e - 127) (the E2M1 maximum is 6), so values
// above 6 * 2^(e-127) saturate to +-6. ggml computes it with log2f, which this calls too.
void q_mxfp4(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        float amax = 0.0f;
        for (int j = 0; j < kQK; ++j) {
            if (amax < std::fabs(x[j])) amax = std::fabs(x[j]);
        }
        const uint8_t e = amax > 0.0f ? to_u8(std::floor(std::log2(amax)) - 2 + 127) : 0;
        const float d = e8m0_to_f32_half(e);
        BlockMxfp4 b{};
        b.e = e;
        for (int j = 0; j < kQK / 2; ++j) {
            const int q0 = best_index_mxfp4(x[j], d);
            const int q1 = best_index_mxfp4(x[j + kQK / 2], d);
            b.qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
        }
        store(dst, i, b);
    }
}

// ---- one element per "block" ----

void q_f32(const float* x, int64_t n, std::byte* dst) {
    std::memcpy(dst, x, static_cast<size_t>(n) * sizeof(float));
}

void q_f16(const float* x, int64_t n, std::byte* dst) {
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_fp16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
    }
}

void q_bf16(const float* x, int64_t n, std::byte* dst) {
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
    }
}

using QuantFn = void (*)(const float* src, int64_t n_blocks, std::byte* dst);

// The encoder of `type`, or nullptr. Exhaustive on purpose: a new TensorType must be decided here.
QuantFn quant_fn(TensorType type) {
    using enum TensorType;
    switch (type) {
        case F32: return q_f32;
        case F16: return q_f16;
        case BF16: return q_bf16;
        case Q4_0: return q_q4_0;
        case Q4_1: return q_q4_1;
        case Q5_0: return q_q5_0;
        case Q5_1: return q_q5_1;
        case Q8_0: return q_q8_0;
        case Q8_1: return q_q8_1;
        case Q2_K: return detail::quantize_q2_k;
        case Q3_K: return detail::quantize_q3_k;
        case Q4_K: return detail::quantize_q4_k;
        case Q5_K: return detail::quantize_q5_k;
        case Q6_K: return detail::quantize_q6_k;
        case Q8_K: return detail::quantize_q8_k;
        case IQ4_NL: return detail::quantize_iq4_nl;
        case IQ4_XS: return detail::quantize_iq4_xs;
        case MXFP4: return q_mxfp4;
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

bool can_quantize(TensorType type) {
    return quant_fn(type) != nullptr;
}

void quantize_row(TensorType type, const float* src, int64_t n, std::byte* dst) {
    const QuantFn fn = quant_fn(type);
    if (fn == nullptr) throw Error(fmt::format("quantize_row: cannot encode type {} (row of {})", type_name(type), n));
    const int64_t block = type_traits(type).block_size;
    if (n < 0 || n % block != 0) {
        throw Error(fmt::format("quantize_row: a {} row of {} elements is not a whole number of {}-element blocks",
                                type_name(type), n, block));
    }
    fn(src, n / block, dst);
}

}  // namespace hymoe::quant
