#include "offload/prefetcher.hpp"

#include <algorithm>
#include <cmath>

#include "cpu/matmul.hpp"
#include "cpu/ops.hpp"

namespace hymoe::offload {

Prefetcher::Prefetcher(const ModelConfig& config, const ModelWeights& host_weights) : c_(config), w_(host_weights) {}

int64_t Prefetcher::next_moe_layer(int64_t layer) const {
    for (int64_t l = layer + 1; l < c_.n_layers; ++l)
        if (c_.layer_moe[static_cast<size_t>(l)] != 0) return l;
    return -1;
}

std::span<const int32_t> Prefetcher::predict(int64_t next, const float* h, int64_t n, int64_t max_experts,
                                             cpu::ThreadPool& pool) {
    const int64_t ne = c_.n_experts, k = c_.n_experts_used;
    const LayerWeights& l = w_.layers[static_cast<size_t>(next)];
    logits_.resize(static_cast<size_t>(n * ne));  // [n][n_experts]
    cpu::matmul(l.router.w, h, n, logits_.data(), pool);
    if (l.router.bias != nullptr)
        for (int64_t t = 0; t < n; ++t)
            for (int64_t e = 0; e < ne; ++e) logits_[static_cast<size_t>(t * ne + e)] += l.router.bias[e];
    ids_.resize(static_cast<size_t>(k));
    weights_.resize(static_cast<size_t>(k));
    score_.assign(static_cast<size_t>(ne), 0.0f);
    for (int64_t t = 0; t < n; ++t) {
        cpu::route(c_, logits_.data() + t * ne, l.selection_bias, ids_.data(), weights_.data());
        // A chosen expert scores at least a little, whatever its weight's sign or size.
        for (int64_t j = 0; j < k; ++j) score_[static_cast<size_t>(ids_[static_cast<size_t>(j)])] += 1.0f + std::abs(weights_[static_cast<size_t>(j)]);
    }
    order_.clear();
    for (int32_t e = 0; e < ne; ++e)
        if (score_[static_cast<size_t>(e)] > 0.0f) order_.push_back(e);
    std::stable_sort(order_.begin(), order_.end(), [&](int32_t a, int32_t b) {
        return score_[static_cast<size_t>(a)] > score_[static_cast<size_t>(b)];
    });
    if (static_cast<int64_t>(order_.size()) > max_experts) order_.resize(static_cast<size_t>(max_experts));
    return order_;
}

}  // namespace hymoe::offload
