// Synthetic models: GGUF files with random weights in the exact shape of a real MoE model, in a
// chosen quantization, for demos, tests and benchmarks without a download. The weights are
// random: the text they produce is noise. See docs/synthetic-models.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hymoe {

struct SynthOptions {
    std::string shape = "tiny-qwen3moe";  // one of synth_shape_names()
    std::string output;                   // .gguf path to write
    std::string type = "f32";             // one of synth_type_names(): f32, q8_0, q4_k (Q4_K_M mix), ...
    uint64_t seed = 1;
    int n_layers = 0;  // 0: the shape's own depth (more is allowed: a deeper model of the same width)
    // The vocabulary: "" = the shape's default (real shapes: "builtin"; tiny shapes: "none"),
    // "builtin" = Llama's 32000-token SPM vocabulary compiled into hymoe, "none" = no tokenizer
    // (a dummy vocabulary of the shape's size), or a path to a GGUF with tokenizer.* keys
    // (llama.cpp's models/ggml-vocab-*.gguf). A vocabulary smaller than the shape's is padded
    // with [PAD] tokens to the real model's size.
    std::string vocab;
    // Routing skew (docs/synthetic-models.md): expert popularity falls off like rank^-zipf in
    // every layer; locality biases attention towards recent tokens so consecutive tokens share
    // experts more often. 0 turns either off.
    double zipf = 1.0;
    double locality = 4.0;
    int n_threads = 0;  // generation threads; 0 = hardware threads. The output does not depend on it.
};

struct SynthResult {
    std::string path;
    uint64_t file_bytes = 0;
    size_t n_tensors = 0;
    double seconds = 0;  // wall time of the tensor data
};

// A tensor the model will hold, and the type it is stored in.
struct SynthTensorInfo {
    std::string name;
    std::string type;            // ggml type name: "f32", "q4_K", ...
    std::vector<int64_t> shape;  // row-major, outermost first
    uint64_t bytes = 0;
};

struct SynthPlan {
    std::string architecture;  // general.architecture
    uint32_t file_type = 0;    // general.file_type (llama_ftype)
    int64_t n_vocab = 0;
    uint32_t n_layers = 0;
    std::vector<SynthTensorInfo> tensors;
    uint64_t tensor_bytes = 0;
};

std::vector<std::string> synth_shape_names();
std::vector<std::string> synth_type_names();

// What write_synthetic_model would write, without writing or generating anything.
// Throws hymoe::Error for an unknown shape or type, a bad layer count or an unreadable vocabulary.
SynthPlan plan_synthetic_model(const SynthOptions& options);

// Throws hymoe::Error for an unknown shape or type, a type this build cannot quantize, or an
// unwritable path.
SynthResult write_synthetic_model(const SynthOptions& options);

}  // namespace hymoe
