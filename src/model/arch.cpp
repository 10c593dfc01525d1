#include "model/arch.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "hymoe/error.hpp"

namespace hymoe {

namespace {

constexpr ArchSpec kArchSpecs[] = {
    {Arch::Mixtral, "Mixtral", "llama", {"MixtralForCausalLM", ""}, {"mixtral", ""}},
    {Arch::Qwen2Moe, "Qwen2-MoE", "qwen2moe", {"Qwen2MoeForCausalLM", ""}, {"qwen2_moe", ""}},
    {Arch::Qwen3Moe, "Qwen3-MoE", "qwen3moe", {"Qwen3MoeForCausalLM", ""}, {"qwen3_moe", ""}},
    {Arch::Olmoe, "OLMoE", "olmoe", {"OlmoeForCausalLM", ""}, {"olmoe", ""}},
    {Arch::Deepseek2,
     "DeepSeek-V2/V3",
     "deepseek2",
     {"DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM"},
     {"deepseek_v2", "deepseek_v3"}},
    {Arch::GptOss, "GPT-OSS", "gpt-oss", {"GptOssForCausalLM", ""}, {"gpt_oss", ""}},
};

using R = TensorRole;
// clang-format off
constexpr TensorName kTensorNames[] = {
    {R::TokenEmbd,  {"token_embd", ""},  {"model.embed_tokens", "", ""}},
    {R::OutputNorm, {"output_norm", ""}, {"model.norm", "", ""}},
    {R::Output,     {"output", ""},      {"lm_head", "", ""}},
    {R::AttnNorm,   {"blk.{L}.attn_norm", ""},   {"model.layers.{L}.input_layernorm", "", ""}},
    {R::AttnQ,      {"blk.{L}.attn_q", ""},      {"model.layers.{L}.self_attn.q_proj", "", ""}},
    {R::AttnK,      {"blk.{L}.attn_k", ""},      {"model.layers.{L}.self_attn.k_proj", "", ""}},
    {R::AttnV,      {"blk.{L}.attn_v", ""},      {"model.layers.{L}.self_attn.v_proj", "", ""}},
    {R::AttnOut,    {"blk.{L}.attn_output", ""}, {"model.layers.{L}.self_attn.o_proj", "", ""}},
    {R::AttnQNorm,  {"blk.{L}.attn_q_norm", ""}, {"model.layers.{L}.self_attn.q_norm", "", ""}},
    {R::AttnKNorm,  {"blk.{L}.attn_k_norm", ""}, {"model.layers.{L}.self_attn.k_norm", "", ""}},
    {R::AttnSinks,  {"blk.{L}.attn_sinks", ""},  {"model.layers.{L}.self_attn.sinks", "", ""}},
    {R::AttnQA,     {"blk.{L}.attn_q_a", ""},      {"model.layers.{L}.self_attn.q_a_proj", "", ""}},
    {R::AttnQANorm, {"blk.{L}.attn_q_a_norm", ""}, {"model.layers.{L}.self_attn.q_a_layernorm", "", ""}},
    {R::AttnQB,     {"blk.{L}.attn_q_b", ""},      {"model.layers.{L}.self_attn.q_b_proj", "", ""}},
    {R::AttnKvA,    {"blk.{L}.attn_kv_a_mqa", ""}, {"model.layers.{L}.self_attn.kv_a_proj_with_mqa", "", ""}},
    {R::AttnKvANorm,{"blk.{L}.attn_kv_a_norm", ""},{"model.layers.{L}.self_attn.kv_a_layernorm", "", ""}},
    {R::AttnKB,     {"blk.{L}.attn_k_b", ""},      {"", "", ""}},
    {R::AttnVB,     {"blk.{L}.attn_v_b", ""},      {"", "", ""}},
    {R::AttnKvB,    {"blk.{L}.attn_kv_b", ""},     {"model.layers.{L}.self_attn.kv_b_proj", "", ""}},
    // GPT-OSS's pre-FFN norm is `post_attention_norm` in GGUF; every HF model calls it this.
    {R::FfnNorm,    {"blk.{L}.ffn_norm", "blk.{L}.post_attention_norm"},
                    {"model.layers.{L}.post_attention_layernorm", "", ""}},
    {R::FfnGate,    {"blk.{L}.ffn_gate", ""}, {"model.layers.{L}.mlp.gate_proj", "", ""}},
    {R::FfnUp,      {"blk.{L}.ffn_up", ""},   {"model.layers.{L}.mlp.up_proj", "", ""}},
    {R::FfnDown,    {"blk.{L}.ffn_down", ""}, {"model.layers.{L}.mlp.down_proj", "", ""}},
    {R::Router,     {"blk.{L}.ffn_gate_inp", ""},
                    {"model.layers.{L}.mlp.gate", "model.layers.{L}.block_sparse_moe.gate",
                     "model.layers.{L}.mlp.router"}},
    {R::ExpertSelectionBias, {"blk.{L}.exp_probs_b.bias", "blk.{L}.exp_probs_b"},
                    {"model.layers.{L}.mlp.gate.e_score_correction_bias", "", ""}},
    {R::ExpertsGate, {"blk.{L}.ffn_gate_exps", ""},
                    {"model.layers.{L}.mlp.experts.{E}.gate_proj",
                     "model.layers.{L}.block_sparse_moe.experts.{E}.w1", ""}},
    {R::ExpertsUp,  {"blk.{L}.ffn_up_exps", ""},
                    {"model.layers.{L}.mlp.experts.{E}.up_proj",
                     "model.layers.{L}.block_sparse_moe.experts.{E}.w3", ""}},
    {R::ExpertsDown, {"blk.{L}.ffn_down_exps", ""},
                    {"model.layers.{L}.mlp.experts.{E}.down_proj",
                     "model.layers.{L}.block_sparse_moe.experts.{E}.w2",
                     "model.layers.{L}.mlp.experts.down_proj"}},
    {R::ExpertsGateUpFused, {"", ""}, {"model.layers.{L}.mlp.experts.gate_up_proj", "", ""}},
    {R::SharedGate, {"blk.{L}.ffn_gate_shexp", ""},
                    {"model.layers.{L}.mlp.shared_expert.gate_proj", "model.layers.{L}.mlp.shared_experts.gate_proj", ""}},
    {R::SharedUp,   {"blk.{L}.ffn_up_shexp", ""},
                    {"model.layers.{L}.mlp.shared_expert.up_proj", "model.layers.{L}.mlp.shared_experts.up_proj", ""}},
    {R::SharedDown, {"blk.{L}.ffn_down_shexp", ""},
                    {"model.layers.{L}.mlp.shared_expert.down_proj", "model.layers.{L}.mlp.shared_experts.down_proj", ""}},
    {R::SharedExpertGate, {"blk.{L}.ffn_gate_inp_shexp", ""}, {"model.layers.{L}.mlp.shared_expert_gate", "", ""}},
};
// clang-format on

}  // namespace

std::span<const ArchSpec> arch_specs() {
    return kArchSpecs;
}

const ArchSpec& arch_spec(Arch arch) {
    for (const ArchSpec& spec : kArchSpecs)
        if (spec.arch == arch) return spec;
    throw Error(fmt::format("internal: no ArchSpec for arch {}", static_cast<int>(arch)));
}

std::optional<Arch> arch_from_gguf(std::string_view gguf_arch) {
    for (const ArchSpec& spec : kArchSpecs)
        if (spec.gguf_arch == gguf_arch) return spec.arch;
    return std::nullopt;
}

std::optional<Arch> arch_from_hf(std::string_view name) {
    if (name.empty()) return std::nullopt;
    for (const ArchSpec& spec : kArchSpecs) {
        if (std::find(spec.hf_classes.begin(), spec.hf_classes.end(), name) != spec.hf_classes.end() ||
            std::find(spec.hf_model_types.begin(), spec.hf_model_types.end(), name) != spec.hf_model_types.end())
            return spec.arch;
    }
    return std::nullopt;
}

std::string supported_arch_list() {
    std::string out;
    for (const ArchSpec& spec : kArchSpecs) {
        if (!out.empty()) out += ", ";
        out += fmt::format("{} ({}", spec.gguf_arch, spec.name);
        for (std::string_view cls : spec.hf_classes)
            if (!cls.empty()) out += fmt::format(", {}", cls);
        out += ")";
    }
    return out;
}

const TensorName& tensor_name(TensorRole role) {
    for (const TensorName& entry : kTensorNames)
        if (entry.role == role) return entry;
    throw Error(fmt::format("internal: no name table entry for tensor role {}", static_cast<int>(role)));
}

std::string expand_tensor_name(std::string_view pattern, int64_t layer, int64_t expert) {
    std::string out;
    out.reserve(pattern.size() + 8);
    for (size_t i = 0; i < pattern.size(); ++i) {
        if (pattern.compare(i, 3, "{L}") == 0) {
            out += std::to_string(layer);
            i += 2;
        } else if (pattern.compare(i, 3, "{E}") == 0) {
            out += std::to_string(expert);
            i += 2;
        } else {
            out += pattern[i];
        }
    }
    return out;
}

}  // namespace hymoe
