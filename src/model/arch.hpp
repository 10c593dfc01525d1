// The supported architectures and the one table of tensor names.
//
// Internal names are GGUF's (`blk.{L}.ffn_gate_exps`); HF safetensors names are aliases in
// the same table. An ArchSpec says how a family is recognised in each format and what is
// fixed for it rather than written in the file (llama.cpp hard-codes these per arch).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace hymoe {

enum class Arch {
    Mixtral,    // GGUF `llama` with experts; HF MixtralForCausalLM
    Qwen2Moe,   // qwen2moe; Qwen2MoeForCausalLM
    Qwen3Moe,   // qwen3moe; Qwen3MoeForCausalLM
    Olmoe,      // olmoe; OlmoeForCausalLM
    Deepseek2,  // deepseek2; DeepseekV2ForCausalLM, DeepseekV3ForCausalLM
    GptOss,     // gpt-oss; GptOssForCausalLM
};

struct ArchSpec {
    Arch arch;
    std::string_view name;                           // for messages
    std::string_view gguf_arch;                      // general.architecture
    std::array<std::string_view, 2> hf_classes;      // config.json "architectures" entries
    std::array<std::string_view, 2> hf_model_types;  // config.json "model_type"
};

std::span<const ArchSpec> arch_specs();
const ArchSpec& arch_spec(Arch arch);
std::optional<Arch> arch_from_gguf(std::string_view gguf_arch);
std::optional<Arch> arch_from_hf(std::string_view class_or_model_type);
// "llama (Mixtral), qwen2moe, ..." for error messages.
std::string supported_arch_list();

// What a tensor is, independent of format. One row each in the name table.
enum class TensorRole {
    TokenEmbd,
    OutputNorm,
    Output,
    AttnNorm,
    AttnQ,
    AttnK,
    AttnV,
    AttnOut,
    AttnQNorm,
    AttnKNorm,
    AttnSinks,
    AttnQA,       // MLA: q down-projection [q_lora, d_model]
    AttnQANorm,   //      its RMSNorm [q_lora]
    AttnQB,       //      q up-projection [n_heads*(nope+rope), q_lora]
    AttnKvA,      //      [kv_lora + rope, d_model]: latent and the shared rope key
    AttnKvANorm,  //      [kv_lora]
    AttnKB,       //      per head [n_heads, kv_lora, nope] (q_nope -> latent)
    AttnVB,       //      per head [n_heads, v, kv_lora]   (latent -> v)
    AttnKvB,      //      unsplit [n_heads*(nope+v), kv_lora] (HF, older GGUFs)
    FfnNorm,
    FfnGate,  // dense FFN
    FfnUp,
    FfnDown,
    Router,               // [n_experts, d_model]
    ExpertSelectionBias,  // [n_experts]
    ExpertsGate,          // [n_experts, d_ff_expert, d_model]
    ExpertsUp,            // [n_experts, d_ff_expert, d_model]
    ExpertsDown,          // [n_experts, d_model, d_ff_expert]
    ExpertsGateUpFused,   // HF GPT-OSS: [n_experts, d_model, 2*d_ff_expert], gate/up interleaved
    SharedGate,           // [d_ff_shared, d_model]
    SharedUp,
    SharedDown,        // [d_model, d_ff_shared]
    SharedExpertGate,  // [1, d_model] (GGUF stores it 1-D)
};

struct TensorName {
    TensorRole role;
    // Patterns without the ".weight"/".bias" suffix; {L} is the layer, {E} the expert.
    std::array<std::string_view, 2> gguf;  // tried in order; "" = unused
    std::array<std::string_view, 3> hf;    // HF aliases; per-expert ones contain {E}
};

const TensorName& tensor_name(TensorRole role);

// Expands a pattern: "blk.{L}.attn_q" with layer 3 -> "blk.3.attn_q".
std::string expand_tensor_name(std::string_view pattern, int64_t layer, int64_t expert = -1);

}  // namespace hymoe
