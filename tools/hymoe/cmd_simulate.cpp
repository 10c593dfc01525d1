// `hymoe simulate`: replay a routing trace (`hymoe trace`) through the expert cache under each
// policy and cache size, beside Belady's optimum, and print the hit rates (docs/offload.md).
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "hymoe/error.hpp"
#include "offload/cache_policy.hpp"
#include "offload/routing_trace.hpp"
#include "offload/simulate.hpp"

namespace hymoe::cli {

namespace {

struct SimulateArgs {
    std::string trace;
    std::string sizes = "10,25,50";
    std::string policies = "lru,lfu,score,adaptive";
    bool per_layer = false;
    bool json = false;
};

std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
        const size_t comma = text.find(',', start);
        parts.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) return parts;
        start = comma + 1;
    }
}

std::vector<double> parse_sizes(const std::string& text) {
    std::vector<double> sizes;
    for (const std::string& part : split_commas(text)) {
        double v = 0;
        const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
        if (part.empty() || ec != std::errc() || ptr != part.data() + part.size() || !(v > 0.0 && v <= 100.0))
            throw Error(fmt::format("--sizes '{}': expected percentages in (0, 100], such as 10,25,50", part));
        sizes.push_back(v);
    }
    return sizes;
}

std::vector<offload::CachePolicyKind> parse_policies(const std::string& text) {
    std::vector<offload::CachePolicyKind> kinds;
    for (const std::string& name : split_commas(text)) {
        if (name == "opt") continue;  // the bound is always shown
        const auto all = offload::all_cache_policies();
        const auto it = std::find_if(all.begin(), all.end(),
                                     [&](offload::CachePolicyKind k) { return offload::cache_policy_name(k) == name; });
        if (it == all.end()) throw Error(fmt::format("--policies '{}': expected lru, lfu, score, adaptive or opt", name));
        if (std::find(kinds.begin(), kinds.end(), *it) == kinds.end()) kinds.push_back(*it);
    }
    return kinds;
}

std::string row_name(const std::string& policy) {
    return policy == "opt" ? "opt (Belady bound)" : policy;
}

// One table: a row per policy, a column per size, for the total or one layer (layer >= 0).
void print_table(const std::vector<offload::SimulationResult>& results, const std::vector<double>& sizes,
                 int64_t layer) {
    std::string line = fmt::format("{:<20}", layer < 0 ? "hit rate" : fmt::format("layer {}", layer));
    for (size_t i = 0; i < sizes.size(); ++i)
        line += fmt::format(" {:>12}", fmt::format("{:g}% ({})", sizes[i], results[i].slots));
    fmt::print("{}\n", line);
    for (size_t r = 0; r < results.size(); r += sizes.size()) {
        line = fmt::format("{:<20}", row_name(results[r].policy));
        for (size_t i = 0; i < sizes.size(); ++i) {
            const offload::SimulationResult& res = results[r + i];
            const offload::HitCount& h = layer < 0 ? res.total : res.layers[static_cast<size_t>(layer)];
            line += fmt::format(" {:>11.1f}%", 100.0 * h.hit_rate());
        }
        fmt::print("{}\n", line);
    }
}

nlohmann::json hit_json(const offload::HitCount& h) {
    return {{"hits", h.hits}, {"misses", h.misses}, {"hit_rate", h.hit_rate()}};
}

void run_simulate(const SimulateArgs& args) {
    const std::vector<double> sizes = parse_sizes(args.sizes);
    const std::vector<offload::CachePolicyKind> policies = parse_policies(args.policies);
    const offload::RoutingTrace trace = offload::read_routing_trace(args.trace);
    const offload::RoutingTraceHeader& h = trace.header;
    const std::vector<offload::SimulationResult> results = offload::simulate(trace, sizes, policies);

    if (args.json) {
        nlohmann::json j;
        j["trace"] = args.trace;
        j["model"] = h.model;
        j["architecture"] = h.architecture;
        j["n_layers"] = h.n_layers;
        j["n_experts"] = h.n_experts;
        j["n_experts_used"] = h.n_experts_used;
        j["moe_layers"] = h.moe_layers;
        j["records"] = trace.n_records();
        j["results"] = nlohmann::json::array();
        for (const offload::SimulationResult& r : results) {
            nlohmann::json jr = hit_json(r.total);
            jr["policy"] = r.policy;
            jr["size_percent"] = r.size_pct;
            jr["slots"] = r.slots;
            if (args.per_layer) {
                jr["layers"] = nlohmann::json::array();
                for (int64_t l : h.moe_layers) {
                    nlohmann::json jl = hit_json(r.layers[static_cast<size_t>(l)]);
                    jl["layer"] = l;
                    jr["layers"].push_back(std::move(jl));
                }
            }
            j["results"].push_back(std::move(jr));
        }
        fmt::print("{}\n", j.dump(2));
        return;
    }

    fmt::print("{}: {} ({}), {} MoE layers of {} experts, {} used per token; {} token-layer steps\n", args.trace,
               h.model, h.architecture, h.moe_layers.size(), h.n_experts, h.n_experts_used, trace.n_records());
    fmt::print("cache size: percent of a layer's experts (slots per layer)\n\n");
    print_table(results, sizes, -1);
    if (args.per_layer) {
        for (int64_t l : h.moe_layers) {
            fmt::print("\n");
            print_table(results, sizes, l);
        }
    }
}

}  // namespace

void add_simulate_command(CLI::App& app) {
    auto args = std::make_shared<SimulateArgs>();
    auto* cmd = app.add_subcommand("simulate", "Replay a routing trace through the expert cache: hit rates per policy");
    cmd->add_option("trace", args->trace, "routing trace written by `hymoe trace`")->required();
    cmd->add_option("--sizes", args->sizes, "cache sizes, percent of a layer's experts, comma-separated")
        ->capture_default_str();
    cmd->add_option("--policies", args->policies,
                    "cache policies, comma-separated: lru, lfu, score, adaptive (opt, the bound, always runs)")
        ->capture_default_str();
    cmd->add_flag("--per-layer", args->per_layer, "also each MoE layer's hit rates");
    cmd->add_flag("--json", args->json, "print JSON");
    cmd->callback([args] { run_simulate(*args); });
}

}  // namespace hymoe::cli
