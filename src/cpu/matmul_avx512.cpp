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

void tile_avx512(const Tile& t) {
    switch (t.type) {
        case TensorType::F32: run_tile(t, FloatKernel<F32Row>{t.cols}); return;
        case TensorType::F16: run_tile(t, FloatKernel<F16Row>{t.cols}); return;
        case TensorType::BF16: run_tile(t, FloatKernel<BF16Row>{t.cols}); return;
        default: tile_quant_avx512(t); return;  // matmul.cpp checked the type
    }
}

}  // namespace

const IsaOps kAvx512Ops = {Isa::Avx512, "avx512", tile_avx512, quantize_q8_0_avx2, round_f16_avx2, round_bf16_avx2};

}  // namespace hymoe::cpu::detail

#endif  // __x86_64__
