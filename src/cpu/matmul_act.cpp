// The activation side of matmul for block-quantized weights: ggml's Q8_1 and Q8_K quantizers and
// the panels the SIMD kernels read (matmul_kernels.hpp describes the layout). Compiled with
// -ffp-contract=off (sources.cmake): the quantizers must round exactly as ggml's C code does.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "cpu/matmul_kernels.hpp"
#include "hymoe/error.hpp"
#include "quant/fp16.hpp"

namespace hymoe::cpu::detail {

namespace {

// ggml's nearest_int: round to nearest even through the f32 mantissa (|fval| < 2^22).
int nearest_int(float fval) {
    const float val = fval + 12582912.0f;
    int32_t i;
    std::memcpy(&i, &val, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

// Panel position of element e (0..255) of a chunk: lane of its sub-block, step, byte.
struct PanelIndex {
    uint8_t lane_of_sub[kChunkLanes];
};
constexpr PanelIndex make_panel_index() {
    PanelIndex p{};
    for (int l = 0; l < kChunkLanes; ++l) p.lane_of_sub[kPanelSubBlock[l]] = static_cast<uint8_t>(l);
    return p;
}

// Copies one 16-element sub-block `src` into lane `lane` of panel `p` and returns its sum.
int32_t put_sub_block(const int8_t* src, int lane, ActPanel& p) {
    int32_t sum = 0;
    for (int j = 0; j < 4; ++j) {
        std::memcpy(p.qs + 64 * j + 4 * lane, src + 4 * j, 4);
        for (int e = 0; e < 4; ++e) sum += src[4 * j + e];
    }
    return sum;
}

}  // namespace

ActKind act_kind(TensorType type) {
    switch (type) {
        case TensorType::F32: return ActKind::F32;
        case TensorType::F16: return ActKind::F16;
        case TensorType::BF16: return ActKind::BF16;
        case TensorType::Q4_0:
        case TensorType::Q5_0:
        case TensorType::Q8_0:
        case TensorType::IQ4_NL:
        case TensorType::MXFP4: return ActKind::Q8_0;
        case TensorType::Q4_1:
        case TensorType::Q5_1: return ActKind::Q8_1;
        case TensorType::Q2_K:
        case TensorType::Q3_K:
        case TensorType::Q4_K:
        case TensorType::Q5_K:
        case TensorType::Q6_K:
        case TensorType::IQ4_XS: return ActKind::Q8_K;
        default: break;
    }
    throw Error(fmt::format("matmul: weight type {} is not supported", type_name(type)));
}

bool is_block_quant(TensorType type) {
    switch (type) {
        case TensorType::Q4_0:
        case TensorType::Q4_1:
        case TensorType::Q5_0:
        case TensorType::Q5_1:
        case TensorType::Q8_0:
        case TensorType::IQ4_NL:
        case TensorType::MXFP4:
        case TensorType::Q2_K:
        case TensorType::Q3_K:
        case TensorType::Q4_K:
        case TensorType::Q5_K:
        case TensorType::Q6_K:
        case TensorType::IQ4_XS: return true;
        default: return false;
    }
}

// ggml's x86 quantize_row_q8_1 (AVX2 branch): as its quantize_row_q8_0 (d = amax / 127,
// q = x * (127 / amax) rounded to nearest even), plus s = f16(d * sum(q)).
void quantize_q8_1(const float* x, ActBlockQ8_1* y, int64_t cols) {
    for (int64_t b = 0; b < cols / kQK; ++b) {
        const float* v = x + b * kQK;
        float amax = 0.0f;
        for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(v[j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[b].d = quant::round_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < kQK; ++j) {
            y[b].qs[j] = static_cast<int8_t>(nearest_int(v[j] * id));
            sum += y[b].qs[j];
        }
        y[b].s = quant::round_to_fp16(static_cast<float>(sum) * d);
    }
}

// quantize_row_q8_K_ref: the element of largest magnitude (the first such) maps to -127, so d is
// -max / 127 with max's sign; q = nearest_int(x * (-127 / max)), at most 127; bsums per 16.
void quantize_q8_K(const float* x, ActBlockQ8K* y, int64_t cols) {
    for (int64_t b = 0; b < cols / quant::kQK_K; ++b) {
        const float* v = x + b * quant::kQK_K;
        ActBlockQ8K& out = y[b];
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < quant::kQK_K; ++j) {
            const float ax = std::fabs(v[j]);
            if (ax > amax) {
                amax = ax;
                max = v[j];
            }
        }
        if (amax == 0.0f) {
            std::memset(&out, 0, sizeof out);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < quant::kQK_K; ++j)
            out.qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * v[j])));
        for (int j = 0; j < quant::kQK_K / 16; ++j) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) sum += out.qs[16 * j + i];
            out.bsums[j] = static_cast<int16_t>(sum);
        }
        out.d = 1.0f / iscale;
    }
}

void make_act_panels(TensorType type, const void* q, int64_t cols, ActPanel* out) {
    static constexpr PanelIndex kIndex = make_panel_index();
    switch (act_kind(type)) {
        case ActKind::Q8_0:
        case ActKind::Q8_1: {
            const bool q8_1 = act_kind(type) == ActKind::Q8_1;
            const auto* b8 = static_cast<const ActBlockQ8*>(q);
            const auto* b8_1 = static_cast<const ActBlockQ8_1*>(q);
            const int64_t nb = cols / kQK;
            for (int64_t c = 0; c < (nb + 7) / 8; ++c) {
                ActPanel& p = out[c];
                std::memset(&p, 0, sizeof p);
                for (int s = 0; s < kChunkLanes; ++s) {
                    const int64_t b = 8 * c + s / 2;
                    if (b >= nb) break;
                    const int lane = kIndex.lane_of_sub[s];
                    const int8_t* qs = (q8_1 ? b8_1[b].qs : b8[b].qs) + 16 * (s % 2);
                    const int32_t sum = put_sub_block(qs, lane, p);
                    p.dx[lane] = q8_1 ? b8_1[b].d : b8[b].d;
                    p.bsf[lane] = q8_1 ? 0.5f * b8_1[b].s : 0.0f;
                    p.corr[lane] = -128 * sum;
                }
            }
            return;
        }
        case ActKind::Q8_K: {
            const auto* blk = static_cast<const ActBlockQ8K*>(q);
            for (int64_t c = 0; c < cols / quant::kQK_K; ++c) {
                ActPanel& p = out[c];
                for (int s = 0; s < kChunkLanes; ++s) {
                    const int lane = kIndex.lane_of_sub[s];
                    put_sub_block(blk[c].qs + 16 * s, lane, p);
                    p.dx[lane] = blk[c].d;
                    p.bsf[lane] = blk[c].d * static_cast<float>(blk[c].bsums[s]);
                    p.corr[lane] = -128 * blk[c].bsums[s];
                }
            }
            return;
        }
        default: break;
    }
    throw Error(fmt::format("matmul: {} weights take no activation panels", type_name(type)));
}

}  // namespace hymoe::cpu::detail
