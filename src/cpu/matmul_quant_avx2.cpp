// AVX2 panel kernels for the block-quantized weight types (matmul_kernels.hpp describes panels).
// vpmaddubsw multiplies unsigned weight bytes by signed activations, summing pairs to int16 with
// saturation. Types whose values span at most 64 are stored as value + B (B >= 0, a power of two:
// every value in 0..63), so their products go straight in and several sum in int16 before one
// vpmaddwd; B * sum(x) comes off through ActPanel::corr. Q8_0, IQ4_NL and IQ4_XS span up to 255
// and are stored as signed bytes, with ggml's sign trick (|w| times x with w's sign). Every type
// unpacks with vector code (a row's partial last chunk of the 32-element types too, zero-padded:
// unpack_partial).
//
// Compiled with -mavx2 -mfma -mf16c (sources.cmake); internal linkage only, and nothing from the
// standard library that could be emitted out of line (matmul_kernels.hpp says why).
#include "cpu/matmul_kernels.hpp"

#if defined(__x86_64__)

#include <immintrin.h>

#include <cstddef>
#include <cstring>

namespace hymoe::cpu::detail {
namespace {

constexpr int kPanelRows = 2;  // 2 rows x 4 tokens of accumulators fit the 16 ymm registers

// How the kernel multiplies a type's values (panel_kernel's kMode): the sign trick, or B.
constexpr int kSignTrick = -1;
constexpr int product_mode(TensorType type) {
    switch (type) {
        case TensorType::Q4_0: return 8;    // -8..7
        case TensorType::Q5_0: return 16;   // -16..15
        case TensorType::MXFP4: return 16;  // -12..12
        case TensorType::Q3_K: return 4;    // -4..3
        case TensorType::Q6_K: return 32;   // -32..31
        case TensorType::Q8_0:              // -128..127
        case TensorType::IQ4_NL:            // -127..113
        case TensorType::IQ4_XS: return kSignTrick;
        default: return 0;  // Q4_1, Q5_1, Q2_K, Q4_K, Q5_K: 0..31 already
    }
}
constexpr int panel_bias(TensorType type) {
    return product_mode(type) == kSignTrick ? 0 : product_mode(type);
}

#include "cpu/matmul_panel.inl"

float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// log2 of a power of two (the kernels' B).
constexpr int log2_of(int b) {
    int s = 0;
    while ((1 << s) < b) ++s;
    return s;
}

template <int R, int T, bool kMin, int kMode>
void panel_kernel(const WeightPanel* w, const ActPanel* const* x, int kn, float (*out)[kPanelTokens]) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r) {
        for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    }
    for (int k = 0; k < kn; ++k) {
        for (int h = 0; h < 2; ++h) {  // lanes 0..7, then 8..15
            // -B * sum(x) of each lane's sub-block: corr = -128 * sum(x), B = 2^s.
            __m256i start[T];
            for (int t = 0; t < T; ++t) {
                start[t] = _mm256_setzero_si256();
                if constexpr (kMode > 0) {
                    const __m256i corr = _mm256_load_si256(reinterpret_cast<const __m256i*>(x[t][k].corr + 8 * h));
                    start[t] = _mm256_srai_epi32(corr, 7 - log2_of(kMode));
                }
            }
            for (int r = 0; r < R; ++r) {
                const WeightPanel& p = w[r * kn + k];
                __m256i dot[T];
                for (int t = 0; t < T; ++t) dot[t] = start[t];
                if constexpr (kMode == kSignTrick) {
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
                } else {
                    // Stored values are 0..63, |x| <= 127: a pair sums to at most 2 * 63 * 127 in
                    // int16, and with values up to 31 (B <= 16) four steps' pairs still fit.
                    constexpr int kSteps = kMode <= 16 ? 4 : 2;  // steps summed in int16
                    __m256i sum16[T];
                    for (int j = 0; j < 4; ++j) {
                        const __m256i qw = _mm256_load_si256(reinterpret_cast<const __m256i*>(p.q + 64 * j + 32 * h));
                        for (int t = 0; t < T; ++t) {
                            const __m256i qx =
                                _mm256_load_si256(reinterpret_cast<const __m256i*>(x[t][k].qs + 64 * j + 32 * h));
                            const __m256i pairs = _mm256_maddubs_epi16(qw, qx);
                            sum16[t] = j % kSteps == 0 ? pairs : _mm256_add_epi16(sum16[t], pairs);
                            if (j % kSteps == kSteps - 1)
                                dot[t] = _mm256_add_epi32(dot[t], _mm256_madd_epi16(sum16[t], ones));
                        }
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

float f16(uint16_t h) {
    return _cvtsh_ss(h);
}

__m128i load128(const void* p) {
    return _mm_loadu_si128(static_cast<const __m128i*>(p));
}
__m256i load256(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

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

// Per-lane values of the 8 blocks (or groups of 32) of a chunk, v8[i] for block i, to the 16
// panel lanes: lane L takes block kPanelSubBlock[L] / 2 (0 1 4 5 0 1 4 5 | 2 3 6 7 2 3 6 7).
void store_block_lanes(__m256 v8, float* out) {
    _mm256_store_ps(out, _mm256_permutevar8x32_ps(v8, _mm256_setr_epi32(0, 1, 4, 5, 0, 1, 4, 5)));
    _mm256_store_ps(out + 8, _mm256_permutevar8x32_ps(v8, _mm256_setr_epi32(2, 3, 6, 7, 2, 3, 6, 7)));
}

// Byte s of `bytes` (one per sub-block s, unsigned or signed) as f32 times `scale`, in panel lane order.
template <bool kSigned>
void store_sub_block_lanes(__m128i bytes, float scale, float* out) {
    const __m128i b = _mm_shuffle_epi8(bytes, load128(kPanelSubBlock));
    const __m128i hi = _mm_unpackhi_epi64(b, b);
    const __m256i lo32 = kSigned ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
    const __m256i hi32 = kSigned ? _mm256_cvtepi8_epi32(hi) : _mm256_cvtepu8_epi32(hi);
    const __m256 s = _mm256_set1_ps(scale);
    _mm256_store_ps(out, _mm256_mul_ps(_mm256_cvtepi32_ps(lo32), s));
    _mm256_store_ps(out + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(hi32), s));
}

// The eight f16 fields field(b[i]) of a chunk's blocks as f32, put together in general registers
// (vector inserts would compete with the unpacking for the shuffle ports).
template <class Block, class Field>
__m256 block_f16s(const Block* b, const Field& field) {
    uint64_t lo = 0, hi = 0;
    for (int i = 0; i < 4; ++i) {
        lo |= uint64_t{field(b[i])} << (16 * i);
        hi |= uint64_t{field(b[i + 4])} << (16 * i);
    }
    return _mm256_cvtph_ps(_mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo)));
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
    const __m256 lo = _mm256_cvtph_ps(_mm_set_epi64x(static_cast<long long>(dm[1]), static_cast<long long>(dm[0])));
    const __m256 hi = _mm256_cvtph_ps(_mm_set_epi64x(static_cast<long long>(dm[3]), static_cast<long long>(dm[2])));
    // lo = d0 m0 d1 m1 | d2 m2 d3 m3, hi the same for blocks 4..7: d = d0 d1 d4 d5 | d2 d3 d6 d7.
    const __m256 d = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 m = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    _mm256_store_ps(p.a, _mm256_permute2f128_ps(d, d, 0x00));
    _mm256_store_ps(p.a + 8, _mm256_permute2f128_ps(d, d, 0x11));
    _mm256_store_ps(p.m, _mm256_permute2f128_ps(m, m, 0x00));
    _mm256_store_ps(p.m + 8, _mm256_permute2f128_ps(m, m, 0x11));
}

void store_zero_mins(WeightPanel& p) {
    _mm256_store_ps(p.m, _mm256_setzero_ps());
    _mm256_store_ps(p.m + 8, _mm256_setzero_ps());
}

// 0xff in byte j where bit j of x is set (ggml's bytes_from_bits_32).
__m256i bytes_from_bits(uint32_t x) {
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(static_cast<int>(x)),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
    const __m256i bit = _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(bit, _mm256_set1_epi64x(-1));
}

// Bit b of every byte of x moved to bit `to` of that byte, the other bits clear (b, to < 8: a
// 16-bit shift then brings no bit across bytes into bit `to`).
__m256i byte_bit(__m256i x, int b, int to) {
    const __m256i shifted =
        b >= to ? _mm256_srl_epi16(x, _mm_cvtsi32_si128(b - to)) : _mm256_sll_epi16(x, _mm_cvtsi32_si128(to - b));
    return _mm256_and_si256(shifted, _mm256_set1_epi8(static_cast<char>(1 << to)));
}

// Q4_K / Q5_K scales and mins of the 8 groups to the panel lanes.
void store_scales_k4(const uint8_t* scales, float d, float dmin, WeightPanel& p) {
    uint32_t u[4];
    std::memcpy(u, scales, 12);
    constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
    const uint32_t uaux = u[1] & kmask1;
    u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
    u[2] = uaux;
    u[0] &= kmask1;
    const __m128i sm = load128(u);  // bytes 0..7: scales, 8..15: mins
    store_block_lanes(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm)), _mm256_set1_ps(d)), p.a);
    store_block_lanes(
        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(sm, sm))), _mm256_set1_ps(-dmin)),
        p.m);
}

// Q4_K, and Q5_K with its fifth bits: half h of the AVX-512 vectors is qs bytes 32 h .. 32 h + 31
// and 64 + 32 h ..; the fifth bit of v[i] is bit (0 1 4 5)[i] + 2 h of qh[l].
template <bool kFifth, class Block>
void unpack_q45_K(const std::byte* row, int64_t k, WeightPanel& p) {
    const auto& b = reinterpret_cast<const Block*>(row)[k];
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i qh = _mm256_setzero_si256();
    if constexpr (kFifth) qh = load256(b.qh);
    for (int h = 0; h < 2; ++h) {
        const __m256i z0 = load256(b.qs + 32 * h);
        const __m256i z1 = load256(b.qs + 64 + 32 * h);
        __m256i v[4] = {_mm256_and_si256(z0, m4), _mm256_and_si256(_mm256_srli_epi16(z0, 4), m4),
                        _mm256_and_si256(z1, m4), _mm256_and_si256(_mm256_srli_epi16(z1, 4), m4)};
        if constexpr (kFifth) {
            constexpr int kBit[4] = {0, 1, 4, 5};
            for (int i = 0; i < 4; ++i) {
                v[i] = _mm256_or_si256(v[i], byte_bit(qh, kBit[i] + 2 * h, 4));
            }
        }
        store_q_half(v, h, p);
    }
    store_scales_k4(b.scales, f16(b.d), f16(b.dmin), p);
}

void unpack_q4_K(const std::byte* row, int64_t k, int64_t, WeightPanel& p) {
    unpack_q45_K<false, quant::BlockQ4_K>(row, k, p);
}
void unpack_q5_K(const std::byte* row, int64_t k, int64_t, WeightPanel& p) {
    unpack_q45_K<true, quant::BlockQ5_K>(row, k, p);
}

void unpack_q6_K(const std::byte* row, int64_t k, int64_t, WeightPanel& p) {
    const auto& b = reinterpret_cast<const quant::BlockQ6_K*>(row)[k];
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i m2 = _mm256_set1_epi8(0x03);
    const __m256i offset = _mm256_set1_epi8(static_cast<char>(panel_bias(TensorType::Q6_K) - 32));
    // lo[hh][s], hi[hh][s]: 32-byte halves s of the AVX-512 lo / hi vectors of half hh.
    __m256i lo[2][2], hi[2][2];
    for (int hh = 0; hh < 2; ++hh) {
        const __m256i qh = load256(b.qh + 32 * hh);
        for (int s = 0; s < 2; ++s) {
            const __m256i ql = load256(b.ql + 64 * hh + 32 * s);
            const __m256i hz = s == 0 ? qh : _mm256_srli_epi16(qh, 2);
            lo[hh][s] = _mm256_add_epi8(
                _mm256_or_si256(_mm256_and_si256(ql, m4), _mm256_slli_epi16(_mm256_and_si256(hz, m2), 4)), offset);
            hi[hh][s] =
                _mm256_add_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql, 4), m4),
                                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hz, 4), m2), 4)),
                                offset);
        }
    }
    // AVX-512: v[2 hh] = [lo.0 lo.1 | hi.0 hi.1], v[2 hh + 1] = [lo.2 lo.3 | hi.2 hi.3] (128-bit
    // lanes); half 0 of those is lo[hh][0] resp. lo[hh][1], half 1 hi[hh][0] resp. hi[hh][1].
    for (int h = 0; h < 2; ++h) {
        const auto& src = h == 0 ? lo : hi;
        __m256i v[4] = {src[0][0], src[0][1], src[1][0], src[1][1]};
        store_q_half(v, h, p);
    }
    store_sub_block_lanes<true>(load128(b.scales), f16(b.d), p.a);
    store_zero_mins(p);
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
    __m256i lo[4] = {load256(b[0].qs), load256(b[1].qs), load256(b[4].qs), load256(b[5].qs)};
    store_q_half(lo, 0, p);
    __m256i hi[4] = {load256(b[2].qs), load256(b[3].qs), load256(b[6].qs), load256(b[7].qs)};
    store_q_half(hi, 1, p);
    store_block_lanes(block_f16s(b, [](const quant::BlockQ8_0& x) { return x.d; }), p.a);
    store_zero_mins(p);
}

// The 16 nibble bytes of blocks i < 8 (at qs0 + stride i; Q5_0 / Q5_1: fifth bits at qh0 + stride i)
// to p.q: a block is [low nibbles | high nibbles] (sub-blocks 2 i, 2 i + 1); half 0 of the panel
// takes blocks 0 1 4 5, half 1 blocks 2 3 6 7 (as unpack_q8_0).
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
    const __m256i lut = _mm256_broadcastsi128_si256(load128(kLut.v));
    const __m256i shift = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    constexpr int kBlocks[2][4] = {{0, 1, 4, 5}, {2, 3, 6, 7}};
    for (int h = 0; h < 2; ++h) {
        __m256i v[4];
        for (int i = 0; i < 4; ++i) {
            const int blk = kBlocks[h][i];
            const __m256i z = _mm256_broadcastsi128_si256(load128(qs(blk)));
            v[i] = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srlv_epi32(z, shift), _mm256_set1_epi8(0x0f)));
            if constexpr (kFifth) {
                v[i] = _mm256_add_epi8(v[i], _mm256_and_si256(bytes_from_bits(qh(blk)), _mm256_set1_epi8(16)));
            }
        }
        store_q_half(v, h, p);
    }
}

// GGML_E8M0_TO_FP32_HALF of the eight exponent bytes e (byte i: block i).
__m256 e8m0_half(uint64_t e) {
    const __m256i e32 = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(e)));
    const __m256i normal = _mm256_slli_epi32(_mm256_sub_epi32(e32, _mm256_set1_epi32(1)), 23);
    const __m256i subnormal = _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), e32);
    const __m256i small = _mm256_cmpgt_epi32(_mm256_set1_epi32(2), e32);
    return _mm256_castsi256_ps(_mm256_blendv_epi8(normal, subnormal, small));
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
        store_block_lanes(e8m0_half(e), p.a);
        store_zero_mins(p);
    } else if constexpr (requires { b->m; }) {
        store_block_d_m(b, p);
    } else {
        store_block_lanes(block_f16s(b, [](const Block& x) { return x.d; }), p.a);
        store_zero_mins(p);
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
    const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(iq4_xs_scales_vec(b)));
    store_block_lanes(_mm256_mul_ps(sc, _mm256_set1_ps(f16(b.d))), p.a);
    store_zero_mins(p);
}

// Q2_K / Q3_K (see the AVX-512 crumbs): half h of v[2 hh + i] is qs[32 hh ..] >> (2 i + 4 h), & 3.
__m256i crumbs(__m256i q, int i, int h) {
    return _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * i + 4 * h)), _mm256_set1_epi8(3));
}

void unpack_q2_K(const std::byte* row, int64_t k, int64_t, WeightPanel& p) {
    const auto& b = reinterpret_cast<const quant::BlockQ2_K*>(row)[k];
    const __m256i q[2] = {load256(b.qs), load256(b.qs + 32)};
    for (int h = 0; h < 2; ++h) {
        __m256i v[4] = {crumbs(q[0], 0, h), crumbs(q[0], 1, h), crumbs(q[1], 0, h), crumbs(q[1], 1, h)};
        store_q_half(v, h, p);
    }
    const __m128i sc = load128(b.scales);
    store_sub_block_lanes<false>(_mm_and_si128(sc, _mm_set1_epi8(0x0f)), f16(b.d), p.a);
    store_sub_block_lanes<false>(_mm_and_si128(_mm_srli_epi16(sc, 4), _mm_set1_epi8(0x0f)), -f16(b.dmin), p.m);
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
    const __m256i q[2] = {load256(b.qs), load256(b.qs + 32)};
    const __m256i hm = load256(b.hmask);
    for (int h = 0; h < 2; ++h) {
        __m256i v[4];
        for (int hh = 0; hh < 2; ++hh) {
            for (int i = 0; i < 2; ++i) {
                // Element 128 hh + 32 j + l has hmask bit 4 hh + j of hmask[l], j = i + 2 h here;
                // where it is clear the value is 4 less: stored, the crumb + 4 where it is set.
                static_assert(panel_bias(TensorType::Q3_K) == 4);
                v[2 * hh + i] = _mm256_or_si256(crumbs(q[hh], i, h), byte_bit(hm, 4 * hh + i + 2 * h, 2));
            }
        }
        store_q_half(v, h, p);
    }
    store_sub_block_lanes<true>(_mm_sub_epi8(q3_K_scales_vec(b.scales), _mm_set1_epi8(32)), f16(b.d), p.a);
    store_zero_mins(p);
}

template <TensorType kType, bool kMin, auto Unpack>
void run(const Tile& t, int64_t block) {
    run_panels<kMin, product_mode(kType), Unpack>(t, block);
}

}  // namespace

void tile_quant_avx2(const Tile& t) {
    using T = TensorType;
    // The type's unpacker and product mode become template parameters of the loop here and only here.
    switch (t.type) {
        case T::Q4_0: return run<T::Q4_0, false, unpack_nibble_blocks<T::Q4_0, quant::BlockQ4_0>>(t, 32);
        case T::Q4_1: return run<T::Q4_1, true, unpack_nibble_blocks<T::Q4_1, quant::BlockQ4_1>>(t, 32);
        case T::Q5_0: return run<T::Q5_0, false, unpack_nibble_blocks<T::Q5_0, quant::BlockQ5_0>>(t, 32);
        case T::Q5_1: return run<T::Q5_1, true, unpack_nibble_blocks<T::Q5_1, quant::BlockQ5_1>>(t, 32);
        case T::Q8_0: return run<T::Q8_0, false, unpack_q8_0>(t, 32);
        case T::IQ4_NL: return run<T::IQ4_NL, false, unpack_nibble_blocks<T::IQ4_NL, quant::BlockIq4Nl>>(t, 32);
        case T::MXFP4: return run<T::MXFP4, false, unpack_nibble_blocks<T::MXFP4, quant::BlockMxfp4>>(t, 32);
        case T::Q2_K: return run<T::Q2_K, true, unpack_q2_K>(t, 256);
        case T::Q3_K: return run<T::Q3_K, false, unpack_q3_K>(t, 256);
        case T::Q4_K: return run<T::Q4_K, true, unpack_q4_K>(t, 256);
        case T::Q5_K: return run<T::Q5_K, true, unpack_q5_K>(t, 256);
        case T::Q6_K: return run<T::Q6_K, false, unpack_q6_K>(t, 256);
        case T::IQ4_XS: return run<T::IQ4_XS, false, unpack_iq4_xs>(t, 256);
        default: return;  // matmul.cpp checked the type
    }
}

}  // namespace hymoe::cpu::detail

#endif  // __x86_64__
