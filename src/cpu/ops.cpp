#include "cpu/ops.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace hymoe::cpu {

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
    double sum = 0.0;
    // ggml_compute_forward_rms_norm_f32: the square is rounded to f32, then summed in double.
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
    const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
    if (weight != nullptr) {
        for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
    } else {
        for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale;
    }
}

void rope_angles(const RopeConfig& rope, int64_t pos, float* cos_out, float* sin_out) {
    const int64_t n_pairs = rope.n_dims / 2;
    for (int64_t i = 0; i < n_pairs; ++i) {
        // theta_extrap = pos * base^(-2i/n_dims), computed in double then rounded once.
        const double inv_freq =
            std::pow(static_cast<double>(rope.base), -2.0 * static_cast<double>(i) / static_cast<double>(rope.n_dims));
        const float theta_extrap = static_cast<float>(static_cast<double>(pos) * inv_freq);
        const float theta_interp = rope.freq_scale * theta_extrap;
        float theta = theta_interp;
        if (rope.ext_factor != 0.0f) {
            // ggml's rope_yarn_ramp: 1 below corr_low (extrapolate), 0 above corr_high (interpolate).
            const float y = (static_cast<float>(i) - rope.corr_low) / std::max(0.001f, rope.corr_high - rope.corr_low);
            const float ramp_mix = (1.0f - std::clamp(y, 0.0f, 1.0f)) * rope.ext_factor;
            theta = theta_interp * (1.0f - ramp_mix) + theta_extrap * ramp_mix;
        }
        cos_out[i] = std::cos(theta) * rope.mscale;
        sin_out[i] = std::sin(theta) * rope.mscale;
    }
}

void rope_rotate(const RopeConfig& rope, const float* cos, const float* sin, float* head) {
    const int64_t n_pairs = rope.n_dims / 2;
    switch (rope.style) {
        case RopeStyle::Interleaved:
            for (int64_t i = 0; i < n_pairs; ++i) {
                const float x0 = head[2 * i], x1 = head[2 * i + 1];
                head[2 * i] = x0 * cos[i] - x1 * sin[i];
                head[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
            }
            break;
        case RopeStyle::Neox:
            for (int64_t i = 0; i < n_pairs; ++i) {
                const float x0 = head[i], x1 = head[i + n_pairs];
                head[i] = x0 * cos[i] - x1 * sin[i];
                head[i + n_pairs] = x0 * sin[i] + x1 * cos[i];
            }
            break;
    }
}

void softmax(float* x, int64_t n) {
    const float max = *std::max_element(x, x + n);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - max);
        sum += x[i];
    }
    const auto inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float sigmoid(float x) {
    return 1.0f / (1.0f + std::exp(-x));
}
float silu(float x) {
    return x / (1.0f + std::exp(-x));
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = silu(gate[i]) * up[i];
}

void swiglu_oai(const float* gate, const float* up, int64_t n, float alpha, float limit, float* out) {
    for (int64_t i = 0; i < n; ++i) {
        const float g = std::min(gate[i], limit);
        const float u = std::clamp(up[i], -limit, limit);
        out[i] = g * sigmoid(alpha * g) * (u + 1.0f);
    }
}

void attention_head(const AttentionHead& a, float* scores, float* out) {
    const int64_t n = a.k_end - a.k_begin;
    float max = a.sink != nullptr ? *a.sink : -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) {
        const float* k = a.k + (a.k_begin + j) * a.k_stride;
        float dot = 0.0f;
        for (int64_t d = 0; d < a.dim_k; ++d) dot += a.q[d] * k[d];
        scores[j] = dot * a.scale;
        max = std::max(max, scores[j]);
    }
    double sum = a.sink != nullptr ? std::exp(static_cast<double>(*a.sink - max)) : 0.0;
    for (int64_t j = 0; j < n; ++j) {
        scores[j] = std::exp(scores[j] - max);
        sum += scores[j];
    }
    const auto inv = static_cast<float>(1.0 / sum);
    std::fill(out, out + a.dim_v, 0.0f);
    for (int64_t j = 0; j < n; ++j) {
        const float p = scores[j] * inv;
        const float* v = a.v + (a.k_begin + j) * a.v_stride;
        for (int64_t d = 0; d < a.dim_v; ++d) out[d] += p * v[d];
    }
}

namespace {

// Indices of the k largest values, best first; ties go to the lower index (as a stable sort).
// `idx` is scratch, reused between calls.
void top_k(const float* values, int64_t n, int64_t k, int32_t* out, std::vector<int32_t>& idx) {
    idx.resize(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int32_t a, int32_t b) { return values[a] > values[b] || (values[a] == values[b] && a < b); });
    std::copy(idx.begin(), idx.begin() + k, out);
}

}  // namespace

void route(const ModelConfig& c, const float* logits, const float* selection_bias, int32_t* experts, float* weights) {
    // Called once per token and MoE layer: the buffers live on, per thread.
    thread_local std::vector<float> probs, select, group_scores;
    thread_local std::vector<int32_t> idx, kept;
    const int64_t n = c.n_experts, k = c.n_experts_used;
    probs.assign(logits, logits + n);  // what the weights are taken from
    switch (c.gating) {
        case Gating::Softmax: softmax(probs.data(), n); break;
        case Gating::Sigmoid:
            for (float& p : probs) p = sigmoid(p);
            break;
        case Gating::SoftmaxOverTopK: break;
    }
    select.assign(probs.begin(), probs.end());  // what the choice is made on
    if (selection_bias != nullptr)
        for (int64_t e = 0; e < n; ++e) select[static_cast<size_t>(e)] += selection_bias[e];

    if (c.n_groups > 1) {
        // Keep only the experts of the n_groups_used best groups.
        const int64_t per_group = n / c.n_groups;
        group_scores.resize(static_cast<size_t>(c.n_groups));
        for (int64_t g = 0; g < c.n_groups; ++g) {
            float best = -std::numeric_limits<float>::infinity(), second = best;
            for (int64_t e = g * per_group; e < (g + 1) * per_group; ++e) {
                const float v = select[static_cast<size_t>(e)];
                if (v > best) {
                    second = best;
                    best = v;
                } else if (v > second) {
                    second = v;
                }
            }
            group_scores[static_cast<size_t>(g)] =
                c.group_score == GroupScore::Max ? best : best + (per_group > 1 ? second : 0.0f);
        }
        kept.resize(static_cast<size_t>(c.n_groups_used));
        top_k(group_scores.data(), c.n_groups, c.n_groups_used, kept.data(), idx);
        for (int64_t g = 0; g < c.n_groups; ++g) {
            if (std::find(kept.begin(), kept.end(), static_cast<int32_t>(g)) != kept.end()) continue;
            for (int64_t e = g * per_group; e < (g + 1) * per_group; ++e)
                select[static_cast<size_t>(e)] = -std::numeric_limits<float>::infinity();
        }
    }

    top_k(select.data(), n, k, experts, idx);
    for (int64_t i = 0; i < k; ++i) weights[i] = probs[static_cast<size_t>(experts[i])];
    if (c.gating == Gating::SoftmaxOverTopK) softmax(weights, k);
    if (c.norm_topk) {
        double sum = 0.0;
        for (int64_t i = 0; i < k; ++i) sum += weights[i];
        for (int64_t i = 0; i < k; ++i) weights[i] = static_cast<float>(weights[i] / sum);
    }
    for (int64_t i = 0; i < k; ++i) weights[i] *= c.routed_scale;
}

}  // namespace hymoe::cpu
