// The GPU tier's decision for one MoE layer and batch: which (token, slot) pairs the GPU computes
// from its expert cache, which the CPU computes from host memory, and which experts are copied
// into the cache first. Host-side bookkeeping only; the CUDA backend carries the plan out
// (copies on a copy stream, the GPU part and the CPU part at the same time, the CPU's partial
// output added on the GPU).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "offload/cost_model.hpp"
#include "offload/expert_cache.hpp"

namespace hymoe::offload {

struct MoePlan {
    std::vector<int32_t> gpu_ids;  // [n][k]: the expert where the GPU computes the pair, else -1
    std::vector<int32_t> cpu_ids;  // [n][k]: the expert where the CPU computes the pair, else -1
    struct Copy {
        int32_t expert = 0;
        int32_t slot = 0;  // the cache slot it goes to (pinned until the layer is done)
    };
    std::vector<Copy> copies;     // host -> GPU before the GPU part
    std::vector<int32_t> pinned;  // slots the GPU part reads: unpin() them once it has run
    LayerPlan predicted;          // the cost model's timing of this split
};

class MoeScheduler {
public:
    // cache: the GPU slots (one pool per layer). expert_size: [n_layers] bytes and ops of one
    // expert of each layer (0 for a dense layer).
    MoeScheduler(ExpertCache& cache, const CostModel& cost, std::vector<ExpertSize> expert_size, int64_t n_experts_used,
                 MissPolicy misses);

    // ids, weights: [n][k] the routing of a batch; probs: [n][n_experts] or empty (for the policy).
    // Counts hits and misses, places the copies (evicting by the policy, never an expert this
    // batch needs), feeds the policy, and splits the pairs. Adds the plan's predicted seconds to
    // the layer's CacheCounters::predicted_seconds.
    MoePlan plan(int64_t layer, std::span<const int32_t> ids, std::span<const float> weights,
                 std::span<const float> probs);
    void unpin(int64_t layer, const MoePlan& plan);

private:
    ExpertCache& cache_;
    const CostModel& cost_;
    std::vector<ExpertSize> size_;
    int64_t k_;
    MissPolicy misses_;
    NeedOrder need_order_;
    std::vector<int32_t> needed_;  // the step's distinct experts, heaviest first
    std::vector<int64_t> tokens_;  // [needed_] tokens routed to each
    std::vector<int32_t> gpu_experts_;  // those the GPU runs, ascending
    std::vector<bool> hit_;
    std::vector<ExpertNeed> needs_;
};

}  // namespace hymoe::offload
