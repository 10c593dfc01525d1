// What `hymoe inspect` shows, as a library call: a model file's architecture, hyper-parameters,
// tokenizer, tensors, and the expert / non-expert split that offloading plans with.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hymoe {

struct TensorSummary {
    std::string name;
    std::string type;            // ggml type name: "f32", "q4_K", "mxfp4", ...
    std::vector<int64_t> shape;  // row-major, outermost first
    uint64_t nbytes = 0;
    uint32_t file_index = 0;   // index into ModelInfo::files
    uint64_t file_offset = 0;  // absolute byte offset of the data in that file
    int layer = -1;            // block index, -1 for tensors outside the layers
    bool is_expert = false;    // a routed expert's weight (shared experts are not)
};

struct TypeBytes {
    std::string type;
    uint64_t n_tensors = 0;
    uint64_t bytes = 0;
};

struct LayerExperts {
    int layer = 0;
    uint32_t n_experts = 0;
    uint64_t bytes = 0;             // all routed experts of the layer
    uint64_t bytes_per_expert = 0;  // gate + up + down (+ biases, scales) of one expert
};

struct ExpertSplit {
    uint64_t non_expert_bytes = 0;     // stays resident: embeddings, attention, norms, routers, shared experts, lm_head
    uint64_t expert_bytes = 0;         // routed experts: what offloading moves
    std::vector<LayerExperts> layers;  // layers that have routed experts
    std::vector<TypeBytes> non_expert_by_type;
    std::vector<TypeBytes> expert_by_type;
};

struct SpecialToken {
    std::string role;  // "bos", "eos", "eot", "unk", "pad", ...
    int64_t id = -1;
    std::string text;  // the token's text, "" when the id is outside the vocabulary
};

struct TokenizerSummary {
    bool present = false;
    std::string source;  // "gguf metadata" or "tokenizer.json"
    std::string model;   // GGUF tokenizer.ggml.model ("llama", "gpt2") or HF model.type ("BPE")
    std::string pre;     // GGUF tokenizer.ggml.pre, HF pre_tokenizer type
    uint64_t vocab_size = 0;
    uint64_t n_merges = 0;
    std::vector<SpecialToken> special;
    bool add_bos = false;
    bool add_eos = false;
    bool has_chat_template = false;
    uint64_t chat_template_chars = 0;
};

struct ModelInfo {
    std::string path;
    std::string format;              // "gguf" or "safetensors"
    std::vector<std::string> files;  // the mapped files (one per shard)
    uint64_t file_bytes = 0;
    uint32_t gguf_version = 0;  // 0 for safetensors
    uint64_t gguf_alignment = 0;
    std::string architecture;  // GGUF general.architecture or HF architectures[0]
    std::string name;          // general.name or HF _name_or_path, may be ""
    struct Hyperparameter {
        std::string key;
        std::string display;  // short human form
        std::string json;     // the value as JSON text
    };
    std::vector<Hyperparameter> hyperparameters;
    TokenizerSummary tokenizer;
    std::vector<TensorSummary> tensors;
    ExpertSplit experts;
    uint64_t tensor_bytes = 0;
};

// Opens the model read-only (a .gguf file, a .safetensors file, or a model directory) and
// summarizes it. Throws hymoe::Error naming the file and what was wrong.
ModelInfo inspect_model(const std::string& path);

}  // namespace hymoe
