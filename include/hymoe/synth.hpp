// Synthetic models: GGUF files with random weights in the shape of a real MoE model, for demos,
// tests and benchmarks without a download. The weights are random: the text they produce is noise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hymoe {

struct SynthOptions {
    std::string shape = "tiny-qwen3moe";  // one of synth_shape_names()
    std::string output;                   // .gguf path to write
    uint64_t seed = 1;
    int n_layers = 0;  // 0: the shape's own depth
    std::string vocab;  // a GGUF whose tokenizer.* keys the model takes ("": a 1024-entry dummy vocabulary, no tokenizer)
};

struct SynthResult {
    std::string path;
    uint64_t file_bytes = 0;
    size_t n_tensors = 0;
};

std::vector<std::string> synth_shape_names();

// Throws hymoe::Error for an unknown shape or an unwritable path.
SynthResult write_synthetic_model(const SynthOptions& options);

}  // namespace hymoe
