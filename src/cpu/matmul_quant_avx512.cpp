// AVX-512 VNNI panel kernels for the block-quantized weight types (matmul_kernels.hpp describes
// panels). Weights are stored in panels as value + 128, so one vpdpbusd (unsigned x signed bytes)
// multiplies them with the activations; the 128 * sum(x) this adds is taken off through
// ActPanel::corr, the accumulator's start. Every type unpacks with vector code (a row's partial
// last chunk of the 32-element types too, zero-padded: unpack_partial).
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

#include <cstddef>
#include <cstring>

namespace hymoe::cpu::detail {
namespace {

constexpr int kPanelRows = 4;
constexpr int panel_bias(TensorType) {
    return 128;
}

#include "cpu/matmul_panel.inl"

template <int R, int T, bool kMin, int /*kMode*/>
void panel_kernel(const WeightPanel* w, const ActPanel* const* x, int kn, float (*out)[kPanelTokens]) {
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
                const WeightPanel& p = w[r * kn + k];
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

float f16(uint16_t h) {
    return _cvtsh_ss(h);
}

__m128i load128(const void* p) {
    return _mm_loadu_si128(static_cast<const __m128i*>(p));
}

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

// The eight f16 values h[i] (one per block of a chunk) to the 16 panel lanes.
__m512 lanes_of_blocks(__m128i h) {
    return _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(lane_groups()), _mm512_castps256_ps512(_mm256_cvtph_ps(h)));
}

// Byte s of `bytes` (unsigned, one per sub-block s) as f32 in panel lane order.
__m512 lanes_of_sub_blocks_u8(__m128i bytes) {
    const __m128i sub = load128(kPanelSubBlock);
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_shuffle_epi8(bytes, sub)));
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
    store_scales_k4(b.scales, f16(b.d), f16(b.dmin), p);
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
    store_scales_k4(b.scales, f16(b.d), f16(b.dmin), p);
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
    _mm512_store_ps(p.a, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)), _mm512_set1_ps(f16(b.d))));
    _mm512_store_ps(p.m, _mm512_setzero_ps());
}

// The eight f16 fields field(b[i]) of a chunk's blocks, put together in general registers (vector
// inserts would compete with the unpacking for the shuffle ports).
template <class Block, class Field>
__m128i block_f16s(const Block* b, const Field& field) {
    uint64_t lo = 0, hi = 0;
    for (int i = 0; i < 4; ++i) {
        lo |= uint64_t{field(b[i])} << (16 * i);
        hi |= uint64_t{field(b[i + 4])} << (16 * i);
    }
    return _mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo));
}

// Q4_1 / Q5_1: d and m of the 8 blocks (adjacent f16s, one 32-bit load a block) to p.a and p.m.
template <class Block>
void store_block_d_m(const Block* b, WeightPanel& p) {
    static_assert(offsetof(Block, m) == offsetof(Block, d) + 2);
    uint64_t dm[4];
    for (int j = 0; j < 4; ++j) {
        uint32_t x0, x1;
        std::memcpy(&x0, &b[2 * j].d, 4);
        std::memcpy(&x1, &b[2 * j + 1].d, 4);
        dm[j] = x0 | (uint64_t{x1} << 32);
    }
    const __m256i h = _mm256_set_epi64x(static_cast<long long>(dm[3]), static_cast<long long>(dm[2]),
                                        static_cast<long long>(dm[1]), static_cast<long long>(dm[0]));
    const __m512 f = _mm512_cvtph_ps(h);  // d0 m0 d1 m1 ...
    const __m512i even = _mm512_slli_epi32(_mm512_cvtepu8_epi32(lane_groups()), 1);
    _mm512_store_ps(p.a, _mm512_permutexvar_ps(even, f));
    _mm512_store_ps(p.m, _mm512_permutexvar_ps(_mm512_add_epi32(even, _mm512_set1_epi32(1)), f));
}

// A row's partial last chunk of a 32-element type: its blocks and zero blocks after them (scale
// 0, and their activations are 0), through the full chunk's unpacker.
template <class Block, void (*Unpack)(const std::byte*, int64_t, int64_t, WeightPanel&)>
void unpack_partial(const std::byte* row, int64_t k, int64_t nb, WeightPanel& p) {
    Block b[8] = {};
    std::memcpy(b, reinterpret_cast<const Block*>(row) + 8 * k, static_cast<size_t>(nb - 8 * k) * sizeof(Block));
    Unpack(reinterpret_cast<const std::byte*>(b), 0, 8, p);
}

void unpack_q8_0(const std::byte* row, int64_t k, int64_t nb, WeightPanel& p) {
    if (8 * k + 8 > nb) return unpack_partial<quant::BlockQ8_0, unpack_q8_0>(row, k, nb, p);
    const auto* b = reinterpret_cast<const quant::BlockQ8_0*>(row) + 8 * k;
    const auto pair = [&](int lo, int hi) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[lo].qs));
        const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[hi].qs));
        return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1),
                                _mm512_set1_epi8(static_cast<char>(0x80)));
    };
    __m512i v[4] = {pair(0, 2), pair(1, 3), pair(4, 6), pair(5, 7)};
    store_q(v, p);
    _mm512_store_ps(p.a, lanes_of_blocks(block_f16s(b, [](const auto& x) { return x.d; })));
    _mm512_store_ps(p.m, _mm512_setzero_ps());
}

// Blocks lo and hi of a chunk's 4-bit types as [low nibbles of lo | high of lo | low of hi | high
// of hi] (128-bit lanes), through `lut`, + 16 where the fifth bit (fifth: element j of lo at bit j,
// of hi at bit 32 + j) is set.
template <bool kFifth>
__m512i nibble_pair(const uint8_t* lo, const uint8_t* hi, uint64_t fifth, __m512i lut) {
    __m512i z = _mm512_broadcast_i32x4(load128(lo));
    z = _mm512_mask_broadcast_i32x4(z, 0xff00, load128(hi));
    z = _mm512_and_si512(_mm512_mask_srli_epi16(z, 0xff00ff00, z, 4), _mm512_set1_epi8(0x0f));
    __m512i v = _mm512_shuffle_epi8(lut, z);
    if constexpr (kFifth) v = _mm512_mask_add_epi8(v, _cvtu64_mask64(fifth), v, _mm512_set1_epi8(16));
    return v;
}

// The 16 nibble bytes of blocks i < 8 (at qs0 + stride i; Q5_0 / Q5_1: fifth bits at qh0 + stride i)
// to p.q: sub-blocks 2 i and 2 i + 1 are the low and high nibbles of block i, so store_q takes
// blocks 0 2 | 1 3 | 4 6 | 5 7.
template <TensorType kType>
void store_nibbles(const uint8_t* qs0, const uint8_t* qh0, size_t stride, WeightPanel& p) {
    const auto qs = [&](int i) { return qs0 + stride * static_cast<size_t>(i); };
    const auto qh = [&](int i) {  // read where used: an array of them would go through memory
        uint32_t bits;
        std::memcpy(&bits, qh0 + stride * static_cast<size_t>(i), sizeof bits);
        return bits;
    };
    static constexpr NibbleTable kLut = nibble_table(kType);
    constexpr bool kFifth = kType == TensorType::Q5_0 || kType == TensorType::Q5_1;
    const __m512i lut = _mm512_broadcast_i32x4(load128(kLut.v));
    if constexpr (!kFifth) {
        // Transposed while packed (256-bit vectors, half the bytes): t[i] = [block a | block b] for
        // the pairs below becomes t[j] = dword j of blocks [0 1 4 5 | 2 3 6 7], which is step j of
        // the panel once its 128-bit lanes are doubled, low nibbles in lanes 0 and 2.
        const auto pair = [&](int a, int b) {
            return _mm256_inserti128_si256(_mm256_castsi128_si256(load128(qs(a))), load128(qs(b)), 1);
        };
        __m256i t[4] = {pair(0, 2), pair(1, 3), pair(4, 6), pair(5, 7)};
        const __m256i t0 = _mm256_unpacklo_epi32(t[0], t[1]), t1 = _mm256_unpackhi_epi32(t[0], t[1]);
        const __m256i t2 = _mm256_unpacklo_epi32(t[2], t[3]), t3 = _mm256_unpackhi_epi32(t[2], t[3]);
        t[0] = _mm256_unpacklo_epi64(t0, t2);
        t[1] = _mm256_unpackhi_epi64(t0, t2);
        t[2] = _mm256_unpacklo_epi64(t1, t3);
        t[3] = _mm256_unpackhi_epi64(t1, t3);
        for (int j = 0; j < 4; ++j) {
            const __m512i x = _mm512_castsi256_si512(t[j]);
            __m512i z = _mm512_shuffle_i64x2(x, x, _MM_SHUFFLE(1, 1, 0, 0));
            z = _mm512_and_si512(_mm512_mask_srli_epi16(z, 0xff00ff00, z, 4), _mm512_set1_epi8(0x0f));
            _mm512_store_si512(p.q + 64 * j, _mm512_shuffle_epi8(lut, z));
        }
        return;
    }
    constexpr int kPairs[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};
    __m512i v[4];
    for (int i = 0; i < 4; ++i) {
        const int lo = kPairs[i][0], hi = kPairs[i][1];
        const uint64_t fifth = kFifth ? qh(lo) | (uint64_t{qh(hi)} << 32) : 0;
        v[i] = nibble_pair<kFifth>(qs(lo), qs(hi), fifth, lut);
    }
    store_q(v, p);
}

// GGML_E8M0_TO_FP32_HALF of the eight exponent bytes e (byte i: block i) in the panel lanes.
__m512 e8m0_half_lanes(uint64_t e) {
    const __m512i e32 =
        _mm512_cvtepu8_epi32(_mm_shuffle_epi8(_mm_cvtsi64_si128(static_cast<long long>(e)), lane_groups()));
    const __m512i normal = _mm512_slli_epi32(_mm512_sub_epi32(e32, _mm512_set1_epi32(1)), 23);
    const __m512i subnormal = _mm512_sllv_epi32(_mm512_set1_epi32(0x00200000), e32);
    const __mmask16 small = _mm512_cmplt_epu32_mask(e32, _mm512_set1_epi32(2));
    return _mm512_castsi512_ps(_mm512_mask_blend_epi32(small, normal, subnormal));
}

// Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4: eight blocks per chunk.
template <TensorType kType, class Block>
void unpack_nibble_blocks(const std::byte* row, int64_t k, int64_t nb, WeightPanel& p) {
    if (8 * k + 8 > nb) return unpack_partial<Block, unpack_nibble_blocks<kType, Block>>(row, k, nb, p);
    const Block* b = reinterpret_cast<const Block*>(row) + 8 * k;
    if constexpr (requires { b->qh; }) {
        store_nibbles<kType>(b[0].qs, b[0].qh, sizeof(Block), p);
    } else {
        store_nibbles<kType>(b[0].qs, nullptr, sizeof(Block), p);
    }
    if constexpr (kType == TensorType::MXFP4) {
        uint64_t e = 0;
        for (int i = 0; i < 8; ++i) e |= uint64_t{b[i].e} << (8 * i);
        _mm512_store_ps(p.a, e8m0_half_lanes(e));
        _mm512_store_ps(p.m, _mm512_setzero_ps());
    } else if constexpr (requires { b->m; }) {
        store_block_d_m(b, p);
    } else {
        _mm512_store_ps(p.a, lanes_of_blocks(block_f16s(b, [](const Block& x) { return x.d; })));
        _mm512_store_ps(p.m, _mm512_setzero_ps());
    }
}

// IQ4_XS's eight six-bit scales - 32 (iq4_xs_scale), byte i for block i, computed in registers.
__m128i iq4_xs_scales_vec(const quant::BlockIq4Xs& b) {
    int sl;
    std::memcpy(&sl, b.scales_l, 4);
    const __m128i x = _mm_cvtsi32_si128(sl);
    const __m128i m4 = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_unpacklo_epi8(_mm_and_si128(x, m4), _mm_and_si128(_mm_srli_epi16(x, 4), m4));
    // Bits 2 i, 2 i + 1 of scales_h to the top of word i, then down: word i = those two bits.
    const __m128i pow = _mm_setr_epi16(1 << 14, 1 << 12, 1 << 10, 1 << 8, 1 << 6, 1 << 4, 1 << 2, 1);
    const __m128i hi = _mm_srli_epi16(_mm_mullo_epi16(_mm_set1_epi16(static_cast<short>(b.scales_h)), pow), 14);
    return _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(_mm_packus_epi16(hi, hi), 4)), _mm_set1_epi8(32));
}

void unpack_iq4_xs(const std::byte* row, int64_t k, int64_t, WeightPanel& p) {
    const auto& b = reinterpret_cast<const quant::BlockIq4Xs*>(row)[k];
    store_nibbles<TensorType::IQ4_XS>(b.qs, nullptr, 16, p);
    const __m128i sc = _mm_shuffle_epi8(iq4_xs_scales_vec(b), lane_groups());
    _mm512_store_ps(p.a, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)), _mm512_set1_ps(f16(b.d))));
    _mm512_store_ps(p.m, _mm512_setzero_ps());
}

// Q2_K / Q3_K: element 128 h + 32 j + l is bits 2 j, 2 j + 1 of qs[32 h + l], so sub-block
// 8 h + 2 j + s reads qs[32 h + 16 s ..] shifted by 2 j. v[i] of store_q: with q = qs[32 h ..],
// duplicated to [q | q] (256 bits each), v[2 h] is q >> [0 | 4] and v[2 h + 1] q >> [2 | 6].
__m512i crumbs(__m512i q2, int i) {
    const __m512i shift = i % 2 == 0 ? _mm512_mask_blend_epi16(0xffff0000u, _mm512_set1_epi16(0), _mm512_set1_epi16(4))
                                     : _mm512_mask_blend_epi16(0xffff0000u, _mm512_set1_epi16(2), _mm512_set1_epi16(6));
    return _mm512_and_si512(_mm512_srlv_epi16(q2, shift), _mm512_set1_epi8(3));
}

void unpack_q2_K(const std::byte* row, int64_t k, int64_t, WeightPanel& p) {
    const auto& b = reinterpret_cast<const quant::BlockQ2_K*>(row)[k];
    __m512i v[4];
    for (int h = 0; h < 2; ++h) {
        const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * h)));
        for (int i = 0; i < 2; ++i)
            v[2 * h + i] = _mm512_or_si512(crumbs(q, i), _mm512_set1_epi8(static_cast<char>(0x80)));
    }
    store_q(v, p);
    const __m512 sc = lanes_of_sub_blocks_u8(_mm_and_si128(load128(b.scales), _mm_set1_epi8(0x0f)));
    const __m512 mn = lanes_of_sub_blocks_u8(_mm_and_si128(_mm_srli_epi16(load128(b.scales), 4), _mm_set1_epi8(0x0f)));
    _mm512_store_ps(p.a, _mm512_mul_ps(sc, _mm512_set1_ps(f16(b.d))));
    _mm512_store_ps(p.m, _mm512_mul_ps(mn, _mm512_set1_ps(-f16(b.dmin))));
}

// Q3_K's 16 six-bit scales + 32 (q3_K_scales) in registers: a copy through memory would stall the
// load on two smaller stores.
__m128i q3_K_scales_vec(const uint8_t* scales) {
    long long lo;
    int hi;
    std::memcpy(&lo, scales, 8);
    std::memcpy(&hi, scales + 8, 4);
    const __m128i low = _mm_srlv_epi32(_mm_set1_epi64x(lo), _mm_setr_epi32(0, 0, 4, 4));
    const __m128i high = _mm_srlv_epi32(_mm_set1_epi32(hi), _mm_setr_epi32(0, 2, 4, 6));
    return _mm_or_si128(_mm_and_si128(low, _mm_set1_epi8(0x0f)),
                        _mm_slli_epi32(_mm_and_si128(high, _mm_set1_epi8(0x03)), 4));
}

void unpack_q3_K(const std::byte* row, int64_t k, int64_t, WeightPanel& p) {
    const auto& b = reinterpret_cast<const quant::BlockQ3_K*>(row)[k];
    // The hmask bit of element 128 h + 32 j + l is bit 4 h + j of hmask[l]: per v[i] (as in crumbs),
    // bits (j = 0 | 2), (1 | 3) of the first and second 128 elements.
    const __m512i hm = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.hmask)));
    constexpr int kBits[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};
    __m512i v[4];
    for (int h = 0; h < 2; ++h) {
        const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * h)));
        for (int i = 0; i < 2; ++i) {
            const int* bits = kBits[2 * h + i];
            const __m512i sel =
                _mm512_mask_blend_epi8(0xffffffff00000000ull, _mm512_set1_epi8(static_cast<char>(1 << bits[0])),
                                       _mm512_set1_epi8(static_cast<char>(1 << bits[1])));
            // q - 4 + 128, + 4 where the hmask bit is set.
            const __m512i x = _mm512_or_si512(crumbs(q, i), _mm512_set1_epi8(124));
            v[2 * h + i] = _mm512_mask_add_epi8(x, _mm512_test_epi8_mask(hm, sel), x, _mm512_set1_epi8(4));
        }
    }
    store_q(v, p);
    const __m512 a = _mm512_sub_ps(lanes_of_sub_blocks_u8(q3_K_scales_vec(b.scales)), _mm512_set1_ps(32.0f));
    _mm512_store_ps(p.a, _mm512_mul_ps(a, _mm512_set1_ps(f16(b.d))));
    _mm512_store_ps(p.m, _mm512_setzero_ps());
}

// ---- fused single-token products (GEMV) of Q4_K and Q6_K ----
//
// One token reuses no weight, so decode does not unpack panels: each super-block is read once,
// split into four vectors of unsigned values and multiplied (vpdpbusd) with the activations put
// in the same element order once per tile. Each product dword covers 4 elements of one 16-element
// sub-block; vpdpwssd multiplies it by the sub-block's integer scale (its low word; the high word
// is 0) into the block's integer sum, which is scaled by d * dx once per block.

// How far ahead of a block the fused kernels prefetch the weights (rows are contiguous).
constexpr int kGemvPrefetch = 512;

// One chunk of a token's activations for the fused kernels.
struct alignas(64) GemvAct {
    int8_t q[kChunk];  // four 64-byte vectors, element order chosen by the weight type
    int16_t sb[16];    // sums of the 16 sub-blocks
    int16_t g[8];      // sums of the 8 groups of 32
    float d;
};

// Element order of GemvAct::q: kV: vector i as the panel's transpose (transpose4 of ActPanel::qs,
// vector 0 = elements 0..31, 64..95; 1 = 32..63, 96..127; 2 and 3 the same + 128), the order of
// Q4_K's nibbles; otherwise natural (vector i = elements 64 i .. 64 i + 63).
template <bool kV>
void make_gemv_act(const ActPanel& a, GemvAct& g) {
    __m512i v[4];
    for (int j = 0; j < 4; ++j) v[j] = _mm512_load_si512(a.qs + 64 * j);
    transpose4(v);
    if constexpr (!kV) {
        const __m512i n0 = _mm512_shuffle_i64x2(v[0], v[1], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i n1 = _mm512_shuffle_i64x2(v[0], v[1], _MM_SHUFFLE(3, 2, 3, 2));
        const __m512i n2 = _mm512_shuffle_i64x2(v[2], v[3], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i n3 = _mm512_shuffle_i64x2(v[2], v[3], _MM_SHUFFLE(3, 2, 3, 2));
        v[0] = n0;
        v[1] = n1;
        v[2] = n2;
        v[3] = n3;
    }
    for (int j = 0; j < 4; ++j) _mm512_store_si512(g.q + 64 * j, v[j]);
    int s[16];
    for (int lane = 0; lane < kChunkLanes; ++lane) s[kPanelSubBlock[lane]] = -a.corr[lane] / 128;
    for (int i = 0; i < 16; ++i) g.sb[i] = static_cast<int16_t>(s[i]);
    for (int i = 0; i < 8; ++i) g.g[i] = static_cast<int16_t>(s[2 * i] + s[2 * i + 1]);
    g.d = a.dx[0];
}

// The control of a byte shuffle that turns 16 scale bytes (in every 128-bit lane) into dwords:
// every dword of 128-bit lane q gets byte l_q, zero-extended.
__m512i scale_index(int l0, int l1, int l2, int l3) {
    const auto lane = [](int b) { return static_cast<int>(0x80808000u | static_cast<unsigned>(b)); };
    return _mm512_setr_epi32(lane(l0), lane(l0), lane(l0), lane(l0), lane(l1), lane(l1), lane(l1), lane(l1), lane(l2),
                             lane(l2), lane(l2), lane(l2), lane(l3), lane(l3), lane(l3), lane(l3));
}

// Rows [r, r + R) of a Q4_K tile against chunks [kc, kc + kn) of one token (acts: those chunks).
template <int R>
void gemv_q4_K_rows(const Tile& t, int64_t r, int64_t kc, int kn, const GemvAct* acts, float* out) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    // Vector i of a block's nibbles holds groups (0 2), (1 3), (4 6), (5 7) in 256-bit halves.
    const __m512i idx0 = scale_index(0, 0, 2, 2), idx1 = scale_index(1, 1, 3, 3);
    const __m512i idx2 = scale_index(4, 4, 6, 6), idx3 = scale_index(5, 5, 7, 7);
    const quant::BlockQ4_K* rows[R];
    __m512 acc[R];
    __m128 accm[R];
    for (int i = 0; i < R; ++i) {
        rows[i] = reinterpret_cast<const quant::BlockQ4_K*>(t.w + static_cast<size_t>(r + i) * t.w_row_bytes) + kc;
        acc[i] = _mm512_setzero_ps();
        accm[i] = _mm_setzero_ps();
    }
    for (int k = 0; k < kn; ++k) {
        const GemvAct& a = acts[k];
        const __m512i x0 = _mm512_load_si512(a.q), x1 = _mm512_load_si512(a.q + 64);
        const __m512i x2 = _mm512_load_si512(a.q + 128), x3 = _mm512_load_si512(a.q + 192);
        const __m128i gs = _mm_load_si128(reinterpret_cast<const __m128i*>(a.g));
        const __m128 dx = _mm_set1_ps(a.d);
        for (int i = 0; i < R; ++i) {
            const quant::BlockQ4_K& b = rows[i][k];
            _mm_prefetch(reinterpret_cast<const char*>(&b) + kGemvPrefetch, _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(&b) + kGemvPrefetch + 64, _MM_HINT_T0);
            const __m512i z0 = _mm512_loadu_si512(b.qs), z1 = _mm512_loadu_si512(b.qs + 64);
            const __m128i sm = scales_mins_k4(b.scales);
            const __m512i sc = _mm512_broadcast_i32x4(sm);
            const __m512i zero = _mm512_setzero_si512();
            const __m512i p0 = _mm512_dpbusd_epi32(zero, _mm512_and_si512(z0, m4), x0);
            const __m512i p1 = _mm512_dpbusd_epi32(zero, _mm512_and_si512(_mm512_srli_epi16(z0, 4), m4), x1);
            const __m512i p2 = _mm512_dpbusd_epi32(zero, _mm512_and_si512(z1, m4), x2);
            const __m512i p3 = _mm512_dpbusd_epi32(zero, _mm512_and_si512(_mm512_srli_epi16(z1, 4), m4), x3);
            __m512i s0 = _mm512_madd_epi16(p0, _mm512_shuffle_epi8(sc, idx0));
            __m512i s1 = _mm512_madd_epi16(p2, _mm512_shuffle_epi8(sc, idx2));
            s0 = _mm512_dpwssd_epi32(s0, p1, _mm512_shuffle_epi8(sc, idx1));
            s1 = _mm512_dpwssd_epi32(s1, p3, _mm512_shuffle_epi8(sc, idx3));
            uint32_t dm;
            std::memcpy(&dm, &b.d, sizeof dm);
            const __m128 f = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(dm))), dx);  // d dx, dmin dx
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), _mm512_broadcastss_ps(f), acc[i]);
            const __m128i mins = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(sm, 8)), gs);
            accm[i] = _mm_fmadd_ps(_mm_cvtepi32_ps(mins), _mm_permute_ps(f, 0x55), accm[i]);
        }
    }
    for (int i = 0; i < R; ++i) {
        const __m128 m = _mm_hadd_ps(accm[i], accm[i]);
        out[i] = _mm512_reduce_add_ps(acc[i]) - _mm_cvtss_f32(_mm_hadd_ps(m, m));
    }
}

// Rows [r, r + R) of a Q6_K tile (as gemv_q4_K_rows). Values q - 32 with q in 0..63: the products
// take q and subtract 32 * sum(x) of each sub-block times its scale.
template <int R>
void gemv_q6_K_rows(const Tile& t, int64_t r, int64_t kc, int kn, const GemvAct* acts, float* out) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i m2 = _mm512_set1_epi8(0x03);
    const __m512i low_word = _mm512_set1_epi32(0xffff);
    const __m512i i0 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i i1 = _mm512_add_epi32(i0, _mm512_set1_epi32(4));
    const __m512i i2 = _mm512_add_epi32(i0, _mm512_set1_epi32(8));
    const __m512i i3 = _mm512_add_epi32(i0, _mm512_set1_epi32(12));
    const quant::BlockQ6_K* rows[R];
    __m512 acc[R];
    for (int i = 0; i < R; ++i) {
        rows[i] = reinterpret_cast<const quant::BlockQ6_K*>(t.w + static_cast<size_t>(r + i) * t.w_row_bytes) + kc;
        acc[i] = _mm512_setzero_ps();
    }
    for (int k = 0; k < kn; ++k) {
        const GemvAct& a = acts[k];
        const __m512i x[4] = {_mm512_load_si512(a.q), _mm512_load_si512(a.q + 64), _mm512_load_si512(a.q + 128),
                              _mm512_load_si512(a.q + 192)};
        const __m256i sb = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.sb));
        const __m256 dx = _mm256_set1_ps(a.d);
        for (int i = 0; i < R; ++i) {
            const quant::BlockQ6_K& b = rows[i][k];
            for (int l = 0; l < 4; ++l)
                _mm_prefetch(reinterpret_cast<const char*>(&b) + kGemvPrefetch + 64 * l, _MM_HINT_T0);
            const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
            const __m512i sc = _mm512_and_si512(_mm512_cvtepi8_epi32(sc8), low_word);
            __m512i s[2];
            for (int h = 0; h < 2; ++h) {
                const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
                const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
                const __m512i hz = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
                const __m512i lo =
                    _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(_mm512_and_si512(hz, m2), 4));
                const __m512i hi =
                    _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                    _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hz, 4), m2), 4));
                const __m512i zero = _mm512_setzero_si512();
                const __m512i p0 = _mm512_dpbusd_epi32(zero, lo, x[2 * h]);
                const __m512i p1 = _mm512_dpbusd_epi32(zero, hi, x[2 * h + 1]);
                s[h] = _mm512_madd_epi16(p0, _mm512_permutexvar_epi32(h == 0 ? i0 : i2, sc));
                s[h] = _mm512_dpwssd_epi32(s[h], p1, _mm512_permutexvar_epi32(h == 0 ? i1 : i3, sc));
            }
            // - 32 * sum(scale * sub-block sum), in the low 256 bits.
            const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), sb), 5);
            const __m512i isum = _mm512_sub_epi32(_mm512_add_epi32(s[0], s[1]), _mm512_zextsi256_si512(corr));
            const __m256 dd = _mm256_mul_ps(_mm256_set1_ps(f16(b.d)), dx);
            acc[i] =
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_broadcastss_ps(_mm256_castps256_ps128(dd)), acc[i]);
        }
    }
    for (int i = 0; i < R; ++i) out[i] = _mm512_reduce_add_ps(acc[i]);
}

// Rows per call of the fused kernels: one. Two rows at once read two interleaved streams and
// decoded a 1024 x 2048 Q4_K from memory at 6 GB/s instead of 16 (the prefetchers lose them).
constexpr int kGemvRows = 1;
constexpr int kGemvChunks = 32;  // activation chunks per pass (10 KiB)

// One token's product through a fused kernel: kV as make_gemv_act, Rows<R> as gemv_q4_K_rows.
template <bool kV, template <int> class Rows>
void run_gemv(const Tile& t) {
    const int64_t n_chunks = t.cols / kChunk;
    GemvAct acts[kGemvChunks];
    const auto* x = reinterpret_cast<const ActPanel*>(t.x + static_cast<size_t>(t.t0) * t.x_row_bytes);
    float* y = t.y + t.t0 * t.rows;
    for (int64_t kc = 0; kc < n_chunks; kc += kGemvChunks) {
        const int kn = static_cast<int>(n_chunks - kc < kGemvChunks ? n_chunks - kc : kGemvChunks);
        for (int k = 0; k < kn; ++k) make_gemv_act<kV>(x[kc + k], acts[k]);
        int64_t r = t.r0;
        float out[kGemvRows];
        for (; r + kGemvRows <= t.r1; r += kGemvRows) {
            Rows<kGemvRows>::run(t, r, kc, kn, acts, out);
            for (int i = 0; i < kGemvRows; ++i) y[r + i] = kc == 0 ? out[i] : y[r + i] + out[i];
        }
        for (; r < t.r1; ++r) {
            Rows<1>::run(t, r, kc, kn, acts, out);
            y[r] = kc == 0 ? out[0] : y[r] + out[0];
        }
    }
}

template <int R>
struct GemvQ4K {
    static void run(const Tile& t, int64_t r, int64_t kc, int kn, const GemvAct* a, float* out) {
        gemv_q4_K_rows<R>(t, r, kc, kn, a, out);
    }
};
template <int R>
struct GemvQ6K {
    static void run(const Tile& t, int64_t r, int64_t kc, int kn, const GemvAct* a, float* out) {
        gemv_q6_K_rows<R>(t, r, kc, kn, a, out);
    }
};

}  // namespace

void tile_quant_avx512(const Tile& t) {
    using T = TensorType;
    // The type's unpacker becomes a template parameter of the loop here and only here.
    switch (t.type) {
        case T::Q4_0: return run_panels<false, 0, unpack_nibble_blocks<T::Q4_0, quant::BlockQ4_0>>(t, 32);
        case T::Q4_1: return run_panels<true, 0, unpack_nibble_blocks<T::Q4_1, quant::BlockQ4_1>>(t, 32);
        case T::Q5_0: return run_panels<false, 0, unpack_nibble_blocks<T::Q5_0, quant::BlockQ5_0>>(t, 32);
        case T::Q5_1: return run_panels<true, 0, unpack_nibble_blocks<T::Q5_1, quant::BlockQ5_1>>(t, 32);
        case T::Q8_0: return run_panels<false, 0, unpack_q8_0>(t, 32);
        case T::IQ4_NL: return run_panels<false, 0, unpack_nibble_blocks<T::IQ4_NL, quant::BlockIq4Nl>>(t, 32);
        case T::MXFP4: return run_panels<false, 0, unpack_nibble_blocks<T::MXFP4, quant::BlockMxfp4>>(t, 32);
        case T::Q2_K: return run_panels<true, 0, unpack_q2_K>(t, 256);
        case T::Q3_K: return run_panels<false, 0, unpack_q3_K>(t, 256);
        case T::Q4_K:
            if (t.t1 - t.t0 == 1) return run_gemv<true, GemvQ4K>(t);
            return run_panels<true, 0, unpack_q4_K>(t, 256);
        case T::Q5_K: return run_panels<true, 0, unpack_q5_K>(t, 256);
        case T::Q6_K:
            if (t.t1 - t.t0 == 1) return run_gemv<false, GemvQ6K>(t);
            return run_panels<false, 0, unpack_q6_K>(t, 256);
        case T::IQ4_XS: return run_panels<false, 0, unpack_iq4_xs>(t, 256);
        default: return;  // matmul.cpp checked the type
    }
}

}  // namespace hymoe::cpu::detail

#endif  // __x86_64__
