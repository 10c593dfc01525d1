// ModelConfig: every hyper-parameter the forward pass reads, normalized across architectures
// and file formats. The forward never asks which architecture it runs; it reads these fields.
//
// Filled from GGUF metadata (`<arch>.*` keys, with llama.cpp's conventions) or from an HF
// config.json (transformers 4 and 5 key spellings).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/arch.hpp"

namespace hymoe {

class ModelFile;

// Which pairs of dimensions RoPE rotates together.
enum class RopeStyle {
    Interleaved,  // (2i, 2i+1): ggml's NORM mode, Mixtral GGUFs (q/k rows permuted), DeepSeek
    Neox,         // (i, i + n_dims/2): ggml's NEOX mode, HF's rotate_half
};

enum class QkNorm {
    None,
    PerHead,  // RMSNorm over each head's head_dim (Qwen3)
    Full,     // RMSNorm over the whole q (n_heads*head_dim) and k (n_kv_heads*head_dim) rows (OLMoE)
};

enum class Gating {
    Softmax,          // p = softmax(logits); pick top-k of p
    Sigmoid,          // p = sigmoid(logits); pick top-k of p + selection bias (DeepSeek-V3)
    SoftmaxOverTopK,  // pick top-k of logits; weights = softmax of the k picked (GPT-OSS)
};

// How a group of experts is scored for group-limited routing.
enum class GroupScore {
    Max,        // DeepSeek-V2 `group_limited_greedy`
    TopTwoSum,  // DeepSeek-V3 `noaux_tc` (and llama.cpp for every deepseek2 file)
};

enum class FfnActivation {
    SwiGlu,     // silu(gate) * up
    SwiGluOai,  // GPT-OSS: g = min(gate, limit), u = clamp(up, -limit, limit), g*sigmoid(alpha*g)*(u+1)
};

// RoPE with ggml's YaRN extension; with freq_scale == 1 and ext_factor == 0 it is plain RoPE.
struct RopeConfig {
    RopeStyle style = RopeStyle::Neox;
    int64_t n_dims = 0;       // rotated dimensions per head (the rest pass through)
    float base = 10000.0f;    // theta base
    float freq_scale = 1.0f;  // 1/factor: interpolated theta = theta * freq_scale
    float ext_factor = 0.0f;  // 1 with YaRN: mix extrapolated and interpolated theta by the ramp
    float corr_low = 0.0f;    // ramp start and end, in rotated pairs
    float corr_high = 0.0f;
    float mscale = 1.0f;  // multiplies cos and sin (so q·k grows by mscale^2)
};

struct ModelConfig {
    Arch arch = Arch::Qwen3Moe;
    std::string source;  // the file or directory, for messages

    // sizes
    int64_t n_vocab = 0;
    int64_t d_model = 0;
    int64_t n_layers = 0;
    int64_t n_ctx_train = 0;
    float norm_eps = 1e-6f;
    bool tied_embeddings = false;  // no output matrix: logits use token_embd

    // attention
    int64_t n_heads = 0;
    int64_t n_kv_heads = 0;
    int64_t head_dim = 0;    // q/k width per head (MLA: nope + rope)
    int64_t head_dim_v = 0;  // v width per head
    QkNorm qk_norm = QkNorm::None;
    bool attn_qkv_bias = false;
    bool attn_out_bias = false;
    bool attn_sinks = false;
    int64_t sliding_window = 0;          // keys visible in a sliding layer, the query's own included
    std::vector<uint8_t> layer_sliding;  // [n_layers] 1 = this layer uses the window
    float kq_scale = 1.0f;
    RopeConfig rope;

    // multi-head latent attention (DeepSeek); kv_lora_rank == 0 means ordinary attention
    int64_t q_lora_rank = 0;  // 0: q comes from one projection
    int64_t kv_lora_rank = 0;
    int64_t head_dim_nope = 0;
    int64_t head_dim_rope = 0;

    // feed-forward
    std::vector<uint8_t> layer_moe;  // [n_layers] 1 = routed experts, 0 = a dense FFN
    int64_t d_ff_dense = 0;
    int64_t n_experts = 0;
    int64_t n_experts_used = 0;
    int64_t d_ff_expert = 0;
    int64_t d_ff_shared = 0;          // all shared experts together as one FFN; 0 = none
    bool shared_expert_gate = false;  // sigmoid(w·x) scales the shared expert (Qwen2-MoE)
    Gating gating = Gating::Softmax;
    bool expert_selection_bias = false;  // a per-expert bias added for selection only
    bool norm_topk = false;              // divide the k weights by their sum
    float routed_scale = 1.0f;           // multiplies the k weights
    int64_t n_groups = 1;                // group-limited routing: experts in n_groups groups,
    int64_t n_groups_used = 1;           //   only the best n_groups_used groups are eligible
    GroupScore group_score = GroupScore::TopTwoSum;
    bool router_bias = false;
    bool expert_bias = false;  // biases on the expert (and only expert) matrices
    FfnActivation activation = FfnActivation::SwiGlu;
    float swiglu_alpha = 1.702f;
    float swiglu_limit = 7.0f;

    bool is_mla() const { return kv_lora_rank > 0; }
};

// Reads and checks the configuration of an opened model file. Throws hymoe::Error naming the
// file and the key for an unsupported architecture or a missing or invalid value.
ModelConfig load_model_config(const ModelFile& file);

// ggml's YaRN correction range for rotating n_dims dims with base `base` and training context
// n_ctx_orig; truncate rounds it outwards to whole pairs (ggml always does; HF may not).
void yarn_correction_range(RopeConfig& rope, int64_t n_ctx_orig, float beta_fast, float beta_slow, bool truncate);

}  // namespace hymoe
