// The CPU ops of the forward pass other than matmul, one row or one head at a time.
//
// These are plain C++ the compiler vectorizes; they are also the reference the GPU kernels are
// checked against. Numerics follow ggml's CPU backend where it matters for matching llama.cpp
// (RMSNorm and softmax sums in double, YaRN ramp as ggml computes it).
#pragma once

#include <cstdint>
#include <span>

#include "model/config.hpp"

namespace hymoe::cpu {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * (weight ? weight[i] : 1). out may alias x.
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);

// cos/sin of every rotated pair at position `pos`: [rope.n_dims / 2] each, mscale included.
void rope_angles(const RopeConfig& rope, int64_t pos, float* cos_out, float* sin_out);

// Rotates the first rope.n_dims dims of one head in place; the rest are untouched.
void rope_rotate(const RopeConfig& rope, const float* cos, const float* sin, float* head);

// In place: x = softmax(x), the sum in double as ggml does. n >= 1.
void softmax(float* x, int64_t n);

float sigmoid(float x);
float silu(float x);

// out[i] = silu(gate[i]) * up[i]; out may alias gate.
void swiglu(const float* gate, const float* up, int64_t n, float* out);
// GPT-OSS: g = min(gate, limit), u = clamp(up, -limit, limit), out = g * sigmoid(alpha g) * (u + 1).
void swiglu_oai(const float* gate, const float* up, int64_t n, float alpha, float limit, float* out);

// One query head over keys [k_begin, k_end) of a cache:
//   s_j = scale * q·k_j;  p = softmax over j (and the sink logit, which has no value row);
//   out = sum_j p_j v_j.
// k rows are `k_stride` floats apart, v rows `v_stride`; `scores` is scratch [k_end - k_begin].
struct AttentionHead {
    const float* q = nullptr;  // [dim_k]
    const float* k = nullptr;  // row j at k + j * k_stride, [dim_k]
    const float* v = nullptr;  // row j at v + j * v_stride, [dim_v]
    int64_t k_stride = 0;
    int64_t v_stride = 0;
    int64_t dim_k = 0;
    int64_t dim_v = 0;
    int64_t k_begin = 0;
    int64_t k_end = 0;
    float scale = 1.0f;
    const float* sink = nullptr;  // optional extra logit in the denominator
};
void attention_head(const AttentionHead& a, float* scores, float* out);

// Expert selection for one token. `logits` is [n_experts] (router output, bias included);
// `selection_bias` is [n_experts] or null. Writes the chosen experts and their weights, best first.
void route(const ModelConfig& config, const float* logits, const float* selection_bias, int32_t* experts,
           float* weights);

}  // namespace hymoe::cpu
