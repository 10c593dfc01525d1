#include "runtime/offload_context.hpp"

#include <algorithm>
#include <cstring>

#include "cpu/ops.hpp"
#include "hymoe/error.hpp"

namespace hymoe {

OffloadContext::OffloadContext(std::unique_ptr<BackendContext> inner, const ModelConfig& config,
                               const ModelWeights& host_weights, offload::RamTier* tier, bool prefetch,
                               cpu::ThreadPool& pool)
    : inner_(std::move(inner)),
      c_(config),
      tier_(tier),
      prefetch_(prefetch),
      pool_(pool),
      prefetcher_(config, host_weights) {
    if (tier_ != nullptr && !inner_->host_memory())
        throw Error("the RAM expert tier (--ram-experts-gb) computes experts on the CPU: use --device cpu");
}

void OffloadContext::set_observer(RoutingObserver observer) {
    if (observer && !inner_->host_memory())
        throw Error("routing can only be observed (hymoe trace) on the CPU backend: use --device cpu");
    observer_ = std::move(observer);
}

void OffloadContext::route(const float* logits, const float* selection_bias, int64_t n, int32_t* experts,
                           float* weights) {
    inner_->route(logits, selection_bias, n, experts, weights);
    // The score policy and the observer see the router's probabilities over all experts.
    if (!observer_ && (tier_ == nullptr || !tier_->wants_probs())) {
        probs_.clear();
        return;
    }
    const int64_t ne = c_.n_experts;
    probs_.assign(logits, logits + n * ne);
    for (int64_t t = 0; t < n; ++t) cpu::softmax(probs_.data() + t * ne, ne);
}

void OffloadContext::moe_experts(int64_t layer, const ExpertSet& experts, const float* h, int64_t n,
                                 const int32_t* expert_ids, const float* weights, float* out) {
    const int64_t k = c_.n_experts_used;
    if (observer_) {
        RoutingStep step;
        step.layer = layer;
        step.position = position_;
        step.n_tokens = n;
        step.n_experts = c_.n_experts;
        step.n_experts_used = k;
        step.experts = std::span(expert_ids, static_cast<size_t>(n * k));
        step.weights = std::span(weights, static_cast<size_t>(n * k));
        step.probs = probs_;
        observer_(step);
    }
    if (tier_ == nullptr) {
        inner_->moe_experts(layer, experts, h, n, expert_ids, weights, out);
        return;
    }
    int64_t next = -1;
    std::span<const int32_t> predicted;
    if (prefetch_ && n <= offload::Prefetcher::kMaxTokens) {
        next = prefetcher_.next_moe_layer(layer);
        if (next >= 0) predicted = prefetcher_.predict(next, h, n, n * k, pool_);
    }
    tier_->run(layer, experts, h, n, expert_ids, weights, probs_, out, next, predicted, scratch_, pool_);
}

}  // namespace hymoe
