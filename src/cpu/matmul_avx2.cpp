// AVX2 + FMA + F16C kernels for cpu/matmul, after ggml's x86 vec_dot and quantize_row_q8_0.
//
// Compiled with -mavx2 -mfma -mf16c (sources.cmake) and called only after matmul.cpp has seen
// the CPU support them. Everything but the IsaOps table has internal linkage, and nothing from
// the standard library that could be emitted out of line is used (matmul_kernels.hpp says why).
#include "cpu/matmul_kernels.hpp"

#if defined(__x86_64__)

#include <immintrin.h>

#include <cstring>

namespace hymoe::cpu::detail {
namespace {

#include "cpu/matmul_tile.inl"

float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

float load_fp16(const void* p) {
    uint16_t h;
    std::memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

// f32 -> f16 (vcvtps2ph, round to nearest even) -> f32. Through vectors because clang's scalar
// _cvtss_sh is a macro with a compound literal, which -Wpedantic rejects in C++.
float round_fp16(float v) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph(_mm_set_ss(v), _MM_FROUND_TO_NEAREST_INT)));
}

float bits_to_float(uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

// ---- F32, F16, BF16 weights: activations are f32 (already rounded to the weight's format) ----

struct F32Row {
    static __m256 load8(const std::byte* w, int64_t c) {
        return _mm256_loadu_ps(reinterpret_cast<const float*>(w) + c);
    }
    static float load1(const std::byte* w, int64_t c) {
        float v;
        std::memcpy(&v, w + 4 * c, sizeof v);
        return v;
    }
};

struct F16Row {
    static __m256 load8(const std::byte* w, int64_t c) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * c)));
    }
    static float load1(const std::byte* w, int64_t c) { return load_fp16(w + 2 * c); }
};

struct BF16Row {
    static __m256 load8(const std::byte* w, int64_t c) {
        const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * c)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
    }
    static float load1(const std::byte* w, int64_t c) {
        uint16_t h;
        std::memcpy(&h, w + 2 * c, sizeof h);
        return bits_to_float(static_cast<uint32_t>(h) << 16);
    }
};

template <class Row>
struct FloatKernel {
    static constexpr int kRows = 2;  // rows per dot_rows: 2 x 4 accumulators, 16 ymm in all
    int64_t cols;

    template <int NT>
    void dot_rows(const std::byte* w, size_t w_stride, const std::byte* const* xs, float (*out)[NT]) const {
        constexpr int R = kRows;
        const float* x[NT];
        for (int i = 0; i < NT; ++i) x[i] = reinterpret_cast<const float*>(xs[i]);
        __m256 acc[R][NT];
        for (int j = 0; j < R; ++j) {
            for (int i = 0; i < NT; ++i) acc[j][i] = _mm256_setzero_ps();
        }
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            __m256 xv[NT];
            for (int i = 0; i < NT; ++i) xv[i] = _mm256_loadu_ps(x[i] + c);
            for (int j = 0; j < R; ++j) {
                const __m256 wv = Row::load8(w + j * w_stride, c);
                for (int i = 0; i < NT; ++i) acc[j][i] = _mm256_fmadd_ps(wv, xv[i], acc[j][i]);
            }
        }
        for (int j = 0; j < R; ++j) {
            for (int i = 0; i < NT; ++i) {
                float sum = hsum(acc[j][i]);
                for (int64_t k = c; k < cols; ++k) sum += Row::load1(w + j * w_stride, k) * x[i][k];
                out[j][i] = sum;
            }
        }
    }

    template <int NT>
    void dot(const std::byte* w, const std::byte* const* xs, float* out) const {
        // Independent accumulators per token: a lone token needs 4 FMA chains in flight to hide
        // the FMA latency; with more tokens each weight vector already feeds NT chains.
        constexpr int U = NT == 1 ? 4 : 2;
        const float* x[NT];
        for (int i = 0; i < NT; ++i) x[i] = reinterpret_cast<const float*>(xs[i]);
        __m256 acc[NT][U];
        for (int i = 0; i < NT; ++i) {
            for (int u = 0; u < U; ++u) acc[i][u] = _mm256_setzero_ps();
        }
        int64_t c = 0;
        for (; c + 8 * U <= cols; c += 8 * U) {
            for (int u = 0; u < U; ++u) {
                const __m256 wv = Row::load8(w, c + 8 * u);
                for (int i = 0; i < NT; ++i) {
                    acc[i][u] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[i] + c + 8 * u), acc[i][u]);
                }
            }
        }
        for (; c + 8 <= cols; c += 8) {
            const __m256 wv = Row::load8(w, c);
            for (int i = 0; i < NT; ++i) acc[i][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[i] + c), acc[i][0]);
        }
        for (int i = 0; i < NT; ++i) {
            __m256 s = acc[i][0];
            for (int u = 1; u < U; ++u) s = _mm256_add_ps(s, acc[i][u]);
            float sum = hsum(s);
            for (int64_t k = c; k < cols; ++k) sum += Row::load1(w, k) * x[i][k];
            out[i] = sum;
        }
    }
};

void tile_avx2(const Tile& t) {
    switch (t.type) {
        case TensorType::F32: run_tile(t, FloatKernel<F32Row>{t.cols}); return;
        case TensorType::F16: run_tile(t, FloatKernel<F16Row>{t.cols}); return;
        case TensorType::BF16: run_tile(t, FloatKernel<BF16Row>{t.cols}); return;
        default: tile_quant_avx2(t); return;  // matmul.cpp checked the type
    }
}

}  // namespace

// ggml's x86 quantize_row_q8_0, AVX2 branch.
// ggml's x86 quantize_row_q8_0 (see quantize_q8_0_scalar), 32 values at a time.
void quantize_q8_0_avx2(const float* x, ActBlockQ8* y, int64_t cols) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b = 0; b < cols / kQK; ++b) {
        const float* v = x + b * kQK;
        __m256 v0 = _mm256_loadu_ps(v);
        __m256 v1 = _mm256_loadu_ps(v + 8);
        __m256 v2 = _mm256_loadu_ps(v + 16);
        __m256 v3 = _mm256_loadu_ps(v + 24);
        __m256 max_abs = _mm256_andnot_ps(sign_bit, v0);
        max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign_bit, v1));
        max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign_bit, v2));
        max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign_bit, v3));
        __m128 max4 = _mm_max_ps(_mm256_extractf128_ps(max_abs, 1), _mm256_castps256_ps128(max_abs));
        max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
        max4 = _mm_max_ss(max4, _mm_movehdup_ps(max4));
        const float amax = _mm_cvtss_f32(max4);

        const float d = amax / 127.0f;
        y[b].d = round_fp16(d);  // ggml stores d as f16
        const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
        constexpr int kNearest = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        v0 = _mm256_round_ps(_mm256_mul_ps(v0, id), kNearest);
        v1 = _mm256_round_ps(_mm256_mul_ps(v1, id), kNearest);
        v2 = _mm256_round_ps(_mm256_mul_ps(v2, id), kNearest);
        v3 = _mm256_round_ps(_mm256_mul_ps(v3, id), kNearest);
        // int32 -> int8 with saturating packs, which interleave 128-bit lanes; perm undoes that.
        __m256i i0 = _mm256_packs_epi32(_mm256_cvtps_epi32(v0), _mm256_cvtps_epi32(v1));
        const __m256i i2 = _mm256_packs_epi32(_mm256_cvtps_epi32(v2), _mm256_cvtps_epi32(v3));
        i0 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i0, i2), perm);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), i0);
    }
}

// vcvtps2ph rounds to nearest even: the same bits as f32_to_fp16.
void round_f16_avx2(const float* x, float* out, int64_t cols) {
    int64_t i = 0;
    for (; i + 8 <= cols; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
    }
    for (; i < cols; ++i) out[i] = round_fp16(x[i]);
}

namespace {

// ggml_compute_fp32_to_bf16 on 8 lanes: add 0x7fff plus the kept lsb, truncate; NaN -> quiet NaN.
__m256i round_bf16_bits(__m256i bits) {
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    const __m256i rounded =
        _mm256_and_si256(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), high);
    const __m256i abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
    const __m256i is_nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
    const __m256i quiet = _mm256_or_si256(_mm256_and_si256(bits, high), _mm256_set1_epi32(0x00400000));
    return _mm256_blendv_epi8(rounded, quiet, is_nan);
}

}  // namespace

void round_bf16_avx2(const float* x, float* out, int64_t cols) {
    int64_t i = 0;
    for (; i + 8 <= cols; i += 8) {
        const __m256i bits = _mm256_castps_si256(_mm256_loadu_ps(x + i));
        _mm256_storeu_ps(out + i, _mm256_castsi256_ps(round_bf16_bits(bits)));
    }
    if (i < cols) {  // the tail through a zero-padded vector, so it rounds by the same code
        float in[8] = {};
        float res[8];
        std::memcpy(in, x + i, static_cast<size_t>(cols - i) * sizeof(float));
        _mm256_storeu_ps(res, _mm256_castsi256_ps(round_bf16_bits(_mm256_castps_si256(_mm256_loadu_ps(in)))));
        std::memcpy(out + i, res, static_cast<size_t>(cols - i) * sizeof(float));
    }
}

const IsaOps kAvx2Ops = {Isa::Avx2, "avx2", tile_avx2, quantize_q8_0_avx2, round_f16_avx2, round_bf16_avx2};

}  // namespace hymoe::cpu::detail

#endif  // __x86_64__
