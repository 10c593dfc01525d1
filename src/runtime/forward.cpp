#include "runtime/forward.hpp"

#include <fmt/format.h>

#include "hymoe/error.hpp"

namespace hymoe {

namespace {

// The pass over one batch of tokens. Each method is one block of the layer, a straight list of
// backend ops; every buffer is in the backend's memory.
class ForwardPass {
public:
    ForwardPass(const ModelConfig& c, const ModelWeights& w, BackendContext& b, int64_t n_past, int64_t n)
        : c_(c), w_(w), b_(b), n_past_(n_past), n_(n) {}

    // Ordinary multi-head attention with grouped kv heads. h: [n][d_model] -> out [n][d_model]
    void attention(int64_t il, const LayerWeights& l, const float* h, float* out) {
        const int64_t hd = c_.head_dim, hdv = c_.head_dim_v, nh = c_.n_heads, nkv = c_.n_kv_heads;
        float* q = b_.buffer(Buf::Q, n_ * nh * hd);    // [n][n_heads*head_dim]
        float* k = b_.buffer(Buf::K, n_ * nkv * hd);   // [n][n_kv_heads*head_dim]
        float* v = b_.buffer(Buf::V, n_ * nkv * hdv);  // [n][n_kv_heads*head_dim_v]
        b_.linear(l.q, h, n_, q);
        b_.linear(l.k, h, n_, k);
        b_.linear(l.v, h, n_, v);
        switch (c_.qk_norm) {
            case QkNorm::None: break;
            case QkNorm::PerHead:
                b_.rms_norm(q, hd, l.q_norm, n_ * nh, hd, c_.norm_eps, q, hd);
                b_.rms_norm(k, hd, l.k_norm, n_ * nkv, hd, c_.norm_eps, k, hd);
                break;
            case QkNorm::Full:
                b_.rms_norm(q, nh * hd, l.q_norm, n_, nh * hd, c_.norm_eps, q, nh * hd);
                b_.rms_norm(k, nkv * hd, l.k_norm, n_, nkv * hd, c_.norm_eps, k, nkv * hd);
                break;
        }
        b_.rope(q, n_, nh, nh * hd, hd, n_past_);
        b_.rope(k, n_, nkv, nkv * hd, hd, n_past_);
        const KvLayer kv = b_.kv_layer(il);
        b_.copy_rows(kv.k + n_past_ * nkv * hd, nkv * hd, k, nkv * hd, n_, nkv * hd);
        b_.copy_rows(kv.v + n_past_ * nkv * hdv, nkv * hdv, v, nkv * hdv, n_, nkv * hdv);

        float* heads = b_.buffer(Buf::TmpA, n_ * nh * hdv);  // [n][n_heads*head_dim_v]
        AttentionArgs a;
        a.q = q;
        a.q_token_stride = nh * hd;
        a.q_head_stride = hd;
        a.k = kv.k;
        a.v = kv.v;
        a.k_pos_stride = nkv * hd;
        a.k_head_stride = hd;
        a.v_pos_stride = nkv * hdv;
        a.v_head_stride = hdv;
        a.n_tokens = n_;
        a.n_heads = nh;
        a.n_kv_heads = nkv;
        a.dim_k = hd;
        a.dim_v = hdv;
        a.n_past = n_past_;
        a.window = c_.layer_sliding[static_cast<size_t>(il)] != 0 ? c_.sliding_window : 0;
        a.scale = c_.kq_scale;
        a.sinks = l.sinks;
        a.out = heads;
        a.out_token_stride = nh * hdv;
        a.out_head_stride = hdv;
        b_.attention(a);
        b_.linear(l.out, heads, n_, out);
    }

    // Multi-head latent attention, absorbed: scores and values are taken in the kv_lora latent
    // space, so the cache holds one latent and one rope key per position for all heads.
    void mla_attention(int64_t il, const LayerWeights& l, const float* h, float* out) {
        const int64_t nh = c_.n_heads, hd = c_.head_dim, nope = c_.head_dim_nope, rope = c_.head_dim_rope;
        const int64_t lora = c_.kv_lora_rank, hdv = c_.head_dim_v, kw = lora + rope;
        float* q = b_.buffer(Buf::Q, n_ * nh * hd);  // [n][n_heads][nope | rope]
        if (c_.q_lora_rank > 0) {
            float* qa = b_.buffer(Buf::K, n_ * c_.q_lora_rank);  // [n][q_lora]
            b_.linear(l.q_a, h, n_, qa);
            b_.rms_norm(qa, c_.q_lora_rank, l.q_a_norm, n_, c_.q_lora_rank, c_.norm_eps, qa, c_.q_lora_rank);
            b_.linear(l.q_b, qa, n_, q);
        } else {
            b_.linear(l.q, h, n_, q);
        }
        float* kva = b_.buffer(Buf::V, n_ * kw);  // [n][kv_lora | rope]
        b_.linear(l.kv_a, h, n_, kva);
        // The cache row of each new position: normalized latent | rotated rope key.
        float* cache = b_.kv_layer(il).k;       // [n_ctx][kv_lora | rope]
        float* rows = cache + n_past_ * kw;  // [n][kv_lora | rope]
        b_.rms_norm(kva, kw, l.kv_a_norm, n_, lora, c_.norm_eps, rows, kw);
        b_.copy_rows(rows + lora, kw, kva + lora, kw, n_, rope);
        b_.rope(rows + lora, n_, 1, kw, 0, n_past_);
        b_.rope(q + nope, n_, nh, nh * hd, hd, n_past_);

        // Absorb k_b into the query: q_lat = k_bᵀ q_nope per head. qcat: [n][n_heads][kv_lora | rope]
        float* qcat = b_.buffer(Buf::TmpA, n_ * nh * kw);
        b_.linear_per_head({l.k_b, q, nh * hd, hd, qcat, nh * kw, kw}, n_);
        b_.copy_rows(qcat + lora, kw, q + nope, hd, n_ * nh, rope);

        float* heads_lat = b_.buffer(Buf::K, n_ * nh * lora);  // [n][n_heads][kv_lora]
        AttentionArgs a;
        a.q = qcat;
        a.q_token_stride = nh * kw;
        a.q_head_stride = kw;
        a.k = cache;
        a.v = cache;  // the values are the latents
        a.k_pos_stride = kw;
        a.v_pos_stride = kw;
        a.n_tokens = n_;
        a.n_heads = nh;
        a.n_kv_heads = 1;
        a.dim_k = kw;
        a.dim_v = lora;
        a.n_past = n_past_;
        a.scale = c_.kq_scale;
        a.out = heads_lat;
        a.out_token_stride = nh * lora;
        a.out_head_stride = lora;
        b_.attention(a);

        float* heads = b_.buffer(Buf::TmpB, n_ * nh * hdv);  // [n][n_heads*head_dim_v]
        b_.linear_per_head({l.v_b, heads_lat, nh * lora, lora, heads, nh * hdv, hdv}, n_);
        b_.linear(l.out, heads, n_, out);
    }

    // gate/up/activation/down over m rows. x: [m][d_model] -> out [m][d_model]
    void ffn(const Linear& gate, const Linear& up, const Linear& down, const float* x, int64_t m, float* out) {
        const int64_t f = gate.w.rows;
        float* g = b_.buffer(Buf::TmpA, m * f);  // [m][d_ff]
        float* u = b_.buffer(Buf::TmpB, m * f);  // [m][d_ff]
        b_.linear(gate, x, m, g);
        b_.linear(up, x, m, u);
        b_.glu(g, u, m * f, g);
        b_.linear(down, g, m, out);
    }

    // Routed experts (each on the tokens routed to it), then shared experts. h, out: [n][d_model]
    void moe(int64_t il, const LayerWeights& l, const float* h, float* out) {
        const int64_t d = c_.d_model, k = c_.n_experts_used;
        float* logits = b_.buffer(Buf::Router, n_ * c_.n_experts);  // [n][n_experts]
        b_.linear(l.router, h, n_, logits);
        int32_t* experts = b_.expert_ids(n_ * k);                // [n][k]
        float* weights = b_.buffer(Buf::RouteWeights, n_ * k);  // [n][k]
        b_.route(logits, l.selection_bias, n_, experts, weights);
        b_.moe_experts(il, l.experts, h, n_, experts, weights, out);
        if (c_.d_ff_shared > 0) {
            float* shared = b_.buffer(Buf::Shared, n_ * d);  // [n][d_model]
            ffn(l.shared_gate, l.shared_up, l.shared_down, h, n_, shared);
            float* gate = nullptr;  // [n] logits of the shared expert's sigmoid gate
            if (l.shared_expert_gate.present()) {
                gate = b_.buffer(Buf::SharedGate, n_);
                b_.linear(l.shared_expert_gate, h, n_, gate);
            }
            b_.add_gated(out, shared, gate, n_, d);
        }
    }

    void run(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits_out) {
        const int64_t d = c_.d_model;
        float* x = b_.buffer(Buf::X, n_ * d);     // [n][d_model] the residual stream
        float* h = b_.buffer(Buf::H, n_ * d);     // [n][d_model] normalized input of a block
        float* a = b_.buffer(Buf::Attn, n_ * d);  // [n][d_model] a block's output
        b_.embed(w_.token_embd, tokens, x);
        for (int64_t il = 0; il < c_.n_layers; ++il) {
            const LayerWeights& l = w_.layers[static_cast<size_t>(il)];
            b_.rms_norm(x, d, l.attn_norm, n_, d, c_.norm_eps, h, d);
            if (c_.is_mla()) {
                mla_attention(il, l, h, a);
            } else {
                attention(il, l, h, a);
            }
            b_.add(x, a, n_ * d);
            b_.rms_norm(x, d, l.ffn_norm, n_, d, c_.norm_eps, h, d);
            if (c_.layer_moe[static_cast<size_t>(il)] != 0) {
                moe(il, l, h, a);
            } else {
                ffn(l.ffn_gate, l.ffn_up, l.ffn_down, h, n_, a);
            }
            b_.add(x, a, n_ * d);
        }
        const int64_t first = all_logits ? 0 : n_ - 1, n_out = n_ - first;
        b_.rms_norm(x + first * d, d, w_.output_norm, n_out, d, c_.norm_eps, h + first * d, d);
        float* logits = b_.buffer(Buf::Logits, n_out * c_.n_vocab);  // [n_out][n_vocab]
        b_.linear(w_.output, h + first * d, n_out, logits);
        logits_out.resize(static_cast<size_t>(n_out * c_.n_vocab));
        b_.download(logits, n_out * c_.n_vocab, logits_out.data());
    }

private:
    const ModelConfig& c_;
    const ModelWeights& w_;
    BackendContext& b_;
    int64_t n_past_;
    int64_t n_;
};

}  // namespace

Model::Impl::Impl(ModelFile f, ModelConfig c, ModelWeights w, int64_t ctx, int n_threads)
    : file(std::move(f)), config(std::move(c)), weights(std::move(w)), n_ctx(ctx), pool(n_threads) {}

void forward(const Model::Impl& model, BackendContext& ctx, int64_t n_ctx, int64_t n_past,
             std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits) {
    const auto n = static_cast<int64_t>(tokens.size());
    if (n == 0) throw Error("no tokens to evaluate");
    if (n_past + n > n_ctx)
        throw Error(
            fmt::format("the context is full: {} tokens in the cache + {} new > context length {}", n_past, n, n_ctx));
    const int64_t n_vocab = model.weights.token_embd.rows;
    for (int64_t t = 0; t < n; ++t) {
        const int32_t id = tokens[static_cast<size_t>(t)];
        if (id < 0 || id >= n_vocab)
            throw Error(fmt::format("token id {} at position {} is outside the vocabulary (0..{})", id, n_past + t,
                                    n_vocab - 1));
    }
    ctx.begin_pass(n);
    ForwardPass(model.config, model.backend->weights(), ctx, n_past, n).run(tokens, all_logits, logits);
    ctx.end_pass();
}

}  // namespace hymoe
