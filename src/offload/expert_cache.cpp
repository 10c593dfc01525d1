#include "offload/expert_cache.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "hymoe/error.hpp"

namespace hymoe::offload {

CacheCounters& CacheCounters::operator+=(const CacheCounters& o) {
    hits += o.hits;
    misses += o.misses;
    evictions += o.evictions;
    prefetched += o.prefetched;
    prefetch_used += o.prefetch_used;
    predicted += o.predicted;
    predicted_right += o.predicted_right;
    used += o.used;
    bytes_loaded += o.bytes_loaded;
    predicted_seconds += o.predicted_seconds;
    return *this;
}

ExpertCache::ExpertCache(int64_t n_experts, int64_t n_experts_used, std::vector<int64_t> slots_per_layer,
                         CachePolicyKind policy, const ScorePolicyParams& score)
    : policy_(policy) {
    if (n_experts <= 0 || n_experts_used <= 0 || n_experts_used > n_experts)
        throw Error(fmt::format("expert cache: {} of {} experts per token is not a routing", n_experts_used, n_experts));
    layers_.resize(slots_per_layer.size());
    for (size_t l = 0; l < layers_.size(); ++l) {
        const int64_t slots = slots_per_layer[l];
        if (slots < 0 || slots > n_experts)
            throw Error(fmt::format("expert cache: layer {} cannot have {} slots for {} experts", l, slots, n_experts));
        Layer& L = layers_[l];
        L.expert_of_slot.assign(static_cast<size_t>(slots), -1);
        L.slot_of_expert.assign(static_cast<size_t>(n_experts), -1);
        L.pins.assign(static_cast<size_t>(slots), 0);
        L.unused_prefetch.assign(static_cast<size_t>(slots), 0);
        L.policy = make_cache_policy(policy, n_experts, n_experts_used, score, slots);
    }
}

int64_t ExpertCache::n_slots(int64_t layer) const {
    return static_cast<int64_t>(layers_[static_cast<size_t>(layer)].expert_of_slot.size());
}

int64_t ExpertCache::total_slots() const {
    int64_t n = 0;
    for (const Layer& L : layers_) n += static_cast<int64_t>(L.expert_of_slot.size());
    return n;
}

int32_t ExpertCache::lookup(int64_t layer, int32_t expert) const {
    return layers_[static_cast<size_t>(layer)].slot_of_expert[static_cast<size_t>(expert)];
}

int32_t ExpertCache::expert_in(int64_t layer, int32_t slot) const {
    return layers_[static_cast<size_t>(layer)].expert_of_slot[static_cast<size_t>(slot)];
}

ExpertCache::Placement ExpertCache::place(int64_t layer, int32_t expert, std::span<const int32_t> keep,
                                          bool prefetch) {
    Layer& L = layers_[static_cast<size_t>(layer)];
    Placement p;
    if (const int32_t held = L.slot_of_expert[static_cast<size_t>(expert)]; held >= 0) {
        p.slot = held;
        return p;
    }
    candidates_.clear();
    for (size_t s = 0; s < L.expert_of_slot.size(); ++s) {
        const int32_t e = L.expert_of_slot[s];
        if (e < 0) {
            p.slot = static_cast<int32_t>(s);
            break;
        }
        if (L.pins[s] == 0 && std::find(keep.begin(), keep.end(), e) == keep.end()) candidates_.push_back(e);
    }
    if (p.slot < 0) {
        if (candidates_.empty()) return p;
        p.evicted = L.policy->victim(candidates_);
        p.slot = L.slot_of_expert[static_cast<size_t>(p.evicted)];
        L.slot_of_expert[static_cast<size_t>(p.evicted)] = -1;
        ++L.counters.evictions;
    }
    const auto s = static_cast<size_t>(p.slot);
    L.expert_of_slot[s] = expert;
    L.slot_of_expert[static_cast<size_t>(expert)] = p.slot;
    L.unused_prefetch[s] = prefetch ? 1 : 0;
    if (prefetch) ++L.counters.prefetched;
    return p;
}

void ExpertCache::pin(int64_t layer, int32_t slot) {
    ++layers_[static_cast<size_t>(layer)].pins[static_cast<size_t>(slot)];
}

void ExpertCache::unpin(int64_t layer, int32_t slot) {
    --layers_[static_cast<size_t>(layer)].pins[static_cast<size_t>(slot)];
}

void ExpertCache::forget(int64_t layer, int32_t slot) {
    Layer& L = layers_[static_cast<size_t>(layer)];
    const int32_t e = L.expert_of_slot[static_cast<size_t>(slot)];
    if (e >= 0) L.slot_of_expert[static_cast<size_t>(e)] = -1;
    L.expert_of_slot[static_cast<size_t>(slot)] = -1;
    L.unused_prefetch[static_cast<size_t>(slot)] = 0;
}

void ExpertCache::count_needs(int64_t layer, std::span<const int32_t> needed, std::vector<bool>& hit) {
    Layer& L = layers_[static_cast<size_t>(layer)];
    hit.assign(needed.size(), false);
    for (size_t i = 0; i < needed.size(); ++i) {
        const int32_t slot = L.slot_of_expert[static_cast<size_t>(needed[i])];
        if (slot >= 0) {
            hit[i] = true;
            ++L.counters.hits;
            if (L.unused_prefetch[static_cast<size_t>(slot)] != 0) {
                L.unused_prefetch[static_cast<size_t>(slot)] = 0;
                ++L.counters.prefetch_used;
            }
        } else {
            ++L.counters.misses;
        }
    }
}

void ExpertCache::count_prediction(int64_t layer, std::span<const int32_t> predicted,
                                   std::span<const int32_t> used_sorted) {
    CacheCounters& c = layers_[static_cast<size_t>(layer)].counters;
    c.predicted += predicted.size();
    c.used += used_sorted.size();
    for (int32_t e : predicted)
        if (std::binary_search(used_sorted.begin(), used_sorted.end(), e)) ++c.predicted_right;
}

void ExpertCache::observe(int64_t layer, std::span<const int32_t> used, std::span<const float> weights,
                          std::span<const float> probs) {
    layers_[static_cast<size_t>(layer)].policy->observe(used, weights, probs);
}

CacheCounters ExpertCache::total() const {
    CacheCounters t;
    for (const Layer& L : layers_) t += L.counters;
    return t;
}

ExpertCacheStats cache_stats(const ExpertCache& cache, std::span<const uint64_t> slot_bytes) {
    ExpertCacheStats s;
    s.policy = std::string(cache_policy_name(cache.policy()));
    const auto fill = [](ExpertCacheStats::Layer& out, const CacheCounters& c) {
        out.hits = c.hits;
        out.misses = c.misses;
        out.evictions = c.evictions;
        out.prefetched = c.prefetched;
        out.prefetch_used = c.prefetch_used;
        out.predicted = c.predicted;
        out.predicted_right = c.predicted_right;
        out.used = c.used;
        out.bytes_loaded = c.bytes_loaded;
        out.predicted_seconds = c.predicted_seconds;
    };
    s.layers.resize(static_cast<size_t>(cache.n_layers()));
    for (int64_t l = 0; l < cache.n_layers(); ++l) {
        ExpertCacheStats::Layer& L = s.layers[static_cast<size_t>(l)];
        fill(L, cache.counters(l));
        L.slots = cache.n_slots(l);
        L.slot_bytes = static_cast<size_t>(l) < slot_bytes.size() ? slot_bytes[static_cast<size_t>(l)] : 0;
        s.total.slots += L.slots;
    }
    fill(s.total, cache.total());
    return s;
}

std::vector<int64_t> slots_for_budget(std::span<const uint64_t> expert_bytes, int64_t n_experts, uint64_t budget) {
    std::vector<int64_t> slots(expert_bytes.size(), 0);
    uint64_t per_round = 0;
    for (uint64_t b : expert_bytes) per_round += b;
    if (per_round == 0) return slots;
    const auto rounds = static_cast<int64_t>(std::min<uint64_t>(budget / per_round, static_cast<uint64_t>(n_experts)));
    uint64_t left = budget - static_cast<uint64_t>(rounds) * per_round;
    for (size_t l = 0; l < slots.size(); ++l) {
        if (expert_bytes[l] == 0) continue;
        slots[l] = rounds;
        if (rounds < n_experts && expert_bytes[l] <= left) {
            ++slots[l];
            left -= expert_bytes[l];
        }
    }
    return slots;
}

}  // namespace hymoe::offload
