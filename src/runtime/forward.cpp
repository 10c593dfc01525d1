#include "runtime/forward.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "cpu/matmul.hpp"
#include "cpu/ops.hpp"
#include "hymoe/error.hpp"

namespace hymoe {

namespace {

using cpu::MatrixRef;

float* grow(std::vector<float>& buffer, int64_t n) {
    if (buffer.size() < static_cast<size_t>(n)) buffer.resize(static_cast<size_t>(n));
    return buffer.data();
}

// The pass over one batch of tokens. Each method is one block of the layer.
class ForwardPass {
public:
    ForwardPass(const Model::Impl& m, KvCache& cache, int64_t n_past, int64_t n, ForwardScratch& s)
        : m_(m), c_(m.config), cache_(cache), pool_(m.pool), n_past_(n_past), n_(n), s_(s) {}

    // out = x · Wᵀ (+ bias): x [n][w.cols], out [n][w.rows]
    void linear(const Linear& l, const float* x, int64_t n, float* out) {
        cpu::matmul(l.w, x, n, out, pool_);
        if (l.bias != nullptr)
            for (int64_t t = 0; t < n; ++t)
                for (int64_t r = 0; r < l.w.rows; ++r) out[t * l.w.rows + r] += l.bias[r];
    }

    void embed(std::span<const int32_t> tokens, float* x) {
        const MatrixRef& e = m_.weights.token_embd;
        const uint64_t row = row_bytes(e.type, static_cast<uint64_t>(c_.d_model)).value_or(0);
        for (int64_t t = 0; t < n_; ++t) {
            const int32_t id = tokens[static_cast<size_t>(t)];
            if (id < 0 || id >= e.rows)
                throw Error(fmt::format("token id {} at position {} is outside the vocabulary (0..{})", id, n_past_ + t,
                                        e.rows - 1));
            cpu::dequantize_row(e.type, e.data + row * static_cast<uint64_t>(id), c_.d_model, x + t * c_.d_model);
        }
    }

    // Ordinary multi-head attention with grouped kv heads. h: [n][d_model] -> out [n][d_model]
    void attention(int64_t il, const LayerWeights& l, const float* h, float* out) {
        const int64_t hd = c_.head_dim, hdv = c_.head_dim_v, nh = c_.n_heads, nkv = c_.n_kv_heads;
        float* q = grow(s_.q, n_ * nh * hd);    // [n][n_heads*head_dim]
        float* k = grow(s_.k, n_ * nkv * hd);   // [n][n_kv_heads*head_dim]
        float* v = grow(s_.v, n_ * nkv * hdv);  // [n][n_kv_heads*head_dim_v]
        linear(l.q, h, n_, q);
        linear(l.k, h, n_, k);
        linear(l.v, h, n_, v);
        for (int64_t t = 0; t < n_; ++t) {
            switch (c_.qk_norm) {
                case QkNorm::None: break;
                case QkNorm::PerHead:
                    for (int64_t i = 0; i < nh; ++i)
                        cpu::rms_norm(q + (t * nh + i) * hd, l.q_norm, hd, c_.norm_eps, q + (t * nh + i) * hd);
                    for (int64_t i = 0; i < nkv; ++i)
                        cpu::rms_norm(k + (t * nkv + i) * hd, l.k_norm, hd, c_.norm_eps, k + (t * nkv + i) * hd);
                    break;
                case QkNorm::Full:
                    cpu::rms_norm(q + t * nh * hd, l.q_norm, nh * hd, c_.norm_eps, q + t * nh * hd);
                    cpu::rms_norm(k + t * nkv * hd, l.k_norm, nkv * hd, c_.norm_eps, k + t * nkv * hd);
                    break;
            }
            rope_position(n_past_ + t);
            for (int64_t i = 0; i < nh; ++i) cpu::rope_rotate(c_.rope, cos_.data(), sin_.data(), q + (t * nh + i) * hd);
            for (int64_t i = 0; i < nkv; ++i)
                cpu::rope_rotate(c_.rope, cos_.data(), sin_.data(), k + (t * nkv + i) * hd);
        }
        KvCache::Layer& kv = cache_.layers[static_cast<size_t>(il)];
        std::memcpy(kv.k.data() + n_past_ * nkv * hd, k, sizeof(float) * static_cast<size_t>(n_ * nkv * hd));
        std::memcpy(kv.v.data() + n_past_ * nkv * hdv, v, sizeof(float) * static_cast<size_t>(n_ * nkv * hdv));

        float* heads = grow(s_.tmp_a, n_ * nh * hdv);  // [n][n_heads*head_dim_v]
        const int64_t group = nh / nkv;
        const bool sliding = c_.layer_sliding[static_cast<size_t>(il)] != 0;
        pool_.parallel_for(n_ * nh, [&](int64_t begin, int64_t end) {
            std::vector<float> scores(static_cast<size_t>(n_past_ + n_));
            for (int64_t i = begin; i < end; ++i) {
                const int64_t t = i / nh, head = i % nh, kvh = head / group, pos = n_past_ + t;
                cpu::AttentionHead a;
                a.q = q + (t * nh + head) * hd;
                a.k = kv.k.data() + kvh * hd;
                a.v = kv.v.data() + kvh * hdv;
                a.k_stride = nkv * hd;
                a.v_stride = nkv * hdv;
                a.dim_k = hd;
                a.dim_v = hdv;
                a.k_begin = sliding ? std::max<int64_t>(0, pos - c_.sliding_window + 1) : 0;
                a.k_end = pos + 1;
                a.scale = c_.kq_scale;
                a.sink = l.sinks != nullptr ? l.sinks + head : nullptr;
                cpu::attention_head(a, scores.data(), heads + (t * nh + head) * hdv);
            }
        });
        linear(l.out, heads, n_, out);
    }

    // Multi-head latent attention, absorbed: scores and values are taken in the kv_lora latent
    // space, so the cache holds one latent and one rope key per position for all heads.
    void mla_attention(int64_t il, const LayerWeights& l, const float* h, float* out) {
        const int64_t nh = c_.n_heads, hd = c_.head_dim, nope = c_.head_dim_nope, rope = c_.head_dim_rope;
        const int64_t lora = c_.kv_lora_rank, hdv = c_.head_dim_v, kw = lora + rope;
        float* q = grow(s_.q, n_ * nh * hd);  // [n][n_heads][nope | rope]
        if (c_.q_lora_rank > 0) {
            float* qa = grow(s_.k, n_ * c_.q_lora_rank);  // [n][q_lora]
            linear(l.q_a, h, n_, qa);
            for (int64_t t = 0; t < n_; ++t)
                cpu::rms_norm(qa + t * c_.q_lora_rank, l.q_a_norm, c_.q_lora_rank, c_.norm_eps,
                              qa + t * c_.q_lora_rank);
            linear(l.q_b, qa, n_, q);
        } else {
            linear(l.q, h, n_, q);
        }
        float* kva = grow(s_.v, n_ * kw);  // [n][kv_lora | rope]
        linear(l.kv_a, h, n_, kva);
        KvCache::Layer& kv = cache_.layers[static_cast<size_t>(il)];
        for (int64_t t = 0; t < n_; ++t) {
            rope_position(n_past_ + t);
            float* row = kv.k.data() + (n_past_ + t) * kw;
            cpu::rms_norm(kva + t * kw, l.kv_a_norm, lora, c_.norm_eps, row);
            std::memcpy(row + lora, kva + t * kw + lora, sizeof(float) * static_cast<size_t>(rope));
            cpu::rope_rotate(c_.rope, cos_.data(), sin_.data(), row + lora);
            for (int64_t i = 0; i < nh; ++i)
                cpu::rope_rotate(c_.rope, cos_.data(), sin_.data(), q + (t * nh + i) * hd + nope);
        }
        // Absorb k_b into the query: q_lat = k_bᵀ q_nope per head. qcat: [n][n_heads][kv_lora | rope]
        float* qcat = grow(s_.tmp_a, n_ * nh * kw);
        float* gather = grow(s_.tmp_b, n_ * std::max(nope, lora));
        float* lat = grow(s_.tmp_c, n_ * std::max(lora, hdv));
        for (int64_t i = 0; i < nh; ++i) {
            for (int64_t t = 0; t < n_; ++t)
                std::memcpy(gather + t * nope, q + (t * nh + i) * hd, sizeof(float) * static_cast<size_t>(nope));
            cpu::matmul(l.k_b[static_cast<size_t>(i)], gather, n_, lat, pool_);
            for (int64_t t = 0; t < n_; ++t) {
                float* dst = qcat + (t * nh + i) * kw;
                std::memcpy(dst, lat + t * lora, sizeof(float) * static_cast<size_t>(lora));
                std::memcpy(dst + lora, q + (t * nh + i) * hd + nope, sizeof(float) * static_cast<size_t>(rope));
            }
        }
        float* heads_lat = grow(s_.k, n_ * nh * lora);  // [n][n_heads][kv_lora]
        pool_.parallel_for(n_ * nh, [&](int64_t begin, int64_t end) {
            std::vector<float> scores(static_cast<size_t>(n_past_ + n_));
            for (int64_t i = begin; i < end; ++i) {
                const int64_t t = i / nh, pos = n_past_ + t;
                cpu::AttentionHead a;
                a.q = qcat + i * kw;
                a.k = kv.k.data();
                a.v = kv.k.data();  // the values are the latents
                a.k_stride = kw;
                a.v_stride = kw;
                a.dim_k = kw;
                a.dim_v = lora;
                a.k_begin = 0;
                a.k_end = pos + 1;
                a.scale = c_.kq_scale;
                cpu::attention_head(a, scores.data(), heads_lat + i * lora);
            }
        });
        float* heads = grow(s_.tmp_a, n_ * nh * hdv);  // [n][n_heads*head_dim_v]; qcat is done
        for (int64_t i = 0; i < nh; ++i) {
            for (int64_t t = 0; t < n_; ++t)
                std::memcpy(gather + t * lora, heads_lat + (t * nh + i) * lora,
                            sizeof(float) * static_cast<size_t>(lora));
            cpu::matmul(l.v_b[static_cast<size_t>(i)], gather, n_, lat, pool_);
            for (int64_t t = 0; t < n_; ++t)
                std::memcpy(heads + (t * nh + i) * hdv, lat + t * hdv, sizeof(float) * static_cast<size_t>(hdv));
        }
        linear(l.out, heads, n_, out);
    }

    // gate/up/activation/down over m rows. x: [m][d_model] -> out [m][d_model]
    void ffn(const MatrixRef& gate, const MatrixRef& up, const MatrixRef& down, const float* gate_bias,
             const float* up_bias, const float* down_bias, const float* x, int64_t m, float* out) {
        const int64_t f = gate.rows;
        float* g = grow(s_.tmp_a, m * f);  // [m][d_ff]
        float* u = grow(s_.tmp_b, m * f);  // [m][d_ff]
        linear({gate, gate_bias}, x, m, g);
        linear({up, up_bias}, x, m, u);
        switch (c_.activation) {
            case FfnActivation::SwiGlu: cpu::swiglu(g, u, m * f, g); break;
            case FfnActivation::SwiGluOai: cpu::swiglu_oai(g, u, m * f, c_.swiglu_alpha, c_.swiglu_limit, g); break;
        }
        linear({down, down_bias}, g, m, out);
    }

    // Routed experts (each on the tokens routed to it), then shared experts. h, out: [n][d_model]
    void moe(const LayerWeights& l, const float* h, float* out) {
        const int64_t d = c_.d_model, ne = c_.n_experts, k = c_.n_experts_used, f = c_.d_ff_expert;
        float* logits = grow(s_.router, n_ * ne);  // [n][n_experts]
        linear(l.router, h, n_, logits);
        s_.experts.resize(static_cast<size_t>(n_ * k));
        float* weights = grow(s_.weights, n_ * k);  // [n][k]
        for (int64_t t = 0; t < n_; ++t)
            cpu::route(c_, logits + t * ne, l.selection_bias, s_.experts.data() + t * k, weights + t * k);

        // Group the (token, slot) pairs by expert (a counting sort): expert e's pairs are
        // slots[start[e] .. start[e + 1]).
        std::vector<int64_t>& start = s_.expert_start;
        std::vector<int64_t>& slots = s_.slots_by_expert;
        start.assign(static_cast<size_t>(ne + 1), 0);
        for (int64_t i = 0; i < n_ * k; ++i) ++start[static_cast<size_t>(s_.experts[static_cast<size_t>(i)]) + 1];
        for (int64_t e = 0; e < ne; ++e) start[static_cast<size_t>(e + 1)] += start[static_cast<size_t>(e)];
        slots.resize(static_cast<size_t>(n_ * k));
        for (int64_t i = 0; i < n_ * k; ++i) {
            const auto e = static_cast<size_t>(s_.experts[static_cast<size_t>(i)]);
            slots[static_cast<size_t>(start[e]++)] = i;  // start[e] ends at the next expert's start
        }
        for (int64_t e = ne; e > 0; --e) start[static_cast<size_t>(e)] = start[static_cast<size_t>(e - 1)];
        start[0] = 0;

        // Every routed (token, slot) pair's input, grouped by expert, and all experts' gate/up
        // and down products in two batched calls (two pool wake-ups per phase, not two per expert).
        const int64_t pairs = n_ * k;
        float* xs = grow(s_.expert_in, pairs * d);   // [pairs][d_model], expert e's at start[e]
        float* g = grow(s_.tmp_a, pairs * f);        // [pairs][d_ff_expert]
        float* u = grow(s_.tmp_b, pairs * f);        // [pairs][d_ff_expert]
        float* ys = grow(s_.expert_out, pairs * d);  // [pairs][d_model]
        for (int64_t r = 0; r < pairs; ++r)
            std::memcpy(xs + r * d, h + (slots[static_cast<size_t>(r)] / k) * d,
                        sizeof(float) * static_cast<size_t>(d));
        const ExpertSet& x = l.experts;
        std::vector<cpu::MatmulJob>& jobs = s_.jobs;
        jobs.clear();
        for (int64_t e = 0; e < ne; ++e) {
            const int64_t first = start[static_cast<size_t>(e)], m = start[static_cast<size_t>(e + 1)] - first;
            if (m == 0) continue;
            const auto es = static_cast<size_t>(e);
            jobs.push_back({x.gate[es], xs + first * d, m, g + first * f});
            jobs.push_back({x.up[es], xs + first * d, m, u + first * f});
        }
        cpu::matmul_batch(jobs, pool_);
        for (int64_t e = 0; e < ne; ++e) {
            const int64_t first = start[static_cast<size_t>(e)], m = start[static_cast<size_t>(e + 1)] - first;
            for (int64_t r = first; r < first + m; ++r) {
                if (x.gate_bias != nullptr)
                    for (int64_t j = 0; j < f; ++j) g[r * f + j] += x.gate_bias[e * f + j];
                if (x.up_bias != nullptr)
                    for (int64_t j = 0; j < f; ++j) u[r * f + j] += x.up_bias[e * f + j];
            }
        }
        switch (c_.activation) {
            case FfnActivation::SwiGlu: cpu::swiglu(g, u, pairs * f, g); break;
            case FfnActivation::SwiGluOai: cpu::swiglu_oai(g, u, pairs * f, c_.swiglu_alpha, c_.swiglu_limit, g); break;
        }
        jobs.clear();
        for (int64_t e = 0; e < ne; ++e) {
            const int64_t first = start[static_cast<size_t>(e)], m = start[static_cast<size_t>(e + 1)] - first;
            if (m > 0) jobs.push_back({x.down[static_cast<size_t>(e)], g + first * f, m, ys + first * d});
        }
        cpu::matmul_batch(jobs, pool_);

        std::fill(out, out + n_ * d, 0.0f);
        for (int64_t e = 0; e < ne; ++e) {
            const int64_t first = start[static_cast<size_t>(e)], m = start[static_cast<size_t>(e + 1)] - first;
            for (int64_t r = first; r < first + m; ++r) {
                const int64_t slot = slots[static_cast<size_t>(r)], t = slot / k;
                const float w = weights[slot];
                if (x.down_bias != nullptr)
                    for (int64_t j = 0; j < d; ++j) ys[r * d + j] += x.down_bias[e * d + j];
                for (int64_t j = 0; j < d; ++j) out[t * d + j] += w * ys[r * d + j];
            }
        }
        if (c_.d_ff_shared > 0) {
            float* shared = grow(s_.expert_out, n_ * d);  // [n][d_model]
            ffn(l.shared_gate.w, l.shared_up.w, l.shared_down.w, nullptr, nullptr, nullptr, h, n_, shared);
            float* gate = grow(s_.shared_gate, n_);  // [n]
            if (l.shared_expert_gate.present()) {
                linear(l.shared_expert_gate, h, n_, gate);
                for (int64_t t = 0; t < n_; ++t) gate[t] = cpu::sigmoid(gate[t]);
            } else {
                std::fill(gate, gate + n_, 1.0f);
            }
            for (int64_t t = 0; t < n_; ++t)
                for (int64_t j = 0; j < d; ++j) out[t * d + j] += gate[t] * shared[t * d + j];
        }
    }

    void run(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits_out) {
        const int64_t d = c_.d_model;
        float* x = grow(s_.x, n_ * d);     // [n][d_model] the residual stream
        float* h = grow(s_.h, n_ * d);     // [n][d_model] normalized input of a block
        float* a = grow(s_.attn, n_ * d);  // [n][d_model] a block's output
        embed(tokens, x);
        for (int64_t il = 0; il < c_.n_layers; ++il) {
            const LayerWeights& l = m_.weights.layers[static_cast<size_t>(il)];
            for (int64_t t = 0; t < n_; ++t) cpu::rms_norm(x + t * d, l.attn_norm, d, c_.norm_eps, h + t * d);
            if (c_.is_mla()) {
                mla_attention(il, l, h, a);
            } else {
                attention(il, l, h, a);
            }
            for (int64_t i = 0; i < n_ * d; ++i) x[i] += a[i];
            for (int64_t t = 0; t < n_; ++t) cpu::rms_norm(x + t * d, l.ffn_norm, d, c_.norm_eps, h + t * d);
            if (c_.layer_moe[static_cast<size_t>(il)] != 0) {
                moe(l, h, a);
            } else {
                ffn(l.ffn_gate.w, l.ffn_up.w, l.ffn_down.w, nullptr, nullptr, nullptr, h, n_, a);
            }
            for (int64_t i = 0; i < n_ * d; ++i) x[i] += a[i];
        }
        const int64_t first = all_logits ? 0 : n_ - 1, n_out = n_ - first;
        for (int64_t t = first; t < n_; ++t)
            cpu::rms_norm(x + t * d, m_.weights.output_norm, d, c_.norm_eps, h + t * d);
        logits_out.resize(static_cast<size_t>(n_out * c_.n_vocab));
        linear(m_.weights.output, h + first * d, n_out, logits_out.data());
    }

private:
    void rope_position(int64_t pos) {
        cos_.resize(static_cast<size_t>(c_.rope.n_dims / 2));
        sin_.resize(cos_.size());
        cpu::rope_angles(c_.rope, pos, cos_.data(), sin_.data());
    }

    const Model::Impl& m_;
    const ModelConfig& c_;
    KvCache& cache_;
    cpu::ThreadPool& pool_;
    int64_t n_past_;
    int64_t n_;
    ForwardScratch& s_;
    std::vector<float> cos_, sin_;
};

}  // namespace

Model::Impl::Impl(ModelFile f, ModelConfig c, ModelWeights w, int64_t ctx, int n_threads)
    : file(std::move(f)), config(std::move(c)), weights(std::move(w)), n_ctx(ctx), pool(n_threads) {}

KvCache::KvCache(const ModelConfig& c, int64_t ctx) : n_ctx(ctx) {
    layers.resize(static_cast<size_t>(c.n_layers));
    for (Layer& l : layers) {
        if (c.is_mla()) {
            l.k.assign(static_cast<size_t>(ctx * (c.kv_lora_rank + c.head_dim_rope)), 0.0f);
        } else {
            l.k.assign(static_cast<size_t>(ctx * c.n_kv_heads * c.head_dim), 0.0f);
            l.v.assign(static_cast<size_t>(ctx * c.n_kv_heads * c.head_dim_v), 0.0f);
        }
    }
}

void forward(const Model::Impl& model, KvCache& cache, int64_t n_past, std::span<const int32_t> tokens, bool all_logits,
             ForwardScratch& scratch, std::vector<float>& logits) {
    const auto n = static_cast<int64_t>(tokens.size());
    if (n == 0) throw Error("no tokens to evaluate");
    if (n_past + n > cache.n_ctx)
        throw Error(fmt::format("the context is full: {} tokens in the cache + {} new > context length {}", n_past, n,
                                cache.n_ctx));
    ForwardPass(model, cache, n_past, n, scratch).run(tokens, all_logits, logits);
}

}  // namespace hymoe
