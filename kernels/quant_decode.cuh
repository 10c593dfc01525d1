// Block decoders of every weight type the GPU kernels read: 32 elements at a time, to f32, giving
// bit for bit the floats hymoe::quant::dequantize_row gives (src/quant/dequantize.cpp is the
// reference, src/quant/blocks.hpp the layouts).
//
// Compiled by nvcc (device and host) and by a plain C++ compiler (tests/test_quant_decode.cpp
// checks every type on the CPU), so no CUDA header is included here. Exactness rests on three
// things: f16 / bf16 / e8m0 are decoded by integer bit manipulation as src/quant/fp16.hpp does;
// every product keeps the reference's order (sub-block scale formed first, then applied to the
// integer element); and on the device the products go through __fmul_rn, which nvcc never fuses
// with a following add into an FMA (the reference is compiled with -ffp-contract=off).
//
// Bytes are read one at a time or as pairs composed by hand: rows in a GGUF file are only
// 2-byte aligned (MXFP4's 17-byte blocks not even that), so no wider load is assumed here. The
// GEMV/GEMM kernels that know more about alignment read wider and call the helpers below.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>
#if !defined(__CUDA_ARCH__)
#include <cstring>
#endif

#include "weight_type.hpp"

#if defined(__CUDACC__)
#define HYMOE_HD __host__ __device__ __forceinline__
#define HYMOE_UNROLL _Pragma("unroll")
#else
#define HYMOE_HD inline
#define HYMOE_UNROLL
#endif

namespace hymoe::kernels {

// Elements and bytes per block of a weight type. The float types are "blocks" of one element.
template <WeightType T>
struct WeightTraits;
template <>
struct WeightTraits<WeightType::F32> {
    static constexpr int block_elems = 1, block_bytes = 4;
};
template <>
struct WeightTraits<WeightType::F16> {
    static constexpr int block_elems = 1, block_bytes = 2;
};
template <>
struct WeightTraits<WeightType::BF16> {
    static constexpr int block_elems = 1, block_bytes = 2;
};
template <>
struct WeightTraits<WeightType::Q4_0> {
    static constexpr int block_elems = 32, block_bytes = 18;
};
template <>
struct WeightTraits<WeightType::Q4_1> {
    static constexpr int block_elems = 32, block_bytes = 20;
};
template <>
struct WeightTraits<WeightType::Q5_0> {
    static constexpr int block_elems = 32, block_bytes = 22;
};
template <>
struct WeightTraits<WeightType::Q5_1> {
    static constexpr int block_elems = 32, block_bytes = 24;
};
template <>
struct WeightTraits<WeightType::Q8_0> {
    static constexpr int block_elems = 32, block_bytes = 34;
};
template <>
struct WeightTraits<WeightType::Q2_K> {
    static constexpr int block_elems = 256, block_bytes = 84;
};
template <>
struct WeightTraits<WeightType::Q3_K> {
    static constexpr int block_elems = 256, block_bytes = 110;
};
template <>
struct WeightTraits<WeightType::Q4_K> {
    static constexpr int block_elems = 256, block_bytes = 144;
};
template <>
struct WeightTraits<WeightType::Q5_K> {
    static constexpr int block_elems = 256, block_bytes = 176;
};
template <>
struct WeightTraits<WeightType::Q6_K> {
    static constexpr int block_elems = 256, block_bytes = 210;
};
template <>
struct WeightTraits<WeightType::IQ4_NL> {
    static constexpr int block_elems = 32, block_bytes = 18;
};
template <>
struct WeightTraits<WeightType::IQ4_XS> {
    static constexpr int block_elems = 256, block_bytes = 136;
};
template <>
struct WeightTraits<WeightType::MXFP4> {
    static constexpr int block_elems = 32, block_bytes = 17;
};

// The one place a runtime WeightType becomes a template parameter: calls
// f(std::integral_constant<WeightType, T>{}) and returns true, or returns false for a type the
// kernels do not read (launchers turn that into cudaErrorInvalidValue).
template <typename F>
bool dispatch_weight_type(WeightType t, F&& f) {
    using W = WeightType;
    switch (t) {
        case W::F32: f(std::integral_constant<W, W::F32>{}); return true;
        case W::F16: f(std::integral_constant<W, W::F16>{}); return true;
        case W::BF16: f(std::integral_constant<W, W::BF16>{}); return true;
        case W::Q4_0: f(std::integral_constant<W, W::Q4_0>{}); return true;
        case W::Q4_1: f(std::integral_constant<W, W::Q4_1>{}); return true;
        case W::Q5_0: f(std::integral_constant<W, W::Q5_0>{}); return true;
        case W::Q5_1: f(std::integral_constant<W, W::Q5_1>{}); return true;
        case W::Q8_0: f(std::integral_constant<W, W::Q8_0>{}); return true;
        case W::Q2_K: f(std::integral_constant<W, W::Q2_K>{}); return true;
        case W::Q3_K: f(std::integral_constant<W, W::Q3_K>{}); return true;
        case W::Q4_K: f(std::integral_constant<W, W::Q4_K>{}); return true;
        case W::Q5_K: f(std::integral_constant<W, W::Q5_K>{}); return true;
        case W::Q6_K: f(std::integral_constant<W, W::Q6_K>{}); return true;
        case W::IQ4_NL: f(std::integral_constant<W, W::IQ4_NL>{}); return true;
        case W::IQ4_XS: f(std::integral_constant<W, W::IQ4_XS>{}); return true;
        case W::MXFP4: f(std::integral_constant<W, W::MXFP4>{}); return true;
    }
    return false;
}

// Elements per block of `t` (1 for the float types), or 0 for a type the kernels do not read.
inline int weight_block_elems(WeightType t) {
    int n = 0;
    dispatch_weight_type(t, [&](auto tag) { n = WeightTraits<decltype(tag)::value>::block_elems; });
    return n;
}
// Bytes of a row of `cols` elements of `t` (cols a multiple of the block), or 0 for an unknown type.
inline int64_t weight_row_bytes(WeightType t, int64_t cols) {
    int64_t n = 0;
    dispatch_weight_type(t, [&](auto tag) {
        using Tr = WeightTraits<decltype(tag)::value>;
        n = cols / Tr::block_elems * Tr::block_bytes;
    });
    return n;
}

namespace qd {

HYMOE_HD float bits_to_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
#endif
}

// A product rounded on its own: never fused with a following add into an FMA.
HYMOE_HD float fmul(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

// Little-endian 16 / 32 bits at any byte address.
HYMOE_HD uint32_t load_u16(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8;
}
HYMOE_HD uint32_t load_u32(const uint8_t* p) {
    return load_u16(p) | load_u16(p + 2) << 16;
}

// The 4N bytes at p (any alignment) as N little-endian words. On the device: N or N + 1 aligned
// 32-bit loads shifted into place (a quarter of the byte loads; every word read holds at least
// one byte of the range, so nothing past the range's last aligned word is touched).
template <int N>
HYMOE_HD void load_words(const uint8_t* p, uint32_t (&w)[N]) {
#if defined(__CUDA_ARCH__)
    const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
    const uint32_t* base = reinterpret_cast<const uint32_t*>(addr & ~uintptr_t(3));
    const uint32_t shift = static_cast<uint32_t>(addr & 3) * 8;
    uint32_t lo = base[0];
    HYMOE_UNROLL
    for (int i = 0; i < N; ++i) {
        const uint32_t hi = (shift != 0 || i + 1 < N) ? base[i + 1] : 0u;
        w[i] = __funnelshift_r(lo, hi, shift);
        lo = hi;
    }
#else
    std::memcpy(w, p, sizeof w);  // little-endian hosts only, as GGUF itself
#endif
}

// Byte i of a little-endian word array.
template <int N>
HYMOE_HD uint32_t byte_at(const uint32_t (&w)[N], int i) {
    return (w[i >> 2] >> (8 * (i & 3))) & 0xffu;
}

// float(q - offset) for 0 <= q < 2^23, exactly, without an int -> float conversion (which runs
// at a quarter of the FP32 rate on the GPU): 2^23 + q as bits, minus 2^23 + offset, both exact.
HYMOE_HD float u2f(uint32_t q, float offset = 0.0f) {
    return bits_to_f32(0x4b000000u | q) - (8388608.0f + offset);
}

// IEEE f16 bits -> f32, exactly as quant::fp16_to_f32. A subnormal half is mant * 2^-24, which
// f32 holds exactly, so it is formed by one exact multiply instead of the reference's loop.
HYMOE_HD float f16_to_f32(uint32_t h) {
    const uint32_t sign = (h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    if (exp != 0) return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;  // 2^-24
    return sign != 0 ? -v : v;
}

HYMOE_HD float bf16_to_f32(uint32_t h) {
    return bits_to_f32((h & 0xffffu) << 16);
}

// quant::e8m0_to_f32_half: 2^(e-128), an f32 subnormal for e < 2.
HYMOE_HD float e8m0_to_f32_half(uint32_t e) {
    return bits_to_f32(e < 2 ? (0x00200000u << e) : ((e - 1) << 23));
}

// The code books, as two 64-bit immediates each (entry q is byte q): read from registers, so
// they work in device code without a table in memory. Entries are stored plus 128 (so that
// u2f(entry, 128) is the value) and as signed bytes (the *_value functions).
HYMOE_HD uint32_t iq4nl_biased(uint32_t q) {
    // kValuesIq4nl + 128 = {1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241}
    constexpr uint64_t lo = 0x766a5d4f3f2d1801ull;
    constexpr uint64_t hi = 0xf1d9c5b5a6998d81ull;
    return static_cast<uint32_t>((((q & 8u) ? hi : lo) >> (8 * (q & 7u))) & 0xffu);
}
HYMOE_HD uint32_t mxfp4_biased(uint32_t q) {
    // kValuesMxfp4 + 128 = {128, 129, 130, 131, 132, 134, 136, 140, 128, 127, 126, 125, 124, 122, 120, 116}
    constexpr uint64_t lo = 0x8c88868483828180ull;
    constexpr uint64_t hi = 0x74787a7c7d7e7f80ull;
    return static_cast<uint32_t>((((q & 8u) ? hi : lo) >> (8 * (q & 7u))) & 0xffu);
}
HYMOE_HD int iq4nl_value(uint32_t q) {
    return static_cast<int>(iq4nl_biased(q)) - 128;
}
HYMOE_HD int mxfp4_value(uint32_t q) {
    return static_cast<int>(mxfp4_biased(q)) - 128;
}

// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j (0..7) of Q4_K / Q5_K.
HYMOE_HD void scale_min_k4(int j, const uint8_t* q, int& sc, int& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// Scale j (0..15) of Q3_K's 12 packed bytes, offset 32 removed.
HYMOE_HD int q3_k_scale(int j, const uint8_t* packed) {
    const int lo = j < 8 ? packed[j] & 0x0f : packed[j - 8] >> 4;
    const int hi = (packed[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
    return (lo | hi << 4) - 32;
}

}  // namespace qd

// Decodes the 32 elements [32*g, 32*g + 32) of one row stored as T into out[32].
// row: the row's first byte (any alignment the type's files allow).
template <WeightType T>
HYMOE_HD void decode32(const uint8_t* row, int64_t g, float* out) {
    using W = WeightType;
    using Tr = WeightTraits<T>;
    using qd::byte_at;
    using qd::fmul;
    using qd::u2f;
    if constexpr (T == W::F32) {
        uint32_t w[32];
        qd::load_words(row + g * 128, w);
        HYMOE_UNROLL
        for (int j = 0; j < 32; ++j) out[j] = qd::bits_to_f32(w[j]);
    } else if constexpr (T == W::F16 || T == W::BF16) {
        uint32_t w[16];
        qd::load_words(row + g * 64, w);
        HYMOE_UNROLL
        for (int j = 0; j < 16; ++j) {
            if constexpr (T == W::F16) {
                out[2 * j] = qd::f16_to_f32(w[j] & 0xffffu);
                out[2 * j + 1] = qd::f16_to_f32(w[j] >> 16);
            } else {
                out[2 * j] = qd::bits_to_f32(w[j] << 16);
                out[2 * j + 1] = qd::bits_to_f32(w[j] & 0xffff0000u);
            }
        }
    } else if constexpr (Tr::block_elems == 32) {
        const uint8_t* b = row + g * Tr::block_bytes;
        if constexpr (T == W::Q4_0 || T == W::IQ4_NL || T == W::MXFP4 || T == W::Q4_1) {
            // 16 bytes of nibbles: element j low, j + 16 high.
            constexpr int qs_at = T == W::MXFP4 ? 1 : T == W::Q4_1 ? 4 : 2;
            uint32_t w[4];
            qd::load_words(b + qs_at, w);
            const float d = T == W::MXFP4 ? qd::e8m0_to_f32_half(b[0]) : qd::f16_to_f32(qd::load_u16(b));
            const float m = T == W::Q4_1 ? qd::f16_to_f32(qd::load_u16(b + 2)) : 0.0f;
            HYMOE_UNROLL
            for (int j = 0; j < 16; ++j) {
                const uint32_t q = byte_at(w, j);
                const uint32_t q0 = q & 0x0fu, q1 = q >> 4;
                if constexpr (T == W::Q4_0) {
                    out[j] = fmul(u2f(q0, 8.0f), d);
                    out[j + 16] = fmul(u2f(q1, 8.0f), d);
                } else if constexpr (T == W::Q4_1) {
                    out[j] = fmul(u2f(q0), d) + m;
                    out[j + 16] = fmul(u2f(q1), d) + m;
                } else if constexpr (T == W::IQ4_NL) {
                    out[j] = fmul(d, u2f(qd::iq4nl_biased(q0), 128.0f));
                    out[j + 16] = fmul(d, u2f(qd::iq4nl_biased(q1), 128.0f));
                } else {
                    out[j] = fmul(u2f(qd::mxfp4_biased(q0), 128.0f), d);
                    out[j + 16] = fmul(u2f(qd::mxfp4_biased(q1), 128.0f), d);
                }
            }
        } else if constexpr (T == W::Q5_0 || T == W::Q5_1) {
            constexpr bool has_min = T == W::Q5_1;
            uint32_t qh[1], w[4];
            qd::load_words(b + (has_min ? 4 : 2), qh);
            qd::load_words(b + (has_min ? 8 : 6), w);
            const float d = qd::f16_to_f32(qd::load_u16(b));
            const float m = has_min ? qd::f16_to_f32(qd::load_u16(b + 2)) : 0.0f;
            HYMOE_UNROLL
            for (int j = 0; j < 16; ++j) {
                const uint32_t q = byte_at(w, j);
                const uint32_t q0 = (q & 0x0fu) | ((qh[0] >> j) & 1u) << 4;
                const uint32_t q1 = (q >> 4) | ((qh[0] >> (j + 16)) & 1u) << 4;
                if constexpr (has_min) {
                    out[j] = fmul(u2f(q0), d) + m;
                    out[j + 16] = fmul(u2f(q1), d) + m;
                } else {
                    out[j] = fmul(u2f(q0, 16.0f), d);
                    out[j + 16] = fmul(u2f(q1, 16.0f), d);
                }
            }
        } else {
            static_assert(T == W::Q8_0, "a 32-element type without a decoder");
            uint32_t w[8];
            qd::load_words(b + 2, w);
            const float d = qd::f16_to_f32(qd::load_u16(b));
            // int8 q: q + 128 is the byte with its top bit flipped.
            HYMOE_UNROLL
            for (int j = 0; j < 32; ++j) out[j] = fmul(u2f(byte_at(w, j) ^ 0x80u, 128.0f), d);
        }
    } else {
        // 256-element super-blocks: group g is sub-group k = g % 8 of super-block g / 8.
        static_assert(Tr::block_elems == 256, "unexpected block size");
        const uint8_t* b = row + (g >> 3) * Tr::block_bytes;
        const int k = static_cast<int>(g & 7);
        if constexpr (T == W::Q2_K) {
            // Layout: scales[16], qs[64], d, dmin. Group k is plane k % 4 (shift 2 * (k % 4)) of
            // half k / 4; its two 16-element parts have scale bytes 2k and 2k + 1.
            uint32_t w[8];
            qd::load_words(b + 16 + 32 * (k >> 2), w);
            const float d = qd::f16_to_f32(qd::load_u16(b + 80));
            const float dmin = qd::f16_to_f32(qd::load_u16(b + 82));
            const int shift = 2 * (k & 3);
            HYMOE_UNROLL
            for (int part = 0; part < 2; ++part) {
                const uint32_t sc = b[2 * k + part];
                const float dl = fmul(d, u2f(sc & 0x0fu));
                const float ml = fmul(dmin, u2f(sc >> 4));
                HYMOE_UNROLL
                for (int l = 0; l < 16; ++l) {
                    out[16 * part + l] = fmul(dl, u2f((byte_at(w, l + 16 * part) >> shift) & 3u)) - ml;
                }
            }
        } else if constexpr (T == W::Q3_K) {
            // Layout: hmask[32], qs[64], scales[12], d. Planes as Q2_K; the high bit of plane k is
            // bit k of hmask[l] (set: +0, clear: -4), so q + 4 = low bits | hmask bit << 2.
            uint32_t hm[8], w[8];
            qd::load_words(b, hm);
            qd::load_words(b + 32 + 32 * (k >> 2), w);
            const float d_all = qd::f16_to_f32(qd::load_u16(b + 108));
            const int shift = 2 * (k & 3);
            HYMOE_UNROLL
            for (int part = 0; part < 2; ++part) {
                const float dl = fmul(d_all, static_cast<float>(qd::q3_k_scale(2 * k + part, b + 96)));
                HYMOE_UNROLL
                for (int l = 16 * part; l < 16 * part + 16; ++l) {
                    const uint32_t v4 = ((byte_at(w, l) >> shift) & 3u) | ((byte_at(hm, l) >> k) & 1u) << 2;
                    out[l] = fmul(dl, u2f(v4, 4.0f));
                }
            }
        } else if constexpr (T == W::Q4_K || T == W::Q5_K) {
            // Layout: d, dmin, scales[12], (Q5_K: qh[32]), qs[128]. Group k is sub-block k: the
            // low (k even) or high (k odd) nibbles of qs[32 * (k / 2) ..]; Q5_K's fifth bit is bit
            // k of qh[l].
            constexpr bool five = T == W::Q5_K;
            uint32_t w[8], qh[five ? 8 : 1];
            qd::load_words(b + (five ? 48 : 16) + 32 * (k >> 1), w);
            if constexpr (five) qd::load_words(b + 16, qh);
            const float d = qd::f16_to_f32(qd::load_u16(b));
            const float dmin = qd::f16_to_f32(qd::load_u16(b + 2));
            int sc = 0, mn = 0;
            qd::scale_min_k4(k, b + 4, sc, mn);
            const float d1 = fmul(d, u2f(static_cast<uint32_t>(sc)));
            const float m1 = fmul(dmin, u2f(static_cast<uint32_t>(mn)));
            const int shift = 4 * (k & 1);
            HYMOE_UNROLL
            for (int l = 0; l < 32; ++l) {
                uint32_t q = (byte_at(w, l) >> shift) & 0x0fu;
                if constexpr (five) q |= ((byte_at(qh, l) >> k) & 1u) << 4;
                out[l] = fmul(d1, u2f(q)) - m1;
            }
        } else if constexpr (T == W::Q6_K) {
            // Layout: ql[128], qh[64], scales[16] int8, d. Group k is column kk = k % 4 of half
            // k / 4: element l takes its low nibble from ql[64h + l + 32 (kk % 2)] (high nibble
            // for kk >= 2), its top bits from bits 2kk of qh[32h + l], scale 8h + l / 16 + 2kk.
            const int h = k >> 2, kk = k & 3;
            uint32_t ql[8], qh[8];
            qd::load_words(b + 64 * h + 32 * (kk & 1), ql);
            qd::load_words(b + 128 + 32 * h, qh);
            const float d = qd::f16_to_f32(qd::load_u16(b + 208));
            const uint8_t* sc = b + 192 + 8 * h + 2 * kk;
            const float ds[2] = {fmul(d, static_cast<float>(static_cast<int8_t>(sc[0]))),
                                 fmul(d, static_cast<float>(static_cast<int8_t>(sc[1])))};
            const int lshift = 4 * (kk >> 1);
            HYMOE_UNROLL
            for (int l = 0; l < 32; ++l) {
                const uint32_t q = ((byte_at(ql, l) >> lshift) & 0x0fu) | ((byte_at(qh, l) >> (2 * kk)) & 3u) << 4;
                out[l] = fmul(ds[l >> 4], u2f(q, 32.0f));
            }
        } else {
            static_assert(T == W::IQ4_XS, "a 256-element type without a decoder");
            // Layout: d, scales_h (u16), scales_l[4], qs[128]. Sub-block k's 16 bytes of nibbles
            // are laid out as IQ4_NL's.
            uint32_t w[4];
            qd::load_words(b + 8 + 16 * k, w);
            const float d = qd::f16_to_f32(qd::load_u16(b));
            const uint32_t scales_h = qd::load_u16(b + 2);
            const uint32_t ls = ((b[4 + (k >> 1)] >> (4 * (k & 1))) & 0x0fu) | ((scales_h >> (2 * k)) & 3u) << 4;
            const float dl = fmul(d, u2f(ls, 32.0f));
            HYMOE_UNROLL
            for (int j = 0; j < 16; ++j) {
                const uint32_t q = byte_at(w, j);
                out[j] = fmul(dl, u2f(qd::iq4nl_biased(q & 0x0fu), 128.0f));
                out[j + 16] = fmul(dl, u2f(qd::iq4nl_biased(q >> 4), 128.0f));
            }
        }
    }
}

}  // namespace hymoe::kernels
