// A session's BackendContext with expert offloading and routing observation wrapped around the
// backend's own: every op goes to the backend unchanged except the routed experts, which the
// RAM tier computes from the experts it holds or reads (offload/ram_tier.hpp), and the routing,
// which the tier's cache policy and a RoutingObserver get to see.
#pragma once

#include <memory>
#include <vector>

#include "cpu/moe.hpp"
#include "hymoe/engine.hpp"
#include "offload/prefetcher.hpp"
#include "offload/ram_tier.hpp"
#include "runtime/backend.hpp"

namespace hymoe {

class OffloadContext final : public BackendContext {
public:
    // tier: null for no RAM tier (then only observation differs from `inner`).
    OffloadContext(std::unique_ptr<BackendContext> inner, const ModelConfig& config, const ModelWeights& host_weights,
                   offload::RamTier* tier, bool prefetch, cpu::ThreadPool& pool);

    void set_position(int64_t n_past) { position_ = n_past; }
    // Throws hymoe::Error when the backend's buffers are not host memory.
    void set_observer(RoutingObserver observer);

    bool host_memory() const override { return inner_->host_memory(); }
    void begin_pass(int64_t n) override { inner_->begin_pass(n); }
    void end_pass() override { inner_->end_pass(); }
    KvLayer kv_layer(int64_t layer) override { return inner_->kv_layer(layer); }
    float* buffer(Buf which, int64_t n) override { return inner_->buffer(which, n); }
    int32_t* expert_ids(int64_t n) override { return inner_->expert_ids(n); }
    void embed(const cpu::MatrixRef& table, std::span<const int32_t> tokens, float* x) override {
        inner_->embed(table, tokens, x);
    }
    void rms_norm(const float* x, int64_t x_stride, const float* w, int64_t rows, int64_t width, float eps, float* out,
                  int64_t out_stride) override {
        inner_->rms_norm(x, x_stride, w, rows, width, eps, out, out_stride);
    }
    void linear(const Linear& l, const float* x, int64_t n, float* out) override { inner_->linear(l, x, n, out); }
    void linear_per_head(const PerHeadLinear& p, int64_t n) override { inner_->linear_per_head(p, n); }
    void add(float* x, const float* a, int64_t n) override { inner_->add(x, a, n); }
    void add_gated(float* out, const float* src, const float* gate_logit, int64_t rows, int64_t width) override {
        inner_->add_gated(out, src, gate_logit, rows, width);
    }
    void glu(const float* gate, const float* up, int64_t n, float* out) override { inner_->glu(gate, up, n, out); }
    void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows,
                   int64_t width) override {
        inner_->copy_rows(dst, dst_stride, src, src_stride, rows, width);
    }
    void rope(float* x, int64_t n, int64_t n_heads, int64_t token_stride, int64_t head_stride, int64_t pos0) override {
        inner_->rope(x, n, n_heads, token_stride, head_stride, pos0);
    }
    void attention(const AttentionArgs& a) override { inner_->attention(a); }
    void download(const float* src, int64_t n, float* host) override { inner_->download(src, n, host); }

    void route(const float* logits, const float* selection_bias, int64_t n, int32_t* experts, float* weights) override;
    void moe_experts(int64_t layer, const ExpertSet& experts, const float* h, int64_t n, const int32_t* expert_ids,
                     const float* weights, float* out) override;

private:
    std::unique_ptr<BackendContext> inner_;
    const ModelConfig& c_;
    offload::RamTier* tier_;
    bool prefetch_;
    cpu::ThreadPool& pool_;
    offload::Prefetcher prefetcher_;
    RoutingObserver observer_;
    int64_t position_ = 0;
    std::vector<float> probs_;  // [n][n_experts] softmax of the last route()'s logits
    cpu::MoeScratch scratch_;
};

}  // namespace hymoe
