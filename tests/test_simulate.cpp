// The offline cache simulator (src/offload/simulate.hpp) against references written here from
// scratch, in the plainest way, on random skewed traces that went through the trace writer and
// reader: LRU as a recency list, LFU by counting, the score policy from its formula on the full
// router softmax (as the engine sees it, not the trace's top 2·k), Belady's optimum as an
// exhaustive search over every cache content. Then the properties: no policy beats the optimum;
// LRU (a stack algorithm) and the optimum never lose hits as the cache grows.
#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <list>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "hymoe/error.hpp"
#include "offload/expert_cache.hpp"
#include "offload/routing_trace.hpp"
#include "offload/simulate.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;
using offload::CachePolicyKind;
using offload::RoutingTrace;
using offload::RoutingTraceHeader;

// One token at one layer, as the engine's router produced it.
struct Step {
    int64_t position = 0, layer = 0;
    std::vector<int32_t> experts;  // [k] best first
    std::vector<float> weights;    // [k]
    std::vector<float> probs;      // [n_experts] the full softmax
};

struct Generated {
    RoutingTraceHeader header;
    std::vector<Step> steps;  // in file order
};

// Skewed routing like a real router's: per-layer popularity (Zipf-like offsets on the logits),
// plus a bonus for the previous token's experts (locality), plus noise. drift_every > 0: the
// popularity is dealt anew every that many tokens (a new request, say).
Generated random_routing(int64_t n_experts, int64_t k, int n_tokens, std::vector<int64_t> moe_layers, int64_t n_layers,
                         uint32_t seed, float skew = 1.0f, int drift_every = 0) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    Generated g;
    g.header.model = "random";
    g.header.architecture = "test";
    g.header.n_layers = n_layers;
    g.header.n_experts = n_experts;
    g.header.n_experts_used = k;
    g.header.n_probs = std::min(2 * k, n_experts);
    g.header.moe_layers = moe_layers;
    std::map<int64_t, std::vector<float>> offset;
    std::map<int64_t, std::vector<int32_t>> previous;
    for (int64_t l : moe_layers) {
        std::vector<int32_t> rank(static_cast<size_t>(n_experts));
        std::iota(rank.begin(), rank.end(), 1);
        std::shuffle(rank.begin(), rank.end(), rng);
        for (int32_t r : rank) offset[l].push_back(-skew * std::log(static_cast<float>(r)));
    }
    for (int t = 0; t < n_tokens; ++t) {
        if (drift_every > 0 && t > 0 && t % drift_every == 0)
            for (auto& [l, o] : offset) std::shuffle(o.begin(), o.end(), rng);
        for (int64_t l : moe_layers) {
            Step s;
            s.position = t;
            s.layer = l;
            std::vector<float> logits(static_cast<size_t>(n_experts));
            for (size_t e = 0; e < logits.size(); ++e) logits[e] = offset[l][e] + noise(rng);
            for (int32_t e : previous[l]) logits[static_cast<size_t>(e)] += 1.0f;
            const float mx = *std::max_element(logits.begin(), logits.end());
            double sum = 0;
            for (float x : logits) sum += std::exp(static_cast<double>(x - mx));
            for (float x : logits) s.probs.push_back(static_cast<float>(std::exp(static_cast<double>(x - mx)) / sum));
            std::vector<int32_t> order(logits.size());
            std::iota(order.begin(), order.end(), 0);
            std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
                return s.probs[static_cast<size_t>(a)] > s.probs[static_cast<size_t>(b)];
            });
            float wsum = 0;
            for (int64_t i = 0; i < k; ++i) wsum += s.probs[static_cast<size_t>(order[static_cast<size_t>(i)])];
            for (int64_t i = 0; i < k; ++i) {
                s.experts.push_back(order[static_cast<size_t>(i)]);
                s.weights.push_back(s.probs[static_cast<size_t>(order[static_cast<size_t>(i)])] / wsum);
            }
            previous[l] = s.experts;
            g.steps.push_back(std::move(s));
        }
    }
    return g;
}

// Through the writer and the reader, as `hymoe trace` and `hymoe simulate` do it.
RoutingTrace via_file(const Generated& g, const std::string& name) {
    const fs::path path = test::temp_dir_for_test() / name;
    offload::RoutingTraceWriter w(path.string(), g.header);
    for (const Step& s : g.steps) w.write(s.position, s.layer, s.experts, s.weights, s.probs);
    w.finish();
    return offload::read_routing_trace(path.string());
}

// ---- references -------------------------------------------------------------------------

// What every reference policy decides: whom to evict, given the resident experts that may go.
// The scheduler around it is the same for all: count hits, then each miss, by ascending id,
// takes a free slot or the victim's (none when every resident is one this step needs), then the
// step is observed.
struct ReferencePolicy {
    virtual ~ReferencePolicy() = default;
    virtual int32_t victim(const std::vector<int32_t>& evictable) = 0;
    virtual void observe(const Step& s) = 0;
};

// LRU as a list, least recent first. After a step its experts move to the back, in ascending id
// order, so that among experts last used in the same step the lowest id goes first.
struct ReferenceLru : ReferencePolicy {
    std::list<int32_t> order;
    int32_t victim(const std::vector<int32_t>& evictable) override {
        for (int32_t e : order)
            if (std::find(evictable.begin(), evictable.end(), e) != evictable.end()) return e;
        ADD_FAILURE() << "an evictable expert that was never used";
        return evictable[0];
    }
    void observe(const Step& s) override {
        std::vector<int32_t> used = s.experts;
        std::sort(used.begin(), used.end());
        for (int32_t e : used) {
            order.remove(e);
            order.push_back(e);
        }
    }
};

// Counts of uses since the start; the fewest goes, ties to the least recent, then the lowest id.
struct ReferenceLfu : ReferencePolicy {
    std::map<int32_t, int> count;
    std::map<int32_t, int> last;
    int step = 0;
    int32_t victim(const std::vector<int32_t>& evictable) override {
        int32_t best = -1;
        for (int32_t e : evictable) {
            if (best < 0 || count[e] < count[best] || (count[e] == count[best] && last[e] < last[best]) ||
                (count[e] == count[best] && last[e] == last[best] && e < best))
                best = e;
        }
        return best;
    }
    void observe(const Step& s) override {
        ++step;
        for (int32_t e : s.experts) {
            ++count[e];
            last[e] = step;
        }
    }
};

// A step's experts in the scheduler's order: the heaviest routing weight first, ties to the lower id.
std::vector<int32_t> heaviest_first(const Step& s) {
    std::vector<std::pair<float, int32_t>> by_weight;  // (-weight, expert): ascending = heaviest first
    for (size_t i = 0; i < s.experts.size(); ++i) by_weight.emplace_back(-s.weights[i], s.experts[i]);
    std::sort(by_weight.begin(), by_weight.end());
    std::vector<int32_t> out;
    for (const auto& [w, e] : by_weight) out.push_back(e);
    return out;
}

// One step of a reference cache of `slots` experts: counts the step's hits (the rest are misses),
// then gives each missed expert a free slot, or the slot of the policy's victim among the
// residents the step does not need, or none (computed without caching). Does not observe.
uint64_t reference_step(std::vector<int32_t>& cache, const Step& s, int64_t slots, ReferencePolicy& policy) {
    uint64_t hits = 0;
    std::vector<int32_t> missed;
    for (int32_t e : heaviest_first(s)) {  // the scheduler's order
        if (std::find(cache.begin(), cache.end(), e) != cache.end()) {
            ++hits;
        } else {
            missed.push_back(e);
        }
    }
    for (int32_t e : missed) {
        if (static_cast<int64_t>(cache.size()) < slots) {
            cache.push_back(e);
            continue;
        }
        std::vector<int32_t> evictable;
        for (int32_t r : cache)
            if (std::find(s.experts.begin(), s.experts.end(), r) == s.experts.end()) evictable.push_back(r);
        if (evictable.empty()) continue;  // computed without caching
        *std::find(cache.begin(), cache.end(), policy.victim(evictable)) = e;
    }
    return hits;
}

// HybriMoE's score from its definition, on the full softmax: every step S <- (1-a)·S, then
// S += a·p for the 2·k most probable experts (all of them when 2·k > n_experts; ties to the
// lower id).
struct ReferenceScore : ReferencePolicy {
    double a = 0.5;
    size_t top;
    std::map<int32_t, double> score;
    std::map<int32_t, int> last;
    int step = 0;
    explicit ReferenceScore(size_t top_p) : top(top_p) {}
    int32_t victim(const std::vector<int32_t>& evictable) override {
        int32_t best = -1;
        for (int32_t e : evictable) {
            if (best < 0 || score[e] < score[best] || (score[e] == score[best] && last[e] < last[best]) ||
                (score[e] == score[best] && last[e] == last[best] && e < best))
                best = e;
        }
        return best;
    }
    void observe(const Step& s) override {
        ++step;
        for (int32_t e : s.experts) last[e] = step;
        for (auto& [e, v] : score) v *= 1.0 - a;
        std::vector<std::pair<float, int32_t>> ranked;  // (-p, e): ascending = most probable first
        for (size_t e = 0; e < s.probs.size(); ++e) ranked.emplace_back(-s.probs[e], static_cast<int32_t>(e));
        std::sort(ranked.begin(), ranked.end());
        for (size_t i = 0; i < top; ++i) score[ranked[i].second] += a * static_cast<double>(-ranked[i].first);
    }
};

struct Counts {
    uint64_t hits = 0, misses = 0;
};

// The adaptive policy from its description: shadow caches of the layer's size, one per score
// decay (0.5, 0.1, 0.02) and one under LFU, each run exactly like reference_run; each counts its
// hits, decayed by 1 - 1/256 per step; victims come from the one with the most hits (ties to the
// later in that list).
struct ReferenceAdaptive : ReferencePolicy {
    struct Candidate {
        std::unique_ptr<ReferencePolicy> policy;
        std::vector<int32_t> cache;
        double hits = 0;
    };
    std::vector<Candidate> candidates;
    int64_t slots;
    size_t best = 3;
    ReferenceAdaptive(size_t top_p, int64_t slots_) : slots(slots_) {
        for (double a : {0.5, 0.1, 0.02}) {
            auto score = std::make_unique<ReferenceScore>(top_p);
            score->a = a;
            candidates.push_back({std::move(score), {}, 0.0});
        }
        candidates.push_back({std::make_unique<ReferenceLfu>(), {}, 0.0});
    }
    int32_t victim(const std::vector<int32_t>& evictable) override { return candidates[best].policy->victim(evictable); }
    void observe(const Step& s) override {
        for (Candidate& c : candidates) {
            c.hits *= 1.0 - 1.0 / 256.0;
            const uint64_t hits = reference_step(c.cache, s, slots, *c.policy);
            for (uint64_t i = 0; i < hits; ++i) c.hits += 1.0;  // one at a time, as the policy counts
            c.policy->observe(s);
        }
        for (size_t i = 0; i < candidates.size(); ++i)
            if (candidates[i].hits >= candidates[best].hits) best = i;
    }
};

// One layer's steps through a reference policy with `slots` slots.
Counts reference_run(const std::vector<const Step*>& steps, int64_t slots, ReferencePolicy& policy) {
    Counts c;
    std::vector<int32_t> cache;
    for (const Step* s : steps) {
        const uint64_t hits = reference_step(cache, *s, slots, policy);
        c.hits += hits;
        c.misses += s->experts.size() - hits;
        policy.observe(*s);
    }
    return c;
}

// The best any cache can do, by trying everything: after each step the cache may hold any set
// of at most `slots` experts drawn from what it held and what the step needed. Dynamic
// programming over all such sets (n_experts <= 10).
uint64_t exhaustive_optimum(const std::vector<const Step*>& steps, int64_t slots, int64_t n_experts) {
    const size_t n_sets = size_t{1} << n_experts;
    std::vector<int64_t> best(n_sets, -1), next(n_sets);
    best[0] = 0;
    for (const Step* s : steps) {
        uint32_t need = 0;
        for (int32_t e : s->experts) need |= 1u << e;
        std::fill(next.begin(), next.end(), -1);
        for (uint32_t held = 0; held < n_sets; ++held) {
            if (best[held] < 0) continue;
            const int64_t value = best[held] + std::popcount(held & need);
            const uint32_t pool = held | need;
            for (uint32_t sub = pool;; sub = (sub - 1) & pool) {  // every subset of pool
                if (std::popcount(sub) <= slots) next[sub] = std::max(next[sub], value);
                if (sub == 0) break;
            }
        }
        best.swap(next);
    }
    return static_cast<uint64_t>(*std::max_element(best.begin(), best.end()));
}

std::vector<const Step*> steps_of_layer(const Generated& g, int64_t layer) {
    std::vector<const Step*> out;
    for (const Step& s : g.steps)
        if (s.layer == layer) out.push_back(&s);
    return out;
}

std::unique_ptr<ReferencePolicy> reference_policy(CachePolicyKind kind, const RoutingTraceHeader& h, int64_t slots) {
    switch (kind) {
        case CachePolicyKind::Lru: return std::make_unique<ReferenceLru>();
        case CachePolicyKind::Lfu: return std::make_unique<ReferenceLfu>();
        case CachePolicyKind::Score:
            return std::make_unique<ReferenceScore>(static_cast<size_t>(std::min(2 * h.n_experts_used, h.n_experts)));
        case CachePolicyKind::Adaptive:
            return std::make_unique<ReferenceAdaptive>(
                static_cast<size_t>(std::min(2 * h.n_experts_used, h.n_experts)), slots);
    }
    return nullptr;
}

// ---- tests ------------------------------------------------------------------------------

struct Shape {
    int64_t n_experts, k;
    float skew;
};

TEST(Simulate, PoliciesMatchReferences) {
    const Shape shapes[] = {{8, 2, 1.0f}, {16, 4, 0.5f}, {64, 8, 1.0f}, {32, 1, 2.0f}, {6, 6, 1.0f}};
    uint32_t seed = 10;
    for (const Shape& sh : shapes) {
        const Generated g = random_routing(sh.n_experts, sh.k, 120, {0, 2, 3}, 4, seed++, sh.skew);
        const RoutingTrace trace = via_file(g, fmt::format("t{}.trace", seed));
        for (CachePolicyKind kind : offload::all_cache_policies()) {
            for (int64_t slots = 1; slots <= sh.n_experts; ++slots) {
                SCOPED_TRACE(fmt::format("{} experts, k {}, {} slots, {}", sh.n_experts, sh.k, slots,
                                         offload::cache_policy_name(kind)));
                const offload::SimulationResult res = offload::simulate_policy(trace, kind, slots);
                Counts total;
                for (int64_t l : g.header.moe_layers) {
                    auto ref = reference_policy(kind, g.header, slots);
                    const Counts c = reference_run(steps_of_layer(g, l), slots, *ref);
                    EXPECT_EQ(res.layers[static_cast<size_t>(l)].hits, c.hits) << "layer " << l;
                    EXPECT_EQ(res.layers[static_cast<size_t>(l)].misses, c.misses) << "layer " << l;
                    total.hits += c.hits;
                    total.misses += c.misses;
                }
                EXPECT_EQ(res.total.hits, total.hits);
                EXPECT_EQ(res.total.misses, total.misses);
                EXPECT_EQ(res.layers[1].hits + res.layers[1].misses, 0u);  // not a MoE layer
                EXPECT_EQ(res.slots, slots);
                EXPECT_EQ(res.policy, offload::cache_policy_name(kind));
            }
        }
    }
}

// The engine's scheduler on the full softmax, step by step, gives what the simulator gives from
// the trace's top 2·k: the offline hit rates are the live ones.
TEST(Simulate, SameCountsAsTheLiveScheduler) {
    const Generated g = random_routing(32, 4, 200, {0, 1}, 2, 77);
    const RoutingTrace trace = via_file(g, "live.trace");
    for (CachePolicyKind kind : offload::all_cache_policies()) {
        for (int64_t slots : {1, 3, 4, 8, 16, 31}) {
            offload::ExpertCache cache(32, 4, {slots, slots}, kind);
            std::vector<bool> hit;
            for (const Step& s : g.steps) {
                const std::vector<int32_t> needed = heaviest_first(s);  // as RamTier::run lists them
                cache.count_needs(s.layer, needed, hit);
                for (size_t i = 0; i < needed.size(); ++i)
                    if (!hit[i]) cache.place(s.layer, needed[i], needed);
                cache.observe(s.layer, s.experts, s.weights, s.probs);
            }
            const offload::SimulationResult res = offload::simulate_policy(trace, kind, slots);
            EXPECT_EQ(res.total.hits, cache.total().hits) << offload::cache_policy_name(kind) << " " << slots;
            EXPECT_EQ(res.total.misses, cache.total().misses) << offload::cache_policy_name(kind) << " " << slots;
        }
    }
}

TEST(Simulate, OptimalMatchesExhaustiveSearch) {
    const Shape shapes[] = {{6, 2, 1.0f}, {8, 3, 0.7f}, {8, 1, 0.3f}, {7, 4, 1.5f}, {10, 2, 0.5f}};
    uint32_t seed = 100;
    for (const Shape& sh : shapes) {
        for (int rep = 0; rep < 3; ++rep) {
            const Generated g = random_routing(sh.n_experts, sh.k, 40, {0, 1}, 2, seed++, sh.skew);
            const RoutingTrace trace = via_file(g, fmt::format("o{}.trace", seed));
            for (int64_t slots = 1; slots <= sh.n_experts; ++slots) {
                const offload::SimulationResult opt = offload::simulate_optimal(trace, slots);
                for (int64_t l : g.header.moe_layers) {
                    const auto steps = steps_of_layer(g, l);
                    const uint64_t best = exhaustive_optimum(steps, slots, sh.n_experts);
                    EXPECT_EQ(opt.layers[static_cast<size_t>(l)].hits, best)
                        << sh.n_experts << " experts, k " << sh.k << ", " << slots << " slots, layer " << l;
                    EXPECT_EQ(opt.layers[static_cast<size_t>(l)].hits + opt.layers[static_cast<size_t>(l)].misses,
                              steps.size() * static_cast<size_t>(sh.k));
                }
                EXPECT_EQ(opt.policy, "opt");
            }
        }
    }
}

TEST(Simulate, NothingBeatsTheOptimumAndLruAndOptGrowWithTheCache) {
    const Shape shapes[] = {{16, 2, 1.0f}, {64, 8, 1.0f}, {64, 6, 0.5f}, {128, 8, 1.2f}, {8, 2, 0.0f}};
    uint32_t seed = 500;
    for (const Shape& sh : shapes) {
        const Generated g = random_routing(sh.n_experts, sh.k, 300, {0, 1, 2}, 3, seed++, sh.skew);
        const RoutingTrace trace = via_file(g, fmt::format("p{}.trace", seed));
        uint64_t last_lru = 0, last_opt = 0;
        for (int64_t slots = 1; slots <= sh.n_experts; ++slots) {
            SCOPED_TRACE(fmt::format("{} experts, k {}, {} slots", sh.n_experts, sh.k, slots));
            const offload::SimulationResult opt = offload::simulate_optimal(trace, slots);
            for (CachePolicyKind kind : offload::all_cache_policies()) {
                const offload::SimulationResult res = offload::simulate_policy(trace, kind, slots);
                EXPECT_LE(res.total.hits, opt.total.hits) << offload::cache_policy_name(kind);
                for (int64_t l : g.header.moe_layers)
                    EXPECT_LE(res.layers[static_cast<size_t>(l)].hits, opt.layers[static_cast<size_t>(l)].hits);
                if (kind == CachePolicyKind::Lru) {
                    EXPECT_GE(res.total.hits, last_lru);
                    last_lru = res.total.hits;
                }
            }
            EXPECT_GE(opt.total.hits, last_opt);
            last_opt = opt.total.hits;
            if (slots == sh.n_experts) {
                // Every expert fits: only first uses miss, whatever the policy.
                std::set<std::pair<int64_t, int32_t>> distinct;
                for (const Step& s : g.steps)
                    for (int32_t e : s.experts) distinct.emplace(s.layer, e);
                EXPECT_EQ(opt.total.misses, distinct.size());
                EXPECT_EQ(offload::simulate_policy(trace, CachePolicyKind::Lfu, slots).total.misses, distinct.size());
            }
        }
    }
}

// The adaptive policy follows whichever decay has been hitting: near LFU where popularity holds
// still (LFU's case), near or above the fast score where it moves (the score's case), and never
// far below the better of the two in either.
TEST(Simulate, AdaptiveFollowsTheBetterDecay) {
    for (int drift : {0, 40}) {
        const Generated g = random_routing(64, 8, 600, {0, 1}, 2, 2024, 1.0f, drift);
        const RoutingTrace trace = via_file(g, fmt::format("drift{}.trace", drift));
        for (int64_t slots : {16, 24, 32}) {  // more than k: the policies can differ
            SCOPED_TRACE(fmt::format("drift every {} tokens, {} slots", drift, slots));
            const auto hits = [&](CachePolicyKind kind) {
                const offload::SimulationResult r = offload::simulate_policy(trace, kind, slots);
                return static_cast<double>(r.total.hits) / static_cast<double>(r.total.hits + r.total.misses);
            };
            const double lfu = hits(CachePolicyKind::Lfu), score = hits(CachePolicyKind::Score);
            const double adaptive = hits(CachePolicyKind::Adaptive);
            EXPECT_GE(adaptive, std::max(lfu, score) - 0.01) << "lfu " << lfu << ", score " << score;
            if (drift == 0) {
                EXPECT_GT(lfu, score);  // the premise: counting wins on still popularity
            } else {
                EXPECT_GT(score, lfu);  // and forgetting wins when it moves
            }
        }
    }
}

TEST(Simulate, SlotsForPercent) {
    EXPECT_EQ(offload::slots_for_percent(10, 8), 1);  // 0.8 rounds to 1
    EXPECT_EQ(offload::slots_for_percent(25, 8), 2);
    EXPECT_EQ(offload::slots_for_percent(50, 8), 4);
    EXPECT_EQ(offload::slots_for_percent(10, 64), 6);    // 6.4
    EXPECT_EQ(offload::slots_for_percent(10, 128), 13);  // 12.8
    EXPECT_EQ(offload::slots_for_percent(25, 6), 2);     // 1.5 rounds up
    EXPECT_EQ(offload::slots_for_percent(0.01, 64), 1);  // at least one
    EXPECT_EQ(offload::slots_for_percent(100, 64), 64);
    for (double bad : {0.0, -5.0, 100.5, std::nan("")}) EXPECT_THROW(offload::slots_for_percent(bad, 64), Error) << bad;
}

TEST(Simulate, SimulateListsPoliciesThenTheOptimum) {
    const Generated g = random_routing(16, 2, 50, {0}, 1, 3);
    const RoutingTrace trace = via_file(g, "s.trace");
    const double sizes[] = {10, 50};
    const CachePolicyKind policies[] = {CachePolicyKind::Score, CachePolicyKind::Lru};
    const auto results = offload::simulate(trace, sizes, policies);
    ASSERT_EQ(results.size(), 6u);
    const char* names[] = {"score", "score", "lru", "lru", "opt", "opt"};
    for (size_t i = 0; i < results.size(); ++i) {
        EXPECT_EQ(results[i].policy, names[i]);
        EXPECT_EQ(results[i].size_pct, sizes[i % 2]);
        EXPECT_EQ(results[i].slots, i % 2 == 0 ? 2 : 8);
    }
    EXPECT_THROW(offload::simulate_policy(trace, CachePolicyKind::Lru, 0), Error);
    EXPECT_THROW(offload::simulate_optimal(trace, 17), Error);
}

// Without router probabilities the score policy falls back on the routing weights (the same
// replay as the engine's with no softmax at hand).
TEST(Simulate, TraceWithoutProbabilities) {
    Generated g = random_routing(16, 2, 80, {0}, 1, 9);
    g.header.n_probs = 0;
    const RoutingTrace trace = via_file(g, "np.trace");
    offload::ExpertCache cache(16, 2, {4}, CachePolicyKind::Score);
    std::vector<bool> hit;
    for (const Step& s : g.steps) {
        const std::vector<int32_t> needed = heaviest_first(s);
        cache.count_needs(0, needed, hit);
        for (size_t i = 0; i < needed.size(); ++i)
            if (!hit[i]) cache.place(0, needed[i], needed);
        cache.observe(0, s.experts, s.weights, {});
    }
    const auto res = offload::simulate_policy(trace, CachePolicyKind::Score, 4);
    EXPECT_EQ(res.total.hits, cache.total().hits);
    EXPECT_EQ(res.total.misses, cache.total().misses);
}

}  // namespace
}  // namespace hymoe
