#include "offload/moe_scheduler.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "hymoe/error.hpp"

namespace hymoe::offload {

MoeScheduler::MoeScheduler(ExpertCache& cache, const CostModel& cost, std::vector<ExpertSize> expert_size,
                           int64_t n_experts_used, MissPolicy misses)
    : cache_(cache), cost_(cost), size_(std::move(expert_size)), k_(n_experts_used), misses_(misses) {
    if (static_cast<int64_t>(size_.size()) != cache_.n_layers())
        throw Error(fmt::format("MoE scheduler: {} expert sizes for {} layers", size_.size(), cache_.n_layers()));
}

MoePlan MoeScheduler::plan(int64_t layer, std::span<const int32_t> ids, std::span<const float> weights,
                           std::span<const float> probs) {
    MoePlan p;
    const auto n_pairs = ids.size();
    const auto n = static_cast<int64_t>(n_pairs) / k_;
    // The distinct experts, heaviest first, and their token counts (a token routes to an expert
    // at most once). The order decides which misses get a slot when too few can be given up.
    need_order_.order(ids, weights, needed_, &tokens_);
    cache_.count_needs(layer, needed_, hit_);
    needs_.resize(needed_.size());
    for (size_t i = 0; i < needed_.size(); ++i) needs_[i] = {needed_[i], tokens_[i], static_cast<bool>(hit_[i])};
    p.predicted = cost_.plan_layer(needs_, size_[static_cast<size_t>(layer)], misses_);
    // The split as planned: a miss later sent to the CPU for want of a slot keeps its planned time.
    cache_.counters(layer).predicted_seconds += p.predicted.seconds;

    // The GPU's experts: hits are pinned where they are; misses the split gave the GPU get a slot,
    // or go to the CPU when none can be given up.
    std::vector<uint8_t> on_gpu(needed_.size(), 0);
    for (size_t i = 0; i < needed_.size(); ++i) {
        if (p.predicted.side[i] != Side::Gpu) continue;
        int32_t slot = cache_.lookup(layer, needed_[i]);
        if (slot < 0) {
            slot = cache_.place(layer, needed_[i], needed_).slot;
            if (slot < 0) {
                p.predicted.side[i] = Side::Cpu;
                continue;
            }
            p.copies.push_back({needed_[i], slot});
        }
        cache_.pin(layer, slot);
        p.pinned.push_back(slot);
        on_gpu[i] = 1;
    }
    for (int64_t t = 0; t < n; ++t)
        cache_.observe(layer, ids.subspan(static_cast<size_t>(t * k_), static_cast<size_t>(k_)),
                       weights.subspan(static_cast<size_t>(t * k_), static_cast<size_t>(k_)),
                       probs.empty() ? probs : probs.subspan(probs.size() / static_cast<size_t>(n) * static_cast<size_t>(t),
                                                             probs.size() / static_cast<size_t>(n)));
    gpu_experts_.clear();
    for (size_t i = 0; i < needed_.size(); ++i)
        if (on_gpu[i]) gpu_experts_.push_back(needed_[i]);
    std::sort(gpu_experts_.begin(), gpu_experts_.end());
    p.gpu_ids.assign(n_pairs, -1);
    p.cpu_ids.assign(n_pairs, -1);
    for (size_t j = 0; j < n_pairs; ++j) {
        if (ids[j] < 0) continue;
        const bool gpu = std::binary_search(gpu_experts_.begin(), gpu_experts_.end(), ids[j]);
        (gpu ? p.gpu_ids : p.cpu_ids)[j] = ids[j];
    }
    return p;
}

void MoeScheduler::unpin(int64_t layer, const MoePlan& plan) {
    for (int32_t slot : plan.pinned) cache_.unpin(layer, slot);
}

}  // namespace hymoe::offload
