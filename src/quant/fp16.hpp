// Scalar conversions between f32 and the 16-bit float formats stored in model files, rounding
// the way ggml's x86 CPU backend does so activations converted here match llama.cpp bit for bit.
//
//   f32 -> f16:  round to nearest even, as F16C's vcvtps2ph (ggml_cpu_fp32_to_fp16) does;
//                overflow gives inf, NaN stays NaN (quiet, top payload bits kept).
//   f32 -> bf16: ggml_compute_fp32_to_bf16: round to nearest even; NaN -> quiet NaN.
//   e8m0:        GGML_E8M0_TO_FP32_HALF, the MXFP4 block scale halved (kvalues_mxfp4 are doubled).
//
// Integer bit manipulation only, so every function is constexpr and independent of the FPU's
// rounding mode and of -ffast-math.
#pragma once

#include <bit>
#include <cstdint>

namespace hymoe::quant {

constexpr float fp16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // inf, NaN
    if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
    if (mant == 0) return std::bit_cast<float>(sign);
    // Subnormal: mant * 2^-24. Shift the leading one up to the implicit-bit position.
    uint32_t e = 113;  // 127 - 14
    while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --e;
    }
    return std::bit_cast<float>(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

constexpr uint16_t f32_to_fp16(float f) {
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    const uint32_t abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u) {  // NaN: F16C sets the quiet bit and keeps the top 9 payload bits
        return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    }
    // 65520 = 0x477ff000 is halfway between the largest half (65504) and 2^16; its tie rounds to
    // the even neighbour, which is inf.
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
    if (abs >= 0x38800000u) {  // a normal half (>= 2^-14): rebias the exponent, round 13 bits off
        const uint32_t rebased = abs - (112u << 23);
        const uint32_t rounded = rebased + 0xfffu + ((rebased >> 13) & 1u);
        return static_cast<uint16_t>(sign | (rounded >> 13));  // a carry into the exponent is right
    }
    // Subnormal half or zero: the value in units of 2^-24, rounded to nearest even. A result of
    // 0x400 is the smallest normal, which the same encoding expresses.
    const uint32_t exp = abs >> 23;
    if (exp < 102) return sign;  // below 2^-25: rounds to zero (f32 subnormals included)
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;  // 14..24
    const uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    const uint32_t r = q + ((rem > half || (rem == half && (q & 1u) != 0)) ? 1u : 0u);
    return static_cast<uint16_t>(sign | r);
}

constexpr float bf16_to_f32(uint16_t h) {
    return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

constexpr uint16_t f32_to_bf16(float f) {
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 64u);  // NaN: force quiet
    return static_cast<uint16_t>((bits + (0x7fffu + ((bits >> 16) & 1u))) >> 16);
}

// f32 values that survive a round trip through f16 / bf16: what ggml's dot product sees of an
// activation after converting it to the weight's vec_dot_type.
constexpr float round_to_fp16(float f) {
    return fp16_to_f32(f32_to_fp16(f));
}
constexpr float round_to_bf16(float f) {
    return bf16_to_f32(f32_to_bf16(f));
}

// GGML_E8M0_TO_FP32_HALF: 2^(e-128), the MXFP4 scale halved because kvalues_mxfp4 are doubled
// E2M1 values. For e < 2 the result is an f32 subnormal, built directly.
constexpr float e8m0_to_f32_half(uint8_t e) {
    const uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<uint32_t>(e - 1) << 23);
    return std::bit_cast<float>(bits);
}

}  // namespace hymoe::quant

// The CPU kernels and their tests name these unqualified.
namespace hymoe::cpu {
using quant::bf16_to_f32;
using quant::e8m0_to_f32_half;
using quant::f32_to_bf16;
using quant::f32_to_fp16;
using quant::fp16_to_f32;
using quant::round_to_bf16;
using quant::round_to_fp16;
}  // namespace hymoe::cpu
