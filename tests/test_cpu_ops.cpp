// The forward pass's CPU ops against independent double-precision formulas, and against
// numbers transformers computed (YaRN frequencies).
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "cpu/ops.hpp"

namespace hymoe {
namespace {

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

TEST(CpuOps, RmsNormMatchesDoubleFormula) {
    for (const int64_t n : {1, 7, 64, 4096}) {
        const auto x = random_vector(static_cast<size_t>(n), 1, 3.0f);
        const auto w = random_vector(static_cast<size_t>(n), 2);
        std::vector<float> out(x.size());
        cpu::rms_norm(x.data(), w.data(), n, 1e-6f, out.data());
        double ms = 0;
        for (float v : x) ms += static_cast<double>(v) * v;
        const double scale = 1.0 / std::sqrt(ms / static_cast<double>(n) + 1e-6);
        for (size_t i = 0; i < x.size(); ++i)
            EXPECT_NEAR(out[i], x[i] * scale * w[i], 1e-5 * std::abs(x[i] * scale * w[i]) + 1e-6);
    }
}

TEST(CpuOps, SoftmaxMatchesDoubleFormula) {
    auto x = random_vector(100, 3, 10.0f);
    const auto orig = x;
    cpu::softmax(x.data(), static_cast<int64_t>(x.size()));
    const double m = *std::max_element(orig.begin(), orig.end());
    double sum = 0;
    for (float v : orig) sum += std::exp(v - m);
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], std::exp(orig[i] - m) / sum, 1e-6);
}

// RoPE rotates pairs by pos * base^(-2i/d): interleaved pairs (2i, 2i+1), NeoX pairs (i, i+d/2).
TEST(CpuOps, RopeRotatesThePairsOfEachStyle) {
    for (const RopeStyle style : {RopeStyle::Interleaved, RopeStyle::Neox}) {
        RopeConfig rope;
        rope.style = style;
        rope.n_dims = 16;
        rope.base = 10000.0f;
        const int64_t pos = 37, head_dim = 24;  // 8 dims pass through
        auto head = random_vector(static_cast<size_t>(head_dim), 4);
        const auto orig = head;
        std::vector<float> cos(8), sin(8);
        cpu::rope_angles(rope, pos, cos.data(), sin.data());
        cpu::rope_rotate(rope, cos.data(), sin.data(), head.data());
        for (int64_t i = 0; i < 8; ++i) {
            const double theta = static_cast<double>(pos) * std::pow(10000.0, -2.0 * static_cast<double>(i) / 16.0);
            const int64_t a = style == RopeStyle::Interleaved ? 2 * i : i;
            const int64_t b = style == RopeStyle::Interleaved ? 2 * i + 1 : i + 8;
            EXPECT_NEAR(head[a], orig[a] * std::cos(theta) - orig[b] * std::sin(theta), 1e-4);
            EXPECT_NEAR(head[b], orig[a] * std::sin(theta) + orig[b] * std::cos(theta), 1e-4);
        }
        for (int64_t i = 16; i < head_dim; ++i) EXPECT_EQ(head[i], orig[i]);
    }
}

// YaRN inverse frequencies as transformers 5.24 computes them (numbers from its
// _compute_yarn_parameters for the hf-models fixtures' configs), read back at position 1.
TEST(CpuOps, YarnFrequenciesMatchTransformers) {
    struct Case {
        int64_t n_dims;
        float base, factor;
        int64_t orig_ctx;
        bool truncate;
        std::vector<double> inv_freq;  // leading entries
    };
    const Case cases[] = {
        {8, 10000.0f, 4.0f, 64, true, {1.0, 0.0625, 0.0025, 0.00025}},  // deepseek3 fixture
        {16, 150000.0f, 8.0f, 64, false, {1.0, 0.09881, 0.006352}},     // gptoss fixture
    };
    for (const Case& c : cases) {
        RopeConfig rope;
        rope.n_dims = c.n_dims;
        rope.base = c.base;
        rope.freq_scale = 1.0f / c.factor;
        rope.ext_factor = 1.0f;
        yarn_correction_range(rope, c.orig_ctx, 32.0f, 1.0f, c.truncate);
        std::vector<float> cos(static_cast<size_t>(c.n_dims / 2)), sin(cos.size());
        cpu::rope_angles(rope, 1, cos.data(), sin.data());
        for (size_t i = 0; i < c.inv_freq.size(); ++i)
            EXPECT_NEAR(std::atan2(sin[i], cos[i]), c.inv_freq[i], 2e-4 * c.inv_freq[i]) << "pair " << i;
    }
}

TEST(CpuOps, AttentionWithSinkMatchesDoubleFormula) {
    const int64_t n = 9, dk = 12, dv = 5, stride_k = 24, stride_v = 10;
    const auto q = random_vector(dk, 5);
    const auto k = random_vector(static_cast<size_t>(n * stride_k), 6);
    const auto v = random_vector(static_cast<size_t>(n * stride_v), 7);
    for (const bool with_sink : {false, true}) {
        const float sink = 1.3f;
        cpu::AttentionHead a{
            q.data(), k.data(), v.data(), stride_k, stride_v, dk, dv, 2, n, 0.3f, with_sink ? &sink : nullptr};
        std::vector<float> scores(n), out(dv);
        cpu::attention_head(a, scores.data(), out.data());
        std::vector<double> s;
        for (int64_t j = 2; j < n; ++j) {
            double dot = 0;
            for (int64_t d = 0; d < dk; ++d) dot += static_cast<double>(q[d]) * k[j * stride_k + d];
            s.push_back(0.3 * dot);
        }
        double denom = with_sink ? std::exp(static_cast<double>(sink)) : 0.0;
        for (double x : s) denom += std::exp(x);
        for (int64_t d = 0; d < dv; ++d) {
            double expect = 0;
            for (int64_t j = 2; j < n; ++j) expect += std::exp(s[j - 2]) / denom * v[j * stride_v + d];
            EXPECT_NEAR(out[d], expect, 1e-5);
        }
    }
}

TEST(CpuOps, SwigluVariants) {
    const std::vector<float> g{-9.0f, -1.0f, 0.0f, 0.5f, 3.0f, 8.0f}, u{-8.0f, 2.0f, 1.0f, -0.5f, 7.5f, 1.0f};
    std::vector<float> out(g.size());
    cpu::swiglu(g.data(), u.data(), static_cast<int64_t>(g.size()), out.data());
    for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(out[i], g[i] / (1 + std::exp(-g[i])) * u[i], 1e-5);
    cpu::swiglu_oai(g.data(), u.data(), static_cast<int64_t>(g.size()), 1.702f, 7.0f, out.data());
    for (size_t i = 0; i < g.size(); ++i) {
        const double gc = std::min(static_cast<double>(g[i]), 7.0),
                     uc = std::clamp(static_cast<double>(u[i]), -7.0, 7.0);
        EXPECT_NEAR(out[i], gc / (1 + std::exp(-1.702 * gc)) * (uc + 1), 1e-4);
    }
}

ModelConfig moe_config(Gating gating, int64_t n_experts, int64_t k) {
    ModelConfig c;
    c.gating = gating;
    c.n_experts = n_experts;
    c.n_experts_used = k;
    return c;
}

TEST(CpuOps, RouteSoftmaxTopKWithAndWithoutRenorm) {
    const std::vector<float> logits{0.1f, 2.0f, -1.0f, 1.5f};
    double z = 0;
    for (float l : logits) z += std::exp(l);
    ModelConfig c = moe_config(Gating::Softmax, 4, 2);
    int32_t ids[2];
    float w[2];
    cpu::route(c, logits.data(), nullptr, ids, w);
    EXPECT_EQ(ids[0], 1);
    EXPECT_EQ(ids[1], 3);
    EXPECT_NEAR(w[0], std::exp(2.0) / z, 1e-6);
    EXPECT_NEAR(w[1], std::exp(1.5) / z, 1e-6);
    c.norm_topk = true;
    c.routed_scale = 2.5f;
    cpu::route(c, logits.data(), nullptr, ids, w);
    EXPECT_NEAR(w[0], 2.5 * std::exp(2.0) / (std::exp(2.0) + std::exp(1.5)), 1e-6);
    EXPECT_NEAR(w[0] + w[1], 2.5, 1e-6);
}

TEST(CpuOps, RouteSoftmaxOverTopK) {
    const std::vector<float> logits{0.1f, 2.0f, -1.0f, 1.5f};
    ModelConfig c = moe_config(Gating::SoftmaxOverTopK, 4, 2);
    int32_t ids[2];
    float w[2];
    cpu::route(c, logits.data(), nullptr, ids, w);
    EXPECT_EQ(ids[0], 1);
    EXPECT_NEAR(w[0], 1.0 / (1.0 + std::exp(-0.5)), 1e-6);
}

// DeepSeek-V3: sigmoid scores; the bias decides the choice but not the weights; only experts of
// the best groups (by top-2 sum) are eligible.
TEST(CpuOps, RouteSigmoidWithBiasAndGroups) {
    // 8 experts in 4 groups of 2. Expert 6 has the best score but its group (3) scores lowest.
    const std::vector<float> logits{1.0f, 0.9f, 0.2f, 0.1f, 0.8f, 0.7f, 3.0f, -6.0f};
    std::vector<float> bias(8, 0.0f);
    bias[2] = 2.0f;  // lifts expert 2 (and group 1) above the others
    ModelConfig c = moe_config(Gating::Sigmoid, 8, 2);
    c.expert_selection_bias = true;
    c.n_groups = 4;
    c.n_groups_used = 2;
    c.norm_topk = true;
    int32_t ids[2];
    float w[2];
    cpu::route(c, logits.data(), bias.data(), ids, w);
    // group sums (score + bias): g0 = s(1)+s(.9) = 1.44, g1 = s(.2)+2+s(.1) = 3.07, g2 = 1.36, g3 = 0.95+0.0025
    EXPECT_EQ(ids[0], 2);
    EXPECT_EQ(ids[1], 0);
    const double s2 = 1 / (1 + std::exp(-0.2)), s0 = 1 / (1 + std::exp(-1.0));
    EXPECT_NEAR(w[0], s2 / (s2 + s0), 1e-6);
    // With group max instead (DeepSeek-V2's group_limited_greedy) group 3 (max 0.95) beats group 2.
    c.group_score = GroupScore::Max;
    c.expert_selection_bias = false;
    cpu::route(c, logits.data(), nullptr, ids, w);
    EXPECT_EQ(ids[0], 6);
    EXPECT_EQ(ids[1], 0);
}

}  // namespace
}  // namespace hymoe
