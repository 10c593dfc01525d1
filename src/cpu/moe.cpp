#include "cpu/moe.hpp"

#include <algorithm>
#include <cstring>

#include "cpu/ops.hpp"

namespace hymoe::cpu {

namespace {

template <typename T>
T* grow(std::vector<T>& buffer, int64_t n) {
    if (buffer.size() < static_cast<size_t>(n)) buffer.resize(static_cast<size_t>(n));
    return buffer.data();
}

void glu(const ModelConfig& c, const float* gate, const float* up, int64_t n, float* out) {
    switch (c.activation) {
        case FfnActivation::SwiGlu: swiglu(gate, up, n, out); break;
        case FfnActivation::SwiGluOai: swiglu_oai(gate, up, n, c.swiglu_alpha, c.swiglu_limit, out); break;
    }
}

}  // namespace

void moe_experts(const ModelConfig& c, const ExpertSet& x, const float* h, int64_t n, const int32_t* ids,
                 const float* weights, float* out, bool accumulate, MoeScratch& s, ThreadPool& pool) {
    const int64_t d = c.d_model, ne = c.n_experts, k = c.n_experts_used, f = c.d_ff_expert;

    // Group the (token, slot) pairs by expert (a counting sort): expert e's pairs are
    // slots[start[e] .. start[e + 1]). Negative ids are left out.
    std::vector<int64_t>& start = s.expert_start;
    std::vector<int64_t>& slots = s.slots_by_expert;
    start.assign(static_cast<size_t>(ne + 1), 0);
    for (int64_t i = 0; i < n * k; ++i)
        if (ids[i] >= 0) ++start[static_cast<size_t>(ids[i]) + 1];
    for (int64_t e = 0; e < ne; ++e) start[static_cast<size_t>(e + 1)] += start[static_cast<size_t>(e)];
    const int64_t pairs = start[static_cast<size_t>(ne)];
    slots.resize(static_cast<size_t>(pairs));
    for (int64_t i = 0; i < n * k; ++i) {
        if (ids[i] < 0) continue;
        const auto e = static_cast<size_t>(ids[i]);
        slots[static_cast<size_t>(start[e]++)] = i;  // start[e] ends at the next expert's start
    }
    for (int64_t e = ne; e > 0; --e) start[static_cast<size_t>(e)] = start[static_cast<size_t>(e - 1)];
    start[0] = 0;

    if (!accumulate) std::fill(out, out + n * d, 0.0f);
    if (pairs == 0) return;

    // Every routed pair's input, grouped by expert, and all experts' gate/up and down products
    // in two batched calls (two pool wake-ups per phase, not two per expert).
    float* xs = grow(s.in, pairs * d);   // [pairs][d_model], expert e's at start[e]
    float* g = grow(s.gate, pairs * f);  // [pairs][d_ff_expert]
    float* u = grow(s.up, pairs * f);    // [pairs][d_ff_expert]
    float* ys = grow(s.out, pairs * d);  // [pairs][d_model]
    for (int64_t r = 0; r < pairs; ++r)
        std::memcpy(xs + r * d, h + (slots[static_cast<size_t>(r)] / k) * d, sizeof(float) * static_cast<size_t>(d));
    const auto span_of = [&](int64_t e) {
        const int64_t first = start[static_cast<size_t>(e)];
        return std::pair{first, start[static_cast<size_t>(e + 1)] - first};
    };
    s.jobs.clear();
    for (int64_t e = 0; e < ne; ++e) {
        const auto [first, m] = span_of(e);
        if (m == 0) continue;
        const auto es = static_cast<size_t>(e);
        s.jobs.push_back({x.gate[es], xs + first * d, m, g + first * f});
        s.jobs.push_back({x.up[es], xs + first * d, m, u + first * f});
    }
    matmul_batch(s.jobs, pool);
    for (int64_t e = 0; e < ne; ++e) {
        const auto [first, m] = span_of(e);
        for (int64_t r = first; r < first + m; ++r) {
            if (x.gate_bias != nullptr)
                for (int64_t j = 0; j < f; ++j) g[r * f + j] += x.gate_bias[e * f + j];
            if (x.up_bias != nullptr)
                for (int64_t j = 0; j < f; ++j) u[r * f + j] += x.up_bias[e * f + j];
        }
    }
    glu(c, g, u, pairs * f, g);
    s.jobs.clear();
    for (int64_t e = 0; e < ne; ++e) {
        const auto [first, m] = span_of(e);
        if (m > 0) s.jobs.push_back({x.down[static_cast<size_t>(e)], g + first * f, m, ys + first * d});
    }
    matmul_batch(s.jobs, pool);

    for (int64_t e = 0; e < ne; ++e) {
        const auto [first, m] = span_of(e);
        for (int64_t r = first; r < first + m; ++r) {
            const int64_t slot = slots[static_cast<size_t>(r)], t = slot / k;
            const float w = weights[slot];
            if (x.down_bias != nullptr)
                for (int64_t j = 0; j < d; ++j) ys[r * d + j] += x.down_bias[e * d + j];
            for (int64_t j = 0; j < d; ++j) out[t * d + j] += w * ys[r * d + j];
        }
    }
}

}  // namespace hymoe::cpu
