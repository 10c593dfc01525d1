// AVX-512 VNNI panel kernels for the block-quantized weight types (matmul_kernels.hpp describes
// panels). Weights are stored in panels as value + 128, so one vpdpbusd (unsigned x signed bytes)
// multiplies them with the activations; the 128 * sum(x) this adds is taken off through
// ActPanel::corr, the accumulator's start. Q4_K, Q5_K, Q6_K and Q8_0 unpack with vector code,
// the other types through the plain decoders of matmul_panel.inl.
//
// Compiled with the AVX-512 flags (sources.cmake); internal linkage only, and nothing from the
// standard library that could be emitted out of line (matmul_kernels.hpp says why).
#include "cpu/matmul_kernels.hpp"

#if defined(__x86_64__)

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstring>

namespace hymoe::cpu::detail {
namespace {

constexpr int kPanelRows = 4;
constexpr int kPanelBias = 128;

#include "cpu/matmul_panel.inl"

template <int R, int T, bool kMin>
void panel_kernel(const WeightPanel (*w)[kPanelChunks], const ActPanel* const* x, int kn, float (*out)[kPanelTokens]) {
    __m512 acc[R][T];
    for (int r = 0; r < R; ++r) {
        for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    }
    for (int k = 0; k < kn; ++k) {
        for (int t = 0; t < T; ++t) {
            const ActPanel& a = x[t][k];
            const __m512i x0 = _mm512_load_si512(a.qs);
            const __m512i x1 = _mm512_load_si512(a.qs + 64);
            const __m512i x2 = _mm512_load_si512(a.qs + 128);
            const __m512i x3 = _mm512_load_si512(a.qs + 192);
            const __m512i corr = _mm512_load_si512(a.corr);
            const __m512 dx = _mm512_load_ps(a.dx);
            for (int r = 0; r < R; ++r) {
                const WeightPanel& p = w[r][k];
                __m512i d = _mm512_dpbusd_epi32(corr, _mm512_load_si512(p.q), x0);
                d = _mm512_dpbusd_epi32(d, _mm512_load_si512(p.q + 64), x1);
                d = _mm512_dpbusd_epi32(d, _mm512_load_si512(p.q + 128), x2);
                d = _mm512_dpbusd_epi32(d, _mm512_load_si512(p.q + 192), x3);
                const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(d), dx);
                acc[r][t] = _mm512_fmadd_ps(f, _mm512_load_ps(p.a), acc[r][t]);
                if constexpr (kMin) acc[r][t] = _mm512_fmadd_ps(_mm512_load_ps(p.m), _mm512_load_ps(a.bsf), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; ++r) {
        for (int t = 0; t < T; ++t) out[r][t] = _mm512_reduce_add_ps(acc[r][t]);
    }
}

// ---- vector unpackers ----

// Dword j of 128-bit lane q of v[i] to dword i of lane q of v[j]: sub-block lanes to panel lanes.
void transpose4(__m512i v[4]) {
    const __m512i t0 = _mm512_unpacklo_epi32(v[0], v[1]);
    const __m512i t1 = _mm512_unpackhi_epi32(v[0], v[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(v[2], v[3]);
    const __m512i t3 = _mm512_unpackhi_epi32(v[2], v[3]);
    v[0] = _mm512_unpacklo_epi64(t0, t2);
    v[1] = _mm512_unpackhi_epi64(t0, t2);
    v[2] = _mm512_unpacklo_epi64(t1, t3);
    v[3] = _mm512_unpackhi_epi64(t1, t3);
}

// v[i] holds (in 128-bit lanes) the sub-blocks kPanelSubBlock[4 q + i], values + 128.
void store_q(__m512i v[4], WeightPanel& p) {
    transpose4(v);
    for (int j = 0; j < 4; ++j) _mm512_store_si512(p.q + 64 * j, v[j]);
}

// The group (of 32) of each panel lane's sub-block, as bytes for a shuffle.
__m128i lane_groups() {
    return _mm_setr_epi8(0, 1, 4, 5, 0, 1, 4, 5, 2, 3, 6, 7, 2, 3, 6, 7);
}

// Q4_K / Q5_K scales and mins of the 8 groups (ggml's utmp shuffle): bytes 0..7 scales, 8..15 mins.
__m128i scales_mins_k4(const uint8_t* scales) {
    uint32_t u[4];
    std::memcpy(u, scales, 12);
    constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
    const uint32_t uaux = u[1] & kmask1;
    u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
    u[2] = uaux;
    u[0] &= kmask1;
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(u));
}

void store_scales_k4(const uint8_t* scales, float d, float dmin, WeightPanel& p) {
    const __m128i sm = scales_mins_k4(scales);
    const __m128i g = lane_groups();
    const __m128i sc = _mm_shuffle_epi8(sm, g);
    const __m128i mn = _mm_shuffle_epi8(sm, _mm_add_epi8(g, _mm_set1_epi8(8)));
    _mm512_store_ps(p.a, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(sc)), _mm512_set1_ps(d)));
    _mm512_store_ps(p.m, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(mn)), _mm512_set1_ps(-dmin)));
}

void unpack_q4_K(const std::byte* row, int64_t k, int64_t, WeightPanel& p) {
    const auto& b = reinterpret_cast<const quant::BlockQ4_K*>(row)[k];
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
    const __m512i z0 = _mm512_loadu_si512(b.qs);
    const __m512i z1 = _mm512_loadu_si512(b.qs + 64);
    // Sub-blocks 0 1 4 5 | 2 3 6 7 | 8 9 12 13 | 10 11 14 15.
    __m512i v[4] = {_mm512_and_si512(z0, m4), _mm512_and_si512(_mm512_srli_epi16(z0, 4), m4), _mm512_and_si512(z1, m4),
                    _mm512_and_si512(_mm512_srli_epi16(z1, 4), m4)};
    for (auto& x : v) x = _mm512_xor_si512(x, bias);
    store_q(v, p);
    store_scales_k4(b.scales, f16_value(b.d), f16_value(b.dmin), p);
}

void unpack_q5_K(const std::byte* row, int64_t k, int64_t, WeightPanel& p) {
    const auto& b = reinterpret_cast<const quant::BlockQ5_K*>(row)[k];
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
    const __m512i sixteen = _mm512_set1_epi8(16);
    const __m512i z0 = _mm512_loadu_si512(b.qs);
    const __m512i z1 = _mm512_loadu_si512(b.qs + 64);
    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh)));
    __m512i v[4] = {_mm512_and_si512(z0, m4), _mm512_and_si512(_mm512_srli_epi16(z0, 4), m4), _mm512_and_si512(z1, m4),
                    _mm512_and_si512(_mm512_srli_epi16(z1, 4), m4)};
    // The fifth bit of group g is bit g of qh; v[i] holds groups (2i', ...) as in unpack_q4_K.
    const int bits[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};
    for (int i = 0; i < 4; ++i) {
        const __m512i mask =
            _mm512_mask_blend_epi8(0xffffffff00000000ull, _mm512_set1_epi8(static_cast<char>(1 << bits[i][0])),
                                   _mm512_set1_epi8(static_cast<char>(1 << bits[i][1])));
        const __mmask64 high = _mm512_test_epi8_mask(qh, mask);
        v[i] = _mm512_xor_si512(_mm512_mask_add_epi8(v[i], high, v[i], sixteen), bias);
    }
    store_q(v, p);
    store_scales_k4(b.scales, f16_value(b.d), f16_value(b.dmin), p);
}

void unpack_q6_K(const std::byte* row, int64_t k, int64_t, WeightPanel& p) {
    const auto& b = reinterpret_cast<const quant::BlockQ6_K*>(row)[k];
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i m2 = _mm512_set1_epi8(0x03);
    const __m512i offset = _mm512_set1_epi8(96);  // q - 32 + 128
    __m512i v[4];
    for (int h = 0; h < 2; ++h) {
        const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
        const __m512i hz = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
        // lo: elements 128 h + 0..63 (sub-blocks 8h + 0..3), hi: 128 h + 64..127 (8h + 4..7).
        const __m512i lo = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(_mm512_and_si512(hz, m2), 4));
        const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                           _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hz, 4), m2), 4));
        v[2 * h] = _mm512_add_epi8(_mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(1, 0, 1, 0)), offset);
        v[2 * h + 1] = _mm512_add_epi8(_mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(3, 2, 3, 2)), offset);
    }
    store_q(v, p);
    const __m128i sub = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kPanelSubBlock));
    const __m128i sc = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)), sub);
    _mm512_store_ps(p.a, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)), _mm512_set1_ps(f16_value(b.d))));
    _mm512_store_ps(p.m, _mm512_setzero_ps());
}

void unpack_q8_0(const std::byte* row, int64_t k, int64_t nb, WeightPanel& p) {
    if (8 * k + 8 > nb) return unpack_natural<decode_q8_0>(row, k, nb, p);
    const auto* b = reinterpret_cast<const quant::BlockQ8_0*>(row) + 8 * k;
    const auto pair = [&](int lo, int hi) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[lo].qs));
        const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[hi].qs));
        return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1),
                                _mm512_set1_epi8(static_cast<char>(0x80)));
    };
    __m512i v[4] = {pair(0, 2), pair(1, 3), pair(4, 6), pair(5, 7)};
    store_q(v, p);
    const __m128i d = _mm_setr_epi16(static_cast<short>(b[0].d), static_cast<short>(b[1].d), static_cast<short>(b[2].d),
                                     static_cast<short>(b[3].d), static_cast<short>(b[4].d), static_cast<short>(b[5].d),
                                     static_cast<short>(b[6].d), static_cast<short>(b[7].d));
    const __m512 d8 = _mm512_castps256_ps512(_mm256_cvtph_ps(d));
    const __m512i idx = _mm512_cvtepu8_epi32(lane_groups());
    _mm512_store_ps(p.a, _mm512_permutexvar_ps(idx, d8));
    _mm512_store_ps(p.m, _mm512_setzero_ps());
}

}  // namespace

void tile_quant_avx512(const Tile& t) {
    PanelType p = natural_panel_type(t.type);
    switch (t.type) {
        case TensorType::Q4_K: p.unpack = unpack_q4_K; break;
        case TensorType::Q5_K: p.unpack = unpack_q5_K; break;
        case TensorType::Q6_K: p.unpack = unpack_q6_K; break;
        case TensorType::Q8_0: p.unpack = unpack_q8_0; break;
        default: break;
    }
    run_panel_type(t, p);
}

}  // namespace hymoe::cpu::detail

#endif  // __x86_64__
