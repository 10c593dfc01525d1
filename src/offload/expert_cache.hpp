// Which experts a tier's slots hold: per layer, a fixed pool of slots and a policy that picks
// victims. Bookkeeping only: the memory behind the slots belongs to the tier (host RAM for the
// RAM tier, device memory for the GPU cache), so `hymoe simulate` replays the same decisions
// with no memory at all.
//
// Pools are per layer: a layer's experts only ever replace the same layer's. (One pool across
// layers under LRU evicts exactly the layer that runs next, since layers run in a cycle.)
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "hymoe/engine.hpp"
#include "offload/cache_policy.hpp"

namespace hymoe::offload {

struct CacheCounters {
    uint64_t hits = 0;       // needed experts that were resident (prefetched ones included)
    uint64_t misses = 0;     // needed experts that were not
    uint64_t evictions = 0;  // residents replaced
    uint64_t prefetched = 0;       // experts loaded ahead of need
    uint64_t prefetch_used = 0;    // of those, needed before they were evicted
    uint64_t predicted = 0;        // experts the predictor named for a step
    uint64_t predicted_right = 0;  // of those, used by that step
    uint64_t used = 0;             // experts steps used where a prediction was made
    uint64_t bytes_loaded = 0;     // expert bytes read into slots or staging (or copied to the GPU)
    double predicted_seconds = 0;  // the tier's cost model's time of the layer's experts, summed
    CacheCounters& operator+=(const CacheCounters& o);
    double hit_rate() const { return hits + misses == 0 ? 0.0 : double(hits) / double(hits + misses); }
};

class ExpertCache {
public:
    // slots_per_layer: [n_layers], 0 for a layer with no pool (or no routed experts).
    ExpertCache(int64_t n_experts, int64_t n_experts_used, std::vector<int64_t> slots_per_layer,
                CachePolicyKind policy, const ScorePolicyParams& score = {});

    int64_t n_layers() const { return static_cast<int64_t>(layers_.size()); }
    int64_t n_slots(int64_t layer) const;
    int64_t total_slots() const;
    CachePolicyKind policy() const { return policy_; }

    int32_t lookup(int64_t layer, int32_t expert) const;  // slot, or -1
    int32_t expert_in(int64_t layer, int32_t slot) const;  // -1 when empty

    struct Placement {
        int32_t slot = -1;     // -1: no slot can be given up
        int32_t evicted = -1;  // the expert that was there, or -1 for a free slot
    };
    // Gives `expert` a slot: a free one, else the policy's victim among the residents that are
    // neither pinned nor in `keep`. The slot then holds `expert`. (An expert already resident
    // keeps its slot: nothing is evicted.)
    Placement place(int64_t layer, int32_t expert, std::span<const int32_t> keep, bool prefetch = false);
    // A pinned slot is being filled or read and is never chosen as a victim.
    void pin(int64_t layer, int32_t slot);
    void unpin(int64_t layer, int32_t slot);
    // Empties a slot whose contents could not be loaded.
    void forget(int64_t layer, int32_t slot);

    // One step's needs at a layer (distinct experts), before computing: counts a hit or a miss
    // per expert. hit[i] says whether needed[i] was resident.
    void count_needs(int64_t layer, std::span<const int32_t> needed, std::vector<bool>& hit);
    // How a prediction for this layer's step came out: `predicted` against the step's distinct
    // experts `used_sorted` (ascending).
    void count_prediction(int64_t layer, std::span<const int32_t> predicted, std::span<const int32_t> used_sorted);
    // One routing step (token) of a layer, after its needs were met: feeds the policy.
    void observe(int64_t layer, std::span<const int32_t> used, std::span<const float> weights,
                 std::span<const float> probs);

    CacheCounters& counters(int64_t layer) { return layers_[static_cast<size_t>(layer)].counters; }
    const CacheCounters& counters(int64_t layer) const { return layers_[static_cast<size_t>(layer)].counters; }
    CacheCounters total() const;

private:
    struct Layer {
        std::vector<int32_t> expert_of_slot;  // [slots], -1 = empty
        std::vector<int32_t> slot_of_expert;  // [n_experts], -1 = not resident
        std::vector<int32_t> pins;            // [slots]
        std::vector<uint8_t> unused_prefetch;  // [slots] loaded by the prefetcher, not needed yet
        std::unique_ptr<CachePolicy> policy;
        CacheCounters counters;
    };
    CachePolicyKind policy_;
    std::vector<Layer> layers_;
    std::vector<int32_t> candidates_;  // scratch of place()
};

// The cache's counters as the public API reports them (policy, per-layer and total counts);
// slot_bytes: [n_layers] the bytes one slot of each layer takes. The tier adds its own fields.
ExpertCacheStats cache_stats(const ExpertCache& cache, std::span<const uint64_t> slot_bytes);

// Slots per layer for `budget` bytes of expert memory, where one expert of layer l takes
// expert_bytes[l] bytes (0 for a layer without routed experts): the same count in every such
// layer, then one more in the first layers while the budget lasts. No layer gets more than
// n_experts slots.
std::vector<int64_t> slots_for_budget(std::span<const uint64_t> expert_bytes, int64_t n_experts, uint64_t budget);

}  // namespace hymoe::offload
