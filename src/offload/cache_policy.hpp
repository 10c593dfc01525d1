// Which expert a full slot pool gives up: LRU, LFU, HybriMoE's score-based policy, and that
// score with its decay chosen per layer while it runs (adaptive).
//
// A policy watches one layer: every routing step (one token) tells it which experts the step
// used and, when known, the router's probabilities over all experts. When the layer's pool is
// full and a missing expert needs a slot, the policy names the victim among the evictable
// residents. docs/offload.md compares them on recorded routing traces.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hymoe::offload {

enum class CachePolicyKind { Lru, Lfu, Score, Adaptive };

// "lru", "lfu", "score", "adaptive" -> kind; throws hymoe::Error naming the flag and the choices
// otherwise.
CachePolicyKind parse_cache_policy(std::string_view name);
std::string_view cache_policy_name(CachePolicyKind kind);
std::span<const CachePolicyKind> all_cache_policies();
// Whether the policy reads the router's softmax (the engine computes it per layer only then).
bool policy_reads_probs(CachePolicyKind kind);

// A step's distinct experts in the order their misses take slots: the heaviest first (routing
// weight summed over the step's tokens), ties to the lower id. The order matters only when a
// layer has fewer evictable slots than misses (fewer slots than k, or a prefill batch that needs
// more experts than the layer holds): then it decides which misses are cached, and the heavier
// are the likelier to be needed again (docs/offload.md measures it against ascending ids).
// ids, weights: [n][k] (ids < 0 are skipped). needed: out, distinct experts; tokens: out, if not
// null, how many of the step's tokens route to each.
struct NeedOrder {
    void order(std::span<const int32_t> ids, std::span<const float> weights, std::vector<int32_t>& needed,
               std::vector<int64_t>* tokens = nullptr);

private:
    struct Need {
        int32_t expert;
        double weight;
        int64_t tokens;
    };
    std::vector<Need> needs_;  // scratch
};

class CachePolicy {
public:
    virtual ~CachePolicy() = default;
    // One routing step of this layer: the experts it used (routing weights beside them) and the
    // softmax of the router logits over all experts ([n_experts], or empty when not known).
    virtual void observe(std::span<const int32_t> used, std::span<const float> weights,
                         std::span<const float> probs) = 0;
    // The expert to evict among `candidates` (not empty): the least valuable by this policy,
    // ties broken by the least recently used, then by the lowest id.
    virtual int32_t victim(std::span<const int32_t> candidates) const = 0;
};

// HybriMoE's constants (its released code): S <- a·s + (1-a)·S for the top 2·k experts of the
// router's softmax s, S <- (1-a)·S for the others.
struct ScorePolicyParams {
    double a = 0.5;
    int64_t top_p = 0;  // 0: 2 · n_experts_used
};

// The adaptive policy runs one shadow pool of the layer's size per decay it weighs, so it needs
// `slots` (the layer's pool); the others ignore it.
//
// Adaptive: shadow pools of `slots` experts replay the layer's steps with the score at
// a = 0.5 (HybriMoE's), 0.1 and 0.02 and with use counts (LFU, no decay), exactly as the real
// pool is run (needs in ascending order, victims among the residents a step does not need);
// each counts its hits, decayed by 1 - 1/256 per step. The real pool evicts by whichever has
// the most (ties to the slower decay, LFU first). Stationary routing favours counting, routing
// whose popular experts drift favours a fast decay: docs/offload.md measures both.
std::unique_ptr<CachePolicy> make_cache_policy(CachePolicyKind kind, int64_t n_experts, int64_t n_experts_used,
                                               const ScorePolicyParams& score = {}, int64_t slots = 0);

}  // namespace hymoe::offload
