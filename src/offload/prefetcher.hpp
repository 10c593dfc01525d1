// Pre-gating: the next MoE layer's router applied to the current layer's hidden state guesses
// which experts the next layer will want, early enough to read them while this layer computes.
// (The residual stream changes little from one layer to the next, so the guess is usually well
// above chance; ExpertCacheStats counts how often it is right.)
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cpu/thread_pool.hpp"
#include "model/config.hpp"
#include "model/weights.hpp"

namespace hymoe::offload {

class Prefetcher {
public:
    // Prefetching pays for batches of a few tokens (decode); a prefill batch needs most experts
    // of every layer, and its misses are read in the layer anyway.
    static constexpr int64_t kMaxTokens = 4;

    Prefetcher(const ModelConfig& config, const ModelWeights& host_weights);

    // The next layer after `layer` with routed experts, or -1.
    int64_t next_moe_layer(int64_t layer) const;
    // The experts layer `next`'s router picks for h [n][d_model] (host memory), over all n tokens,
    // the most weighted first; at most max_experts of them.
    std::span<const int32_t> predict(int64_t next, const float* h, int64_t n, int64_t max_experts,
                                     cpu::ThreadPool& pool);

private:
    const ModelConfig& c_;
    const ModelWeights& w_;
    std::vector<float> logits_, weights_, score_;
    std::vector<int32_t> ids_, order_;
};

}  // namespace hymoe::offload
