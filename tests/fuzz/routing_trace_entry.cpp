#include "fuzz/routing_trace_entry.hpp"

#include <cmath>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "hymoe/error.hpp"
#include "offload/routing_trace.hpp"
#include "offload/simulate.hpp"

namespace {

using hymoe::offload::RoutingTrace;

[[noreturn]] void fail(std::string_view what) {
    fmt::print(stderr, "fuzz_routing_trace: {}\n", what);
    std::abort();
}

void check_trace(const RoutingTrace& t) {
    const auto& h = t.header;
    try {
        hymoe::offload::validate_routing_trace_header(h, "fuzz.trace");
    } catch (const hymoe::Error& e) {
        fail(fmt::format("accepted a header its own validation refuses: {}", e.what()));
    }
    const size_t n = t.n_records(), k = static_cast<size_t>(h.n_experts_used), np = static_cast<size_t>(h.n_probs);
    if (t.layer.size() != n || t.experts.size() != n * k || t.weights.size() != n * k ||
        t.prob_expert.size() != n * np || t.prob.size() != n * np)
        fail("array sizes do not match the record count");
    std::vector<uint8_t> is_moe(static_cast<size_t>(h.n_layers), 0);
    for (int64_t l : h.moe_layers) is_moe[static_cast<size_t>(l)] = 1;
    std::vector<int64_t> last(static_cast<size_t>(h.n_layers), -1);
    std::vector<size_t> seen(static_cast<size_t>(h.n_experts), 0);
    size_t stamp = 0;
    for (size_t r = 0; r < n; ++r) {
        const int32_t l = t.layer[r];
        if (l < 0 || l >= h.n_layers || is_moe[static_cast<size_t>(l)] == 0)
            fail("a record at a layer without experts");
        if (t.position[r] <= last[static_cast<size_t>(l)]) fail("positions do not increase within a layer");
        last[static_cast<size_t>(l)] = t.position[r];
        ++stamp;
        for (size_t i = 0; i < k; ++i) {
            const int32_t e = t.experts_of(r)[i];
            const float w = t.weights_of(r)[i];
            if (e < 0 || e >= h.n_experts || seen[static_cast<size_t>(e)] == stamp) fail("a bad or repeated expert");
            seen[static_cast<size_t>(e)] = stamp;
            if (!std::isfinite(w) || w < 0) fail("a bad weight");
        }
        ++stamp;
        for (size_t i = 0; i < np; ++i) {
            const int32_t e = t.prob_experts_of(r)[i];
            const float p = t.probs_of(r)[i];
            if (e < 0 || e >= h.n_experts || seen[static_cast<size_t>(e)] == stamp) fail("a bad or repeated expert");
            seen[static_cast<size_t>(e)] = stamp;
            if (!(p >= 0 && p <= 1) || (i > 0 && p > t.probs_of(r)[i - 1])) fail("a bad probability");
        }
    }
}

// Replays a small trace at three sizes: every step's needs are counted once, no policy beats the
// optimum, and a cache holding every expert misses only each expert's first use.
void check_simulation(const RoutingTrace& t) {
    const auto& h = t.header;
    const auto n_moe = static_cast<int64_t>(h.moe_layers.size());
    if (n_moe * h.n_experts > (1 << 14) || static_cast<int64_t>(t.n_records()) * h.n_experts_used > (1 << 16)) return;
    const uint64_t needs = t.n_records() * static_cast<uint64_t>(h.n_experts_used);
    uint64_t first_uses = 0;
    std::vector<uint8_t> used(static_cast<size_t>(h.n_layers * h.n_experts), 0);
    for (size_t r = 0; r < t.n_records(); ++r)
        for (int32_t e : t.experts_of(r)) {
            uint8_t& u = used[static_cast<size_t>(t.layer[r] * h.n_experts + e)];
            first_uses += u == 0 ? 1 : 0;
            u = 1;
        }
    for (const int64_t slots : {int64_t{1}, (h.n_experts + 1) / 2, h.n_experts}) {
        const auto opt = hymoe::offload::simulate_optimal(t, slots);
        if (opt.total.hits + opt.total.misses != needs) fail("opt counts do not add up");
        if (slots == h.n_experts && opt.total.misses != first_uses)
            fail("opt misses more than first uses at full size");
        for (const auto policy : hymoe::offload::all_cache_policies()) {
            const auto res = hymoe::offload::simulate_policy(t, policy, slots);
            if (res.total.hits + res.total.misses != needs) fail("policy counts do not add up");
            if (res.total.hits > opt.total.hits) fail(fmt::format("{} beats the optimum", res.policy));
            if (slots == h.n_experts && res.total.misses != first_uses) fail("misses beyond first uses at full size");
        }
    }
}

}  // namespace

int hymoe_fuzz_routing_trace(const uint8_t* data, size_t size) {
    // libFuzzer passes nullptr with size 0 for the empty input.
    const std::string_view text =
        size == 0 ? std::string_view() : std::string_view(reinterpret_cast<const char*>(data), size);
    RoutingTrace trace;
    try {
        trace = hymoe::offload::parse_routing_trace(text, "fuzz.trace");
    } catch (const hymoe::Error&) {
        return 0;  // rejecting a bad file is the expected outcome
    }
    check_trace(trace);
    check_simulation(trace);
    return 0;
}
