// The ops the forward pass is written in, and the backends that run them (CPU, CUDA).
//
// The forward pass (runtime/forward.cpp) is written once, as a list of calls on a
// BackendContext; a backend decides how each op runs and where its buffers live. A Backend is
// per model (it holds the weights the way its device reads them); a BackendContext is per
// session (its KV cache, scratch buffers and, on a GPU, its stream).
//
// Every float* an op takes or returns is in the backend's memory (host memory on the CPU,
// device memory on a GPU): buffers come from BackendContext::buffer() and the KV cache, weights
// from Backend::weights(). Token ids and logits cross to the host through embed() and
// download(). Ops are ordered as called; results written by download() are in place once
// end_pass() returns.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "hymoe/engine.hpp"
#include "model/config.hpp"
#include "model/weights.hpp"

namespace hymoe {

// The scratch buffers of one pass, by role. A buffer keeps its contents between ops of a pass;
// asking for a buffer again with a larger size may move it (and drop its contents).
enum class Buf : int {
    X,           // [n][d_model] the residual stream
    H,           // [n][d_model] the normalized input of a block
    Attn,        // [n][d_model] a block's output
    Q,           // [n][n_heads*head_dim]
    K,           // [n][n_kv_heads*head_dim]; MLA: [n][q_lora] then the latent heads
    V,           // [n][n_kv_heads*head_dim_v]; MLA: [n][kv_lora + rope]
    TmpA,        // per-op temporaries
    TmpB,
    TmpC,
    Router,      // [n][n_experts] router logits
    RouteWeights,  // [n][n_experts_used]
    Shared,      // [n][d_model] shared-expert output
    SharedGate,  // [n] shared-expert gate logits
    Logits,      // [n_out][n_vocab]
    Count
};

// One session's keys and values, per layer, in the backend's memory.
//   ordinary attention: k [n_ctx][n_kv_heads*head_dim], v [n_ctx][n_kv_heads*head_dim_v]
//   MLA: k [n_ctx][kv_lora + rope] = normalized latent | rotated shared rope key; v unused (null)
struct KvLayer {
    float* k = nullptr;
    float* v = nullptr;
};

// A batched attention over the KV cache; the fields mean what kernels::AttentionParams' do
// (kernels/launch.hpp) and cpu::attention_head computes for each (token, head).
struct AttentionArgs {
    const float* q = nullptr;
    int64_t q_token_stride = 0, q_head_stride = 0;
    const float* k = nullptr;
    const float* v = nullptr;
    int64_t k_pos_stride = 0, k_head_stride = 0;
    int64_t v_pos_stride = 0, v_head_stride = 0;
    int64_t n_tokens = 0, n_heads = 0, n_kv_heads = 0;
    int64_t dim_k = 0, dim_v = 0;
    int64_t n_past = 0;
    int64_t window = 0;  // keys visible to a query, its own included; 0 = all before it
    float scale = 1.0f;
    const float* sinks = nullptr;  // [n_heads] or null
    float* out = nullptr;
    int64_t out_token_stride = 0, out_head_stride = 0;
};

// A product per head with strided input and output: for head i < w.size() and token t < n,
//   out[t*out_token_stride + i*out_head_stride + r] = Σ_c w[i][r][c] · x[t*x_token_stride + i*x_head_stride + c]
// (MLA's k_b absorption and v_b expansion).
struct PerHeadLinear {
    std::span<const cpu::MatrixRef> w;
    const float* x = nullptr;
    int64_t x_token_stride = 0, x_head_stride = 0;
    float* out = nullptr;
    int64_t out_token_stride = 0, out_head_stride = 0;
};

class BackendContext {
public:
    virtual ~BackendContext() = default;

    // Brackets one forward pass of n tokens (a GPU backend may capture and replay decode passes).
    virtual void begin_pass(int64_t n_tokens) = 0;
    virtual void end_pass() = 0;

    // Whether this context's buffers are host memory the caller may read between ops.
    virtual bool host_memory() const { return false; }

    virtual KvLayer kv_layer(int64_t layer) = 0;
    virtual float* buffer(Buf which, int64_t n_floats) = 0;
    virtual int32_t* expert_ids(int64_t n) = 0;  // [n] routing choices, in the backend's memory

    // x [n][d_model] = rows `tokens` (host ids, already checked against the vocabulary) of the table.
    virtual void embed(const cpu::MatrixRef& table, std::span<const int32_t> tokens, float* x) = 0;
    // out row i = rms_norm(x row i) * w, rows `width` wide, starts x_stride / out_stride apart; out may alias x.
    virtual void rms_norm(const float* x, int64_t x_stride, const float* w, int64_t rows, int64_t width,
                          float eps, float* out, int64_t out_stride) = 0;
    // out = x · Wᵀ (+ bias): x [n][w.cols], out [n][w.rows]
    virtual void linear(const Linear& l, const float* x, int64_t n, float* out) = 0;
    virtual void linear_per_head(const PerHeadLinear& p, int64_t n) = 0;
    // x[i] += a[i]
    virtual void add(float* x, const float* a, int64_t n) = 0;
    // out[t] += (gate_logit ? sigmoid(gate_logit[t]) : 1) * src[t], rows of width
    virtual void add_gated(float* out, const float* src, const float* gate_logit, int64_t rows, int64_t width) = 0;
    // out[i] = activation(gate[i], up[i]) as the config says; out may alias gate
    virtual void glu(const float* gate, const float* up, int64_t n, float* out) = 0;
    virtual void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows,
                           int64_t width) = 0;
    // Rotates the first rope.n_dims dims of n_heads heads of n tokens, in place; token t is at position pos0 + t.
    virtual void rope(float* x, int64_t n, int64_t n_heads, int64_t token_stride, int64_t head_stride,
                      int64_t pos0) = 0;
    virtual void attention(const AttentionArgs& a) = 0;
    // Expert choice per token: logits [n][n_experts] -> experts [n][k] (best first), weights [n][k].
    virtual void route(const float* logits, const float* selection_bias, int64_t n, int32_t* experts,
                       float* weights) = 0;
    // out [n][d_model] = Σ_k weights[t][k] · expert_{experts[t][k]}(h[t]) over one layer's routed experts.
    virtual void moe_experts(int64_t layer, const ExpertSet& experts, const float* h, int64_t n,
                             const int32_t* expert_ids, const float* weights, float* out) = 0;
    // host[0..n) = src[0..n), in place once end_pass() returns.
    virtual void download(const float* src, int64_t n, float* host) = 0;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;  // "cpu", "cuda:0 (NVIDIA H100 80GB HBM3)"
    // The weights as this backend's ops read them.
    virtual const ModelWeights& weights() const = 0;
    virtual std::unique_ptr<BackendContext> new_context(int64_t n_ctx) const = 0;
    // The backend's own expert cache (the GPU tier), or empty stats (policy "") without one.
    virtual ExpertCacheStats expert_cache_stats() const { return {}; }
};

}  // namespace hymoe
