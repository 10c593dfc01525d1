#include "offload/simulate.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "hymoe/error.hpp"
#include "offload/expert_cache.hpp"

namespace hymoe::offload {

namespace {

void check_slots(const RoutingTrace& trace, int64_t slots) {
    if (slots < 1 || slots > trace.header.n_experts)
        throw Error(fmt::format("cache of {} slots per layer: expected 1 to {} (the layer's experts)", slots,
                                trace.header.n_experts));
}

SimulationResult empty_result(const RoutingTrace& trace, std::string policy, int64_t slots) {
    SimulationResult r;
    r.policy = std::move(policy);
    r.slots = slots;
    r.size_pct = 100.0 * static_cast<double>(slots) / static_cast<double>(trace.header.n_experts);
    r.layers.resize(static_cast<size_t>(trace.header.n_layers));
    return r;
}

}  // namespace

int64_t slots_for_percent(double pct, int64_t n_experts) {
    if (!(pct > 0.0 && pct <= 100.0))
        throw Error(fmt::format("cache size {}%: expected a percentage of a layer's experts in (0, 100]", pct));
    const auto slots = static_cast<int64_t>(std::llround(pct / 100.0 * static_cast<double>(n_experts)));
    return std::clamp<int64_t>(slots, 1, n_experts);
}

SimulationResult simulate_policy(const RoutingTrace& trace, CachePolicyKind policy, int64_t slots,
                                 const ScorePolicyParams& score) {
    check_slots(trace, slots);
    const RoutingTraceHeader& h = trace.header;
    std::vector<int64_t> slots_per_layer(static_cast<size_t>(h.n_layers), 0);
    for (int64_t l : h.moe_layers) slots_per_layer[static_cast<size_t>(l)] = slots;
    ExpertCache cache(h.n_experts, h.n_experts_used, std::move(slots_per_layer), policy, score);

    // The router's softmax as the engine hands it to the policy, [n_experts]: the recorded top
    // n_probs, zero elsewhere. The score policy reads only the top 2·k, which the trace keeps.
    std::vector<float> probs(static_cast<size_t>(h.n_experts), 0.0f);
    std::vector<bool> hit;
    std::vector<int32_t> needed;
    NeedOrder need_order;
    for (size_t r = 0; r < trace.n_records(); ++r) {
        const int64_t layer = trace.layer[r];
        // The step's experts in the order the scheduler lists them, heaviest first (which misses
        // get a slot when there are fewer slots than misses depends on it).
        const std::span<const int32_t> used = trace.experts_of(r);
        need_order.order(used, trace.weights_of(r), needed);
        cache.count_needs(layer, needed, hit);
        for (size_t i = 0; i < needed.size(); ++i)
            if (!hit[i]) cache.place(layer, needed[i], needed);  // slot -1: computed without caching
        const std::span<const int32_t> pe = trace.prob_experts_of(r);
        const std::span<const float> pv = trace.probs_of(r);
        for (size_t i = 0; i < pe.size(); ++i) probs[static_cast<size_t>(pe[i])] = pv[i];
        cache.observe(layer, used, trace.weights_of(r), pe.empty() ? std::span<const float>() : probs);
        for (int32_t e : pe) probs[static_cast<size_t>(e)] = 0.0f;
    }

    SimulationResult res = empty_result(trace, std::string(cache_policy_name(policy)), slots);
    for (int64_t l : h.moe_layers) {
        const CacheCounters& c = cache.counters(l);
        HitCount& hc = res.layers[static_cast<size_t>(l)];
        hc.hits = c.hits;
        hc.misses = c.misses;
        res.total += hc;
    }
    return res;
}

SimulationResult simulate_optimal(const RoutingTrace& trace, int64_t slots) {
    check_slots(trace, slots);
    const RoutingTraceHeader& h = trace.header;
    const auto ne = static_cast<size_t>(h.n_experts), k = static_cast<size_t>(h.n_experts_used);
    constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
    SimulationResult res = empty_result(trace, "opt", slots);

    std::vector<size_t> steps;               // the layer's records, in order
    std::vector<int64_t> next_use;           // [steps][k]: the step that next needs that expert, or kNever
    std::vector<int64_t> seen_at(ne);        // [n_experts] scratch of the backward pass
    std::vector<int64_t> resident_next(ne);  // [n_experts] next use of a resident expert, -1: not resident
    std::vector<int32_t> residents;          // [<= slots]
    for (int64_t layer : h.moe_layers) {
        steps.clear();
        for (size_t r = 0; r < trace.n_records(); ++r)
            if (trace.layer[r] == layer) steps.push_back(r);
        const auto n_steps = static_cast<int64_t>(steps.size());
        next_use.assign(steps.size() * k, kNever);
        std::fill(seen_at.begin(), seen_at.end(), kNever);
        for (int64_t t = n_steps - 1; t >= 0; --t) {
            const std::span<const int32_t> needed = trace.experts_of(steps[static_cast<size_t>(t)]);
            for (size_t i = 0; i < k; ++i) {
                next_use[static_cast<size_t>(t) * k + i] = seen_at[static_cast<size_t>(needed[i])];
                seen_at[static_cast<size_t>(needed[i])] = t;
            }
        }

        HitCount& hc = res.layers[static_cast<size_t>(layer)];
        residents.clear();
        std::fill(resident_next.begin(), resident_next.end(), -1);
        for (int64_t t = 0; t < n_steps; ++t) {
            const std::span<const int32_t> needed = trace.experts_of(steps[static_cast<size_t>(t)]);
            const int64_t* nu = next_use.data() + static_cast<size_t>(t) * k;
            for (size_t i = 0; i < k; ++i) {
                const auto e = static_cast<size_t>(needed[i]);
                if (resident_next[e] >= 0) {
                    ++hc.hits;
                    resident_next[e] = nu[i];
                } else {
                    ++hc.misses;
                }
            }
            // Each missed expert takes a free slot, or the slot of the resident used furthest
            // ahead if it is needed sooner than that one; else it runs uncached. So the layer
            // ends the step holding the experts needed soonest of all it held or needed.
            for (size_t i = 0; i < k; ++i) {
                const int32_t e = needed[i];
                if (resident_next[static_cast<size_t>(e)] >= 0 || nu[i] == kNever) continue;
                if (static_cast<int64_t>(residents.size()) < slots) {
                    residents.push_back(e);
                    resident_next[static_cast<size_t>(e)] = nu[i];
                    continue;
                }
                size_t victim = 0;
                for (size_t j = 1; j < residents.size(); ++j)
                    if (resident_next[static_cast<size_t>(residents[j])] >
                        resident_next[static_cast<size_t>(residents[victim])])
                        victim = j;
                const auto old = static_cast<size_t>(residents[victim]);
                if (resident_next[old] <= nu[i]) continue;
                resident_next[old] = -1;
                residents[victim] = e;
                resident_next[static_cast<size_t>(e)] = nu[i];
            }
        }
        res.total += hc;
    }
    return res;
}

std::vector<SimulationResult> simulate(const RoutingTrace& trace, std::span<const double> sizes_pct,
                                       std::span<const CachePolicyKind> policies) {
    std::vector<int64_t> slots;
    for (double pct : sizes_pct) slots.push_back(slots_for_percent(pct, trace.header.n_experts));
    std::vector<SimulationResult> out;
    const auto add = [&](SimulationResult r, double pct) {
        r.size_pct = pct;
        out.push_back(std::move(r));
    };
    for (CachePolicyKind p : policies)
        for (size_t i = 0; i < slots.size(); ++i) add(simulate_policy(trace, p, slots[i]), sizes_pct[i]);
    for (size_t i = 0; i < slots.size(); ++i) add(simulate_optimal(trace, slots[i]), sizes_pct[i]);
    return out;
}

}  // namespace hymoe::offload
