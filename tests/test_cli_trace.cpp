// `hymoe trace` and `hymoe simulate` as a user runs them, on a tiny synthetic OLMoE-shaped model
// (64 experts, 8 per token, 2 MoE layers) with the demo's real vocabulary.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "offload/routing_trace.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;
using test::expect_one_line_error;
using test::run_cli;
using test::RunResult;

constexpr int kGenerated = 12;

// The model and a trace of it, made once for the suite.
const fs::path& model_path() {
    static const fs::path path = [] {
        const fs::path dir = fs::path(::testing::TempDir()) / fmt::format("hymoe_cli_trace_{}", ::getpid());
        fs::create_directories(dir);
        const fs::path model = dir / "olmoe.gguf";
        const RunResult r =
            run_cli(fmt::format("synth --shape tiny-olmoe --vocab builtin --seed 3 -o '{}'", model.string()));
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return model;
    }();
    return path;
}

const fs::path& trace_path() {
    static const fs::path path = [] {
        const fs::path trace = model_path().parent_path() / "olmoe.trace";
        const RunResult r = run_cli(fmt::format(
            "trace -m '{}' -p 'The quick brown fox jumps over the lazy dog' -n {} --seed 5 -t 1 --ignore-eos -o '{}'",
            model_path().string(), kGenerated, trace.string()));
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.err.find(fmt::format("+ {} generated) x 2 MoE layers", kGenerated)), std::string::npos) << r.err;
        return trace;
    }();
    return path;
}

TEST(CliTrace, RecordsEveryTokenAtEveryMoeLayer) {
    const offload::RoutingTrace t = offload::read_routing_trace(trace_path().string());
    const offload::RoutingTraceHeader& h = t.header;
    EXPECT_EQ(h.model, model_path().string());
    EXPECT_EQ(h.architecture, "olmoe");
    EXPECT_EQ(h.n_layers, 2);
    EXPECT_EQ(h.n_experts, 64);
    EXPECT_EQ(h.n_experts_used, 8);
    EXPECT_EQ(h.n_probs, 16);
    EXPECT_EQ(h.moe_layers, (std::vector<int64_t>{0, 1}));

    // Positions 0..n-1 at each layer, every one once: the prompt's (split from its batch) and
    // every generated token's, the last one included.
    std::map<int32_t, std::vector<int64_t>> positions;
    for (size_t r = 0; r < t.n_records(); ++r) positions[t.layer[r]].push_back(t.position[r]);
    ASSERT_EQ(positions.size(), 2u);
    const size_t n = positions[0].size();
    EXPECT_GT(n, static_cast<size_t>(kGenerated) + 5);
    for (auto& [layer, pos] : positions) {
        ASSERT_EQ(pos.size(), n) << "layer " << layer;
        for (size_t i = 0; i < n; ++i) EXPECT_EQ(pos[i], static_cast<int64_t>(i));
    }

    // OLMoE routes by softmax, top 8, not renormalized: the routed experts are the 8 most
    // probable, and each weight is the expert's probability.
    for (size_t r = 0; r < t.n_records(); ++r) {
        const auto e = t.experts_of(r);
        const auto w = t.weights_of(r);
        const auto pe = t.prob_experts_of(r);
        const auto pv = t.probs_of(r);
        EXPECT_EQ(std::set<int32_t>(e.begin(), e.end()), std::set<int32_t>(pe.begin(), pe.begin() + 8)) << r;
        for (size_t i = 0; i < e.size(); ++i) {
            const size_t j = static_cast<size_t>(std::find(pe.begin(), pe.end(), e[i]) - pe.begin());
            ASSERT_LT(j, pe.size());
            EXPECT_NEAR(w[i], pv[j], 1e-6f) << "record " << r << " expert " << e[i];
        }
    }
}

TEST(CliTrace, SimulateTableAndJson) {
    const RunResult table = run_cli(fmt::format("simulate '{}' --per-layer", trace_path().string()));
    ASSERT_EQ(table.exit_code, 0) << table.err;
    for (const char* s : {"10% (6)", "25% (16)", "50% (32)", "lru", "lfu", "score", "adaptive", "opt (Belady bound)", "layer 1"})
        EXPECT_NE(table.out.find(s), std::string::npos) << s << " in\n" << table.out;

    const RunResult js = run_cli(
        fmt::format("simulate '{}' --sizes 10,50 --policies lru,score --json --per-layer", trace_path().string()));
    ASSERT_EQ(js.exit_code, 0) << js.err;
    const auto j = nlohmann::json::parse(js.out);
    const auto records = j["records"].get<uint64_t>();
    EXPECT_EQ(j["n_experts"], 64);
    ASSERT_EQ(j["results"].size(), 6u);  // lru, score, opt at two sizes
    std::map<std::pair<std::string, double>, uint64_t> hits;
    for (const auto& r : j["results"]) {
        EXPECT_EQ(r["hits"].get<uint64_t>() + r["misses"].get<uint64_t>(), records * 8) << r.dump();
        ASSERT_EQ(r["layers"].size(), 2u);
        EXPECT_EQ(r["layers"][0]["hits"].get<uint64_t>() + r["layers"][1]["hits"].get<uint64_t>(),
                  r["hits"].get<uint64_t>());
        hits[{r["policy"].get<std::string>(), r["size_percent"].get<double>()}] = r["hits"].get<uint64_t>();
    }
    for (double size : {10.0, 50.0}) {
        EXPECT_LE(hits.at({"lru", size}), hits.at({"opt", size}));
        EXPECT_LE(hits.at({"score", size}), hits.at({"opt", size}));
    }
    EXPECT_LE(hits.at({"lru", 10.0}), hits.at({"lru", 50.0}));
}

TEST(CliTrace, ErrorsAreOneLine) {
    const fs::path dir = test::temp_dir_for_test();
    expect_one_line_error(run_cli(fmt::format("simulate '{}'", (dir / "none.trace").string())),
                          "cannot open the routing trace");
    // A damaged line names the file and the line.
    std::string text = test::read_text(trace_path());
    const size_t line11 = [&] {
        size_t at = 0;
        for (int i = 0; i < 10; ++i) at = text.find('\n', at) + 1;
        return at;
    }();
    text.insert(line11, 1, 'x');
    const fs::path bad = dir / "bad.trace";
    { std::ofstream(bad, std::ios::binary) << text; }
    expect_one_line_error(run_cli(fmt::format("simulate '{}'", bad.string())), bad.string() + ": line 11: position");
    expect_one_line_error(run_cli(fmt::format("simulate '{}' --sizes 0", trace_path().string())), "--sizes");
    expect_one_line_error(run_cli(fmt::format("simulate '{}' --policies lru,fifo", trace_path().string())),
                          "--policies 'fifo'");
    expect_one_line_error(
        run_cli(fmt::format("trace -m '{}' -p '' -o '{}'", model_path().string(), (dir / "t.trace").string())),
        "the prompt is empty");
    expect_one_line_error(run_cli(fmt::format("trace -m '{}' -p hi -n 1 -o '{}'", model_path().string(),
                                              (dir / "no" / "dir" / "t.trace").string())),
                          "cannot create the routing trace");
}

}  // namespace
}  // namespace hymoe
