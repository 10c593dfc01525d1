// The routed experts of one MoE layer on the GPU: gate, up, GLU, down for every (token, slot)
// pair, combined per token with its routing weights.
//
// Decode (at most 8 tokens, so at most 8 pairs per expert) runs three launches:
//   1. grouped_glu_gemv: gate and up of each active expert in one GEMV launch, the biases and the
//      GLU applied as the sums are written (a warp holds row r of gate and row r of up), x rows
//      read through pair_order / n_used (no index array built);
//   2. grouped GEMV of down over the activations, in sorted-position order;
//   3. combine: out[t] = Σ_k weights[t][k] · (down[pair_pos[t, k]] + down_bias[e]), in slot order.
// Larger batches (or gate and up stored differently) run gate and up as two grouped products
// (the tensor-core GEMM past 8 pairs per expert), then a bias + GLU kernel, then down and combine,
// with x's row per sorted position written once by a tiny kernel.
// Nothing uses atomics: every output element is summed in one fixed order.
#include <cstddef>
#include <cstdint>

#include "launch.hpp"
#include "matmul_gemv.cuh"
#include "matmul_internal.hpp"

namespace hymoe::kernels {

namespace {

constexpr int kThreads = 256;
constexpr size_t kAlign = 256;

size_t align_up(size_t n) {
    return (n + kAlign - 1) / kAlign * kAlign;
}

// Where each part of the scratch buffer lies, for one call's shapes.
struct Layout {
    bool fused = false;  // gate/up/GLU in one GEMV launch
    size_t act = 0, up = 0, down = 0, x_rows = 0;  // byte offsets from the aligned base
    size_t total = 0;                               // bytes, the base's alignment slack included
};

bool can_fuse(const ExpertWeights& w, int64_t n_tokens) {
    return n_tokens <= 8 && w.gate_type == w.up_type && w.gate_row_bytes == w.up_row_bytes;
}

Layout layout(const ExpertWeights& w, int64_t n_tokens, int64_t n_used) {
    Layout l;
    l.fused = can_fuse(w, n_tokens);
    const auto n_pairs = static_cast<size_t>(n_tokens * n_used);
    size_t at = 0;
    l.act = at;  // [n_pairs][d_ff]: the gate products, then the activations in place
    at += align_up(n_pairs * static_cast<size_t>(w.d_ff) * sizeof(float));
    if (!l.fused) {
        l.up = at;  // [n_pairs][d_ff]
        at += align_up(n_pairs * static_cast<size_t>(w.d_ff) * sizeof(float));
        l.x_rows = at;  // [n_pairs] sorted position -> token
        at += align_up(n_pairs * sizeof(int32_t));
    }
    l.down = at;  // [n_pairs][d_model]
    at += align_up(n_pairs * static_cast<size_t>(w.d_model) * sizeof(float));
    l.total = at + kAlign;  // room to align the caller's pointer
    return l;
}

unsigned grid_for(int64_t n) {
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    return static_cast<unsigned>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

// x_rows[p] = pair_order[p] / n_used: the token of sorted position p.
__global__ void token_of_position_kernel(const int32_t* __restrict__ pair_order, int64_t n_pairs, int32_t n_used,
                                         int32_t* __restrict__ x_rows) {
    for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < n_pairs; p += int64_t(gridDim.x) * blockDim.x)
        x_rows[p] = pair_order[p] / n_used;
}

// act[p][i] = glu(gate[p][i] + gate_bias[e][i], up[p][i] + up_bias[e][i]), e the expert of
// sorted position p (experts[pair_order[p]]). act may alias gate.
__global__ void bias_glu_kernel(const float* gate, const float* __restrict__ up, const float* __restrict__ gate_bias,
                                const float* __restrict__ up_bias, const int32_t* __restrict__ experts,
                                const int32_t* __restrict__ pair_order, int64_t n_pairs, int64_t d_ff, int32_t kind,
                                float alpha, float limit, float* act) {
    const int64_t n = n_pairs * d_ff;
    for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n; idx += int64_t(gridDim.x) * blockDim.x) {
        const int64_t p = idx / d_ff, i = idx - p * d_ff;
        const int64_t e = experts[pair_order[p]];
        if (e < 0) {  // a skipped pair (sorted last): gate and up were never computed for it
            act[idx] = 0.0f;
            continue;
        }
        float g = gate[idx], u = up[idx];
        if (gate_bias != nullptr) g += gate_bias[e * d_ff + i];
        if (up_bias != nullptr) u += up_bias[e * d_ff + i];
        act[idx] = gemv::glu_value(kind, alpha, limit, g, u);
    }
}

// out[t][j] = Σ_k weights[t][k] · (down[pair_pos[t*n_used + k]][j] + down_bias[experts[t][k]][j]),
// k ascending, over the pairs whose expert is not negative. down: [n_pairs][d_model],
// out: [n_tokens][d_model].
__global__ void combine_kernel(const float* __restrict__ down, const float* __restrict__ down_bias,
                               const int32_t* __restrict__ experts, const float* __restrict__ weights,
                               const int32_t* __restrict__ pair_pos, int64_t n_tokens, int32_t n_used, int64_t d_model,
                               float* __restrict__ out) {
    const int64_t n = n_tokens * d_model;
    for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n; idx += int64_t(gridDim.x) * blockDim.x) {
        const int64_t t = idx / d_model, j = idx - t * d_model;
        float acc = 0.0f;
        for (int k = 0; k < n_used; ++k) {
            const int64_t pair = t * n_used + k;
            const int32_t e = experts[pair];
            if (e < 0) continue;  // skipped: computed elsewhere (the CPU) or not at all
            float v = down[int64_t(pair_pos[pair]) * d_model + j];
            if (down_bias != nullptr) v += down_bias[int64_t(e) * d_model + j];
            acc += weights[pair] * v;
        }
        out[idx] = acc;
    }
}

bool valid(const ExpertWeights& w, const ExpertRouting& r) {
    if (w.n_experts < 1 || w.n_experts > 65535 || w.d_model < 1 || w.d_ff < 1 || r.n_tokens < 0 || r.n_used < 1)
        return false;
    if (r.n_used > 0x7fffffff || r.n_tokens * r.n_used > 0x7fffffff) return false;  // positions are int32
    const WeightMatrix gate{w.gate_type, w.gate, w.d_ff, w.d_model, w.gate_row_bytes};
    const WeightMatrix up{w.up_type, w.up, w.d_ff, w.d_model, w.up_row_bytes};
    const WeightMatrix down{w.down_type, w.down, w.d_model, w.d_ff, w.down_row_bytes};
    return valid_weight_matrix(gate) && valid_weight_matrix(up) && valid_weight_matrix(down);
}

}  // namespace

size_t expert_ffn_scratch_bytes(const ExpertWeights& w, int64_t n_tokens, int64_t n_used) {
    if (n_tokens <= 0 || n_used <= 0) return 0;
    return layout(w, n_tokens, n_used).total;
}

cudaError_t expert_ffn(const ExpertWeights& w, const ExpertRouting& r, const GluParams& glu, const float* x,
                       float* out, void* scratch, size_t scratch_bytes, cudaStream_t stream) {
    if (!valid(w, r)) return cudaErrorInvalidValue;
    if (glu.kind != Glu::SwiGlu && glu.kind != Glu::SwiGluOai) return cudaErrorInvalidValue;
    if (r.n_tokens == 0) return cudaSuccess;
    if (x == nullptr || out == nullptr || r.experts == nullptr || r.weights == nullptr || r.pair_order == nullptr ||
        r.pair_pos == nullptr || r.offsets == nullptr || r.active == nullptr || r.n_active == nullptr)
        return cudaErrorInvalidValue;
    const Layout l = layout(w, r.n_tokens, r.n_used);
    if (scratch == nullptr || scratch_bytes < l.total) return cudaErrorInvalidValue;
    auto* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch) + kAlign - 1) / kAlign * kAlign);
    float* act = reinterpret_cast<float*>(base + l.act);    // [n_pairs][d_ff]
    float* down = reinterpret_cast<float*>(base + l.down);  // [n_pairs][d_model]
    const int64_t n_pairs = r.n_tokens * r.n_used;
    const auto n_used = static_cast<int32_t>(r.n_used);

    // The gate product; its x rows and output set per path below.
    GroupedMatmul g;
    g.type = w.gate_type;
    g.w = w.gate;
    g.row_bytes = w.gate_row_bytes;
    g.rows = w.d_ff;
    g.cols = w.d_model;
    g.x = x;
    g.y = act;
    g.offsets = r.offsets;
    g.active = r.active;
    g.n_active = r.n_active;
    g.n_experts = w.n_experts;
    g.n_pairs = n_pairs;
    g.max_pairs_per_expert = r.n_tokens;  // a token routes to an expert at most once

    cudaError_t err = cudaSuccess;
    if (l.fused) {
        GroupedGluGemv f;
        f.g = g;
        f.up = w.up;
        f.x_rows = r.pair_order;
        f.x_rows_div = n_used;
        f.gate_bias = w.gate_bias;
        f.up_bias = w.up_bias;
        f.glu = glu;
        err = grouped_glu_gemv(f, stream);
        if (err != cudaSuccess) return err;
    } else {
        float* up = reinterpret_cast<float*>(base + l.up);             // [n_pairs][d_ff]
        auto* x_rows = reinterpret_cast<int32_t*>(base + l.x_rows);    // [n_pairs]
        token_of_position_kernel<<<grid_for(n_pairs), kThreads, 0, stream>>>(r.pair_order, n_pairs, n_used, x_rows);
        if ((err = cudaGetLastError()) != cudaSuccess) return err;
        g.x_rows = x_rows;
        if ((err = grouped_matmul(g, stream)) != cudaSuccess) return err;
        GroupedMatmul gu = g;
        gu.type = w.up_type;
        gu.w = w.up;
        gu.row_bytes = w.up_row_bytes;
        gu.y = up;
        if ((err = grouped_matmul(gu, stream)) != cudaSuccess) return err;
        bias_glu_kernel<<<grid_for(n_pairs * w.d_ff), kThreads, 0, stream>>>(
            act, up, w.gate_bias, w.up_bias, r.experts, r.pair_order, n_pairs, w.d_ff, static_cast<int32_t>(glu.kind),
            glu.alpha, glu.limit, act);
        if ((err = cudaGetLastError()) != cudaSuccess) return err;
    }

    // down over the activations, one row per sorted position.
    GroupedMatmul d = g;
    d.type = w.down_type;
    d.w = w.down;
    d.row_bytes = w.down_row_bytes;
    d.rows = w.d_model;
    d.cols = w.d_ff;
    d.x = act;
    d.x_rows = nullptr;
    d.y = down;
    if ((err = grouped_matmul(d, stream)) != cudaSuccess) return err;

    combine_kernel<<<grid_for(r.n_tokens * w.d_model), kThreads, 0, stream>>>(
        down, w.down_bias, r.experts, r.weights, r.pair_pos, r.n_tokens, n_used, w.d_model, out);
    return cudaGetLastError();
}

}  // namespace hymoe::kernels
