// AVX2 panel kernels for the block-quantized weight types (matmul_kernels.hpp describes panels).
// Weights are stored as signed bytes; the products take ggml's sign trick (|w| unsigned times
// x with w's sign, vpmaddubsw then vpmaddwd). Q4_K, Q6_K and Q8_0 unpack with vector code, the
// other types through the plain decoders of matmul_panel.inl.
//
// Compiled with -mavx2 -mfma -mf16c (sources.cmake); internal linkage only, and nothing from the
// standard library that could be emitted out of line (matmul_kernels.hpp says why).
#include "cpu/matmul_kernels.hpp"

#if defined(__x86_64__)

#include <immintrin.h>

#include <cstring>

namespace hymoe::cpu::detail {
namespace {

constexpr int kPanelRows = 2;  // 2 rows x 4 tokens of accumulators fit the 16 ymm registers
constexpr int kPanelBias = 0;

#include "cpu/matmul_panel.inl"

float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

template <int R, int T, bool kMin>
void panel_kernel(const WeightPanel (*w)[kPanelChunks], const ActPanel* const* x, int kn, float (*out)[kPanelTokens]) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r) {
        for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    }
    for (int k = 0; k < kn; ++k) {
        for (int h = 0; h < 2; ++h) {  // lanes 0..7, then 8..15
            for (int r = 0; r < R; ++r) {
                const WeightPanel& p = w[r][k];
                __m256i dot[T];
                for (int t = 0; t < T; ++t) dot[t] = _mm256_setzero_si256();
                for (int j = 0; j < 4; ++j) {
                    const __m256i qw = _mm256_load_si256(reinterpret_cast<const __m256i*>(p.q + 64 * j + 32 * h));
                    const __m256i abs_w = _mm256_sign_epi8(qw, qw);
                    for (int t = 0; t < T; ++t) {
                        const __m256i qx =
                            _mm256_load_si256(reinterpret_cast<const __m256i*>(x[t][k].qs + 64 * j + 32 * h));
                        const __m256i pairs = _mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(qx, qw));
                        dot[t] = _mm256_add_epi32(dot[t], _mm256_madd_epi16(pairs, ones));
                    }
                }
                const __m256 a = _mm256_load_ps(p.a + 8 * h);
                for (int t = 0; t < T; ++t) {
                    const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(dot[t]), _mm256_load_ps(x[t][k].dx + 8 * h));
                    acc[r][t] = _mm256_fmadd_ps(f, a, acc[r][t]);
                    if constexpr (kMin) {
                        acc[r][t] = _mm256_fmadd_ps(_mm256_load_ps(p.m + 8 * h), _mm256_load_ps(x[t][k].bsf + 8 * h),
                                                    acc[r][t]);
                    }
                }
            }
        }
    }
    for (int r = 0; r < R; ++r) {
        for (int t = 0; t < T; ++t) out[r][t] = hsum(acc[r][t]);
    }
}

// ---- vector unpackers: the AVX-512 ones on 256-bit halves (lanes 0..7, then 8..15) ----

void transpose4(__m256i v[4]) {
    const __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]);
    const __m256i t1 = _mm256_unpackhi_epi32(v[0], v[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]);
    const __m256i t3 = _mm256_unpackhi_epi32(v[2], v[3]);
    v[0] = _mm256_unpacklo_epi64(t0, t2);
    v[1] = _mm256_unpackhi_epi64(t0, t2);
    v[2] = _mm256_unpacklo_epi64(t1, t3);
    v[3] = _mm256_unpackhi_epi64(t1, t3);
}

// v[i] holds half h (128-bit lanes 2h, 2h + 1) of the AVX-512 layout's v[i].
void store_q_half(__m256i v[4], int h, WeightPanel& p) {
    transpose4(v);
    for (int j = 0; j < 4; ++j) _mm256_store_si256(reinterpret_cast<__m256i*>(p.q + 64 * j + 32 * h), v[j]);
}

const int8_t kLaneGroups[16] = {0, 1, 4, 5, 0, 1, 4, 5, 2, 3, 6, 7, 2, 3, 6, 7};

void unpack_q4_K(const std::byte* row, int64_t k, int64_t, WeightPanel& p) {
    const auto& b = reinterpret_cast<const quant::BlockQ4_K*>(row)[k];
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int h = 0; h < 2; ++h) {
        // Half h of the AVX-512 vectors: qs bytes 32 h .. 32 h + 31 and 64 + 32 h ...
        const __m256i z0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * h));
        const __m256i z1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 64 + 32 * h));
        __m256i v[4] = {_mm256_and_si256(z0, m4), _mm256_and_si256(_mm256_srli_epi16(z0, 4), m4),
                        _mm256_and_si256(z1, m4), _mm256_and_si256(_mm256_srli_epi16(z1, 4), m4)};
        store_q_half(v, h, p);
    }
    uint32_t u[4];
    std::memcpy(u, b.scales, 12);
    constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
    const uint32_t uaux = u[1] & kmask1;
    u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
    u[2] = uaux;
    u[0] &= kmask1;
    uint8_t sm[16];
    std::memcpy(sm, u, 16);
    const float d = f16_value(b.d), dmin = f16_value(b.dmin);
    for (int l = 0; l < 16; ++l) {
        p.a[l] = d * static_cast<float>(sm[kLaneGroups[l]]);
        p.m[l] = -dmin * static_cast<float>(sm[8 + kLaneGroups[l]]);
    }
}

void unpack_q6_K(const std::byte* row, int64_t k, int64_t, WeightPanel& p) {
    const auto& b = reinterpret_cast<const quant::BlockQ6_K*>(row)[k];
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m2 = _mm256_set1_epi8(0x03);
    const __m256i m32 = _mm256_set1_epi8(32);
    // lo[hh][s], hi[hh][s]: 32-byte halves s of the AVX-512 lo / hi vectors of half hh.
    __m256i lo[2][2], hi[2][2];
    for (int hh = 0; hh < 2; ++hh) {
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * hh));
        for (int s = 0; s < 2; ++s) {
            const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * hh + 32 * s));
            const __m256i hz = s == 0 ? qh : _mm256_srli_epi16(qh, 2);
            lo[hh][s] = _mm256_sub_epi8(
                _mm256_or_si256(_mm256_and_si256(ql, m4), _mm256_slli_epi16(_mm256_and_si256(hz, m2), 4)), m32);
            hi[hh][s] =
                _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql, 4), m4),
                                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hz, 4), m2), 4)),
                                m32);
        }
    }
    // AVX-512: v[2 hh] = [lo.0 lo.1 | hi.0 hi.1], v[2 hh + 1] = [lo.2 lo.3 | hi.2 hi.3] (128-bit
    // lanes); half 0 of those is lo[hh][0] resp. lo[hh][1], half 1 hi[hh][0] resp. hi[hh][1].
    for (int h = 0; h < 2; ++h) {
        const auto& src = h == 0 ? lo : hi;
        __m256i v[4] = {src[0][0], src[0][1], src[1][0], src[1][1]};
        store_q_half(v, h, p);
    }
    const float d = f16_value(b.d);
    for (int l = 0; l < 16; ++l) {
        p.a[l] = d * static_cast<float>(b.scales[kPanelSubBlock[l]]);
        p.m[l] = 0.0f;
    }
}

void unpack_q8_0(const std::byte* row, int64_t k, int64_t nb, WeightPanel& p) {
    if (8 * k + 8 > nb) return unpack_natural<decode_q8_0>(row, k, nb, p);
    const auto* b = reinterpret_cast<const quant::BlockQ8_0*>(row) + 8 * k;
    const auto load = [&](int i) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs)); };
    __m256i lo[4] = {load(0), load(1), load(4), load(5)};
    store_q_half(lo, 0, p);
    __m256i hi[4] = {load(2), load(3), load(6), load(7)};
    store_q_half(hi, 1, p);
    for (int l = 0; l < 16; ++l) {
        p.a[l] = f16_value(b[kLaneGroups[l]].d);
        p.m[l] = 0.0f;
    }
}

}  // namespace

void tile_quant_avx2(const Tile& t) {
    PanelType p = natural_panel_type(t.type);
    switch (t.type) {
        case TensorType::Q4_K: p.unpack = unpack_q4_K; break;
        case TensorType::Q6_K: p.unpack = unpack_q6_K; break;
        case TensorType::Q8_0: p.unpack = unpack_q8_0; break;
        default: break;
    }
    run_panel_type(t, p);
}

}  // namespace hymoe::cpu::detail

#endif  // __x86_64__
