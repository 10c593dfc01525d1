// The scalar reference of matmul for the block-quantized weight types: ggml's generic
// ggml_vec_dot_<type>_q8_<0|1|K> (ggml-cpu/quants.c), one output at a time. Integer sums are exact;
// the f32 sums follow ggml's order except that the K-quants' eight int32 lanes are one int32 sum
// (the same integers, one rounding instead of eight). Compiled with -ffp-contract=off
// (sources.cmake), like matmul.cpp.
#include <cstring>
#include <type_traits>

#include <fmt/format.h>

#include "cpu/matmul_kernels.hpp"
#include "hymoe/error.hpp"
#include "quant/blocks.hpp"
#include "quant/fp16.hpp"

namespace hymoe::cpu::detail {
namespace {

#include "cpu/matmul_tile.inl"

using namespace hymoe::quant;

float f16(half_bits h) {
    return fp16_to_f32(h);
}

template <class Block>
const Block* blocks(const std::byte* row) {
    return reinterpret_cast<const Block*>(row);
}

// ---- weights against Q8_0 activations ----

// ggml_vec_dot_q4_0_q8_0: (q - 8) * x per block, scaled by d_w then d_x.
float dot_q4_0(const std::byte* row, const ActBlockQ8* y, int64_t nb) {
    const auto* x = blocks<BlockQ4_0>(row);
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < nb; ++ib) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            sumi0 += ((x[ib].qs[j] & 0x0f) - 8) * y[ib].qs[j];
            sumi1 += ((x[ib].qs[j] >> 4) - 8) * y[ib].qs[j + kQK / 2];
        }
        sumf += static_cast<float>(sumi0 + sumi1) * f16(x[ib].d) * y[ib].d;
    }
    return sumf;
}

// ggml_vec_dot_q5_0_q8_0: the fifth bit of element j is bit j of qh.
float dot_q5_0(const std::byte* row, const ActBlockQ8* y, int64_t nb) {
    const auto* x = blocks<BlockQ5_0>(row);
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < nb; ++ib) {
        uint32_t qh;
        std::memcpy(&qh, x[ib].qh, sizeof qh);
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            const auto xh0 = static_cast<int>(((qh >> j) << 4) & 0x10);
            const auto xh1 = static_cast<int>((qh >> (j + 12)) & 0x10);
            sumi0 += (((x[ib].qs[j] & 0x0f) | xh0) - 16) * y[ib].qs[j];
            sumi1 += (((x[ib].qs[j] >> 4) | xh1) - 16) * y[ib].qs[j + kQK / 2];
        }
        sumf += (f16(x[ib].d) * y[ib].d) * static_cast<float>(sumi0 + sumi1);
    }
    return sumf;
}

// ggml_vec_dot_q8_0_q8_0.
float dot_q8_0(const std::byte* row, const ActBlockQ8* y, int64_t nb) {
    const auto* x = blocks<BlockQ8_0>(row);
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < nb; ++ib) {
        int sumi = 0;
        for (int j = 0; j < kQK; ++j) sumi += x[ib].qs[j] * y[ib].qs[j];
        sumf += static_cast<float>(sumi) * (f16(x[ib].d) * y[ib].d);
    }
    return sumf;
}

// ggml_vec_dot_iq4_nl_q8_0: nibbles index kvalues_iq4nl.
float dot_iq4_nl(const std::byte* row, const ActBlockQ8* y, int64_t nb) {
    const auto* x = blocks<BlockIq4Nl>(row);
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < nb; ++ib) {
        int sumi1 = 0, sumi2 = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            sumi1 += y[ib].qs[j] * kValuesIq4nl[x[ib].qs[j] & 0x0f];
            sumi2 += y[ib].qs[j + kQK / 2] * kValuesIq4nl[x[ib].qs[j] >> 4];
        }
        sumf += (f16(x[ib].d) * y[ib].d) * static_cast<float>(sumi1 + sumi2);
    }
    return sumf;
}

// ggml_vec_dot_mxfp4_q8_0: nibbles index kvalues_mxfp4, the block scale is 2^(e - 128).
float dot_mxfp4(const std::byte* row, const ActBlockQ8* y, int64_t nb) {
    const auto* x = blocks<BlockMxfp4>(row);
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < nb; ++ib) {
        const float d = y[ib].d * e8m0_to_f32_half(x[ib].e);
        int sumi1 = 0, sumi2 = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            sumi1 += y[ib].qs[j] * kValuesMxfp4[x[ib].qs[j] & 0x0f];
            sumi2 += y[ib].qs[j + kQK / 2] * kValuesMxfp4[x[ib].qs[j] >> 4];
        }
        sumf += d * static_cast<float>(sumi1 + sumi2);
    }
    return sumf;
}

// ---- weights with a min against Q8_1 activations ----

// ggml_vec_dot_q4_1_q8_1: d_w d_x sum(q x) + m_w s_x.
float dot_q4_1(const std::byte* row, const ActBlockQ8_1* y, int64_t nb) {
    const auto* x = blocks<BlockQ4_1>(row);
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < nb; ++ib) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            sumi0 += (x[ib].qs[j] & 0x0f) * y[ib].qs[j];
            sumi1 += (x[ib].qs[j] >> 4) * y[ib].qs[j + kQK / 2];
        }
        sumf += (f16(x[ib].d) * y[ib].d) * static_cast<float>(sumi0 + sumi1) + f16(x[ib].m) * y[ib].s;
    }
    return sumf;
}

// ggml_vec_dot_q5_1_q8_1.
float dot_q5_1(const std::byte* row, const ActBlockQ8_1* y, int64_t nb) {
    const auto* x = blocks<BlockQ5_1>(row);
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < nb; ++ib) {
        uint32_t qh;
        std::memcpy(&qh, x[ib].qh, sizeof qh);
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            const auto xh0 = static_cast<int>(((qh >> j) << 4) & 0x10);
            const auto xh1 = static_cast<int>((qh >> (j + 12)) & 0x10);
            sumi0 += ((x[ib].qs[j] & 0x0f) | xh0) * y[ib].qs[j];
            sumi1 += ((x[ib].qs[j] >> 4) | xh1) * y[ib].qs[j + kQK / 2];
        }
        sumf += (f16(x[ib].d) * y[ib].d) * static_cast<float>(sumi0 + sumi1) + f16(x[ib].m) * y[ib].s;
    }
    return sumf;
}

// ---- K-quants and IQ4_XS against Q8_K activations ----

// get_scale_min_k4: the 6-bit scale and min of Q4_K / Q5_K group j (0..7).
void scale_min_k4(int j, const uint8_t* q, int& sc, int& mn) {
    if (j < 4) {
        sc = q[j] & 63;
        mn = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// ggml_vec_dot_q2_K_q8_K: dall * sum(scale * q x) - dmin * sum(min * bsum).
float dot_q2_K(const std::byte* row, const ActBlockQ8K* y, int64_t nb) {
    const auto* x = blocks<BlockQ2_K>(row);
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* sc = x[i].scales;
        int summs = 0;
        for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (sc[j] >> 4);
        const float dall = y[i].d * f16(x[i].d);
        const float dmin = y[i].d * f16(x[i].dmin);
        const uint8_t* q2 = x[i].qs;
        const int8_t* q8 = y[i].qs;
        int isum = 0, is = 0;
        for (int k = 0; k < kQK_K / 128; ++k) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; ++half) {
                    const int d = sc[is++] & 0x0f;
                    int isuml = 0;
                    for (int l = 16 * half; l < 16 * half + 16; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
                    isum += d * isuml;
                }
                q8 += 32;
            }
            q2 += 32;
        }
        sumf += dall * static_cast<float>(isum) - dmin * static_cast<float>(summs);
    }
    return sumf;
}

// ggml_vec_dot_q3_K_q8_K: values (2 low bits) - 4 where the hmask bit is clear; 6-bit scales - 32.
float dot_q3_K(const std::byte* row, const ActBlockQ8K* y, int64_t nb) {
    const auto* x = blocks<BlockQ3_K>(row);
    constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        int8_t aux8[kQK_K];
        int8_t* a = aux8;
        const uint8_t* q3 = x[i].qs;
        const uint8_t* hm = x[i].hmask;
        uint8_t m = 1;
        for (int j = 0; j < kQK_K; j += 128) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int l = 0; l < 32; ++l) a[l] = static_cast<int8_t>(((q3[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                a += 32;
                m = static_cast<uint8_t>(m << 1);
            }
            q3 += 32;
        }
        uint32_t auxs[4];
        std::memcpy(auxs, x[i].scales, 12);
        const uint32_t tmp = auxs[2];
        auxs[2] = ((auxs[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
        auxs[3] = ((auxs[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
        auxs[0] = (auxs[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
        auxs[1] = (auxs[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
        int8_t scales[16];
        std::memcpy(scales, auxs, 16);
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += y[i].qs[16 * j + l] * aux8[16 * j + l];
            isum += (scales[j] - 32) * s;
        }
        sumf += f16(x[i].d) * y[i].d * static_cast<float>(isum);
    }
    return sumf;
}

// The elements of a Q4_K / Q5_K super-block: element 64 i + l is the low nibble of qs[32 i + l],
// element 64 i + 32 + l the high one (+ 16 where Q5_K's qh bit 2 i, resp. 2 i + 1, of byte l is set).
template <class Block>
float dot_q45_K(const std::byte* row, const ActBlockQ8K* y, int64_t nb) {
    const auto* x = blocks<Block>(row);
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        int8_t aux8[kQK_K];
        for (int g = 0; g < 4; ++g) {
            for (int l = 0; l < 32; ++l) {
                int lo = x[i].qs[32 * g + l] & 0x0f, hi = x[i].qs[32 * g + l] >> 4;
                if constexpr (std::is_same_v<Block, BlockQ5_K>) {
                    lo += (x[i].qh[l] >> (2 * g)) & 1 ? 16 : 0;
                    hi += (x[i].qh[l] >> (2 * g + 1)) & 1 ? 16 : 0;
                }
                aux8[64 * g + l] = static_cast<int8_t>(lo);
                aux8[64 * g + 32 + l] = static_cast<int8_t>(hi);
            }
        }
        int sumi = 0, isum = 0;
        for (int j = 0; j < 8; ++j) {
            int sc = 0, mn = 0;
            scale_min_k4(j, x[i].scales, sc, mn);
            sumi += (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]) * mn;
            int s = 0;
            for (int l = 0; l < 32; ++l) s += y[i].qs[32 * j + l] * aux8[32 * j + l];
            isum += sc * s;
        }
        const float d = f16(x[i].d) * y[i].d;
        const float dmin = f16(x[i].dmin) * y[i].d;
        sumf += d * static_cast<float>(isum);
        sumf -= dmin * static_cast<float>(sumi);
    }
    return sumf;
}

// ggml_vec_dot_q6_K_q8_K: 4 low bits in ql, 2 high in qh, value - 32, int8 scale per 16.
float dot_q6_K(const std::byte* row, const ActBlockQ8K* y, int64_t nb) {
    const auto* x = blocks<BlockQ6_K>(row);
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; ++i) {
        int8_t aux8[kQK_K];
        const uint8_t* ql = x[i].ql;
        const uint8_t* qh = x[i].qh;
        for (int n = 0; n < kQK_K; n += 128) {
            for (int l = 0; l < 32; ++l) {
                aux8[n + l] = static_cast<int8_t>(((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32);
                aux8[n + l + 32] = static_cast<int8_t>(((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
                aux8[n + l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                aux8[n + l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
            ql += 64;
            qh += 32;
        }
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += y[i].qs[16 * j + l] * aux8[16 * j + l];
            isum += x[i].scales[j] * s;
        }
        sumf += f16(x[i].d) * y[i].d * static_cast<float>(isum);
    }
    return sumf;
}

// ggml_vec_dot_iq4_xs_q8_K: 6-bit scales - 32 per 32 elements, nibbles index kvalues_iq4nl.
float dot_iq4_xs(const std::byte* row, const ActBlockQ8K* y, int64_t nb) {
    const auto* x = blocks<BlockIq4Xs>(row);
    float sumf = 0.0f;
    for (int64_t ibl = 0; ibl < nb; ++ibl) {
        const float d4d8 = f16(x[ibl].d) * y[ibl].d;
        uint32_t h = x[ibl].scales_h;
        const uint8_t* qs = x[ibl].qs;
        const int8_t* q8 = y[ibl].qs;
        for (int ib = 0; ib < kQK_K / 32; ib += 2) {
            const int ls1 = static_cast<int>((x[ibl].scales_l[ib / 2] & 0x0f) | ((h << 4) & 0x30));
            const int ls2 = static_cast<int>((x[ibl].scales_l[ib / 2] >> 4) | ((h << 2) & 0x30));
            h >>= 4;
            const float d1 = d4d8 * static_cast<float>(ls1 - 32);
            const float d2 = d4d8 * static_cast<float>(ls2 - 32);
            int sumi1 = 0, sumi2 = 0;
            for (int j = 0; j < 16; ++j) {
                sumi1 += q8[j] * kValuesIq4nl[qs[j] & 0x0f];
                sumi2 += q8[j + 16] * kValuesIq4nl[qs[j] >> 4];
            }
            sumf += d1 * static_cast<float>(sumi1 + sumi2);
            qs += 16;
            q8 += 32;
            sumi1 = sumi2 = 0;
            for (int j = 0; j < 16; ++j) {
                sumi1 += q8[j] * kValuesIq4nl[qs[j] & 0x0f];
                sumi2 += q8[j + 16] * kValuesIq4nl[qs[j] >> 4];
            }
            sumf += d2 * static_cast<float>(sumi1 + sumi2);
            qs += 16;
            q8 += 32;
        }
    }
    return sumf;
}

template <class Act, float (*Dot)(const std::byte*, const Act*, int64_t)>
struct QuantKernel {
    static constexpr int kRows = 1;
    int64_t nb;  // blocks per row
    template <int NT>
    void dot(const std::byte* w, const std::byte* const* xs, float* out) const {
        for (int i = 0; i < NT; ++i) out[i] = Dot(w, reinterpret_cast<const Act*>(xs[i]), nb);
    }
};

template <float (*Dot)(const std::byte*, const ActBlockQ8*, int64_t)>
void run_q8(const Tile& t) {
    run_tile(t, QuantKernel<ActBlockQ8, Dot>{t.cols / kQK});
}
template <float (*Dot)(const std::byte*, const ActBlockQ8_1*, int64_t)>
void run_q8_1(const Tile& t) {
    run_tile(t, QuantKernel<ActBlockQ8_1, Dot>{t.cols / kQK});
}
template <float (*Dot)(const std::byte*, const ActBlockQ8K*, int64_t)>
void run_q8_K(const Tile& t) {
    run_tile(t, QuantKernel<ActBlockQ8K, Dot>{t.cols / kQK_K});
}

}  // namespace

void tile_scalar_quant(const Tile& t) {
    switch (t.type) {
        case TensorType::Q4_0: return run_q8<dot_q4_0>(t);
        case TensorType::Q5_0: return run_q8<dot_q5_0>(t);
        case TensorType::Q8_0: return run_q8<dot_q8_0>(t);
        case TensorType::IQ4_NL: return run_q8<dot_iq4_nl>(t);
        case TensorType::MXFP4: return run_q8<dot_mxfp4>(t);
        case TensorType::Q4_1: return run_q8_1<dot_q4_1>(t);
        case TensorType::Q5_1: return run_q8_1<dot_q5_1>(t);
        case TensorType::Q2_K: return run_q8_K<dot_q2_K>(t);
        case TensorType::Q3_K: return run_q8_K<dot_q3_K>(t);
        case TensorType::Q4_K: return run_q8_K<dot_q45_K<BlockQ4_K>>(t);
        case TensorType::Q5_K: return run_q8_K<dot_q45_K<BlockQ5_K>>(t);
        case TensorType::Q6_K: return run_q8_K<dot_q6_K>(t);
        case TensorType::IQ4_XS: return run_q8_K<dot_iq4_xs>(t);
        default: break;
    }
    throw Error(fmt::format("matmul: no kernel for weight type {}", type_name(t.type)));
}

}  // namespace hymoe::cpu::detail
