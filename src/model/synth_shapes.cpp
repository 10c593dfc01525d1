// The shapes `hymoe synth` knows, their tensors, and llama.cpp's rules for the stored types.
#include <cmath>

#include <fmt/format.h>

#include "hymoe/error.hpp"
#include "model/quant_mix.hpp"
#include "model/synth_plan.hpp"

namespace hymoe::synth {

namespace {

// Real models: the numbers are those of each model's HF config.json (the `source`):
//   mistralai/Mixtral-8x7B-v0.1: 32 layers, hidden 4096, 32 heads / 8 kv (head_dim 128),
//     8 experts top-2, intermediate 14336, vocab 32000, 32768 positions, rope_theta 1e6, eps 1e-5.
//   Qwen/Qwen3-30B-A3B: 48 layers, hidden 2048, 32 heads / 4 kv, head_dim 128, 128 experts top-8,
//     moe_intermediate 768 (intermediate 6144), vocab 151936, 40960 positions, rope 1e6,
//     eps 1e-6, norm_topk_prob true, per-head q/k norm.
//   allenai/OLMoE-1B-7B-0924: 16 layers, hidden 2048, 16 heads / 16 kv, 64 experts top-8,
//     intermediate 1024, vocab 50304, 4096 positions, rope 1e4, eps 1e-5, norm_topk_prob false,
//     q/k norm over the whole projection.
//   deepseek-ai/DeepSeek-V2-Lite: 27 layers, hidden 2048, 16 heads, MLA (q_lora none,
//     kv_lora 512, qk_nope 128, qk_rope 64, v 128), first_k_dense_replace 1 (intermediate
//     10944), 64 routed experts top-6 (moe_intermediate 1408) + 2 shared, softmax greedy,
//     no renorm, routed_scaling_factor 1, vocab 102400, 163840 positions, rope 1e4, eps 1e-6,
//     YaRN factor 40 on 4096 (mscale_all_dim 0.707: yarn_log_multiplier 0.0707).
//   openai/gpt-oss-20b: 24 layers, hidden 2880, 64 heads / 8 kv, head_dim 64, 32 experts top-4,
//     intermediate 2880, vocab 201088, 131072 positions, rope 150000 with YaRN factor 32 on
//     4096, sliding window 128 on every other layer, attention sinks, biases, eps 1e-5.
// clang-format off
constexpr Shape kShapes[] = {
    {.name = "tiny-qwen3moe", .arch = "qwen3moe", .source = "(tiny test shape)",
     .n_layers = 2, .d_model = 64, .n_heads = 4, .n_kv_heads = 2, .head_dim = 32,
     .n_experts = 8, .n_experts_used = 2, .d_ff_expert = 32, .d_ff_dense = 256, .n_dense_layers = 0,
     .n_shared_experts = 0, .n_vocab = 1024, .n_ctx = 4096, .rope_base = 1e6f, .rms_eps = 1e-6f,
     .qk_norm = QkNormKind::PerHead, .default_vocab = "none"},
    {.name = "tiny-mixtral", .arch = "llama", .source = "(tiny test shape)",
     .n_layers = 2, .d_model = 64, .n_heads = 4, .n_kv_heads = 2, .head_dim = 16,
     .n_experts = 8, .n_experts_used = 2, .d_ff_expert = 32, .d_ff_dense = 32, .n_dense_layers = 0,
     .n_shared_experts = 0, .n_vocab = 1024, .n_ctx = 4096, .rope_base = 1e6f, .rms_eps = 1e-5f,
     .default_vocab = "none"},
    // Tiny shapes of the other architectures, with the real ones' expert counts where cheap and
    // rows of 256 so the K-quants apply: fast tests of every code path.
    {.name = "tiny-olmoe", .arch = "olmoe", .source = "(tiny test shape)",
     .n_layers = 2, .d_model = 256, .n_heads = 4, .n_kv_heads = 4, .head_dim = 64,
     .n_experts = 64, .n_experts_used = 8, .d_ff_expert = 256, .d_ff_dense = 256, .n_dense_layers = 0,
     .n_shared_experts = 0, .n_vocab = 1024, .n_ctx = 4096, .rope_base = 1e4f, .rms_eps = 1e-5f,
     .qk_norm = QkNormKind::Full, .default_vocab = "none"},
    {.name = "tiny-deepseek2", .arch = "deepseek2", .source = "(tiny test shape)",
     .n_layers = 3, .d_model = 256, .n_heads = 4, .n_kv_heads = 4, .head_dim = 96,
     .n_experts = 64, .n_experts_used = 6, .d_ff_expert = 256, .d_ff_dense = 512, .n_dense_layers = 1,
     .n_shared_experts = 2, .n_vocab = 1024, .n_ctx = 4096, .rope_base = 1e4f, .rms_eps = 1e-6f,
     .q_lora_rank = 0, .kv_lora_rank = 256, .rope_dim = 32, .nope_dim = 64, .v_head_dim = 64,
     .yarn_factor = 4.0f, .yarn_log_mul = 0.0707f, .yarn_orig_ctx = 1024, .default_vocab = "none"},
    {.name = "tiny-gpt-oss", .arch = "gpt-oss", .source = "(tiny test shape)",
     .n_layers = 2, .d_model = 256, .n_heads = 4, .n_kv_heads = 2, .head_dim = 64,
     .n_experts = 32, .n_experts_used = 4, .d_ff_expert = 256, .d_ff_dense = 256, .n_dense_layers = 0,
     .n_shared_experts = 0, .n_vocab = 1024, .n_ctx = 4096, .rope_base = 150000.0f, .rms_eps = 1e-5f,
     .biases = true, .sliding_window = 8, .yarn_factor = 32.0f, .yarn_orig_ctx = 128, .default_vocab = "none"},
    {.name = "mixtral-8x7b", .arch = "llama", .source = "mistralai/Mixtral-8x7B-v0.1",
     .n_layers = 32, .d_model = 4096, .n_heads = 32, .n_kv_heads = 8, .head_dim = 128,
     .n_experts = 8, .n_experts_used = 2, .d_ff_expert = 14336, .d_ff_dense = 14336, .n_dense_layers = 0,
     .n_shared_experts = 0, .n_vocab = 32000, .n_ctx = 32768, .rope_base = 1e6f, .rms_eps = 1e-5f},
    {.name = "qwen3-30b-a3b", .arch = "qwen3moe", .source = "Qwen/Qwen3-30B-A3B",
     .n_layers = 48, .d_model = 2048, .n_heads = 32, .n_kv_heads = 4, .head_dim = 128,
     .n_experts = 128, .n_experts_used = 8, .d_ff_expert = 768, .d_ff_dense = 6144, .n_dense_layers = 0,
     .n_shared_experts = 0, .n_vocab = 151936, .n_ctx = 40960, .rope_base = 1e6f, .rms_eps = 1e-6f,
     .qk_norm = QkNormKind::PerHead},
    {.name = "olmoe-1b-7b", .arch = "olmoe", .source = "allenai/OLMoE-1B-7B-0924",
     .n_layers = 16, .d_model = 2048, .n_heads = 16, .n_kv_heads = 16, .head_dim = 128,
     .n_experts = 64, .n_experts_used = 8, .d_ff_expert = 1024, .d_ff_dense = 1024, .n_dense_layers = 0,
     .n_shared_experts = 0, .n_vocab = 50304, .n_ctx = 4096, .rope_base = 1e4f, .rms_eps = 1e-5f,
     .qk_norm = QkNormKind::Full},
    {.name = "deepseek-v2-lite", .arch = "deepseek2", .source = "deepseek-ai/DeepSeek-V2-Lite",
     .n_layers = 27, .d_model = 2048, .n_heads = 16, .n_kv_heads = 16, .head_dim = 192,
     .n_experts = 64, .n_experts_used = 6, .d_ff_expert = 1408, .d_ff_dense = 10944, .n_dense_layers = 1,
     .n_shared_experts = 2, .n_vocab = 102400, .n_ctx = 163840, .rope_base = 1e4f, .rms_eps = 1e-6f,
     .q_lora_rank = 0, .kv_lora_rank = 512, .rope_dim = 64, .nope_dim = 128, .v_head_dim = 128,
     .yarn_factor = 40.0f, .yarn_log_mul = 0.0707f, .yarn_orig_ctx = 4096},
    {.name = "gpt-oss-20b", .arch = "gpt-oss", .source = "openai/gpt-oss-20b",
     .n_layers = 24, .d_model = 2880, .n_heads = 64, .n_kv_heads = 8, .head_dim = 64,
     .n_experts = 32, .n_experts_used = 4, .d_ff_expert = 2880, .d_ff_dense = 2880, .n_dense_layers = 0,
     .n_shared_experts = 0, .n_vocab = 201088, .n_ctx = 131072, .rope_base = 150000.0f, .rms_eps = 1e-5f,
     .biases = true, .sliding_window = 128, .yarn_factor = 32.0f, .yarn_orig_ctx = 4096},
};

// The ftypes and their per-tensor rules are llama.cpp's (model/quant_mix.hpp).
constexpr QuantType kQuantTypes[] = {
    {"f32",   "all weights f32",                                   FileType::AllF32},
    {"f16",   "weights f16, norms f32",                            FileType::MostlyF16},
    {"bf16",  "weights bf16, norms f32",                           FileType::MostlyBF16},
    {"q8_0",  "llama.cpp Q8_0",                                    FileType::MostlyQ8_0},
    {"q4_0",  "llama.cpp Q4_0 (output.weight Q6_K)",               FileType::MostlyQ4_0},
    {"q4_k",  "llama.cpp Q4_K_M mix (Q4_K, some Q6_K)",            FileType::MostlyQ4_K_M},
    {"q5_k",  "llama.cpp Q5_K_M mix (Q5_K, some Q6_K)",            FileType::MostlyQ5_K_M},
    {"q6_k",  "llama.cpp Q6_K",                                    FileType::MostlyQ6_K},
    {"mxfp4", "llama.cpp MXFP4_MOE: experts MXFP4, the rest Q8_0", FileType::MostlyMXFP4Moe},
};
// clang-format on

}  // namespace

std::span<const Shape> shapes() {
    return kShapes;
}

const Shape& find_shape(std::string_view name) {
    for (const auto& s : kShapes)
        if (s.name == name) return s;
    std::string known;
    for (const auto& s : kShapes) known += fmt::format("{}{}", known.empty() ? "" : ", ", s.name);
    throw Error(fmt::format("unknown synthetic model shape '{}' (known: {})", name, known));
}

std::span<const QuantType> quant_types() {
    return kQuantTypes;
}

const QuantType& find_quant_type(std::string_view name) {
    for (const auto& q : kQuantTypes)
        if (q.name == name) return q;
    std::string known;
    for (const auto& q : kQuantTypes) known += fmt::format("{}{}", known.empty() ? "" : ", ", q.name);
    throw Error(fmt::format("unknown synth --type '{}' (known: {})", name, known));
}

std::vector<Tensor> tensor_plan(const Shape& s, uint32_t n_layers, int64_t n_vocab, const QuantType& q) {
    const auto d = static_cast<int64_t>(s.d_model);
    const auto H = static_cast<int64_t>(s.n_heads), KV = static_cast<int64_t>(s.n_kv_heads);
    const auto hd = static_cast<int64_t>(s.head_dim);
    const auto E = static_cast<int64_t>(s.n_experts);
    const auto ff = static_cast<int64_t>(s.d_ff_expert);
    // Weights ~ N(0, gain^2/fan_in) keep activations near unit scale. The residual branches
    // (attn_output, ffn_down*) are scaled down with depth so the residual stream stays dominated
    // by the embedding and the routing skew holds in every layer (docs/synthetic-models.md).
    const float depth = 1.0f / std::sqrt(std::max(1.0f, static_cast<float>(s.n_layers) / 4.0f));
    auto gain = [](int64_t fan_in, float g = 1.0f) { return g / std::sqrt(static_cast<float>(fan_in)); };

    std::vector<Tensor> plan;
    auto add = [&](std::string name, std::vector<int64_t> shape, Init init, float stddev, int layer) {
        plan.push_back({std::move(name), std::move(shape), TensorType::F32, init, stddev, layer});
    };
    add("token_embd.weight", {n_vocab, d}, Init::Embedding, 1.0f, -1);
    for (uint32_t l = 0; l < n_layers; ++l) {
        const int il = static_cast<int>(l);
        auto blk = [l](std::string_view t, std::string_view suffix = "weight") {
            return fmt::format("blk.{}.{}.{}", l, t, suffix);
        };
        add(blk("attn_norm"), {d}, Init::Ones, 0, il);
        int64_t attn_out_width = H * hd;
        if (s.kv_lora_rank > 0) {
            const auto r = static_cast<int64_t>(s.kv_lora_rank), rope = static_cast<int64_t>(s.rope_dim);
            const auto nope = static_cast<int64_t>(s.nope_dim), dv = static_cast<int64_t>(s.v_head_dim);
            add(blk("attn_q"), {H * (nope + rope), d}, Init::Normal, gain(d), il);
            add(blk("attn_kv_a_mqa"), {r + rope, d}, Init::Normal, gain(d), il);  // [kv_lora + rope, d_model]
            add(blk("attn_kv_a_norm"), {r}, Init::Ones, 0, il);
            add(blk("attn_k_b"), {H, r, nope}, Init::Normal, gain(nope), il);  // [n_heads, kv_lora, nope]
            add(blk("attn_v_b"), {H, dv, r}, Init::Normal, gain(r), il);       // [n_heads, v, kv_lora]
            attn_out_width = H * dv;
        } else {
            add(blk("attn_q"), {H * hd, d}, Init::Normal, gain(d), il);
            plan.back().locality = true;
            if (s.biases) add(blk("attn_q", "bias"), {H * hd}, Init::Normal, 0.1f, il);
            add(blk("attn_k"), {KV * hd, d}, Init::Normal, gain(d), il);
            plan.back().locality = true;
            if (s.biases) add(blk("attn_k", "bias"), {KV * hd}, Init::Normal, 0.1f, il);
            add(blk("attn_v"), {KV * hd, d}, Init::Normal, gain(d), il);
            if (s.biases) add(blk("attn_v", "bias"), {KV * hd}, Init::Normal, 0.1f, il);
        }
        add(blk("attn_output"), {d, attn_out_width}, Init::Normal, gain(attn_out_width, depth), il);
        if (s.biases) add(blk("attn_output", "bias"), {d}, Init::Normal, 0.1f * depth, il);
        switch (s.qk_norm) {
            case QkNormKind::None: break;
            case QkNormKind::PerHead:
                add(blk("attn_q_norm"), {hd}, Init::Ones, 0, il);
                add(blk("attn_k_norm"), {hd}, Init::Ones, 0, il);
                break;
            case QkNormKind::Full:
                add(blk("attn_q_norm"), {H * hd}, Init::Ones, 0, il);
                add(blk("attn_k_norm"), {KV * hd}, Init::Ones, 0, il);
                break;
        }
        if (s.biases) add(blk("attn_sinks"), {H}, Init::Normal, 1.0f, il);
        add(blk(s.biases ? "post_attention_norm" : "ffn_norm"), {d}, Init::Ones, 0, il);
        if (l < s.n_dense_layers) {
            const auto fd = static_cast<int64_t>(s.d_ff_dense);
            add(blk("ffn_gate"), {fd, d}, Init::Normal, gain(d), il);
            add(blk("ffn_up"), {fd, d}, Init::Normal, gain(d), il);
            add(blk("ffn_down"), {d, fd}, Init::Normal, gain(fd, depth), il);
            continue;
        }
        add(blk("ffn_gate_inp"), {E, d}, Init::Router, gain(d, 2.0f), il);  // [n_experts, d_model]
        if (s.biases) add(blk("ffn_gate_inp", "bias"), {E}, Init::Normal, 0.1f, il);
        add(blk("ffn_gate_exps"), {E, ff, d}, Init::Normal, gain(d), il);          // [n_experts, d_ff_expert, d_model]
        add(blk("ffn_up_exps"), {E, ff, d}, Init::Normal, gain(d), il);            // [n_experts, d_ff_expert, d_model]
        add(blk("ffn_down_exps"), {E, d, ff}, Init::Normal, gain(ff, depth), il);  // [n_experts, d_model, d_ff_expert]
        if (s.biases) {
            add(blk("ffn_gate_exps", "bias"), {E, ff}, Init::Normal, 0.1f, il);
            add(blk("ffn_up_exps", "bias"), {E, ff}, Init::Normal, 0.1f, il);
            add(blk("ffn_down_exps", "bias"), {E, d}, Init::Normal, 0.1f * depth, il);
        }
        if (s.n_shared_experts > 0) {
            const int64_t fs = ff * static_cast<int64_t>(s.n_shared_experts);
            add(blk("ffn_gate_shexp"), {fs, d}, Init::Normal, gain(d), il);  // [d_ff_shared, d_model]
            add(blk("ffn_up_shexp"), {fs, d}, Init::Normal, gain(d), il);
            add(blk("ffn_down_shexp"), {d, fs}, Init::Normal, gain(fs, depth), il);
        }
    }
    add("output_norm.weight", {d}, Init::Ones, 0, -1);
    add("output.weight", {n_vocab, d}, Init::Normal, gain(d, 4.0f), -1);  // logits with std ~4

    // The stored types: llama-quantize's rules applied to an all-f32 model.
    std::vector<MixTensor> mix;
    for (const Tensor& t : plan) mix.push_back({t.name, t.shape, TensorType::F32});
    const std::vector<TensorType> types =
        plan_tensor_types(q.ftype, {static_cast<int64_t>(n_layers), static_cast<int64_t>(s.n_experts)}, mix);
    for (size_t i = 0; i < plan.size(); ++i) plan[i].type = types[i];
    return plan;
}

void add_hparams(GgufWriter& w, const Shape& s, uint32_t n_layers, int64_t n_vocab) {
    const std::string a(s.arch);
    auto u32 = [&](std::string_view key, uint64_t v) {
        w.add_metadata(fmt::format("{}.{}", a, key), MetaValue::unsigned_int(MetaType::U32, v));
    };
    auto f32 = [&](std::string_view key, double v) {
        w.add_metadata(fmt::format("{}.{}", a, key), MetaValue::floating(MetaType::F32, v));
    };
    u32("vocab_size", static_cast<uint64_t>(n_vocab));
    u32("context_length", s.n_ctx);
    u32("embedding_length", s.d_model);
    u32("block_count", n_layers);
    u32("attention.head_count", s.n_heads);
    f32("attention.layer_norm_rms_epsilon", s.rms_eps);
    f32("rope.freq_base", s.rope_base);
    u32("expert_count", s.n_experts);
    u32("expert_used_count", s.n_experts_used);
    // llama (Mixtral) and olmoe read the expert width from feed_forward_length (llama.cpp).
    u32("feed_forward_length", s.d_ff_dense);
    if (s.arch != "llama" && s.arch != "olmoe") u32("expert_feed_forward_length", s.d_ff_expert);
    if (s.kv_lora_rank > 0) {
        // llama.cpp's converter stores MLA as MQA over the latent.
        u32("attention.head_count_kv", 1);
        u32("attention.key_length", s.kv_lora_rank + s.rope_dim);
        u32("attention.value_length", s.kv_lora_rank);
        u32("attention.key_length_mla", s.nope_dim + s.rope_dim);
        u32("attention.value_length_mla", s.v_head_dim);
        if (s.q_lora_rank > 0) u32("attention.q_lora_rank", s.q_lora_rank);
        u32("attention.kv_lora_rank", s.kv_lora_rank);
        u32("rope.dimension_count", s.rope_dim);
        u32("leading_dense_block_count", s.n_dense_layers);
        u32("expert_shared_count", s.n_shared_experts);
        f32("expert_weights_scale", 1.0);
        w.add_metadata(a + ".expert_weights_norm", MetaValue::boolean(false));
        u32("expert_gating_func", 1);  // softmax
    } else {
        u32("attention.head_count_kv", s.n_kv_heads);
        u32("attention.key_length", s.head_dim);
        u32("attention.value_length", s.head_dim);
        if (s.arch == "llama") u32("rope.dimension_count", s.head_dim);
    }
    if (s.sliding_window > 0) u32("attention.sliding_window", s.sliding_window);
    if (s.yarn_factor > 0) {
        w.add_metadata(a + ".rope.scaling.type", MetaValue::string("yarn"));
        f32("rope.scaling.factor", s.yarn_factor);
        u32("rope.scaling.original_context_length", s.yarn_orig_ctx);
        if (s.yarn_log_mul > 0) f32("rope.scaling.yarn_log_multiplier", s.yarn_log_mul);
    }
}

}  // namespace hymoe::synth
