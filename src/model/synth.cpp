#include "hymoe/synth.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "format/gguf_writer.hpp"
#include "format/model_file.hpp"
#include "hymoe/error.hpp"

namespace hymoe {

namespace {

// The hyper-parameters a synthetic model is drawn with. Names as in the GGUF keys.
struct SynthShape {
    std::string_view name;
    std::string_view arch;  // GGUF general.architecture
    uint32_t n_layers, d_model, n_heads, n_kv_heads, head_dim;
    uint32_t n_experts, n_experts_used, d_ff_expert, n_vocab, n_ctx;
    float rope_base, rms_eps;
    bool qk_norm;
};

// clang-format off
constexpr SynthShape kShapes[] = {
    // name             arch        L  d   H  KV hd  E  k  ff  vocab ctx   rope  eps    qk_norm
    {"tiny-qwen3moe",  "qwen3moe", 2, 64, 4, 2, 32, 8, 2, 32, 1024, 4096, 1e6f, 1e-6f, true},
    {"tiny-mixtral",   "llama",    2, 64, 4, 2, 16, 8, 2, 32, 1024, 4096, 1e6f, 1e-5f, false},
};
// clang-format on

const SynthShape& find_shape(std::string_view name) {
    for (const auto& s : kShapes) {
        if (s.name == name) return s;
    }
    std::string known;
    for (const auto& s : kShapes) known += fmt::format("{}{}", known.empty() ? "" : ", ", s.name);
    throw Error(fmt::format("unknown synthetic model shape '{}' (known: {})", name, known));
}

MetaValue u32(uint64_t v) {
    return MetaValue::unsigned_int(MetaType::U32, v);
}
MetaValue f32(double v) {
    return MetaValue::floating(MetaType::F32, v);
}

// A tensor to write: its name, row-major shape, and how to draw it.
struct SynthTensor {
    std::string name;
    std::vector<int64_t> shape;
    float stddev;  // 0: a norm weight, all ones
};

std::vector<SynthTensor> tensor_plan(const SynthShape& s, uint32_t n_layers, int64_t n_vocab) {
    const auto d = static_cast<int64_t>(s.d_model);
    const auto q_dim = static_cast<int64_t>(s.n_heads * s.head_dim);
    const auto kv_dim = static_cast<int64_t>(s.n_kv_heads * s.head_dim);
    const auto E = static_cast<int64_t>(s.n_experts);
    const auto ff = static_cast<int64_t>(s.d_ff_expert);
    // Weights ~ N(0, 1/fan_in) keep activations near unit scale through the layers.
    auto gain = [](int64_t fan_in) { return 1.0f / std::sqrt(static_cast<float>(fan_in)); };

    std::vector<SynthTensor> plan;
    plan.push_back({"token_embd.weight", {n_vocab, d}, 1.0f});
    for (uint32_t l = 0; l < n_layers; ++l) {
        auto blk = [l](std::string_view t) { return fmt::format("blk.{}.{}.weight", l, t); };
        plan.push_back({blk("attn_norm"), {d}, 0.0f});
        plan.push_back({blk("attn_q"), {q_dim, d}, gain(d)});
        plan.push_back({blk("attn_k"), {kv_dim, d}, gain(d)});
        plan.push_back({blk("attn_v"), {kv_dim, d}, gain(d)});
        plan.push_back({blk("attn_output"), {d, q_dim}, gain(q_dim)});
        if (s.qk_norm) {
            plan.push_back({blk("attn_q_norm"), {static_cast<int64_t>(s.head_dim)}, 0.0f});
            plan.push_back({blk("attn_k_norm"), {static_cast<int64_t>(s.head_dim)}, 0.0f});
        }
        plan.push_back({blk("ffn_norm"), {d}, 0.0f});
        plan.push_back({blk("ffn_gate_inp"), {E, d}, 2.0f * gain(d)});
        plan.push_back({blk("ffn_gate_exps"), {E, ff, d}, gain(d)});   // [n_experts, d_ff_expert, d_model]
        plan.push_back({blk("ffn_up_exps"), {E, ff, d}, gain(d)});     // [n_experts, d_ff_expert, d_model]
        plan.push_back({blk("ffn_down_exps"), {E, d, ff}, gain(ff)});  // [n_experts, d_model, d_ff_expert]
    }
    plan.push_back({"output_norm.weight", {d}, 0.0f});
    plan.push_back({"output.weight", {n_vocab, d}, 4.0f * gain(d)});
    return plan;
}

}  // namespace

std::vector<std::string> synth_shape_names() {
    std::vector<std::string> names;
    for (const auto& s : kShapes) names.emplace_back(s.name);
    return names;
}

SynthResult write_synthetic_model(const SynthOptions& options) {
    const SynthShape& s = find_shape(options.shape);
    if (options.output.empty()) throw Error("synth: no output path given (-o FILE)");
    if (options.n_layers < 0) throw Error(fmt::format("synth: --layers must be positive, got {}", options.n_layers));
    const uint32_t n_layers = options.n_layers > 0 ? static_cast<uint32_t>(options.n_layers) : s.n_layers;
    const std::string a(s.arch);

    // A real vocabulary: every tokenizer.* key of a vocabulary GGUF (llama.cpp's
    // models/ggml-vocab-*.gguf), and as many embedding rows as it has tokens.
    std::optional<ModelFile> vocab;
    int64_t n_vocab = s.n_vocab;
    if (!options.vocab.empty()) {
        vocab.emplace(open_model_file(options.vocab));
        const MetaArray* tokens = vocab->metadata().get_array("tokenizer.ggml.tokens");
        if (vocab->format() != FileFormat::Gguf || tokens == nullptr || tokens->items.empty())
            throw Error(fmt::format("synth: --vocab {}: no tokenizer.ggml.tokens (expected a GGUF with a vocabulary)",
                                    options.vocab));
        n_vocab = static_cast<int64_t>(tokens->items.size());
    }

    GgufWriter w;
    w.add_metadata("general.architecture", MetaValue::string(a));
    w.add_metadata("general.name", MetaValue::string(fmt::format("hymoe synthetic {} (random weights, seed {})", s.name,
                                                                 options.seed)));
    w.add_metadata("general.file_type", u32(0));  // all f32
    w.add_metadata(a + ".vocab_size", u32(static_cast<uint64_t>(n_vocab)));
    if (vocab) {
        for (const auto& [key, value] : vocab->metadata().entries())
            if (key.rfind("tokenizer.", 0) == 0) w.add_metadata(key, value);
    }
    w.add_metadata(a + ".context_length", u32(s.n_ctx));
    w.add_metadata(a + ".embedding_length", u32(s.d_model));
    w.add_metadata(a + ".block_count", u32(n_layers));
    w.add_metadata(a + ".attention.head_count", u32(s.n_heads));
    w.add_metadata(a + ".attention.head_count_kv", u32(s.n_kv_heads));
    w.add_metadata(a + ".attention.key_length", u32(s.head_dim));
    w.add_metadata(a + ".attention.value_length", u32(s.head_dim));
    w.add_metadata(a + ".attention.layer_norm_rms_epsilon", f32(s.rms_eps));
    w.add_metadata(a + ".rope.freq_base", f32(s.rope_base));
    w.add_metadata(a + ".expert_count", u32(s.n_experts));
    w.add_metadata(a + ".expert_used_count", u32(s.n_experts_used));
    // llama.cpp reads the expert width of `llama` (Mixtral) from feed_forward_length.
    w.add_metadata(a + ".feed_forward_length", u32(s.arch == "llama" ? s.d_ff_expert : 4 * s.d_model));
    if (s.arch != "llama") w.add_metadata(a + ".expert_feed_forward_length", u32(s.d_ff_expert));

    const std::vector<SynthTensor> plan = tensor_plan(s, n_layers, n_vocab);
    for (const SynthTensor& t : plan) w.add_tensor(t.name, TensorType::F32, t.shape);

    std::mt19937_64 rng(options.seed);
    w.write(options.output, [&](size_t index, std::span<std::byte> data) {
        const SynthTensor& t = plan[index];
        std::normal_distribution<float> normal(0.0f, t.stddev > 0 ? t.stddev : 1.0f);
        for (size_t i = 0; i + sizeof(float) <= data.size(); i += sizeof(float)) {
            const float v = t.stddev > 0 ? normal(rng) : 1.0f;
            std::memcpy(data.data() + i, &v, sizeof(float));
        }
    });
    return {options.output, static_cast<uint64_t>(std::filesystem::file_size(options.output)), plan.size()};
}

}  // namespace hymoe
