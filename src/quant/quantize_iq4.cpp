// The encoders of the non-linear 4-bit formats: ggml's quantize_row_iq4_nl_ref and
// quantize_row_iq4_xs_ref (both quantize_row_iq4_nl_impl without an importance matrix).
//
// Each element is a signed code-book value kValuesIq4nl[q] times a block scale; the scale is a
// weighted least-squares fit (weights x^2) over the levels picked for a few trial scales. As in
// quantize_k.cpp, every f32 expression keeps ggml's operand order and sources.cmake turns FMA
// contraction off, so the bytes equal llama.cpp's (tests/test_quant.cpp checks).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "quant/blocks.hpp"
#include "quant/fp16.hpp"
#include "quant/quant.hpp"

namespace hymoe::quant::detail {

namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS
constexpr int kBlock = 32;              // elements per scale in both formats

int nearest_int(float fval) {  // as in quantize_k.cpp: round to nearest even via 1.5 * 2^23
    const float val = fval + 12582912.0f;
    return (std::bit_cast<int32_t>(val) & 0x007fffff) - 0x00400000;
}

// ggml's best_index_int8 over the sorted code book: x picks level i once it reaches the
// midpoint of levels i-1 and i (doubling both sides keeps the comparison exact). Branch-free
// binary search over the 16 levels.
int best_index_iq4(float x) {
    const float x2 = x + x;
    int idx = 0;
    for (int step = 8; step > 0; step >>= 1) {
        const int j = idx + step;
        idx = x2 >= static_cast<float>(kValuesIq4nl[j - 1] + kValuesIq4nl[j]) ? j : idx;
    }
    return idx;
}

// The weighted least-squares scale of the levels x * id picks, accumulated as ggml does.
//   xb: [32]; L: [32] the levels, written when L is not null.
void fit_levels(const float* xb, float id, uint8_t* L, float& sumqx, float& sumq2) {
    sumqx = sumq2 = 0;
    for (int j = 0; j < kBlock; ++j) {
        const int l = best_index_iq4(id * xb[j]);
        if (L != nullptr) L[j] = static_cast<uint8_t>(l);
        const auto q = static_cast<float>(kValuesIq4nl[l]);
        const float w = xb[j] * xb[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
    }
}

// One 32-element block's scale. The levels of a first scale (max / -127, putting the largest
// element on the code book's -127; for ntry > 0 max / 127, on its positive side) give a
// least-squares d; then 2 ntry + 1 trial scales (itry - 127) / max may improve it.
//   xb: [32]; L: [32] the levels of the first scale. An all-zero block: scale 0, levels 0.
float fit_block(const float* xb, int ntry, uint8_t* L) {
    float amax = 0, max = 0;
    for (int j = 0; j < kBlock; ++j) {
        const float ax = std::fabs(xb[j]);
        if (ax > amax) {
            amax = ax;
            max = xb[j];
        }
    }
    if (amax < kGroupMaxEps) {
        std::fill(L, L + kBlock, uint8_t{0});
        return 0.0f;
    }
    const auto v0 = static_cast<float>(kValuesIq4nl[0]);
    float d = ntry > 0 ? -max / v0 : max / v0;
    float sumqx = 0, sumq2 = 0;
    fit_levels(xb, 1 / d, L, sumqx, sumq2);
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -ntry; itry <= ntry; ++itry) {
        const float id = static_cast<float>(itry + kValuesIq4nl[0]) / max;
        fit_levels(xb, id, nullptr, sumqx, sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

// Block i of 32: qs[16 i + j] = level j (low nibble) | level 16 + j (high nibble).
void pack_nibbles(const uint8_t* L, int n, uint8_t* qs) {
    for (int i = 0; i < n / kBlock; ++i) {
        for (int j = 0; j < 16; ++j) qs[16 * i + j] = static_cast<uint8_t>(L[32 * i + j] | L[32 * i + 16 + j] << 4);
    }
}

}  // namespace

// The reference path (ntry = -1) keeps the first fit: scale = its least-squares d, levels of
// d = max / -127 (the trial loop runs from 1 to -1, i.e. not at all).
void quantize_iq4_nl(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK) {
        BlockIq4Nl b{};
        uint8_t L[kQK];
        const float d = fit_block(x, -1, L);
        b.d = f32_to_fp16(d);
        pack_nibbles(L, kQK, b.qs);
        std::memcpy(dst + i * static_cast<int64_t>(sizeof b), &b, sizeof b);
    }
}

// Eight blocks of 32 fitted with 15 trial scales each; their scales quantized to signed 6 bits
// against the largest (d = max_scale / -32) and every block's levels re-picked with its stored
// scale d * l.
void quantize_iq4_xs(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
        BlockIq4Xs b{};
        uint8_t L[kQK_K];
        float scales[kQK_K / kBlock];
        float max_scale = 0, amax_scale = 0;
        for (int ib = 0; ib < kQK_K / kBlock; ++ib) {
            scales[ib] = fit_block(x + kBlock * ib, 7, L + kBlock * ib);
            const float abs_d = std::fabs(scales[ib]);
            if (abs_d > amax_scale) {
                amax_scale = abs_d;
                max_scale = scales[ib];
            }
        }
        const float d = -max_scale / 32;  // -0.0 for an all-zero block, stored as f16 0x8000 as ggml does
        b.d = f32_to_fp16(d);
        const float id = d != 0.0f ? 1 / d : 0.f;
        for (int ib = 0; ib < kQK_K / kBlock; ++ib) {
            int l = std::max(-32, std::min(31, nearest_int(id * scales[ib])));
            const float dl = d * static_cast<float>(l);
            const float idl = dl != 0.0f ? 1 / dl : 0.f;
            for (int j = 0; j < kBlock; ++j)
                L[kBlock * ib + j] = static_cast<uint8_t>(best_index_iq4(idl * x[kBlock * ib + j]));
            l += 32;
            if (ib % 2 == 0) {
                b.scales_l[ib / 2] = static_cast<uint8_t>(l & 0x0f);
            } else {
                b.scales_l[ib / 2] = static_cast<uint8_t>(b.scales_l[ib / 2] | (l & 0x0f) << 4);
            }
            b.scales_h = static_cast<uint16_t>(b.scales_h | (l >> 4) << (2 * ib));
        }
        pack_nibbles(L, kQK_K, b.qs);
        std::memcpy(dst + i * static_cast<int64_t>(sizeof b), &b, sizeof b);
    }
}

}  // namespace hymoe::quant::detail
