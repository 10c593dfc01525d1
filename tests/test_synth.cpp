// `hymoe synth`: every shape loads and runs in the engine in the types this build can write and
// run; the tensor plans follow llama.cpp's Q4_K_M rules; a seed gives the same file; routing is
// skewed as documented (docs/synthetic-models.md); bad flags give one clear error.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "cli_runner.hpp"
#include "cpu/matmul.hpp"
#include "format/model_file.hpp"
#include "hymoe/engine.hpp"
#include "hymoe/error.hpp"
#include "hymoe/synth.hpp"
#include "quant/quant.hpp"
#include "runtime/forward.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;

SynthOptions options(const std::string& shape, const std::string& type, const fs::path& out, int layers = 0) {
    SynthOptions o;
    o.shape = shape;
    o.type = type;
    o.output = out.string();
    o.n_layers = layers;
    o.n_threads = 2;
    return o;
}

// Why this build cannot write and run `type` for this model ("" if it can).
std::string cannot_run(const SynthOptions& o) {
    for (const SynthTensorInfo& t : plan_synthetic_model(o).tensors) {
        const auto type = tensor_type_from_name(t.type);
        if (!type) return "unknown type " + t.type;
        if (*type != TensorType::F32 && !quant::can_quantize(*type)) return t.type + " cannot be quantized yet";
        if (t.shape.size() >= 2 && !cpu::supports_matmul(*type) && t.name.find("_norm") == std::string::npos)
            return t.type + " has no CPU matmul yet";
    }
    return "";
}

// Loads the model and evaluates a few tokens; the logits must be finite and look like a real
// model's (standard deviation of a few units).
void expect_runs(const fs::path& path, const std::vector<int32_t>& tokens = {1, 17, 300, 5, 42, 7, 900, 3}) {
    auto model = Model::load(path.string(), {.n_threads = 2, .n_ctx = 64, .device = "cpu"});
    Session session(model);
    session.prefill(tokens);
    session.decode(11);
    const std::span<const float> logits = session.logits();
    ASSERT_EQ(static_cast<int64_t>(logits.size()), model->n_vocab());
    double sum = 0, sum2 = 0;
    for (float v : logits) {
        ASSERT_TRUE(std::isfinite(v));
        sum += v;
        sum2 += static_cast<double>(v) * v;
    }
    const double n = static_cast<double>(logits.size());
    const double sd = std::sqrt(std::max(0.0, sum2 / n - (sum / n) * (sum / n)));
    EXPECT_GT(sd, 0.5) << path;
    EXPECT_LT(sd, 20.0) << path;
}

TEST(Synth, EveryShapeHasARealPlan) {
    // Tensor bytes of llama.cpp's Q4_K_M files of the real models: Mixtral-8x7B 28.4 GB (current
    // llama-quantize, experts merged per layer), Qwen3-30B-A3B 18.6 GB.
    struct Expect {
        const char* shape;
        int64_t n_vocab;
        uint32_t n_layers;
        double q4km_gb;  // 0: not checked
    };
    for (const Expect& e : {Expect{"mixtral-8x7b", 32000, 32, 28.4}, Expect{"qwen3-30b-a3b", 151936, 48, 18.6},
                            Expect{"olmoe-1b-7b", 50304, 16, 0}, Expect{"deepseek-v2-lite", 102400, 27, 0},
                            Expect{"gpt-oss-20b", 201088, 24, 0}}) {
        SCOPED_TRACE(e.shape);
        SynthOptions o = options(e.shape, "q4_k", "unused.gguf");
        const SynthPlan p = plan_synthetic_model(o);
        EXPECT_EQ(p.n_vocab, e.n_vocab);
        EXPECT_EQ(p.n_layers, e.n_layers);
        EXPECT_EQ(p.file_type, 15u);  // LLAMA_FTYPE_MOSTLY_Q4_K_M
        if (e.q4km_gb > 0) {
            EXPECT_NEAR(static_cast<double>(p.tensor_bytes) / 1e9, e.q4km_gb, 0.03 * e.q4km_gb);
        }
    }
    // Tensor shapes that tell the architectures apart.
    auto find = [](const SynthPlan& p, const std::string& name) -> const SynthTensorInfo* {
        for (const auto& t : p.tensors)
            if (t.name == name) return &t;
        return nullptr;
    };
    const SynthPlan ds = plan_synthetic_model(options("deepseek-v2-lite", "f32", "x.gguf"));
    ASSERT_NE(find(ds, "blk.0.ffn_gate.weight"), nullptr);  // first_k_dense_replace = 1
    EXPECT_EQ(find(ds, "blk.0.ffn_gate.weight")->shape, (std::vector<int64_t>{10944, 2048}));
    EXPECT_EQ(find(ds, "blk.1.ffn_gate_exps.weight")->shape, (std::vector<int64_t>{64, 1408, 2048}));
    EXPECT_EQ(find(ds, "blk.1.ffn_up_shexp.weight")->shape, (std::vector<int64_t>{2816, 2048}));
    EXPECT_EQ(find(ds, "blk.1.attn_k_b.weight")->shape, (std::vector<int64_t>{16, 512, 128}));
    EXPECT_EQ(find(ds, "blk.1.attn_v_b.weight")->shape, (std::vector<int64_t>{16, 128, 512}));
    EXPECT_EQ(find(ds, "blk.1.attn_q.weight")->shape, (std::vector<int64_t>{16 * 192, 2048}));
    const SynthPlan oss = plan_synthetic_model(options("gpt-oss-20b", "mxfp4", "x.gguf"));
    EXPECT_EQ(oss.file_type, 38u);
    EXPECT_EQ(find(oss, "blk.0.attn_q.weight")->shape, (std::vector<int64_t>{4096, 2880}));
    EXPECT_EQ(find(oss, "blk.0.ffn_gate_exps.weight")->type, "mxfp4");
    EXPECT_EQ(find(oss, "blk.0.attn_q.weight")->type, "q8_0");
    EXPECT_EQ(find(oss, "blk.0.ffn_gate_exps.bias")->type, "f32");
    EXPECT_NE(find(oss, "blk.0.attn_sinks.weight"), nullptr);
    EXPECT_NE(find(oss, "blk.0.post_attention_norm.weight"), nullptr);
    EXPECT_EQ(find(oss, "output.weight")->type, "q8_0");
}

// llama.cpp's Q4_K_M: Q6_K output; 8-expert models get Q8_0 attn_k/attn_v and Q5_K attn_output;
// ffn_down gets Q6_K in use_more_bits layers; routers and norms stay f32; rows that are not a
// multiple of 256 fall back (Q4_K -> Q5_0, Q6_K -> Q8_0).
TEST(Synth, Q4KMTypePlan) {
    const SynthPlan m = plan_synthetic_model(options("mixtral-8x7b", "q4_k", "x.gguf"));
    std::map<std::string, std::string> t;
    for (const auto& x : m.tensors) t[x.name] = x.type;
    EXPECT_EQ(t["token_embd.weight"], "q4_K");
    EXPECT_EQ(t["output.weight"], "q6_K");
    EXPECT_EQ(t["output_norm.weight"], "f32");
    EXPECT_EQ(t["blk.0.attn_q.weight"], "q4_K");
    EXPECT_EQ(t["blk.0.attn_k.weight"], "q8_0");
    EXPECT_EQ(t["blk.0.attn_v.weight"], "q8_0");
    EXPECT_EQ(t["blk.0.attn_output.weight"], "q5_K");
    EXPECT_EQ(t["blk.0.ffn_gate_inp.weight"], "f32");
    EXPECT_EQ(t["blk.0.ffn_gate_exps.weight"], "q4_K");
    // use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2
    for (int il = 0; il < 32; ++il) {
        const bool more = il < 4 || il >= 28 || (il - 4) % 3 == 2;
        EXPECT_EQ(t[fmt::format("blk.{}.ffn_down_exps.weight", il)], more ? "q6_K" : "q4_K") << il;
    }
    const SynthPlan q = plan_synthetic_model(options("qwen3-30b-a3b", "q4_k", "x.gguf"));
    std::map<std::string, std::string> u;
    for (const auto& x : q.tensors) u[x.name] = x.type;
    EXPECT_EQ(u["blk.0.attn_v.weight"], "q6_K");  // use_more_bits(0, 48)
    EXPECT_EQ(u["blk.7.attn_v.weight"], "q4_K");  // (7 - 6) % 3 != 2
    EXPECT_EQ(u["blk.8.attn_v.weight"], "q6_K");  // (8 - 6) % 3 == 2
    EXPECT_EQ(u["blk.0.attn_k.weight"], "q4_K");
    EXPECT_EQ(u["blk.0.attn_output.weight"], "q4_K");
    const SynthPlan d = plan_synthetic_model(options("deepseek-v2-lite", "q4_k", "x.gguf"));
    std::map<std::string, std::string> v;
    for (const auto& x : d.tensors) v[x.name] = x.type;
    EXPECT_EQ(v["blk.1.ffn_down_exps.weight"], "q8_0");  // Q6_K (layer 1 < 27/8), rows of 1408 -> Q8_0
    EXPECT_EQ(v["blk.4.ffn_down_exps.weight"], "q5_0");  // Q4_K, rows of 1408 -> Q5_0
    EXPECT_EQ(v["blk.4.ffn_gate_exps.weight"], "q4_K");  // rows of 2048
    EXPECT_EQ(v["blk.4.attn_k_b.weight"], "q5_0");       // rows of 128
    EXPECT_EQ(v["blk.0.ffn_down.weight"], "q8_0");       // rows of 10944, layer 0: Q6_K -> Q8_0
}

TEST(Synth, TinyShapesLoadAndRunInEveryType) {
    const fs::path dir = test::temp_dir_for_test();
    for (const std::string shape : {"tiny-qwen3moe", "tiny-mixtral", "tiny-olmoe", "tiny-deepseek2", "tiny-gpt-oss"}) {
        for (const std::string type : {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k", "mxfp4"}) {
            SCOPED_TRACE(shape + " " + type);
            const SynthOptions o = options(shape, type, dir / (shape + "-" + type + ".gguf"));
            if (const std::string why = cannot_run(o); !why.empty()) {
                std::cout << fmt::format("[ SKIPPED  ] {} {}: {}\n", shape, type, why);
                continue;
            }
            write_synthetic_model(o);
            expect_runs(o.output);
            fs::remove(o.output);
        }
    }
}

TEST(Synth, RealShapeWithOneLayerRuns) {
    // olmoe-1b-7b with one layer: about 430 MB as MXFP4_MOE (fast quantizers; q8_0 as a fallback).
    const fs::path dir = test::temp_dir_for_test();
    for (const std::string type : {"mxfp4", "q8_0"}) {
        const SynthOptions o = options("olmoe-1b-7b", type, dir / "olmoe.gguf", 1);
        if (const std::string why = cannot_run(o); !why.empty()) {
            std::cout << fmt::format("[ SKIPPED  ] olmoe-1b-7b {}: {}\n", type, why);
            continue;
        }
        const SynthResult r = write_synthetic_model(o);
        std::cout << fmt::format("olmoe-1b-7b --layers 1 {}: {:.0f} MB in {:.1f} s ({:.0f} MB/s)\n", type,
                                 static_cast<double>(r.file_bytes) / 1e6, r.seconds,
                                 static_cast<double>(r.file_bytes) / 1e6 / r.seconds);
        expect_runs(o.output);
        fs::remove(o.output);
        return;
    }
    GTEST_SKIP() << "this build can neither write nor run mxfp4 or q8_0 yet";
}

TEST(Synth, SameSeedSameFileWhateverTheThreads) {
    const fs::path dir = test::temp_dir_for_test();
    SynthOptions a = options("tiny-olmoe", "f32", dir / "a.gguf");
    a.n_threads = 1;
    SynthOptions b = options("tiny-olmoe", "f32", dir / "b.gguf");
    b.n_threads = 3;
    SynthOptions c = options("tiny-olmoe", "f32", dir / "c.gguf");
    c.seed = 2;
    write_synthetic_model(a);
    write_synthetic_model(b);
    write_synthetic_model(c);
    EXPECT_EQ(test::read_text(a.output), test::read_text(b.output));
    EXPECT_NE(test::read_text(a.output), test::read_text(c.output));
}

TEST(Synth, BuiltinVocabularyIsPaddedToTheShape) {
    const fs::path dir = test::temp_dir_for_test();
    SynthOptions o = options("tiny-mixtral", "f32", dir / "v.gguf");
    o.vocab = "builtin";
    write_synthetic_model(o);
    const ModelFile f = open_model_file(o.output);
    const MetaArray* tokens = f.metadata().get_array("tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->items.size(), 32000u);
    EXPECT_EQ(f.metadata().get_string("tokenizer.ggml.model").value_or(""), "llama");
    expect_runs(o.output);

    // A real shape's vocabulary is larger than Llama's 32000: [PAD] tokens fill it, unused.
    const SynthPlan p = plan_synthetic_model(options("olmoe-1b-7b", "f32", "x.gguf"));
    EXPECT_EQ(p.n_vocab, 50304);
}

TEST(Synth, ReadableByGgufPython) {
    if (std::system("python3 -c 'import gguf' > /dev/null 2>&1") != 0)
        GTEST_SKIP() << "python3 with the gguf package is not available (pip install gguf)";
    const fs::path dir = test::temp_dir_for_test();
    for (const std::string type : {"f32", "q8_0", "q4_k"}) {
        SynthOptions o = options("tiny-deepseek2", type, dir / ("py-" + type + ".gguf"));
        o.vocab = "builtin";
        if (const std::string why = cannot_run(o); why.find("quantized") != std::string::npos) continue;
        write_synthetic_model(o);
        const SynthPlan p = plan_synthetic_model(o);
        const fs::path script = dir / "read.py";
        std::ofstream(script) << "import sys, gguf\n"
                                 "r = gguf.GGUFReader(sys.argv[1])\n"
                                 "names = {t.name: t for t in r.tensors}\n"
                                 "assert len(names) == int(sys.argv[2]), len(names)\n"
                                 "t = names['token_embd.weight']\n"
                                 "assert t.tensor_type.name.lower() == sys.argv[3].lower(), t.tensor_type.name\n"
                                 "f = r.fields['general.architecture']\n"
                                 "assert bytes(f.parts[f.data[0]]).decode() == 'deepseek2'\n";
        std::string embd_type;
        for (const auto& t : p.tensors)
            if (t.name == "token_embd.weight") embd_type = t.type;
        const std::string cmd =
            fmt::format("python3 '{}' '{}' {} {}", script.string(), o.output, p.tensors.size(), embd_type);
        EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
}

// ---- routing skew -----------------------------------------------------------------------------

struct RoutingStats {
    double top1 = 0;              // share of selections on the most popular expert
    double top_quarter = 0;       // share on the most popular 25% of the experts
    double overlap = 0;           // mean |S_t n S_t+1| / k over consecutive tokens
    double overlap_shuffled = 0;  // the same for random pairs of tokens (popularity alone)
    double uniform = 0;           // k / E
};

// Runs random token sequences through the model and counts the last MoE layer's selections.
RoutingStats measure_routing(const fs::path& path, int n_seqs = 8, int n_tokens = 64) {
    auto model = Model::load(path.string(), {.n_threads = 2, .n_ctx = n_tokens, .device = "cpu"});
    const Model::Impl& m = model->impl();
    const auto E = static_cast<size_t>(m.config.n_experts), k = static_cast<size_t>(m.config.n_experts_used);
    std::vector<double> count(E);
    std::vector<std::vector<int32_t>> sets;  // per token, sorted
    std::vector<size_t> seq_of;
    uint64_t state = 12345;
    for (int s = 0; s < n_seqs; ++s) {
        std::vector<int32_t> tokens(static_cast<size_t>(n_tokens));
        for (auto& t : tokens) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            t = static_cast<int32_t>((state >> 33) % static_cast<uint64_t>(m.config.n_vocab));
        }
        auto context = m.backend->new_context(n_tokens);
        std::vector<float> logits;
        forward(m, *context, n_tokens, 0, tokens, false, logits);
        // The CPU backend's routing buffer holds the last layer's choices: [n_tokens][k]
        const int32_t* chosen = context->expert_ids(n_tokens * static_cast<int64_t>(k));
        for (int t = 0; t < n_tokens; ++t) {
            std::vector<int32_t> set(chosen + static_cast<size_t>(t) * k, chosen + static_cast<size_t>(t + 1) * k);
            for (int32_t e : set) count[static_cast<size_t>(e)] += 1;
            std::sort(set.begin(), set.end());
            sets.push_back(std::move(set));
            seq_of.push_back(static_cast<size_t>(s));
        }
    }
    auto shared = [&](size_t a, size_t b) {
        std::vector<int32_t> both;
        std::set_intersection(sets[a].begin(), sets[a].end(), sets[b].begin(), sets[b].end(), std::back_inserter(both));
        return static_cast<double>(both.size()) / static_cast<double>(k);
    };
    RoutingStats r;
    std::vector<double> sorted = count;
    std::sort(sorted.rbegin(), sorted.rend());
    const double total = std::accumulate(count.begin(), count.end(), 0.0);
    r.top1 = sorted[0] / total;
    r.top_quarter =
        std::accumulate(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(std::max<size_t>(1, E / 4)), 0.0) /
        total;
    double n_pairs = 0;
    for (size_t i = 0; i + 1 < sets.size(); ++i) {
        if (seq_of[i] != seq_of[i + 1]) continue;
        r.overlap += shared(i, i + 1);
        r.overlap_shuffled += shared(i, (i * 7919 + 13) % sets.size());
        n_pairs += 1;
    }
    r.overlap /= n_pairs;
    r.overlap_shuffled /= n_pairs;
    r.uniform = static_cast<double>(k) / static_cast<double>(E);
    return r;
}

void print(const std::string& what, const RoutingStats& r) {
    std::cout << fmt::format(
        "{}: top-1 expert {:.1f}%, top 25% of experts {:.1f}%, consecutive overlap {:.3f} "
        "(random pairs {:.3f}, uniform k/E {:.3f})\n",
        what, 100 * r.top1, 100 * r.top_quarter, r.overlap, r.overlap_shuffled, r.uniform);
}

TEST(Synth, RoutingIsSkewedAndLocal) {
    const fs::path dir = test::temp_dir_for_test();
    for (const std::string shape : {"tiny-olmoe", "tiny-deepseek2"}) {
        SCOPED_TRACE(shape);
        SynthOptions o = options(shape, "f32", dir / (shape + ".gguf"));
        write_synthetic_model(o);
        const RoutingStats skewed = measure_routing(o.output);
        print(shape + " (zipf 1, locality 4)", skewed);
        EXPECT_GE(skewed.top_quarter, 0.5);
        EXPECT_GT(skewed.overlap, 1.5 * skewed.uniform);
        EXPECT_GT(skewed.overlap, skewed.overlap_shuffled);

        o.zipf = 0;
        o.locality = 0;
        o.output = (dir / (shape + "-flat.gguf")).string();
        write_synthetic_model(o);
        const RoutingStats flat = measure_routing(o.output);
        print(shape + " (zipf 0, locality 0)", flat);
        EXPECT_LT(flat.top_quarter, skewed.top_quarter);
        EXPECT_LT(flat.top_quarter, 0.45);
    }
}

// Measures the routing of existing files: HYMOE_SYNTH_MEASURE=a.gguf,b.gguf (for the docs).
TEST(Synth, MeasureRoutingOfGivenFiles) {
    const char* files = std::getenv("HYMOE_SYNTH_MEASURE");
    if (files == nullptr) GTEST_SKIP() << "set HYMOE_SYNTH_MEASURE=a.gguf,b.gguf to measure given models";
    std::string list = files;
    for (size_t start = 0; start < list.size();) {
        const size_t end = std::min(list.find(',', start), list.size());
        const std::string f = list.substr(start, end - start);
        print(f, measure_routing(f, 8, 128));
        start = end + 1;
    }
}

// ---- the command line -------------------------------------------------------------------------

TEST(Synth, BadFlagsAreOneLineErrors) {
    const fs::path out = test::temp_dir_for_test() / "x.gguf";
    using test::expect_one_line_error;
    using test::run_cli;
    expect_one_line_error(run_cli(fmt::format("synth --shape nope -o '{}'", out.string())),
                          "unknown synthetic model shape 'nope'");
    expect_one_line_error(run_cli(fmt::format("synth --type q3_k -o '{}'", out.string())),
                          "unknown synth --type 'q3_k'");
    expect_one_line_error(run_cli(fmt::format("synth --layers -1 -o '{}'", out.string())), "--layers must be positive");
    expect_one_line_error(run_cli(fmt::format("synth --shape deepseek-v2-lite --layers 1 -o '{}'", out.string())),
                          "--layers must be at least 2");
    expect_one_line_error(run_cli(fmt::format("synth --vocab /no/such.gguf -o '{}'", out.string())), "/no/such.gguf");
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(out.string() + ".partial"));
    if (!quant::can_quantize(TensorType::Q4_K)) {
        expect_one_line_error(run_cli(fmt::format("synth --type q4_k -o '{}'", out.string())), "cannot quantize yet");
    }
}

}  // namespace
}  // namespace hymoe
