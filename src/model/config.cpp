#include "model/config.hpp"

#include <cmath>
#include <initializer_list>
#include <numbers>

#include <fmt/format.h>

#include "format/model_file.hpp"
#include "hymoe/error.hpp"

namespace hymoe {

namespace {

// Typed lookups that name the file and key in their errors.
class ConfigReader {
public:
    ConfigReader(const ModelFile& file, std::string prefix)
        : file_(file), meta_(file.metadata()), prefix_(std::move(prefix)) {}

    std::optional<int64_t> opt_int(std::initializer_list<std::string_view> keys) const {
        return first_of<int64_t>(keys, "an integer", [](const MetaValue& v) { return v.as_i64(); });
    }
    int64_t req_int(std::string_view key) const {
        auto v = opt_int({key});
        if (!v) throw Error(fmt::format("{}: missing metadata key '{}{}'", file_.path(), prefix_, key));
        return *v;
    }
    std::optional<double> opt_float(std::initializer_list<std::string_view> keys) const {
        return first_of<double>(keys, "a number", [](const MetaValue& v) { return v.as_f64(); });
    }
    std::optional<bool> opt_bool(std::initializer_list<std::string_view> keys) const {
        return first_of<bool>(keys, "a boolean", [](const MetaValue& v) { return v.as_bool(); });
    }
    std::optional<std::string> opt_string(std::initializer_list<std::string_view> keys) const {
        for (std::string_view k : keys) {
            if (auto s = meta_.get_string(prefix_ + std::string(k))) return std::string(*s);
        }
        return std::nullopt;
    }
    const MetaArray* opt_array(std::string_view key) const { return meta_.get_array(prefix_ + std::string(key)); }
    [[noreturn]] void fail(const std::string& what) const { throw Error(fmt::format("{}: {}", file_.path(), what)); }

private:
    // The first of `keys` present, converted by `get`; present but of the wrong kind is an error.
    template <class T, class Get>
    std::optional<T> first_of(std::initializer_list<std::string_view> keys, std::string_view kind,
                              const Get& get) const {
        for (std::string_view k : keys) {
            const std::string key = prefix_ + std::string(k);
            if (const MetaValue* v = meta_.find(key)) {
                if (auto value = get(*v)) return static_cast<T>(*value);
                throw Error(
                    fmt::format("{}: metadata key '{}' is {}, expected {}", file_.path(), key, v->to_display(), kind));
            }
        }
        return std::nullopt;
    }

    const ModelFile& file_;
    const Metadata& meta_;
    std::string prefix_;
};

void require_positive(const ConfigReader& r, std::string_view what, int64_t value) {
    if (value <= 0) r.fail(fmt::format("{} is {}, must be positive", what, value));
}

int64_t vocab_size_of(const ModelFile& file) {
    if (const MetaArray* tokens = file.metadata().get_array("tokenizer.ggml.tokens"))
        return static_cast<int64_t>(tokens->items.size());
    if (const TensorView* embd = file.find("token_embd.weight"); embd && !embd->shape.empty())
        return embd->shape.front();
    return 0;
}

// ---- GGUF: llama.cpp's keys and per-arch conventions ----------------------------------------

ModelConfig config_from_gguf(const ModelFile& file) {
    const auto arch_name = file.metadata().get_string("general.architecture");
    if (!arch_name) throw Error(fmt::format("{}: missing metadata key 'general.architecture'", file.path()));
    const auto arch = arch_from_gguf(*arch_name);
    if (!arch) {
        throw Error(fmt::format("{}: architecture '{}' is not supported; supported: {}", file.path(), *arch_name,
                                supported_arch_list()));
    }
    const ConfigReader r(file, std::string(*arch_name) + ".");
    ModelConfig c;
    c.arch = *arch;
    c.source = file.path();
    c.n_vocab = r.opt_int({"vocab_size"}).value_or(vocab_size_of(file));
    c.d_model = r.req_int("embedding_length");
    c.n_layers = r.req_int("block_count");
    c.n_ctx_train = r.opt_int({"context_length"}).value_or(4096);
    c.n_heads = r.req_int("attention.head_count");
    require_positive(r, "attention.head_count", c.n_heads);
    c.n_kv_heads = r.opt_int({"attention.head_count_kv"}).value_or(c.n_heads);
    c.head_dim = r.opt_int({"attention.key_length"}).value_or(c.d_model / c.n_heads);
    c.head_dim_v = r.opt_int({"attention.value_length"}).value_or(c.head_dim);
    c.norm_eps = static_cast<float>(r.opt_float({"attention.layer_norm_rms_epsilon"}).value_or(1e-5));
    c.n_experts = r.opt_int({"expert_count"}).value_or(0);
    c.n_experts_used = r.opt_int({"expert_used_count"}).value_or(0);
    c.d_ff_dense = r.opt_int({"feed_forward_length"}).value_or(0);
    c.d_ff_expert = r.opt_int({"expert_feed_forward_length"}).value_or(c.d_ff_dense);
    c.sliding_window = r.opt_int({"attention.sliding_window"}).value_or(0);
    c.layer_moe.assign(static_cast<size_t>(std::max<int64_t>(c.n_layers, 0)), c.n_experts > 0 ? 1 : 0);
    c.layer_sliding.assign(c.layer_moe.size(), 0);

    c.rope.base = static_cast<float>(r.opt_float({"rope.freq_base"}).value_or(10000.0));
    c.rope.style = RopeStyle::Neox;
    // YaRN/linear scaling. ggml multiplies cos/sin by 1 + 0.1 ln(factor) itself under YaRN;
    // `attn_factor` (llama.cpp's yarn_attn_factor) scales that.
    float attn_factor = 1.0f;
    float yarn_factor = 1.0f;
    const std::string scaling = r.opt_string({"rope.scaling.type"}).value_or("none");
    if (scaling == "yarn" || scaling == "linear") {
        yarn_factor = static_cast<float>(r.opt_float({"rope.scaling.factor"}).value_or(1.0));
        if (!(yarn_factor >= 1.0f)) r.fail(fmt::format("rope.scaling.factor is {}, must be >= 1", yarn_factor));
        c.rope.freq_scale = 1.0f / yarn_factor;
    } else if (scaling != "none") {
        r.fail(fmt::format("rope.scaling.type '{}' is not supported (none, linear, yarn)", scaling));
    }

    switch (c.arch) {
        case Arch::Mixtral:
            c.rope.style = RopeStyle::Interleaved;  // the converter permuted q/k rows for it
            c.d_ff_expert = c.d_ff_dense;           // llama.cpp reads the expert width from here
            c.norm_topk = true;
            if (c.sliding_window > 0) c.layer_sliding.assign(c.layer_sliding.size(), 1);
            break;
        case Arch::Qwen2Moe:
            c.attn_qkv_bias = true;
            c.d_ff_shared = r.opt_int({"expert_shared_feed_forward_length"}).value_or(0);
            c.shared_expert_gate = c.d_ff_shared > 0;
            break;
        case Arch::Qwen3Moe:
            c.qk_norm = QkNorm::PerHead;
            c.norm_topk = true;
            break;
        case Arch::Olmoe:
            c.qk_norm = QkNorm::Full;
            c.d_ff_expert = c.d_ff_dense;  // as llama.cpp: expert_feed_forward_length is ignored
            break;
        case Arch::Deepseek2: {
            c.rope.style = RopeStyle::Interleaved;
            c.q_lora_rank = r.opt_int({"attention.q_lora_rank"}).value_or(0);
            c.kv_lora_rank = r.req_int("attention.kv_lora_rank");
            c.head_dim_rope = r.req_int("rope.dimension_count");
            // Newer files store MLA as MQA over the latent: key_length = kv_lora + rope, and the
            // per-head sizes in *_mla keys. Older files have the per-head sizes in key_length.
            if (auto k_mla = r.opt_int({"attention.key_length_mla"})) {
                c.head_dim = *k_mla;
                c.head_dim_v = r.req_int("attention.value_length_mla");
            }
            c.head_dim_nope = c.head_dim - c.head_dim_rope;
            c.n_kv_heads = c.n_heads;
            const int64_t n_dense = r.opt_int({"leading_dense_block_count"}).value_or(0);
            for (int64_t il = 0; il < std::min(n_dense, c.n_layers); ++il) c.layer_moe[static_cast<size_t>(il)] = 0;
            c.d_ff_shared = c.d_ff_expert * r.opt_int({"expert_shared_count"}).value_or(0);
            const int64_t gating = r.opt_int({"expert_gating_func"}).value_or(1);
            if (gating != 1 && gating != 2)
                r.fail(fmt::format("expert_gating_func {} is not supported (1 softmax, 2 sigmoid)", gating));
            c.gating = gating == 2 ? Gating::Sigmoid : Gating::Softmax;
            c.expert_selection_bias = file.find("blk." + std::to_string(n_dense) + ".exp_probs_b.bias") != nullptr;
            c.norm_topk = r.opt_bool({"expert_weights_norm"}).value_or(false);
            const double scale = r.opt_float({"expert_weights_scale"}).value_or(1.0);
            c.routed_scale = scale == 0.0 ? 1.0f : static_cast<float>(scale);
            c.n_groups = r.opt_int({"expert_group_count"}).value_or(1);
            c.n_groups_used = r.opt_int({"expert_group_used_count"}).value_or(c.n_groups);
            c.group_score = GroupScore::TopTwoSum;  // what llama.cpp does for every deepseek2 file
            if (scaling == "yarn") {
                // llama.cpp: attn_factor cancels ggml's internal mscale; the softmax scale
                // takes mscale^2 with mscale = 1 + yarn_log_multiplier * ln(factor).
                const double log_mul = r.opt_float({"rope.scaling.yarn_log_multiplier"}).value_or(0.1);
                const double mscale = 1.0 + log_mul * std::log(yarn_factor);
                c.kq_scale = static_cast<float>(mscale * mscale / std::sqrt(static_cast<double>(c.head_dim)));
                attn_factor = 1.0f / (1.0f + 0.1f * std::log(yarn_factor));
            }
            break;
        }
        case Arch::GptOss:
            c.attn_qkv_bias = true;
            c.attn_out_bias = true;
            c.attn_sinks = true;
            c.gating = Gating::SoftmaxOverTopK;
            c.router_bias = true;
            c.expert_bias = true;
            c.activation = FfnActivation::SwiGluOai;
            // No pattern key in real files: llama.cpp alternates, window on even layers.
            for (size_t il = 0; il < c.layer_sliding.size(); ++il) c.layer_sliding[il] = il % 2 == 0 ? 1 : 0;
            break;
    }

    c.rope.n_dims = r.opt_int({"rope.dimension_count"}).value_or(c.is_mla() ? c.head_dim_rope : c.head_dim);
    if (scaling == "yarn") {
        c.rope.ext_factor = 1.0f;
        c.rope.mscale = attn_factor * (1.0f + 0.1f * std::log(yarn_factor));
        const int64_t n_ctx_orig = r.opt_int({"rope.scaling.original_context_length"}).value_or(c.n_ctx_train);
        const auto beta_fast = static_cast<float>(r.opt_float({"rope.scaling.yarn_beta_fast"}).value_or(32.0));
        const auto beta_slow = static_cast<float>(r.opt_float({"rope.scaling.yarn_beta_slow"}).value_or(1.0));
        yarn_correction_range(c.rope, n_ctx_orig, beta_fast, beta_slow, true);
    }
    if (c.kq_scale == 1.0f) c.kq_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    return c;
}

// ---- HF config.json -------------------------------------------------------------------------

ModelConfig config_from_hf(const ModelFile& file) {
    const Metadata& meta = file.metadata();
    std::string cls;
    if (const MetaArray* archs = meta.get_array("architectures"); archs && !archs->items.empty()) {
        if (const std::string* s = archs->items.front().as_string()) cls = *s;
    }
    const std::string model_type(meta.get_string("model_type").value_or(""));
    auto arch = arch_from_hf(cls);
    if (!arch) arch = arch_from_hf(model_type);
    if (!arch) {
        if (cls.empty() && model_type.empty())
            throw Error(
                fmt::format("{}: config.json names no architecture ('architectures' or 'model_type')", file.path()));
        throw Error(fmt::format("{}: architecture '{}' is not supported; supported: {}", file.path(),
                                cls.empty() ? model_type : cls, supported_arch_list()));
    }
    const ConfigReader r(file, "");
    ModelConfig c;
    c.arch = *arch;
    c.source = file.path();
    c.n_vocab = r.req_int("vocab_size");
    c.d_model = r.req_int("hidden_size");
    c.n_layers = r.req_int("num_hidden_layers");
    c.n_ctx_train = r.opt_int({"max_position_embeddings"}).value_or(4096);
    c.n_heads = r.req_int("num_attention_heads");
    require_positive(r, "num_attention_heads", c.n_heads);
    c.n_kv_heads = r.opt_int({"num_key_value_heads"}).value_or(c.n_heads);
    c.head_dim = r.opt_int({"head_dim"}).value_or(c.d_model / c.n_heads);
    c.head_dim_v = c.head_dim;
    c.norm_eps = static_cast<float>(r.opt_float({"rms_norm_eps"}).value_or(1e-6));
    c.tied_embeddings = r.opt_bool({"tie_word_embeddings"}).value_or(false);
    c.n_experts = r.opt_int({"num_local_experts", "num_experts", "n_routed_experts"}).value_or(0);
    c.n_experts_used = r.opt_int({"num_experts_per_tok", "experts_per_token"}).value_or(0);
    c.d_ff_dense = r.opt_int({"intermediate_size"}).value_or(0);
    c.d_ff_expert = r.opt_int({"moe_intermediate_size"}).value_or(c.d_ff_dense);
    c.norm_topk = r.opt_bool({"norm_topk_prob"}).value_or(false);
    c.attn_qkv_bias = r.opt_bool({"attention_bias"}).value_or(false);
    c.layer_moe.assign(static_cast<size_t>(std::max<int64_t>(c.n_layers, 0)), c.n_experts > 0 ? 1 : 0);
    c.layer_sliding.assign(c.layer_moe.size(), 0);
    c.rope.style = RopeStyle::Neox;  // HF's rotate_half
    c.rope.base = static_cast<float>(r.opt_float({"rope_parameters.rope_theta", "rope_theta"}).value_or(10000.0));

    // Qwen's mixed layers: mlp_only_layers are dense; otherwise every decoder_sparse_step-th is MoE.
    if (c.arch == Arch::Qwen2Moe || c.arch == Arch::Qwen3Moe) {
        const int64_t step = r.opt_int({"decoder_sparse_step"}).value_or(1);
        for (int64_t il = 0; il < c.n_layers; ++il)
            c.layer_moe[static_cast<size_t>(il)] = (step > 0 && (il + 1) % step == 0) ? 1 : 0;
        if (const MetaArray* dense = r.opt_array("mlp_only_layers")) {
            for (const MetaValue& v : dense->items) {
                const auto il = v.as_i64();
                if (!il || *il < 0 || *il >= c.n_layers) r.fail(fmt::format("mlp_only_layers has {}", v.to_display()));
                c.layer_moe[static_cast<size_t>(*il)] = 0;
            }
        }
    }

    switch (c.arch) {
        case Arch::Mixtral:
            c.norm_topk = true;  // Mixtral always renormalizes the top-k softmax weights
            c.d_ff_expert = c.d_ff_dense;
            break;
        case Arch::Qwen2Moe:
            c.attn_qkv_bias = true;  // hard-wired in Qwen2MoeAttention
            c.d_ff_shared = r.opt_int({"shared_expert_intermediate_size"}).value_or(0);
            c.shared_expert_gate = c.d_ff_shared > 0;
            break;
        case Arch::Qwen3Moe: c.qk_norm = QkNorm::PerHead; break;
        case Arch::Olmoe:
            c.qk_norm = QkNorm::Full;
            c.d_ff_expert = c.d_ff_dense;
            if (r.opt_float({"clip_qkv"})) r.fail("OLMoE clip_qkv is not supported");
            break;
        case Arch::Deepseek2: {
            c.q_lora_rank = r.opt_int({"q_lora_rank"}).value_or(0);
            c.kv_lora_rank = r.req_int("kv_lora_rank");
            c.head_dim_nope = r.req_int("qk_nope_head_dim");
            c.head_dim_rope = r.req_int("qk_rope_head_dim");
            c.head_dim = c.head_dim_nope + c.head_dim_rope;
            c.head_dim_v = r.req_int("v_head_dim");
            c.n_kv_heads = c.n_heads;
            // DeepSeek rotates interleaved pairs (V2's complex form; V3's rope_interleave).
            c.rope.style = r.opt_bool({"rope_interleave"}).value_or(true) ? RopeStyle::Interleaved : RopeStyle::Neox;
            const int64_t n_dense = r.opt_int({"first_k_dense_replace"}).value_or(0);
            const int64_t freq = r.opt_int({"moe_layer_freq"}).value_or(1);
            for (int64_t il = 0; il < c.n_layers; ++il)
                c.layer_moe[static_cast<size_t>(il)] = (il >= n_dense && freq > 0 && il % freq == 0) ? 1 : 0;
            c.d_ff_shared = c.d_ff_expert * r.opt_int({"n_shared_experts"}).value_or(0);
            // V3 (`noaux_tc`): sigmoid scores, a correction bias for selection, groups scored by
            // their top-2 sum, optional renorm. V2: softmax, plain or group-max top-k, and never
            // a renorm whatever norm_topk_prob says (DeepseekV2Moe ignores it).
            const bool v3 = cls == "DeepseekV3ForCausalLM" || model_type == "deepseek_v3";
            const std::string scoring = r.opt_string({"scoring_func"}).value_or(v3 ? "sigmoid" : "softmax");
            if (scoring != "softmax" && scoring != "sigmoid")
                r.fail(fmt::format("scoring_func '{}' is not supported (softmax, sigmoid)", scoring));
            c.gating = scoring == "sigmoid" ? Gating::Sigmoid : Gating::Softmax;
            const std::string method = r.opt_string({"topk_method"}).value_or(v3 ? "noaux_tc" : "greedy");
            if (method != "greedy" && method != "group_limited_greedy" && method != "noaux_tc")
                r.fail(
                    fmt::format("topk_method '{}' is not supported (greedy, group_limited_greedy, noaux_tc)", method));
            c.expert_selection_bias = method == "noaux_tc";
            c.n_groups = method == "greedy" ? 1 : r.opt_int({"n_group"}).value_or(1);
            c.n_groups_used = method == "greedy" ? 1 : r.opt_int({"topk_group"}).value_or(c.n_groups);
            c.group_score = method == "group_limited_greedy" ? GroupScore::Max : GroupScore::TopTwoSum;
            if (!v3) c.norm_topk = false;
            c.routed_scale = static_cast<float>(r.opt_float({"routed_scaling_factor"}).value_or(1.0));
            break;
        }
        case Arch::GptOss: {
            c.attn_qkv_bias = true;
            c.attn_out_bias = true;
            c.attn_sinks = true;
            c.gating = Gating::SoftmaxOverTopK;
            c.router_bias = true;
            c.expert_bias = true;
            c.activation = FfnActivation::SwiGluOai;
            c.swiglu_limit = static_cast<float>(r.opt_float({"swiglu_limit"}).value_or(7.0));
            c.d_ff_expert = c.d_ff_dense;
            break;
        }
    }

    // Sliding-window layers: `layer_types` names them; without it the window applies everywhere.
    c.sliding_window = r.opt_int({"sliding_window"}).value_or(0);
    const bool use_window = r.opt_bool({"use_sliding_window"}).value_or(true);
    if (c.sliding_window > 0 && use_window) {
        if (const MetaArray* types = r.opt_array("layer_types")) {
            if (static_cast<int64_t>(types->items.size()) != c.n_layers)
                r.fail(fmt::format("layer_types has {} entries for {} layers", types->items.size(), c.n_layers));
            for (size_t il = 0; il < types->items.size(); ++il) {
                const std::string* t = types->items[il].as_string();
                c.layer_sliding[il] = t && *t == "sliding_attention" ? 1 : 0;
            }
        } else {
            c.layer_sliding.assign(c.layer_sliding.size(), 1);
        }
    } else {
        c.sliding_window = 0;
    }

    // RoPE scaling: transformers 5 keeps it in rope_parameters, 4 in rope_scaling.
    const std::string rope_type = r.opt_string({"rope_parameters.rope_type", "rope_parameters.type",
                                                "rope_scaling.rope_type", "rope_scaling.type"})
                                      .value_or("default");
    auto rope_param = [&](std::string_view name) {
        const std::string a = "rope_parameters." + std::string(name), b = "rope_scaling." + std::string(name);
        return r.opt_float({a, b});
    };
    c.rope.n_dims = c.is_mla() ? c.head_dim_rope : c.head_dim;
    if (auto partial = r.opt_float({"partial_rotary_factor"}))
        c.rope.n_dims = static_cast<int64_t>(static_cast<double>(c.head_dim) * *partial);
    c.kq_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    if (rope_type == "yarn") {
        const double factor = rope_param("factor").value_or(1.0);
        if (!(factor >= 1.0)) r.fail(fmt::format("rope factor is {}, must be >= 1", factor));
        const auto n_ctx_orig = static_cast<int64_t>(
            rope_param("original_max_position_embeddings").value_or(static_cast<double>(c.n_ctx_train)));
        const auto get_mscale = [](double scale, double m) {
            return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0;
        };
        const auto mscale = rope_param("mscale");
        const auto mscale_all_dim = rope_param("mscale_all_dim");
        double attention_factor = 0;
        if (auto af = rope_param("attention_factor")) {
            attention_factor = *af;
        } else if (mscale && mscale_all_dim) {
            attention_factor = get_mscale(factor, *mscale) / get_mscale(factor, *mscale_all_dim);
        } else {
            attention_factor = get_mscale(factor, 1.0);
        }
        c.rope.freq_scale = static_cast<float>(1.0 / factor);
        c.rope.ext_factor = 1.0f;
        c.rope.mscale = static_cast<float>(attention_factor);
        const bool truncate = r.opt_bool({"rope_parameters.truncate", "rope_scaling.truncate"}).value_or(true);
        yarn_correction_range(c.rope, n_ctx_orig, static_cast<float>(rope_param("beta_fast").value_or(32.0)),
                              static_cast<float>(rope_param("beta_slow").value_or(1.0)), truncate);
        if (c.arch == Arch::Deepseek2 && mscale_all_dim && *mscale_all_dim != 0.0) {
            const double m = get_mscale(factor, *mscale_all_dim);
            c.kq_scale = static_cast<float>(m * m / std::sqrt(static_cast<double>(c.head_dim)));
        }
    } else if (rope_type == "linear") {
        c.rope.freq_scale = static_cast<float>(1.0 / rope_param("factor").value_or(1.0));
    } else if (rope_type != "default") {
        r.fail(fmt::format("rope type '{}' is not supported (default, linear, yarn)", rope_type));
    }
    return c;
}

void check_config(const ModelConfig& c) {
    const auto fail = [&](const std::string& what) { throw Error(fmt::format("{}: {}", c.source, what)); };
    const auto positive = [&](std::string_view name, int64_t v) {
        if (v <= 0) fail(fmt::format("{} is {}, must be positive", name, v));
    };
    positive("vocabulary size", c.n_vocab);
    positive("model width", c.d_model);
    positive("layer count", c.n_layers);
    positive("kv head count", c.n_kv_heads);
    positive("head_dim", c.head_dim);
    positive("v head_dim", c.head_dim_v);
    if (c.n_heads % c.n_kv_heads != 0)
        fail(fmt::format("{} heads do not divide into {} kv heads", c.n_heads, c.n_kv_heads));
    if (c.rope.n_dims <= 0 || c.rope.n_dims % 2 != 0 || c.rope.n_dims > (c.is_mla() ? c.head_dim_rope : c.head_dim))
        fail(fmt::format("rope dimension count {} is invalid for head_dim {}", c.rope.n_dims, c.head_dim));
    if (c.is_mla() && (c.head_dim_nope <= 0 || c.head_dim_rope <= 0))
        fail(fmt::format("MLA head dims nope {} / rope {} must be positive", c.head_dim_nope, c.head_dim_rope));
    bool any_moe = false;
    for (uint8_t m : c.layer_moe) any_moe = any_moe || m != 0;
    if (any_moe) {
        positive("expert count", c.n_experts);
        positive("expert FFN width", c.d_ff_expert);
        if (c.n_experts_used <= 0 || c.n_experts_used > c.n_experts)
            fail(fmt::format("experts used per token is {}, must be in 1..{}", c.n_experts_used, c.n_experts));
        if (c.n_groups < 1 || c.n_experts % c.n_groups != 0 || c.n_groups_used < 1 || c.n_groups_used > c.n_groups)
            fail(fmt::format("expert groups {} (used {}) do not fit {} experts", c.n_groups, c.n_groups_used,
                             c.n_experts));
        if (c.n_groups > 1 && c.n_groups_used * (c.n_experts / c.n_groups) < c.n_experts_used)
            fail("the expert groups in use hold fewer experts than are used per token");
    }
    if (any_moe != (c.n_experts > 0) && c.n_experts > 0 && !any_moe)
        fail("experts are configured but no layer uses them");
    for (uint8_t m : c.layer_moe)
        if (m == 0) positive("dense FFN width", c.d_ff_dense);
    for (uint8_t s : c.layer_sliding)
        if (s != 0) positive("sliding window", c.sliding_window);
}

}  // namespace

void yarn_correction_range(RopeConfig& rope, int64_t n_ctx_orig, float beta_fast, float beta_slow, bool truncate) {
    // The dimension at which a rotation of `n_rot` turns over the original context.
    const auto corr_dim = [&](float n_rot) {
        return static_cast<float>(rope.n_dims) *
               std::log(static_cast<float>(n_ctx_orig) / (n_rot * 2.0f * std::numbers::pi_v<float>)) /
               (2.0f * std::log(rope.base));
    };
    float lo = corr_dim(beta_fast), hi = corr_dim(beta_slow);
    if (truncate) {
        lo = std::floor(lo);
        hi = std::ceil(hi);
    }
    rope.corr_low = std::max(0.0f, lo);
    rope.corr_high = std::min(static_cast<float>(rope.n_dims - 1), hi);
}

ModelConfig load_model_config(const ModelFile& file) {
    ModelConfig c = file.format() == FileFormat::Gguf ? config_from_gguf(file) : config_from_hf(file);
    check_config(c);
    return c;
}

}  // namespace hymoe
