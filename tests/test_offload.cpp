// The RAM expert tier computes the same logits as the all-resident run, whatever its budget,
// policy and prefetching: for every shared llama.cpp reference model (also checked against
// llama.cpp's own logits), every HF fixture model and a synthetic model of every architecture.
// Plus what the tier reports (hits, misses, bytes read) against what the routing implies, and
// the errors of bad budgets and of a model file that goes short while in use.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "format/model_file.hpp"
#include "format/tensor_type.hpp"
#include "model/config.hpp"
#include "model/weights.hpp"
#include "offload/cache_policy.hpp"
#include "offload/expert_store.hpp"
#include "offload/routing_trace.hpp"
#include "offload/simulate.hpp"
#include "util/aligned_buffer.hpp"
#include "hymoe/engine.hpp"
#include "hymoe/error.hpp"
#include "hymoe/synth.hpp"
#include "logit_compare.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;

struct Budget {
    std::string name;
    int64_t bytes;  // OffloadOptions::ram_experts
};

// RAM budgets of the sweep: none, one slot per MoE layer, half of every layer's experts, all.
std::vector<Budget> budgets_for(const std::string& path) {
    LoadOptions o{.n_threads = 2, .n_ctx = 16, .device = "cpu"};
    o.offload.ram_experts = 0;
    const auto m = Model::load(path, o);
    const ExpertCacheStats s = m->expert_cache_stats();
    uint64_t one = 0;
    for (const auto& l : s.layers) one += l.slot_bytes;
    int64_t n_experts = 0;
    {
        // n_experts from the routing itself: count what a pass reports.
        Session session(m);
        session.set_routing_observer([&](const RoutingStep& step) { n_experts = step.n_experts; });
        session.prefill(std::vector<int32_t>{1, 2});
    }
    return {{"none", 0},
            {"one-slot", static_cast<int64_t>(one)},
            {"half", static_cast<int64_t>(one * static_cast<uint64_t>(n_experts / 2))},
            {"full", static_cast<int64_t>(one * static_cast<uint64_t>(n_experts))}};
}

// A prompt's logits at every position, then greedy decode steps: [positions + steps][n_vocab].
std::vector<float> run(const std::string& path, const LoadOptions& options, std::span<const int32_t> prompt,
                       int steps, ExpertCacheStats* stats = nullptr) {
    const auto model = Model::load(path, options);
    Session session(model);
    session.prefill(prompt, true);
    std::vector<float> out(session.all_logits().begin(), session.all_logits().end());
    for (int s = 0; s < steps; ++s) {
        session.decode(test::argmax_of(session.logits()));
        out.insert(out.end(), session.logits().begin(), session.logits().end());
    }
    if (stats != nullptr) *stats = model->expert_cache_stats();
    return out;
}

std::vector<int32_t> prompt_for(const std::string& path) {
    const auto m = Model::load(path, {.n_threads = 1, .n_ctx = 16, .device = "cpu"});
    std::vector<int32_t> p;
    for (int i = 0; i < 10; ++i) p.push_back(static_cast<int32_t>((i * 7919 + 13) % m->n_vocab()));
    return p;
}

// Every budget, policy and prefetch setting gives the resident run's logits. Sums over a token's
// experts may be taken in another order (hits before misses), so "identical" is within 1e-5 of
// the logits' scale.
void expect_same_logits_for_every_budget(const std::string& path) {
    const std::vector<int32_t> prompt = prompt_for(path);
    const int steps = 6;
    const LoadOptions base{.n_threads = 2, .n_ctx = 32, .device = "cpu"};
    const std::vector<float> resident = run(path, base, prompt, steps);
    double scale = 0;
    for (float v : resident) scale = std::max(scale, static_cast<double>(std::abs(v)));
    const double tol = 1e-5 * std::max(1.0, scale);
    for (const Budget& b : budgets_for(path)) {
        for (const char* policy : {"adaptive", "score", "lru", "lfu"}) {
            for (bool prefetch : {true, false}) {
                // Every policy where the pool is smallest and evicts most; the default elsewhere.
                if (b.name != "one-slot" && std::string(policy) != "adaptive") continue;
                LoadOptions o = base;
                o.offload.ram_experts = b.bytes;
                o.offload.cache_policy = policy;
                o.offload.prefetch = prefetch;
                ExpertCacheStats stats;
                const std::vector<float> got = run(path, o, prompt, steps, &stats);
                ASSERT_EQ(got.size(), resident.size());
                double worst = 0;
                for (size_t i = 0; i < got.size(); ++i)
                    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - resident[i]));
                EXPECT_LE(worst, tol) << path << " budget " << b.name << " policy " << policy << " prefetch "
                                      << prefetch;
                EXPECT_GT(stats.total.hits + stats.total.misses, 0u);
                if (b.name == "none") {
                    EXPECT_EQ(stats.total.hits, 0u) << "nothing can be cached without RAM";
                    EXPECT_EQ(stats.cache_bytes, 0u);
                }
                if (b.name == "full") {
                    EXPECT_EQ(stats.total.evictions, 0u) << "a full cache never evicts";
                }
            }
        }
    }
}

fs::path synth(const std::string& shape, const std::string& type) {
    const fs::path dir = test::temp_dir_for_test();
    SynthOptions o;
    o.shape = shape;
    o.type = type;
    o.output = (dir / (shape + "." + type + ".gguf")).string();
    write_synthetic_model(o);
    return o.output;
}

class SyntheticOffload : public ::testing::TestWithParam<std::string> {};

TEST_P(SyntheticOffload, LogitsMatchResidentForEveryBudget) {
    expect_same_logits_for_every_budget(synth(GetParam(), "q4_k").string());
}

INSTANTIATE_TEST_SUITE_P(Shapes, SyntheticOffload,
                         ::testing::Values("tiny-qwen3moe", "tiny-mixtral", "tiny-olmoe", "tiny-deepseek2",
                                           "tiny-gpt-oss"),
                         test::ParamName());

// The HF fixture models (safetensors written by transformers), some with layouts converted at load.
std::vector<std::string> hf_models() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(test::fixtures_dir() / "hf-models"))
        if (e.is_directory()) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

class HfOffload : public ::testing::TestWithParam<std::string> {};

TEST_P(HfOffload, LogitsMatchResidentForEveryBudget) {
    expect_same_logits_for_every_budget((test::fixtures_dir() / "hf-models" / GetParam()).string());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfOffload, ::testing::ValuesIn(hf_models()), test::ParamName());

std::vector<std::string> reference_models() {
    std::vector<std::string> names;
    if (const auto dir = test::reference_dir())
        for (const auto& e : fs::directory_iterator(*dir))
            if (fs::exists(e.path() / "reference.json") && fs::exists(e.path() / "model.gguf"))
                names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    if (names.empty()) names.push_back("none");
    return names;
}

class ReferenceOffload : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceOffload, LogitsMatchResidentForEveryBudget) {
    HYMOE_REQUIRE_REFERENCE(ref_root);
    if (GetParam() == "none") GTEST_SKIP() << "no fixtures with reference.json under " << ref_root;
    expect_same_logits_for_every_budget((ref_root / GetParam() / "model.gguf").string());
}

// With every expert read from the file, the prompt's logits are still llama.cpp's.
TEST_P(ReferenceOffload, NoRamPromptLogitsMatchLlamaCpp) {
    HYMOE_REQUIRE_REFERENCE(ref_root);
    if (GetParam() == "none") GTEST_SKIP() << "no fixtures with reference.json under " << ref_root;
    const fs::path dir = ref_root / GetParam();
    const auto ref = nlohmann::json::parse(test::read_text(dir / "reference.json"));
    const auto prompt = ref.at("prompt_tokens").get<std::vector<int32_t>>();
    const auto n_vocab = ref.at("n_vocab").get<size_t>();
    std::vector<float> expected(prompt.size() * n_vocab);
    std::ifstream in(dir / "reference.prompt_logits.bin", std::ios::binary);
    in.read(reinterpret_cast<char*>(expected.data()), static_cast<std::streamsize>(expected.size() * sizeof(float)));
    ASSERT_EQ(static_cast<size_t>(in.gcount()), expected.size() * sizeof(float));

    LoadOptions o{.n_threads = 2, .n_ctx = 128, .device = "cpu"};
    o.offload.ram_experts = 0;
    const auto model = Model::load((dir / "model.gguf").string(), o);
    Session session(model);
    session.prefill(prompt, true);
    const auto ours = session.all_logits();
    ASSERT_EQ(ours.size(), expected.size());
    const double tol = test::tolerance_for(open_model_file((dir / "model.gguf").string()));
    for (size_t p = 0; p < prompt.size(); ++p) {
        const auto d = test::compare_rows(ours.subspan(p * n_vocab, n_vocab),
                                          std::span<const float>(expected).subspan(p * n_vocab, n_vocab));
        EXPECT_LT(d.rel_l2, tol) << "prompt position " << p;
        EXPECT_TRUE(d.argmax_ok) << "prompt position " << p << ": " << d.detail;
    }
    EXPECT_GT(model->expert_cache_stats().total.bytes_loaded, 0u);
}

INSTANTIATE_TEST_SUITE_P(Shared, ReferenceOffload, ::testing::ValuesIn(reference_models()), test::ParamName());

// The counters agree with the routing the observer saw: every step's distinct experts are one
// hit or one miss each; without RAM every miss is one expert read; a full cache misses each
// expert once at most.
TEST(OffloadCounters, AgreeWithTheRouting) {
    const std::string path = synth("tiny-olmoe", "q8_0").string();
    for (int64_t budget : {int64_t{0}, int64_t{1} << 40}) {
        LoadOptions o{.n_threads = 2, .n_ctx = 32, .device = "cpu"};
        o.offload.ram_experts = budget;
        o.offload.prefetch = false;
        const auto model = Model::load(path, o);
        Session session(model);
        uint64_t needs = 0;
        std::set<std::pair<int64_t, int32_t>> distinct;
        session.set_routing_observer([&](const RoutingStep& step) {
            const std::set<int32_t> step_experts(step.experts.begin(), step.experts.end());
            needs += step_experts.size();
            for (int32_t e : step_experts) distinct.insert({step.layer, e});
        });
        session.prefill(prompt_for(path));
        for (int i = 0; i < 5; ++i) session.decode(test::argmax_of(session.logits()));
        const ExpertCacheStats s = model->expert_cache_stats();
        EXPECT_EQ(s.total.hits + s.total.misses, needs);
        if (budget == 0) {
            EXPECT_EQ(s.total.hits, 0u);
            EXPECT_EQ(s.total.misses, needs);
        } else {
            EXPECT_EQ(s.total.misses, distinct.size()) << "a cache that holds everything misses once per expert";
            EXPECT_EQ(s.total.evictions, 0u);
        }
        EXPECT_GT(s.total.bytes_loaded, 0u);
        EXPECT_EQ(s.policy, "adaptive");  // the default
    }
}

// The live RAM tier and the offline replay (hymoe simulate) count the same hits and misses per
// layer when every step is one token and nothing is prefetched: the same cache, the same policy,
// the same order of misses. With one slot per layer (fewer than k) that order (heaviest first)
// decides which expert stays, so this also checks the tier places misses as the replay does.
TEST(OffloadCounters, LiveTierMatchesTheReplay) {
    const std::string path = synth("tiny-olmoe", "q8_0").string();
    for (const Budget& b : budgets_for(path)) {
        if (b.name != "one-slot" && b.name != "half") continue;
        for (const char* policy : {"lru", "lfu"}) {  // neither reads the softmax, which the trace leaves out
            SCOPED_TRACE(fmt::format("budget {}, policy {}", b.name, policy));
            LoadOptions o{.n_threads = 2, .n_ctx = 64, .device = "cpu"};
            o.offload.ram_experts = b.bytes;
            o.offload.cache_policy = policy;
            o.offload.prefetch = false;
            const auto model = Model::load(path, o);
            Session session(model);
            offload::RoutingTrace trace;
            std::set<int64_t> layers;
            session.set_routing_observer([&](const RoutingStep& s) {
                trace.header.n_experts = s.n_experts;
                trace.header.n_experts_used = s.n_experts_used;
                layers.insert(s.layer);
                for (int64_t t = 0; t < s.n_tokens; ++t) {
                    const auto at = static_cast<size_t>(t * s.n_experts_used), k = static_cast<size_t>(s.n_experts_used);
                    trace.position.push_back(s.position + t);
                    trace.layer.push_back(static_cast<int32_t>(s.layer));
                    trace.experts.insert(trace.experts.end(), s.experts.begin() + at, s.experts.begin() + at + k);
                    trace.weights.insert(trace.weights.end(), s.weights.begin() + at, s.weights.begin() + at + k);
                }
            });
            // One token at a time: the live tier meets a batch's needs as one step, the replay a token's.
            const int64_t n_vocab = model->n_vocab();
            session.prefill(std::vector<int32_t>{1});
            for (int i = 0; i < 40; ++i) session.decode(static_cast<int32_t>((i * 7919 + 13) % n_vocab));
            ASSERT_FALSE(layers.empty());
            trace.header.moe_layers.assign(layers.begin(), layers.end());
            trace.header.n_layers = *layers.rbegin() + 1;

            const ExpertCacheStats live = model->expert_cache_stats();
            const int64_t slots = live.layers[static_cast<size_t>(*layers.begin())].slots;
            for (int64_t l : layers) ASSERT_EQ(live.layers[static_cast<size_t>(l)].slots, slots) << "layer " << l;
            if (b.name == "one-slot") EXPECT_EQ(slots, 1);
            const offload::SimulationResult replay =
                offload::simulate_policy(trace, offload::parse_cache_policy(policy), slots);
            for (int64_t l : layers) {
                EXPECT_EQ(replay.layers[static_cast<size_t>(l)].hits, live.layers[static_cast<size_t>(l)].hits)
                    << "layer " << l;
                EXPECT_EQ(replay.layers[static_cast<size_t>(l)].misses, live.layers[static_cast<size_t>(l)].misses)
                    << "layer " << l;
            }
            EXPECT_GT(live.total.hits, 0u);
            EXPECT_GT(live.total.misses, 0u);
        }
    }
}

TEST(OffloadCounters, PrefetchIsCountedAndPredictsAboveChance) {
    const std::string path = synth("tiny-qwen3moe", "q8_0").string();
    LoadOptions o{.n_threads = 2, .n_ctx = 64, .device = "cpu"};
    o.offload.ram_experts = int64_t{1} << 40;
    const auto model = Model::load(path, o);
    Session session(model);
    session.prefill(prompt_for(path));
    for (int i = 0; i < 24; ++i) session.decode(test::argmax_of(session.logits()));
    const ExpertCacheStats s = model->expert_cache_stats();
    ASSERT_GT(s.total.predicted, 0u);
    EXPECT_LE(s.total.predicted_right, s.total.predicted);
    EXPECT_LE(s.total.prefetch_used, s.total.prefetched);
    // Chance: k of E experts; pre-gating on a skewed model must do better.
    const double accuracy = static_cast<double>(s.total.predicted_right) / static_cast<double>(s.total.used);
    std::printf("prefetch accuracy %.3f over %llu predicted experts\n", accuracy,
                static_cast<unsigned long long>(s.total.predicted));
    EXPECT_GT(accuracy, 0.2);
}

// The RAM tier's predicted time (CostModel::plan_ram_layer over what each run found where): with
// the CPU's and the file's rates given, positive, and more with less RAM (the routing, hence the
// needs, is the same whatever the budget; without prefetching the split does not depend on the
// loader's timing); nothing without the CPU's rate; the file's rate measured at load when not given.
TEST(OffloadCounters, PredictedSecondsGrowAsTheBudgetShrinks) {
    const std::string path = synth("tiny-qwen3moe", "q8_0").string();
    const auto stats_for = [&](int64_t budget, double cpu_read_gbs, double file_read_gbs) {
        LoadOptions o{.n_threads = 2, .n_ctx = 32, .device = "cpu"};
        o.offload.ram_experts = budget;
        o.offload.prefetch = false;
        o.offload.cpu_read_gbs = cpu_read_gbs;
        o.offload.cpu_gops = 100;
        o.offload.file_read_gbs = file_read_gbs;
        const auto model = Model::load(path, o);
        Session session(model);
        session.prefill(prompt_for(path));
        for (int i = 0; i < 8; ++i) session.decode(test::argmax_of(session.logits()));
        return model->expert_cache_stats();
    };
    std::vector<double> predicted;  // none, one slot, half, all
    for (const Budget& b : budgets_for(path)) {
        const ExpertCacheStats s = stats_for(b.bytes, 10, 1);
        EXPECT_EQ(s.tier, "ram");
        EXPECT_DOUBLE_EQ(s.file_read_gbs, 1.0);
        double layers = 0;
        for (const auto& l : s.layers) layers += l.predicted_seconds;
        EXPECT_NEAR(s.total.predicted_seconds, layers, 1e-12 * layers);
        predicted.push_back(s.total.predicted_seconds);
    }
    ASSERT_EQ(predicted.size(), 4u);
    EXPECT_GT(predicted[3], 0.0);
    EXPECT_GE(predicted[0], predicted[1]);
    EXPECT_GE(predicted[1], predicted[2]);
    EXPECT_GE(predicted[2], predicted[3]);
    EXPECT_GT(predicted[0], predicted[3]) << "every expert read each time costs more than each read once";

    const ExpertCacheStats unrated = stats_for(0, 0, 0);
    EXPECT_EQ(unrated.total.predicted_seconds, 0.0);
    EXPECT_EQ(unrated.file_read_gbs, 0.0);
    const ExpertCacheStats measured = stats_for(0, 10, 0);
    EXPECT_GT(measured.file_read_gbs, 0.0);
    EXPECT_TRUE(std::isfinite(measured.file_read_gbs));
    EXPECT_GT(measured.total.predicted_seconds, 0.0);
    EXPECT_TRUE(std::isfinite(measured.total.predicted_seconds));
}

std::string load_error(const std::string& path, const LoadOptions& o) {
    try {
        Model::load(path, o);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(OffloadErrors, BadOptionsAreNamed) {
    const std::string path = synth("tiny-mixtral", "q8_0").string();
    LoadOptions o{.n_threads = 1, .n_ctx = 16, .device = "cpu"};
    o.offload.ram_experts = 0;
    o.offload.cache_policy = "fifo";
    EXPECT_NE(load_error(path, o).find("--cache-policy 'fifo'"), std::string::npos) << load_error(path, o);
    o.offload.cache_policy = "lru";
    o.offload.ram_experts = -5;
    EXPECT_NE(load_error(path, o).find("negative"), std::string::npos);
    o.offload.ram_experts = 0;
    o.offload.attn = "disk";
    EXPECT_NE(load_error(path, o).find("--attn 'disk'"), std::string::npos);
    o.offload.attn = "auto";
    o.offload.expert_cache = 1 << 20;
    EXPECT_NE(load_error(path, o).find("--expert-cache-gb"), std::string::npos);
}

// --attn cpu on the CPU backend is what it does anyway: it loads, runs and gives the logits of
// "auto" exactly (the same ops); --attn gpu there is the error naming the flag. MLA (deepseek2)
// and sinks with a sliding window (gpt-oss) included.
TEST(OffloadErrors, AttnCpuRunsOnTheCpuAndAttnGpuIsAnError) {
    for (const char* shape : {"tiny-qwen3moe", "tiny-deepseek2", "tiny-gpt-oss"}) {
        SCOPED_TRACE(shape);
        const std::string path = synth(shape, "q8_0").string();
        const std::vector<int32_t> prompt = prompt_for(path);
        LoadOptions o{.n_threads = 2, .n_ctx = 32, .device = "cpu"};
        const std::vector<float> want = run(path, o, prompt, 4);
        o.offload.attn = "cpu";
        EXPECT_EQ(Model::load(path, o)->backend_name(), "cpu");
        EXPECT_EQ(run(path, o, prompt, 4), want);
        o.offload.attn = "gpu";
        const std::string error = load_error(path, o);
        EXPECT_NE(error.find("--attn gpu"), std::string::npos) << error;
        EXPECT_NE(error.find("needs a GPU"), std::string::npos) << error;
    }
}

// The store reads every expert's exact bytes (compared with the mapped file), wherever its
// matrices start within a page.
TEST(ExpertStore, ReadsTheMappedBytes) {
    const std::string path = synth("tiny-deepseek2", "q4_k").string();
    const ModelFile file = open_model_file(path);
    const ModelConfig config = load_model_config(file);
    const ModelWeights weights = load_weights(file, config);
    const offload::ExpertStore store(config, weights, file);
    int64_t checked = 0;
    for (int64_t l = 0; l < store.n_layers(); ++l) {
        if (!store.is_moe(l)) continue;
        EXPECT_TRUE(store.from_file(l));
        AlignedBuffer slot(store.slot_bytes(l), offload::ExpertStore::kAlign);
        for (int32_t e = 0; e < config.n_experts; ++e) {
            const offload::ExpertView got = store.read(l, e, slot.data());
            const offload::ExpertView want = store.mapped(l, e);
            for (const auto& [g, w] : {std::pair{got.gate, want.gate}, {got.up, want.up}, {got.down, want.down}}) {
                const uint64_t bytes = row_bytes(w.type, static_cast<uint64_t>(w.cols)).value() *
                                       static_cast<uint64_t>(w.rows);
                ASSERT_EQ(g.rows, w.rows);
                ASSERT_EQ(g.cols, w.cols);
                ASSERT_EQ(g.type, w.type);
                ASSERT_EQ(std::memcmp(g.data, w.data, bytes), 0) << "layer " << l << " expert " << e;
                ++checked;
            }
        }
    }
    EXPECT_GT(checked, 0);
}

// A model file cut short while in use: the read that needs the missing bytes fails naming the
// file and the offset (the store never touches the mapping of what it reads).
TEST(ExpertStore, FileCutShortIsAnErrorNamingFileAndOffset) {
    const fs::path original = synth("tiny-qwen3moe", "q8_0");
    const fs::path copy = original.parent_path() / "cut.gguf";
    fs::copy_file(original, copy, fs::copy_options::overwrite_existing);
    const ModelFile file = open_model_file(copy.string());
    const ModelConfig config = load_model_config(file);
    const ModelWeights weights = load_weights(file, config);
    const offload::ExpertStore store(config, weights, file);
    const int64_t layer = config.n_layers - 1;
    const TensorView* down = file.find("blk." + std::to_string(layer) + ".ffn_down_exps.weight");
    ASSERT_NE(down, nullptr);
    fs::resize_file(copy, down->file_offset + 10);
    AlignedBuffer slot(store.slot_bytes(layer), offload::ExpertStore::kAlign);
    std::string message;
    try {
        store.read(layer, static_cast<int32_t>(config.n_experts - 1), slot.data());
    } catch (const Error& e) {
        message = e.what();
    }
    EXPECT_NE(message.find(copy.string()), std::string::npos) << message;
    EXPECT_NE(message.find("ends before byte offset"), std::string::npos) << message;
}

}  // namespace
}  // namespace hymoe
