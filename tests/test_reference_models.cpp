// The shared llama.cpp reference models, read by hymoe, checked against two things no one here
// wrote: the listing of llama.cpp's own Python reader (gguf-py, dumped by
// tests/fixtures/make_reference_tensor_lists.py) and the facts the reference README's table
// states for each model.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "format/gguf.hpp"
#include "hymoe/error.hpp"
#include "hymoe/inspect.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

using nlohmann::json;

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

json listing_of(const std::string& name) {
    return json::parse(test::read_text(test::fixtures_dir() / "reference_tensors" / (name + ".json")));
}

// ---- 1. every file against gguf-py ---------------------------------------------------------

class ReferenceFileTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ReferenceFileTest, MatchesGgufPyListing) {
    HYMOE_REQUIRE_REFERENCE(ref);
    const json expect = listing_of(GetParam());
    const std::filesystem::path path = ref.parent_path() / expect["file"].get<std::string>();
    ASSERT_TRUE(std::filesystem::exists(path)) << path;

    const ModelFile model = read_gguf(path.string());
    EXPECT_EQ(model.gguf().version, expect["version"].get<uint32_t>());
    EXPECT_EQ(model.gguf().alignment, expect["alignment"].get<uint64_t>());
    EXPECT_EQ(model.gguf().data_offset, expect["data_offset"].get<uint64_t>());
    EXPECT_EQ(model.total_file_bytes(), expect["file_bytes"].get<uint64_t>());

    // Metadata: same keys, same values (scalars) or same lengths (arrays).
    EXPECT_EQ(model.metadata().size(), expect["n_kv"].get<size_t>());
    for (const auto& [key, want] : expect["metadata"].items()) {
        SCOPED_TRACE(key);
        const MetaValue* got = model.metadata().find(key);
        ASSERT_NE(got, nullptr);
        if (want.contains("array_of")) {
            ASSERT_NE(got->as_array(), nullptr);
            EXPECT_EQ(got->as_array()->items.size(), want["length"].get<size_t>());
            continue;
        }
        const json& v = want["value"];
        if (v.is_string()) {
            ASSERT_NE(got->as_string(), nullptr);
            EXPECT_EQ(*got->as_string(), v.get<std::string>());
        } else if (v.is_boolean()) {
            EXPECT_EQ(got->as_bool(), v.get<bool>());
        } else if (v.is_number_float()) {
            EXPECT_DOUBLE_EQ(*got->as_f64(), v.get<double>());
        } else {
            EXPECT_EQ(got->as_i64(), v.get<int64_t>());
        }
    }

    // Tensors: same order, names, types, dimensions, sizes and data offsets.
    const auto& tensors = expect["tensors"];
    ASSERT_EQ(model.tensors().size(), tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) {
        const TensorView& t = model.tensors()[i];
        const json& w = tensors[i];
        SCOPED_TRACE(w["name"].get<std::string>());
        EXPECT_EQ(t.name, w["name"].get<std::string>());
        EXPECT_EQ(static_cast<uint32_t>(t.type), w["type_id"].get<uint32_t>());
        EXPECT_EQ(lower(std::string(type_name(t.type))), w["type"].get<std::string>());
        const auto ne = w["ne"].get<std::vector<int64_t>>();
        ASSERT_EQ(t.shape.size(), ne.size());
        for (size_t d = 0; d < ne.size(); ++d) EXPECT_EQ(t.ne(d), ne[d]) << "dimension " << d;
        EXPECT_EQ(t.nbytes, w["nbytes"].get<uint64_t>());
        EXPECT_EQ(t.file_offset, w["file_offset"].get<uint64_t>());
    }
}

INSTANTIATE_TEST_SUITE_P(Shared, ReferenceFileTest,
                         ::testing::Values("qwen3moe", "qwen2moe", "mixtral", "olmoe", "deepseek2", "deepseek2-v2",
                                           "gpt-oss", "ggml-vocab-llama-spm", "ggml-vocab-deepseek-llm",
                                           "ggml-vocab-gpt-2"),
                         [](const auto& p) {
                             std::string n = p.param;
                             for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                             return n;
                         });

// ---- 2. the README's table, through the public inspect API ---------------------------------

struct ReadmeRow {
    const char* dir;
    const char* arch;
    int64_t n_embd;
    int n_layers;
    int n_dense_layers;  // leading layers with a dense FFN instead of experts
    int64_t n_experts, n_used, ff_expert;
    const char* expert_type;  // type of the expert matrices
    bool expert_biases;       // gpt-oss: .bias tensors for gate, up, down
    const char* output_type;  // "" for tied embeddings (no output.weight)
    int64_t shared_ff;        // width of the shared-expert FFN, 0 when there is none
};

void PrintTo(const ReadmeRow& row, std::ostream* os) {
    *os << row.dir;
}

// From ../shared/reference/README.md, "Fixtures" table and notes.
constexpr ReadmeRow kReadme[] = {
    {"qwen3moe", "qwen3moe", 64, 2, 0, 8, 2, 32, "f32", false, "f32", 0},
    {"qwen2moe", "qwen2moe", 64, 2, 0, 8, 2, 32, "f32", false, "f32", 64},
    {"mixtral", "llama", 64, 2, 0, 8, 2, 32, "f32", false, "f32", 0},
    {"olmoe", "olmoe", 64, 2, 0, 8, 2, 32, "f32", false, "f32", 0},
    {"deepseek2", "deepseek2", 48, 3, 1, 8, 2, 32, "f32", false, "f16", 64},
    {"deepseek2-v2", "deepseek2", 64, 3, 1, 8, 2, 32, "f32", false, "", 64},
    {"gpt-oss", "gpt-oss", 64, 2, 0, 8, 2, 64, "mxfp4", true, "f16", 0},
};

class ReadmeTableTest : public ::testing::TestWithParam<ReadmeRow> {};

const TensorSummary* find_tensor(const ModelInfo& m, const std::string& name) {
    for (const auto& t : m.tensors) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

TEST_P(ReadmeTableTest, InspectShowsWhatTheReadmeLists) {
    HYMOE_REQUIRE_REFERENCE(ref);
    const ReadmeRow& row = GetParam();
    const ModelInfo m = inspect_model((ref / row.dir / "model.gguf").string());

    EXPECT_EQ(m.format, "gguf");
    EXPECT_EQ(m.gguf_version, 3u);
    EXPECT_EQ(m.architecture, row.arch);

    // Embeddings are f16 ([n_vocab, n_embd]); the lm_head is f32, f16 or tied.
    const TensorSummary* embd = find_tensor(m, "token_embd.weight");
    ASSERT_NE(embd, nullptr);
    EXPECT_EQ(embd->type, "f16");
    ASSERT_EQ(embd->shape.size(), 2u);
    EXPECT_EQ(embd->shape[1], row.n_embd);
    EXPECT_EQ(embd->shape[0], static_cast<int64_t>(m.tokenizer.vocab_size));
    const TensorSummary* output = find_tensor(m, "output.weight");
    if (*row.output_type == '\0') {
        EXPECT_EQ(output, nullptr) << "tied embeddings: no output.weight";
    } else {
        ASSERT_NE(output, nullptr);
        EXPECT_EQ(output->type, row.output_type);
        EXPECT_FALSE(output->is_expert);
    }

    // Routed experts: [n_experts, ff, n_embd] for gate/up, [n_experts, n_embd, ff] for down,
    // in every layer after the dense ones, none in the dense ones.
    for (int l = 0; l < row.n_layers; ++l) {
        SCOPED_TRACE("layer " + std::to_string(l));
        const std::string blk = "blk." + std::to_string(l) + ".";
        const TensorSummary* gate = find_tensor(m, blk + "ffn_gate_exps.weight");
        const TensorSummary* up = find_tensor(m, blk + "ffn_up_exps.weight");
        const TensorSummary* down = find_tensor(m, blk + "ffn_down_exps.weight");
        if (l < row.n_dense_layers) {
            EXPECT_EQ(gate, nullptr);
            EXPECT_NE(find_tensor(m, blk + "ffn_gate.weight"), nullptr) << "dense FFN";
            continue;
        }
        ASSERT_NE(gate, nullptr);
        ASSERT_NE(up, nullptr);
        ASSERT_NE(down, nullptr);
        const std::vector<int64_t> gate_up_shape = {row.n_experts, row.ff_expert, row.n_embd};
        const std::vector<int64_t> down_shape = {row.n_experts, row.n_embd, row.ff_expert};
        EXPECT_EQ(gate->shape, gate_up_shape);
        EXPECT_EQ(up->shape, gate_up_shape);
        EXPECT_EQ(down->shape, down_shape);
        for (const auto* t : {gate, up, down}) {
            EXPECT_EQ(t->type, row.expert_type);
            EXPECT_TRUE(t->is_expert);
            EXPECT_EQ(t->layer, l);
        }
        const TensorSummary* router = find_tensor(m, blk + "ffn_gate_inp.weight");
        ASSERT_NE(router, nullptr);
        EXPECT_EQ(router->shape, (std::vector<int64_t>{row.n_experts, row.n_embd}));
        EXPECT_FALSE(router->is_expert) << "the router stays resident";
        if (row.shared_ff > 0) {
            const TensorSummary* shexp = find_tensor(m, blk + "ffn_gate_shexp.weight");
            ASSERT_NE(shexp, nullptr);
            EXPECT_FALSE(shexp->is_expert) << "shared experts stay resident";
            EXPECT_EQ(shexp->shape, (std::vector<int64_t>{row.shared_ff, row.n_embd}));
        }
        EXPECT_EQ(find_tensor(m, blk + "ffn_gate_exps.bias") != nullptr, row.expert_biases);
    }

    // The offload split: one entry per MoE layer, n_experts each, bytes per expert from the
    // dimensions and the type's block layout (MXFP4: 17 bytes per 32 values).
    const int moe_layers = row.n_layers - row.n_dense_layers;
    ASSERT_EQ(m.experts.layers.size(), static_cast<size_t>(moe_layers));
    const uint64_t per_matrix = static_cast<uint64_t>(row.ff_expert * row.n_embd);
    uint64_t per_expert = std::string(row.expert_type) == "mxfp4" ? 3 * per_matrix / 32 * 17 : 3 * per_matrix * 4;
    if (row.expert_biases) per_expert += static_cast<uint64_t>(2 * row.ff_expert + row.n_embd) * 4;
    for (const auto& le : m.experts.layers) {
        EXPECT_EQ(le.n_experts, static_cast<uint32_t>(row.n_experts));
        EXPECT_EQ(le.bytes_per_expert, per_expert);
        EXPECT_EQ(le.bytes, per_expert * static_cast<uint64_t>(row.n_experts));
    }
    EXPECT_EQ(m.experts.expert_bytes, per_expert * static_cast<uint64_t>(row.n_experts * moe_layers));
    EXPECT_EQ(m.experts.expert_bytes + m.experts.non_expert_bytes, m.tensor_bytes);
}

INSTANTIATE_TEST_SUITE_P(Shared, ReadmeTableTest, ::testing::ValuesIn(kReadme), [](const auto& p) {
    std::string n = p.param.dir;
    for (char& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return n;
});

// Vocab sizes and BOS behaviour the README states for the vocab-only files.
TEST(ReferenceVocab, TokenizerSummaries) {
    HYMOE_REQUIRE_REFERENCE(ref);
    struct Row {
        const char* file;
        const char* model;
        uint64_t n_vocab;
        bool add_bos;
    };
    for (const Row& r : {Row{"ggml-vocab-llama-spm.gguf", "llama", 32000, true},
                         Row{"ggml-vocab-deepseek-llm.gguf", "gpt2", 102400, true},
                         Row{"ggml-vocab-gpt-2.gguf", "gpt2", 50257, false}}) {
        SCOPED_TRACE(r.file);
        const ModelInfo m = inspect_model((ref / "vocab" / r.file).string());
        EXPECT_TRUE(m.tensors.empty());
        EXPECT_TRUE(m.tokenizer.present);
        EXPECT_EQ(m.tokenizer.model, r.model);
        EXPECT_GE(m.tokenizer.vocab_size, r.n_vocab);  // deepseek-llm lists added tokens past 102400
        EXPECT_EQ(m.tokenizer.add_bos, r.add_bos);
    }
}

}  // namespace
}  // namespace hymoe

namespace hymoe {
namespace {

// A tiny Qwen3-MoE saved by transformers itself (tests/fixtures/make_safetensors_fixtures.py):
// the split inspect computes follows from the config.json transformers wrote.
TEST(HfFixture, ExpertSplitFollowsTransformersConfig) {
    const auto dir = test::fixtures_dir() / "safetensors" / "hf-qwen3moe-tiny";
    const json config = json::parse(test::read_text(dir / "config.json"));
    const json expected = json::parse(test::read_text(dir.parent_path() / "hf-qwen3moe-tiny.expected.json"));
    const ModelInfo m = inspect_model(dir.string());

    EXPECT_EQ(m.format, "safetensors");
    EXPECT_EQ(m.files.size(), 2u);
    EXPECT_EQ(m.architecture, config["architectures"][0].get<std::string>());
    EXPECT_EQ(m.tensors.size(), expected["tensors"].size());

    const auto hidden = config["hidden_size"].get<uint64_t>();
    const auto moe_ff = config["moe_intermediate_size"].get<uint64_t>();
    // transformers 5 names the expert count num_local_experts; earlier versions num_experts.
    const auto n_experts = config.contains("num_local_experts") ? config["num_local_experts"].get<uint32_t>()
                                                                : config["num_experts"].get<uint32_t>();
    const auto n_layers = config["num_hidden_layers"].get<size_t>();
    ASSERT_TRUE(config["mlp_only_layers"].empty());
    ASSERT_EQ(config["decoder_sparse_step"], 1);

    ASSERT_EQ(m.experts.layers.size(), n_layers);
    const uint64_t per_expert = 3 * hidden * moe_ff * 4;  // gate, up, down; f32
    for (size_t l = 0; l < n_layers; ++l) {
        EXPECT_EQ(m.experts.layers[l].layer, static_cast<int>(l));
        EXPECT_EQ(m.experts.layers[l].n_experts, n_experts);
        EXPECT_EQ(m.experts.layers[l].bytes_per_expert, per_expert);
    }
    for (const auto& t : m.tensors) {
        const bool routed = t.name.find(".mlp.experts.") != std::string::npos;
        EXPECT_EQ(t.is_expert, routed) << t.name;
    }
    EXPECT_EQ(m.experts.expert_bytes, per_expert * n_experts * n_layers);
}

}  // namespace
}  // namespace hymoe

namespace hymoe {
namespace {

// A tokenizer trained by HF `tokenizers` and saved by `transformers`
// (tests/fixtures/make_hf_tokenizer_fixture.py); expected values are transformers' own.
TEST(HfFixture, TokenizerSummaryMatchesTransformers) {
    const auto dir = test::fixtures_dir() / "hf-tokenizer";
    const json expected = json::parse(test::read_text(dir.parent_path() / "hf-tokenizer.expected.json"));
    const ModelInfo m = inspect_model(dir.string());
    const TokenizerSummary& t = m.tokenizer;
    ASSERT_TRUE(t.present);
    EXPECT_EQ(t.source, "tokenizer.json");
    EXPECT_EQ(t.model, expected["model"].get<std::string>());
    EXPECT_EQ(t.pre, expected["pre"].get<std::string>());
    EXPECT_EQ(t.vocab_size, expected["vocab_size"].get<uint64_t>());
    EXPECT_EQ(t.n_merges, expected["n_merges"].get<uint64_t>());
    EXPECT_EQ(t.has_chat_template, expected["has_chat_template"].get<bool>());
    EXPECT_EQ(t.chat_template_chars, expected["chat_template_chars"].get<uint64_t>());
    for (const auto& [role, want] : expected["special"].items()) {
        SCOPED_TRACE(role);
        auto it = std::find_if(t.special.begin(), t.special.end(), [&](const auto& s) { return s.role == role; });
        ASSERT_NE(it, t.special.end());
        EXPECT_EQ(it->text, want["text"].get<std::string>());
        EXPECT_EQ(it->id, want["id"].get<int64_t>());
    }
}

TEST(HfFixture, MalformedTokenizerJsonIsNamed) {
    const auto dir = test::temp_dir_for_test();
    for (const char* f : {"model.safetensors", "tokenizer_config.json"}) {
        std::filesystem::copy_file(test::fixtures_dir() / "hf-tokenizer" / f, dir / f);
    }
    { std::ofstream(dir / "tokenizer.json") << R"({"model": {"type": "BPE", "vocab": {)"; }
    try {
        inspect_model(dir.string());
        FAIL() << "a malformed tokenizer.json must be an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find((dir / "tokenizer.json").string() + ": malformed JSON"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace hymoe
