// Internals of `hymoe synth`: the model shapes, the tensor plan with llama.cpp's per-tensor
// quantization rules, and the metadata. The public API is include/hymoe/synth.hpp.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/gguf_writer.hpp"
#include "format/tensor_type.hpp"
#include "model/quant_mix.hpp"

namespace hymoe::synth {

enum class QkNormKind { None, PerHead, Full };

// The hyper-parameters of a real model (or a tiny one for tests). Names as in the GGUF keys.
struct Shape {
    std::string_view name;
    std::string_view arch;    // general.architecture
    std::string_view source;  // the HF config.json the numbers come from
    uint32_t n_layers, d_model, n_heads, n_kv_heads, head_dim;
    uint32_t n_experts, n_experts_used, d_ff_expert;
    uint32_t d_ff_dense;      // feed_forward_length: dense layers (or the expert width for llama/olmoe)
    uint32_t n_dense_layers;  // leading layers with a dense FFN (DeepSeek first_k_dense_replace)
    uint32_t n_shared_experts;
    uint32_t n_vocab, n_ctx;
    float rope_base, rms_eps;
    QkNormKind qk_norm = QkNormKind::None;
    // MLA (DeepSeek): kv_lora_rank > 0
    uint32_t q_lora_rank = 0, kv_lora_rank = 0, rope_dim = 0, nope_dim = 0, v_head_dim = 0;
    // GPT-OSS
    bool biases = false;  // q/k/v/o, router and expert biases; attention sinks
    uint32_t sliding_window = 0;
    // YaRN: factor 0 = none
    float yarn_factor = 0, yarn_log_mul = 0;
    uint32_t yarn_orig_ctx = 0;
    std::string_view default_vocab = "builtin";  // "builtin" or "none"
};

std::span<const Shape> shapes();
const Shape& find_shape(std::string_view name);  // throws hymoe::Error listing the known ones

// A --type: a llama.cpp ftype (general.file_type), whose per-tensor rules pick each type.
struct QuantType {
    std::string_view name;  // --type
    std::string_view what;  // for --help and docs
    FileType ftype;
};

std::span<const QuantType> quant_types();
const QuantType& find_quant_type(std::string_view name);

enum class Init {
    Ones,       // norm weights
    Normal,     // N(0, stddev^2), plus the locality component on attn_q/attn_k rows
    Embedding,  // N(0, 1) plus the shared direction g (routing skew)
    Router,     // noise orthogonal to g plus a per-expert component along g
};

struct Tensor {
    std::string name;
    std::vector<int64_t> shape;  // row-major
    TensorType type;
    Init init;
    float stddev;
    int layer;              // -1 for non-layer tensors
    bool locality = false;  // attn_q / attn_k rows get the recency component
};

// Every tensor of the model in file order, with its stored type (llama.cpp's per-tensor rules
// for the ftype, from model/quant_mix.hpp).
std::vector<Tensor> tensor_plan(const Shape& s, uint32_t n_layers, int64_t n_vocab, const QuantType& q);

// The <arch>.* hyper-parameter keys (not general.*, not tokenizer.*).
void add_hparams(GgufWriter& w, const Shape& s, uint32_t n_layers, int64_t n_vocab);

}  // namespace hymoe::synth
