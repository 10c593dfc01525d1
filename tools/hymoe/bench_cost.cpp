#include "bench_cost.hpp"

#include <algorithm>
#include <cmath>

#include "format/model_file.hpp"
#include "hymoe/error.hpp"
#include "model/config.hpp"
#include "model/weights.hpp"
#include "runtime/forward.hpp"

namespace hymoe::cli {

namespace {

// Adds up the bytes, operations and parameters of the weights it is shown.
struct Tally {
    double bytes = 0;
    double params = 0;
    OpsByType ops;

    void matrix(const cpu::MatrixRef& m) {
        if (m.data == nullptr) return;
        const auto row = row_bytes(m.type, static_cast<uint64_t>(m.cols));
        if (!row) throw Error("bench: a weight's rows do not fill whole blocks");
        const double elements = static_cast<double>(m.rows) * static_cast<double>(m.cols);
        bytes += static_cast<double>(*row) * static_cast<double>(m.rows);
        params += elements;
        ops[m.type] += 2.0 * elements;
    }
    void linear(const Linear& l) {
        matrix(l.w);
        if (l.present() && l.bias != nullptr) vector(l.bias, l.w.rows);
    }
    void vector(const float* v, int64_t n) {
        if (v == nullptr) return;
        bytes += 4.0 * static_cast<double>(n);
        params += static_cast<double>(n);
    }
};

void add_ops(OpsByType& to, const OpsByType& from, double times) {
    for (const auto& [type, ops] : from) to[type] += ops * times;
}

double total_ops(const OpsByType& ops) {
    double sum = 0;
    for (const auto& [type, n] : ops) sum += n;
    return sum;
}

// Seconds of `ops` at the kernels' in-cache rates (f32's for a type not probed; none when unknown).
double ops_seconds(const OpsByType& ops, const Probes& probes) {
    double seconds = 0;
    for (const auto& [type, n] : ops) {
        auto rate = probes.gops.find(type);
        if (rate == probes.gops.end()) rate = probes.gops.find(TensorType::F32);
        if (rate == probes.gops.end() || rate->second <= 0) continue;
        seconds += n / (rate->second * 1e9);
    }
    return seconds;
}

// Everything of a layer but its routed experts.
void tally_layer(const ModelConfig& c, const LayerWeights& l, Tally& t) {
    t.vector(l.attn_norm, c.d_model);
    t.linear(l.q);
    t.linear(l.k);
    t.linear(l.v);
    t.linear(l.out);
    switch (c.qk_norm) {
        case QkNorm::None: break;
        case QkNorm::PerHead:
            t.vector(l.q_norm, c.head_dim);
            t.vector(l.k_norm, c.head_dim);
            break;
        case QkNorm::Full:
            t.vector(l.q_norm, c.n_heads * c.head_dim);
            t.vector(l.k_norm, c.n_kv_heads * c.head_dim);
            break;
    }
    t.vector(l.sinks, c.n_heads);
    t.linear(l.q_a);
    t.vector(l.q_a_norm, c.q_lora_rank);
    t.linear(l.q_b);
    t.linear(l.kv_a);
    t.vector(l.kv_a_norm, c.kv_lora_rank);
    for (const cpu::MatrixRef& m : l.k_b) t.matrix(m);
    for (const cpu::MatrixRef& m : l.v_b) t.matrix(m);
    t.vector(l.ffn_norm, c.d_model);
    t.linear(l.ffn_gate);
    t.linear(l.ffn_up);
    t.linear(l.ffn_down);
    t.linear(l.router);
    t.vector(l.selection_bias, c.n_experts);
    t.linear(l.shared_gate);
    t.linear(l.shared_up);
    t.linear(l.shared_down);
    t.linear(l.shared_expert_gate);
}

// One routed expert of a layer, averaged over its experts (they normally share type and shape).
ModelCost::MoeLayer tally_experts(const ModelConfig& c, const ExpertSet& x) {
    Tally t;
    for (size_t e = 0; e < x.gate.size(); ++e) {
        t.matrix(x.gate[e]);
        t.matrix(x.up[e]);
        t.matrix(x.down[e]);
        t.vector(x.gate_bias, c.d_ff_expert);
        t.vector(x.up_bias, c.d_ff_expert);
        t.vector(x.down_bias, c.d_model);
    }
    const double n = static_cast<double>(std::max<size_t>(x.gate.size(), 1));
    ModelCost::MoeLayer m{.n_experts = static_cast<int64_t>(x.gate.size()),
                          .n_used = c.n_experts_used,
                          .expert_bytes = t.bytes / n,
                          .expert_ops = {}};
    add_ops(m.expert_ops, t.ops, 1.0 / n);
    return m;
}

// The mean over positions 0..n-1 of the keys a query at that position sees: min(p + 1, window).
double mean_keys(int64_t n, int64_t window) {
    if (n <= 0) return 0;
    const auto nd = static_cast<double>(n);
    if (window <= 0 || window >= n) return (nd + 1.0) / 2.0;
    const auto w = static_cast<double>(window);  // positions 0..w-1 see p + 1 keys, the rest w
    return (w * (w + 1.0) / 2.0 + (nd - w) * w) / nd;
}

}  // namespace

ModelCost model_cost(const Model& model) {
    const Model::Impl& m = model.impl();
    const ModelConfig& c = m.config;
    const ModelWeights& w = m.weights;
    ModelCost cost;

    Tally base;
    base.vector(w.output_norm, c.d_model);
    for (size_t il = 0; il < w.layers.size(); ++il) {
        const LayerWeights& l = w.layers[il];
        tally_layer(c, l, base);
        if (il < c.layer_moe.size() && c.layer_moe[il] != 0) cost.moe.push_back(tally_experts(c, l.experts));

        ModelCost::AttnLayer a;
        if (c.is_mla()) {
            const double kw = static_cast<double>(c.kv_lora_rank + c.head_dim_rope);
            a.kv_bytes_per_key = 4.0 * kw;  // the values are the latents: read once
            a.ops_per_key = static_cast<double>(c.n_heads) * 2.0 * (kw + static_cast<double>(c.kv_lora_rank));
        } else {
            a.kv_bytes_per_key = 4.0 * static_cast<double>(c.n_kv_heads * (c.head_dim + c.head_dim_v));
            a.ops_per_key = static_cast<double>(c.n_heads) * 2.0 * static_cast<double>(c.head_dim + c.head_dim_v);
        }
        a.window = il < c.layer_sliding.size() && c.layer_sliding[il] != 0 ? c.sliding_window : 0;
        cost.attn.push_back(a);
    }
    cost.base_bytes = base.bytes;
    cost.base_ops = base.ops;

    const auto embd_row = row_bytes(w.token_embd.type, static_cast<uint64_t>(w.token_embd.cols));
    cost.embd_row_bytes = static_cast<double>(embd_row.value_or(0));
    Tally out;
    out.linear(w.output);
    cost.output_bytes = out.bytes;
    cost.output_ops = out.ops;

    cost.active_params = base.params + out.params + static_cast<double>(w.token_embd.cols);
    for (const ModelCost::MoeLayer& l : cost.moe) {
        const double expert_params = total_ops(l.expert_ops) / 2.0;  // biases left out: tiny
        cost.active_params += static_cast<double>(l.n_used) * expert_params;
    }

    std::map<TensorType, uint64_t> by_type;
    for (const TensorView& t : m.file.tensors()) {
        cost.file_tensor_bytes += t.nbytes;
        cost.file_params += t.n_elements();
        by_type[t.type] += t.nbytes;
    }
    const auto main = std::max_element(by_type.begin(), by_type.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; });
    if (main != by_type.end()) cost.main_type = std::string(type_name(main->first));
    return cost;
}

TestCost decode_cost(const ModelCost& cost, int64_t n_gen) {
    TestCost t;
    t.bytes_per_token = cost.base_bytes + cost.embd_row_bytes + cost.output_bytes;
    add_ops(t.ops, cost.base_ops, 1.0);
    add_ops(t.ops, cost.output_ops, 1.0);
    for (const ModelCost::MoeLayer& l : cost.moe) {
        t.bytes_per_token += static_cast<double>(l.n_used) * l.expert_bytes;
        add_ops(t.ops, l.expert_ops, static_cast<double>(l.n_used));
    }
    for (const ModelCost::AttnLayer& a : cost.attn) {
        const double keys = mean_keys(n_gen, a.window);
        t.bytes_per_token += a.kv_bytes_per_key * keys;
        t.ops[TensorType::F32] += a.ops_per_key * keys;
    }
    t.flops_per_token = total_ops(t.ops);
    return t;
}

TestCost prefill_cost(const ModelCost& cost, int64_t n_prompt) {
    TestCost t;
    const double n = static_cast<double>(std::max<int64_t>(n_prompt, 1));
    double bytes = cost.base_bytes + n * cost.embd_row_bytes + cost.output_bytes;  // for the whole prompt
    add_ops(t.ops, cost.base_ops, 1.0);
    add_ops(t.ops, cost.output_ops, 1.0 / n);  // logits of the last token only
    for (const ModelCost::MoeLayer& l : cost.moe) {
        // Experts that n tokens touch, each picking n_used of n_experts uniformly at random.
        const double e = static_cast<double>(std::max<int64_t>(l.n_experts, 1));
        const double touched = e * (1.0 - std::pow(1.0 - static_cast<double>(l.n_used) / e, n));
        bytes += touched * l.expert_bytes;
        add_ops(t.ops, l.expert_ops, static_cast<double>(l.n_used));
    }
    t.bytes_per_token = bytes / n;
    for (const ModelCost::AttnLayer& a : cost.attn) {
        t.bytes_per_token += a.kv_bytes_per_key;  // each token's K and V written once
        t.ops[TensorType::F32] += a.ops_per_key * mean_keys(n_prompt, a.window);
    }
    t.flops_per_token = total_ops(t.ops);
    return t;
}

Limit test_limit(const TestCost& cost, bool is_prefill, const Probes& probes) {
    const double seconds_per_token = ops_seconds(cost.ops, probes);
    Limit limit;
    const double compute_ts = seconds_per_token > 0 ? 1.0 / seconds_per_token : 0.0;
    limit.peak_gops = seconds_per_token > 0 ? cost.flops_per_token / seconds_per_token / 1e9 : 0.0;
    const double memory_ts = cost.bytes_per_token > 0 ? probes.mem_bw_gbs * 1e9 / cost.bytes_per_token : 0.0;
    if (is_prefill && compute_ts > 0 && (compute_ts < memory_ts || memory_ts <= 0)) {
        limit.limit_ts = compute_ts;
        limit.kind = "compute";
    } else {
        limit.limit_ts = memory_ts;
        limit.kind = "memory";
    }
    return limit;
}

double non_expert_seconds(const ModelCost& cost, int64_t n_tokens, bool is_prefill, const Probes& probes) {
    ModelCost rest = cost;
    rest.moe.clear();
    const TestCost t = is_prefill ? prefill_cost(rest, n_tokens) : decode_cost(rest, n_tokens);
    const Limit limit = test_limit(t, is_prefill, probes);
    return limit.limit_ts > 0 ? 1.0 / limit.limit_ts : 0.0;
}

double expert_gops(const ModelCost& cost, const Probes& probes) {
    OpsByType ops;
    for (const ModelCost::MoeLayer& l : cost.moe) add_ops(ops, l.expert_ops, 1.0);
    const double seconds = ops_seconds(ops, probes);
    return seconds > 0 ? total_ops(ops) / seconds / 1e9 : 0.0;
}

}  // namespace hymoe::cli
