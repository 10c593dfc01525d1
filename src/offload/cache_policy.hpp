// Which expert a full slot pool gives up: LRU, LFU, and HybriMoE's score-based policy.
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

enum class CachePolicyKind { Lru, Lfu, Score };

// "lru", "lfu", "score" -> kind; throws hymoe::Error naming the flag and the choices otherwise.
CachePolicyKind parse_cache_policy(std::string_view name);
std::string_view cache_policy_name(CachePolicyKind kind);
std::span<const CachePolicyKind> all_cache_policies();

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

std::unique_ptr<CachePolicy> make_cache_policy(CachePolicyKind kind, int64_t n_experts, int64_t n_experts_used,
                                               const ScorePolicyParams& score = {});

}  // namespace hymoe::offload
