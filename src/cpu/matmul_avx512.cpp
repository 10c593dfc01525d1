// AVX-512 (F, BW, VL, VNNI) kernels for cpu/matmul.
//
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx2 -mfma -mf16c
// (sources.cmake) and called only after matmul.cpp has seen the CPU support them. Everything but
// the IsaOps table has internal linkage, and nothing from the standard library that could be
// emitted out of line is used (matmul_kernels.hpp says why). The activation conversions are the
// AVX2 ones: they are elementwise and exact, wider vectors would change nothing.
#include "cpu/matmul_kernels.hpp"

#if defined(__x86_64__)

// GCC 12's AVX-512 headers start many results from a self-initialized _mm512_undefined_*()
// (GCC bug 105593, fixed in 13), which -Wuninitialized reports once the intrinsics are inlined.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstring>

namespace hymoe::cpu::detail {
namespace {

#include "cpu/matmul_tile.inl"

float load_fp16(const void* p) {
    uint16_t h;
    std::memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

// GGML_E8M0_TO_FP32_HALF for every exponent byte (fp16.hpp explains the values; this file must
// not share its inline functions): one load per block instead of a compare and shifts.
struct E8m0Table {
    float v[256];
};
constexpr E8m0Table make_e8m0_table() {
    E8m0Table t{};
    for (uint32_t e = 0; e < 256; ++e) t.v[e] = __builtin_bit_cast(float, e < 2 ? (0x00200000u << e) : ((e - 1) << 23));
    return t;
}
constexpr E8m0Table kE8m0Half = make_e8m0_table();

// ---- F32, F16, BF16 weights: 16 lanes, the row's tail through masked loads ----

struct F32Row {
    static __m512 load(const std::byte* w, int64_t c) { return _mm512_loadu_ps(reinterpret_cast<const float*>(w) + c); }
    static __m512 load(const std::byte* w, int64_t c, __mmask16 m) {
        return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(w) + c);
    }
};

struct F16Row {
    static __m512 load(const std::byte* w, int64_t c) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * c)));
    }
    static __m512 load(const std::byte* w, int64_t c, __mmask16 m) {
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + 2 * c));
    }
};

struct BF16Row {
    static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
    static __m512 load(const std::byte* w, int64_t c) {
        return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * c)));
    }
    static __m512 load(const std::byte* w, int64_t c, __mmask16 m) {
        return widen(_mm256_maskz_loadu_epi16(m, w + 2 * c));
    }
};

template <class Row>
struct FloatKernel {
    static constexpr int kRows = 4;  // rows per dot_rows: 4 x 4 accumulators of 32 zmm
    int64_t cols;

    template <int NT>
    void dot_rows(const std::byte* w, size_t w_stride, const std::byte* const* xs, float (*out)[NT]) const {
        constexpr int R = kRows;
        const float* x[NT];
        for (int i = 0; i < NT; ++i) x[i] = reinterpret_cast<const float*>(xs[i]);
        __m512 acc[R][NT];
        for (int j = 0; j < R; ++j) {
            for (int i = 0; i < NT; ++i) acc[j][i] = _mm512_setzero_ps();
        }
        int64_t c = 0;
        for (; c + 16 <= cols; c += 16) {
            __m512 xv[NT];
            for (int i = 0; i < NT; ++i) xv[i] = _mm512_loadu_ps(x[i] + c);
            for (int j = 0; j < R; ++j) {
                const __m512 wv = Row::load(w + j * w_stride, c);
                for (int i = 0; i < NT; ++i) acc[j][i] = _mm512_fmadd_ps(wv, xv[i], acc[j][i]);
            }
        }
        if (c < cols) {
            const auto m = static_cast<__mmask16>((1u << (cols - c)) - 1);
            __m512 xv[NT];
            for (int i = 0; i < NT; ++i) xv[i] = _mm512_maskz_loadu_ps(m, x[i] + c);
            for (int j = 0; j < R; ++j) {
                const __m512 wv = Row::load(w + j * w_stride, c, m);
                for (int i = 0; i < NT; ++i) acc[j][i] = _mm512_fmadd_ps(wv, xv[i], acc[j][i]);
            }
        }
        for (int j = 0; j < R; ++j) {
            for (int i = 0; i < NT; ++i) out[j][i] = _mm512_reduce_add_ps(acc[j][i]);
        }
    }

    template <int NT>
    void dot(const std::byte* w, const std::byte* const* xs, float* out) const {
        constexpr int U = NT == 1 ? 4 : 2;  // FMA chains per token, as in the AVX2 kernel
        const float* x[NT];
        for (int i = 0; i < NT; ++i) x[i] = reinterpret_cast<const float*>(xs[i]);
        __m512 acc[NT][U];
        for (int i = 0; i < NT; ++i) {
            for (int u = 0; u < U; ++u) acc[i][u] = _mm512_setzero_ps();
        }
        int64_t c = 0;
        for (; c + 16 * U <= cols; c += 16 * U) {
            for (int u = 0; u < U; ++u) {
                const __m512 wv = Row::load(w, c + 16 * u);
                for (int i = 0; i < NT; ++i) {
                    acc[i][u] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x[i] + c + 16 * u), acc[i][u]);
                }
            }
        }
        for (; c + 16 <= cols; c += 16) {
            const __m512 wv = Row::load(w, c);
            for (int i = 0; i < NT; ++i) acc[i][0] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x[i] + c), acc[i][0]);
        }
        if (c < cols) {  // masked-off lanes load as zero and add nothing
            const auto m = static_cast<__mmask16>((1u << (cols - c)) - 1);
            const __m512 wv = Row::load(w, c, m);
            for (int i = 0; i < NT; ++i) acc[i][0] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x[i] + c), acc[i][0]);
        }
        for (int i = 0; i < NT; ++i) {
            __m512 s = acc[i][0];
            for (int u = 1; u < U; ++u) s = _mm512_add_ps(s, acc[i][u]);
            out[i] = _mm512_reduce_add_ps(s);
        }
    }
};

// ---- Q8_0 and MXFP4 weights against Q8_0 activations: two blocks per 512-bit vector ----

__m512i load_pair(const void* lo, const void* hi) {
    const __m256i a = _mm256_loadu_si256(static_cast<const __m256i*>(lo));
    const __m256i b = _mm256_loadu_si256(static_cast<const __m256i*>(hi));
    return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

struct Q8_0Format {
    static constexpr int64_t kBytes = sizeof(BlockQ8_0);
    static __m256i values(const std::byte* blk) {
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    }
    static __m512i values2(const std::byte* b0, const std::byte* b1) { return load_pair(b0 + 2, b1 + 2); }
    static float scale(const std::byte* blk) { return load_fp16(blk); }
};

struct Mxfp4Format {
    static constexpr int64_t kBytes = sizeof(BlockMxfp4);
    static __m128i table() { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(kValuesMxfp4)); }
    static __m128i nibbles(const std::byte* blk) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 1)); }
    // Elements 0..15 from the low nibbles, 16..31 from the high ones (the activation order).
    static __m256i values(const std::byte* blk) {
        const __m128i m4 = _mm_set1_epi8(0x0f);
        const __m128i q4 = nibbles(blk);
        const __m128i lo = _mm_shuffle_epi8(table(), _mm_and_si128(q4, m4));
        const __m128i hi = _mm_shuffle_epi8(table(), _mm_and_si128(_mm_srli_epi16(q4, 4), m4));
        return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
    }
    static __m512i values2(const std::byte* b0, const std::byte* b1) {
        const __m256i table2 = _mm256_broadcastsi128_si256(table());
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        const __m256i q4 = _mm256_inserti128_si256(_mm256_castsi128_si256(nibbles(b0)), nibbles(b1), 1);
        const __m256i lo = _mm256_shuffle_epi8(table2, _mm256_and_si256(q4, m4));                        // [lo0 | lo1]
        const __m256i hi = _mm256_shuffle_epi8(table2, _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4));  // [hi0 | hi1]
        // -> [lo0 hi0 | lo1 hi1]: block 0 in the low 256 bits, block 1 in the high ones.
        const __m512i idx = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
        return _mm512_permutex2var_epi64(_mm512_castsi256_si512(lo), idx, _mm512_castsi256_si512(hi));
    }
    static float scale(const std::byte* blk) { return kE8m0Half.v[static_cast<uint8_t>(blk[0])]; }
};

template <class Format>
struct BlockKernel {
    static constexpr int kRows = 1;
    int64_t nb;  // blocks per row

    template <int NT>
    void dot(const std::byte* w, const std::byte* const* xs, float* out) const {
        const ActBlockQ8* x[NT];
        for (int i = 0; i < NT; ++i) x[i] = reinterpret_cast<const ActBlockQ8*>(xs[i]);
        __m512 acc[NT];
        for (int i = 0; i < NT; ++i) acc[i] = _mm512_setzero_ps();
        const __m512i zero = _mm512_setzero_si512();
        int64_t b = 0;
        for (; b + 2 <= nb; b += 2) {
            const std::byte* b0 = w + b * Format::kBytes;
            const std::byte* b1 = b0 + Format::kBytes;
            const __m512i qw = Format::values2(b0, b1);
            // vpdpbusd multiplies unsigned by signed bytes: |w| times x with w's sign moved onto
            // x. Computed once per block pair, used by every token.
            const __m512i abs_w = _mm512_abs_epi8(qw);
            const __mmask64 neg_w = _mm512_movepi8_mask(qw);
            const float dw0 = Format::scale(b0);
            const float dw1 = Format::scale(b1);
            for (int i = 0; i < NT; ++i) {
                const __m512i qx = load_pair(x[i][b].qs, x[i][b + 1].qs);
                const __m512i signed_x = _mm512_mask_sub_epi8(qx, neg_w, zero, qx);
                const __m512 sums = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, abs_w, signed_x));
                // Lanes 0..7 hold block b's sums, 8..15 block b + 1's.
                const __m512 d =
                    _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(dw0 * x[i][b].d), _mm512_set1_ps(dw1 * x[i][b + 1].d));
                acc[i] = _mm512_fmadd_ps(d, sums, acc[i]);
            }
        }
        if (b < nb) {  // an odd last block, on 256-bit vectors
            const std::byte* blk = w + b * Format::kBytes;
            const __m256i qw = Format::values(blk);
            const __m256i abs_w = _mm256_sign_epi8(qw, qw);
            const float dw = Format::scale(blk);
            for (int i = 0; i < NT; ++i) {
                const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i][b].qs));
                const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), abs_w, _mm256_sign_epi8(qx, qw));
                const __m256 d = _mm256_set1_ps(dw * x[i][b].d);
                const __m256 part = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sums));
                acc[i] = _mm512_add_ps(acc[i], _mm512_zextps256_ps512(part));  // upper lanes zero
            }
        }
        for (int i = 0; i < NT; ++i) out[i] = _mm512_reduce_add_ps(acc[i]);
    }
};

void tile_avx512(const Tile& t) {
    switch (t.type) {
        case TensorType::F32: run_tile(t, FloatKernel<F32Row>{t.cols}); return;
        case TensorType::F16: run_tile(t, FloatKernel<F16Row>{t.cols}); return;
        case TensorType::BF16: run_tile(t, FloatKernel<BF16Row>{t.cols}); return;
        case TensorType::Q8_0: run_tile(t, BlockKernel<Q8_0Format>{t.cols / kQK}); return;
        case TensorType::MXFP4: run_tile(t, BlockKernel<Mxfp4Format>{t.cols / kQK}); return;
        default: return;  // matmul.cpp checked the type
    }
}

}  // namespace

const IsaOps kAvx512Ops = {Isa::Avx512, "avx512", tile_avx512, quantize_q8_0_avx2, round_f16_avx2, round_bf16_avx2};

}  // namespace hymoe::cpu::detail

#endif  // __x86_64__
