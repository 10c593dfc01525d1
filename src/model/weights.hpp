// The model's weights as the forward pass uses them: views into the mapped file, fetched by
// role from the name table with their expected shapes checked.
//
// Matrices stay in their stored type. A few HF layouts that do not match (GPT-OSS's fused,
// transposed gate_up; DeepSeek's unsplit kv_b) are converted once at load into owned f32.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "cpu/matmul.hpp"
#include "model/config.hpp"

namespace hymoe {

class ModelFile;

struct Linear {
    cpu::MatrixRef w;             // [rows = out, cols = in]
    const float* bias = nullptr;  // [rows] or null
    bool present() const { return w.data != nullptr; }
};

struct ExpertSet {
    std::vector<cpu::MatrixRef> gate;  // [n_experts] of [d_ff_expert, d_model]
    std::vector<cpu::MatrixRef> up;    // [n_experts] of [d_ff_expert, d_model]
    std::vector<cpu::MatrixRef> down;  // [n_experts] of [d_model, d_ff_expert]
    const float* gate_bias = nullptr;  // [n_experts, d_ff_expert] or null
    const float* up_bias = nullptr;    // [n_experts, d_ff_expert] or null
    const float* down_bias = nullptr;  // [n_experts, d_model] or null
};

struct LayerWeights {
    const float* attn_norm = nullptr;  // [d_model]
    Linear q;                       // [n_heads*head_dim, d_model] (MLA without q_lora: [n_heads*(nope+rope), d_model])
    Linear k;                       // [n_kv_heads*head_dim, d_model]
    Linear v;                       // [n_kv_heads*head_dim_v, d_model]
    Linear out;                     // [d_model, n_heads*head_dim_v]
    const float* q_norm = nullptr;  // [head_dim] per head, or [n_heads*head_dim] full
    const float* k_norm = nullptr;  // [head_dim] per head, or [n_kv_heads*head_dim] full
    const float* sinks = nullptr;   // [n_heads]

    // multi-head latent attention
    Linear q_a;                        // [q_lora, d_model]
    const float* q_a_norm = nullptr;   // [q_lora]
    Linear q_b;                        // [n_heads*(nope+rope), q_lora]
    Linear kv_a;                       // [kv_lora + rope, d_model]
    const float* kv_a_norm = nullptr;  // [kv_lora]
    std::vector<cpu::MatrixRef> k_b;   // [n_heads] of [kv_lora, nope]: q_nope -> latent
    std::vector<cpu::MatrixRef> v_b;   // [n_heads] of [v, kv_lora]: latent -> v

    const float* ffn_norm = nullptr;        // [d_model]
    Linear ffn_gate, ffn_up, ffn_down;      // dense: [d_ff, d_model], [d_ff, d_model], [d_model, d_ff]
    Linear router;                          // [n_experts, d_model]
    const float* selection_bias = nullptr;  // [n_experts]
    ExpertSet experts;
    Linear shared_gate, shared_up, shared_down;  // [d_ff_shared, d_model] x2, [d_model, d_ff_shared]
    Linear shared_expert_gate;                   // [1, d_model]
};

struct ModelWeights {
    cpu::MatrixRef token_embd;           // [n_vocab, d_model]
    const float* output_norm = nullptr;  // [d_model]
    Linear output;                       // [n_vocab, d_model]; token_embd when tied
    std::vector<LayerWeights> layers;
    std::vector<std::unique_ptr<std::byte[]>> owned;  // converted copies the views point into
};

// Fetches and checks every tensor the config needs. Throws hymoe::Error naming the tensor and
// its expected shape when one is missing, has the wrong shape, or has an unsupported type.
ModelWeights load_weights(const ModelFile& file, const ModelConfig& config);

}  // namespace hymoe
