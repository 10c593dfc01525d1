// The encoders of the 256-element super-block formats: ggml's quantize_row_{q2,q3,q4,q5,q6,q8}_K_ref,
// what llama-quantize writes when it has no importance matrix.
//
// The scale searches (make_qkx2_quants, make_qx_quants, make_q3_quants) are iterative fits whose
// result depends on every rounding, so each sum and product keeps ggml's operand order, integers
// meet floats where ggml converts them, and sources.cmake compiles this file without FMA
// contraction. tests/test_quant.cpp compares the bytes with llama.cpp's own C code.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "quant/blocks.hpp"
#include "quant/fp16.hpp"
#include "quant/quant.hpp"

namespace hymoe::quant::detail {

namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS: a sub-block below it is all zero

// ggml's nearest_int: adding 1.5 * 2^23 leaves round-to-nearest-even(fval) in the low mantissa
// bits. Valid for |fval| <= 2^22 - 1, which every caller here guarantees by construction.
int nearest_int(float fval) {
    const float val = fval + 12582912.0f;
    const auto i = std::bit_cast<int32_t>(val);
    return (i & 0x007fffff) - 0x00400000;
}

float h2f(half_bits h) {
    return fp16_to_f32(h);
}

template <class Block>
void store(std::byte* dst, int64_t i, const Block& b) {
    std::memcpy(dst + i * static_cast<int64_t>(sizeof(Block)), &b, sizeof(Block));
}

// Fits x[i] ~ scale * L[i] - the_min with L in [0, nmax], minimizing the weighted error
// (absolute if use_mad, squared otherwise). Tries the plain min/max grid first, then nstep + 1
// grids stretched by (rmin + rdelta * is) steps, each followed by a least-squares solve for
// scale and min. Returns scale; *the_min >= 0 is the offset to subtract.
//   x, weights: [n]; L, Laux: [n] scratch and result.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min, uint8_t* Laux,
                       float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0];
    float max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        std::fill(L, L + n, uint8_t{0});
        *the_min = -min;
        return 0.0f;
    }
    const auto fnmax = static_cast<float>(nmax);
    float iscale = fnmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
        float diff = scale * static_cast<float>(L[i]) + min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * static_cast<float>(is) + fnmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
            Laux[i] = static_cast<uint8_t>(l);
            const float w = weights[i];
            const auto fl = static_cast<float>(l);
            sum_l += w * fl;
            sum_l2 += w * fl * fl;
            sum_xl += w * fl * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
                diff = use_mad ? std::fabs(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                std::copy(Laux, Laux + n, L);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

// ggml's make_qx_quants with rmse_type 1 and no importance weights (the only use without an
// imatrix, Q6_K): a symmetric fit x ~ scale * (L - nmax), L in [0, 2 nmax), weighted by x^2,
// trying 19 scales around -nmax / max and keeping the best least-squares one.
//   x: [n]; L: [n] result.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < kGroupMaxEps) {
        std::fill(L, L + n, int8_t{0});
        return 0.0f;
    }
    const auto clamp = [nmax](int l) { return std::max(-nmax, std::min(nmax - 1, l)); };
    float iscale = static_cast<float>(-nmax) / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = clamp(nearest_int(iscale * x[i]));
        L[i] = static_cast<int8_t>(l + nmax);
        const float w = x[i] * x[i];
        const auto fl = static_cast<float>(l);
        sumlx += w * x[i] * fl;
        suml2 += w * fl * fl;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            const auto fl = static_cast<float>(clamp(nearest_int(iscale * x[i])));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * fl;
            suml2 += w * fl * fl;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + clamp(nearest_int(iscale * x[i])));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// ggml's make_q3_quants with do_rmse: a symmetric fit as make_qx_quants, then up to five passes
// moving single elements to the level that improves the x^2-weighted least-squares fit.
//   x: [n]; L: [n] result in [0, 2 nmax).
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < kGroupMaxEps) {
        std::fill(L, L + n, int8_t{0});
        return 0.0f;
    }
    const auto clamp = [nmax](int l) { return std::max(-nmax, std::min(nmax - 1, l)); };
    const float iscale = static_cast<float>(-nmax) / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = clamp(nearest_int(iscale * x[i]));
        L[i] = static_cast<int8_t>(l);
        const float w = x[i] * x[i];
        const auto fl = static_cast<float>(l);
        sumlx += w * x[i] * fl;
        suml2 += w * fl * fl;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            const auto li = static_cast<float>(L[i]);
            float slx = sumlx - w * x[i] * li;
            if (slx > 0) {
                float sl2 = suml2 - w * li * li;
                const int new_l = clamp(nearest_int(x[i] * sl2 / slx));
                if (new_l != L[i]) {
                    const auto fl = static_cast<float>(new_l);
                    slx += w * x[i] * fl;
                    sl2 += w * fl * fl;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = static_cast<int8_t>(new_l);
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (n_changed == 0) break;
    }
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// ggml's get_scale_min_k4 and its inverse: eight 6-bit scales and mins in 12 bytes. Sub-blocks
// 0..3 keep theirs in the low 6 bits of bytes 0..3 (scale) and 4..7 (min); sub-blocks 4..7 keep
// their low 4 bits in the nibbles of bytes 8..11 and their top 2 bits in the top 2 bits of
// bytes 0..7.
void pack_scale_min_k4(int j, uint8_t ls, uint8_t lm, uint8_t* q) {
    if (j < 4) {
        q[j] = ls;
        q[j + 4] = lm;
    } else {
        q[j + 4] = static_cast<uint8_t>((ls & 0x0f) | (lm & 0x0f) << 4);
        q[j - 4] = static_cast<uint8_t>(q[j - 4] | (ls >> 4) << 6);
        q[j] = static_cast<uint8_t>(q[j] | (lm >> 4) << 6);
    }
}
void scale_min_k4(int j, const uint8_t* q, int& sc, int& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// Q4_K and Q5_K share everything but nmax and the search grid: eight sub-blocks of 32 fitted by
// make_qkx2_quants (weights av_x + |x|), their scales and mins quantized to 6 bits against the
// block maxima (d = max_scale / 63, dmin = max_min / 63), then every element re-quantized with
// the stored (f16-rounded) scales.
//   x: [256]; scales_out: [12]; returns d and dmin as f16 bits, L: [256] levels in [0, nmax].
void quantize_kx(const float* x, int nmax, float rmin, int nstep, half_bits& d_out, half_bits& dmin_out,
                 uint8_t (&scales_out)[kKScaleSize], uint8_t (&L)[kQK_K]) {
    uint8_t Laux[32];
    float weights[32];
    float mins[kQK_K / 32];
    float scales[kQK_K / 32];
    float max_scale = 0;  // the mins are subtracted, so the scales are never negative
    float max_min = 0;
    for (int j = 0; j < kQK_K / 32; ++j) {
        const float* xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
        scales[j] = make_qkx2_quants(32, nmax, xs, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    std::memset(scales_out, 0, sizeof(scales_out));
    for (int j = 0; j < kQK_K / 32; ++j) {
        // ggml stores nearest_int in a uint8_t before clamping to 63: & 0xff is that narrowing.
        const int ls = std::min(63, nearest_int(inv_scale * scales[j]) & 0xff);
        const int lm = std::min(63, nearest_int(inv_min * mins[j]) & 0xff);
        pack_scale_min_k4(j, static_cast<uint8_t>(ls), static_cast<uint8_t>(lm), scales_out);
    }
    d_out = f32_to_fp16(max_scale / 63.f);
    dmin_out = f32_to_fp16(max_min / 63.f);
    for (int j = 0; j < kQK_K / 32; ++j) {
        int sc = 0, m = 0;
        scale_min_k4(j, scales_out, sc, m);
        const float d = h2f(d_out) * static_cast<float>(sc);
        if (d == 0.0f) continue;  // keeps the levels of the fit, as ggml does
        const float dm = h2f(dmin_out) * static_cast<float>(m);
        for (int ii = 0; ii < 32; ++ii) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
        }
    }
}

// The 2-bit planes of Q2_K / Q3_K: in each half of 128, byte l of qs[32] holds elements l, l + 32,
// l + 64, l + 96 at bits 0, 2, 4, 6.
template <class Level>
void pack_2bit(const Level (&L)[kQK_K], uint8_t (&qs)[kQK_K / 4]) {
    for (int j = 0; j < kQK_K; j += 128) {
        for (int l = 0; l < 32; ++l) {
            qs[j / 4 + l] =
                static_cast<uint8_t>(L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6);
        }
    }
}

}  // namespace

// Sixteen sub-blocks of 16 fitted by make_qkx2_quants (weights |x|, absolute error), scales and
// mins quantized to 4 bits against their maxima, elements re-quantized with the stored scales.
void quantize_q2_k(const float* x, int64_t nb, std::byte* dst) {
    constexpr float q4scale = 15.f;
    for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
        uint8_t L[kQK_K];
        uint8_t Laux[16];
        float weights[16];
        float mins[kQK_K / 16];
        float scales[kQK_K / 16];
        float max_scale = 0;
        float max_min = 0;
        for (int j = 0; j < kQK_K / 16; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        BlockQ2_K b{};
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < kQK_K / 16; ++j) b.scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
            b.d = f32_to_fp16(max_scale / q4scale);
        } else {
            b.d = f32_to_fp16(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < kQK_K / 16; ++j) {
                b.scales[j] = static_cast<uint8_t>(b.scales[j] | nearest_int(iscale * mins[j]) << 4);
            }
            b.dmin = f32_to_fp16(max_min / q4scale);
        } else {
            b.dmin = f32_to_fp16(0.f);
        }
        for (int j = 0; j < kQK_K / 16; ++j) {
            const float d = h2f(b.d) * static_cast<float>(b.scales[j] & 0x0f);
            if (d == 0.0f) continue;
            const float dm = h2f(b.dmin) * static_cast<float>(b.scales[j] >> 4);
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
            }
        }
        pack_2bit(L, b.qs);
        store(dst, i, b);
    }
}

// Sixteen sub-blocks of 16 fitted symmetrically by make_q3_quants (levels -4..3), their scales
// quantized to signed 6 bits against the one of largest magnitude (d = max_scale / -32).
void quantize_q3_k(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
        int8_t L[kQK_K];
        float scales[kQK_K / 16];
        float max_scale = 0;
        float amax = 0;
        for (int j = 0; j < kQK_K / 16; ++j) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            const float scale = std::fabs(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        BlockQ3_K b{};
        if (max_scale != 0.0f) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < kQK_K / 16; ++j) {
                int l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
                l = std::max(-32, std::min(31, l)) + 32;
                if (j < 8) {
                    b.scales[j] = static_cast<uint8_t>(l & 0x0f);
                } else {
                    b.scales[j - 8] = static_cast<uint8_t>(b.scales[j - 8] | (l & 0x0f) << 4);
                }
                b.scales[j % 4 + 8] = static_cast<uint8_t>(b.scales[j % 4 + 8] | (l >> 4) << (2 * (j / 4)));
            }
            b.d = f32_to_fp16(1 / iscale);
        } else {
            b.d = f32_to_fp16(0.f);
        }
        for (int j = 0; j < kQK_K / 16; ++j) {
            const int lo = j < 8 ? b.scales[j] & 0x0f : b.scales[j - 8] >> 4;
            const int sc = (lo | ((b.scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
            const float d = h2f(b.d) * static_cast<float>(sc);
            if (d == 0.0f) continue;
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = static_cast<int8_t>(std::max(-4, std::min(3, l)) + 4);
            }
        }
        // The high bit (level >= 4) of element j goes to bit j / 32 of hmask[j % 32].
        for (int j = 0; j < kQK_K; ++j) {
            if (L[j] > 3) {
                b.hmask[j % 32] = static_cast<uint8_t>(b.hmask[j % 32] | 1 << (j / 32));
                L[j] = static_cast<int8_t>(L[j] - 4);
            }
        }
        pack_2bit(L, b.qs);
        store(dst, i, b);
    }
}

void quantize_q4_k(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
        BlockQ4_K b{};
        uint8_t L[kQK_K];
        quantize_kx(x, 15, -1.f, 20, b.d, b.dmin, b.scales, L);
        // Chunk c of 64: qs[32 c + l] = element 64 c + l (low nibble) | element 64 c + 32 + l (high).
        for (int c = 0; c < 4; ++c) {
            for (int l = 0; l < 32; ++l) {
                b.qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | L[64 * c + l + 32] << 4);
            }
        }
        store(dst, i, b);
    }
}

void quantize_q5_k(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
        BlockQ5_K b{};
        uint8_t L[kQK_K];
        quantize_kx(x, 31, -0.5f, 15, b.d, b.dmin, b.scales, L);
        // As Q4_K's nibbles; the fifth bit of sub-block s (= element 32 s + l) is bit s of qh[l].
        for (int c = 0; c < 4; ++c) {
            for (int l = 0; l < 32; ++l) {
                const int l1 = L[64 * c + l];
                const int l2 = L[64 * c + l + 32];
                b.qh[l] = static_cast<uint8_t>(b.qh[l] | (l1 >> 4) << (2 * c) | (l2 >> 4) << (2 * c + 1));
                b.qs[32 * c + l] = static_cast<uint8_t>((l1 & 0x0f) | (l2 & 0x0f) << 4);
            }
        }
        store(dst, i, b);
    }
}

// Sixteen sub-blocks of 16 fitted by make_qx_quants (levels -32..31), their scales quantized to
// int8 against the one of largest magnitude (d = max_scale / -128).
void quantize_q6_k(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
        int8_t L[kQK_K];
        float scales[kQK_K / 16];
        float max_scale = 0;
        float max_abs_scale = 0;
        for (int ib = 0; ib < kQK_K / 16; ++ib) {
            scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            const float abs_scale = std::fabs(scales[ib]);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scales[ib];
            }
        }
        BlockQ6_K b{};  // an all-zero block (d = 0) when every sub-block is
        if (max_abs_scale >= kGroupMaxEps) {
            const float iscale = -128.f / max_scale;
            b.d = f32_to_fp16(1 / iscale);
            for (int ib = 0; ib < kQK_K / 16; ++ib) {
                b.scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
            }
            for (int j = 0; j < kQK_K / 16; ++j) {
                const float d = h2f(b.d) * static_cast<float>(b.scales[j]);
                if (d == 0.0f) continue;
                for (int ii = 0; ii < 16; ++ii) {
                    const int l = nearest_int(x[16 * j + ii] / d);
                    L[16 * j + ii] = static_cast<int8_t>(std::max(-32, std::min(31, l)) + 32);
                }
            }
            // Half h of 128: ql[64 h + l] = element l (low) | l + 64 (high), ql[64 h + 32 + l] =
            // element l + 32 | l + 96; qh[32 h + l] their top two bits at 0, 2, 4, 6.
            for (int h = 0; h < 2; ++h) {
                const int8_t* Lh = L + 128 * h;
                for (int l = 0; l < 32; ++l) {
                    b.ql[64 * h + l] = static_cast<uint8_t>((Lh[l] & 0x0f) | (Lh[l + 64] & 0x0f) << 4);
                    b.ql[64 * h + l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0x0f) | (Lh[l + 96] & 0x0f) << 4);
                    b.qh[32 * h + l] = static_cast<uint8_t>(Lh[l] >> 4 | (Lh[l + 32] >> 4) << 2 |
                                                            (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
                }
            }
        }
        store(dst, i, b);
    }
}

// The activation format of the K-quant dot products: d = max / -127 with max the signed element
// of largest magnitude, which so becomes q = -127; q = nearest_int(x / d), at most 127; bsums per
// group of 16. ggml leaves bsums unwritten for an all-zero block; here they are zero.
void quantize_q8_k(const float* x, int64_t nb, std::byte* dst) {
    for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
        float max = 0;
        float amax = 0;
        for (int j = 0; j < kQK_K; ++j) {
            const float ax = std::fabs(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        BlockQ8_K b{};
        if (amax != 0.0f) {
            const float iscale = -127.f / max;
            for (int j = 0; j < kQK_K; ++j) b.qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
            for (int j = 0; j < kQK_K / 16; ++j) {
                int sum = 0;
                for (int ii = 0; ii < 16; ++ii) sum += b.qs[16 * j + ii];
                b.bsums[j] = static_cast<int16_t>(sum);
            }
            b.d = 1 / iscale;
        }
        store(dst, i, b);
    }
}

}  // namespace hymoe::quant::detail
