// Replays a routing trace through the expert cache, offline: the hit rate each cache policy
// would have had at each cache size, and Belady's optimum as the bound none can beat.
//
// A replay meets every record's needs exactly as the engine's scheduler (RamTier::run) meets a
// step's, one token being one step: count_needs over the token's distinct experts in ascending
// order, place() each missed expert keeping the token's experts, then observe() the token. So a
// trace replayed here gives the hit counts the engine counts running the same tokens one at a
// time without prefetching (a prefetch places experts too; a prefill batch is one step there).
// The GPU tier's MoeScheduler caches only the misses its cost model sends to the GPU, so its
// counts can differ.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "offload/cache_policy.hpp"
#include "offload/routing_trace.hpp"

namespace hymoe::offload {

struct HitCount {
    uint64_t hits = 0;
    uint64_t misses = 0;
    HitCount& operator+=(const HitCount& o) {
        hits += o.hits;
        misses += o.misses;
        return *this;
    }
    double hit_rate() const { return hits + misses == 0 ? 0.0 : double(hits) / double(hits + misses); }
};

struct SimulationResult {
    std::string policy;            // "lru", "lfu", "score", "adaptive" or "opt"
    double size_pct = 0;           // the size asked for (simulate), else slots as a percentage
    int64_t slots = 0;             // per MoE layer
    HitCount total;                // over all MoE layers
    std::vector<HitCount> layers;  // [n_layers]; zero for layers without routed experts
};

// Slots per layer for a cache of `pct` percent of a layer's experts: round(pct/100 · n_experts),
// at least 1, at most n_experts. Throws hymoe::Error unless 0 < pct <= 100.
int64_t slots_for_percent(double pct, int64_t n_experts);

// One policy, `slots` slots in every MoE layer (1 <= slots <= n_experts).
SimulationResult simulate_policy(const RoutingTrace& trace, CachePolicyKind policy, int64_t slots,
                                 const ScorePolicyParams& score = {});

// Belady's optimum: after each step a layer keeps the `slots` experts needed soonest among those
// it held and those the step needed (MIN with bypass). That is the most hits any cache can have
// that loads an expert only when a step needs it, so no policy beats it. It may give up an expert
// the step found resident, which the scheduler does not do mid-step; with fewer slots than k
// that freedom can be worth a few hits no real policy gets, so the bound is then not tight.
SimulationResult simulate_optimal(const RoutingTrace& trace, int64_t slots);

// Every policy at every size, then the optimum ("opt") at every size.
std::vector<SimulationResult> simulate(const RoutingTrace& trace, std::span<const double> sizes_pct,
                                       std::span<const CachePolicyKind> policies);

}  // namespace hymoe::offload
