// `hymoe synth`: write a GGUF model with random weights in the shape of a real MoE model.
#include <memory>

#include <fmt/core.h>

#include "commands.hpp"
#include "hymoe/synth.hpp"

namespace hymoe::cli {

void add_synth_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("synth", "Write a GGUF model with random weights (for demos and tests)");
    auto opts = std::make_shared<SynthOptions>();
    std::string shapes;
    for (const auto& s : synth_shape_names()) shapes += (shapes.empty() ? "" : ", ") + s;
    cmd->add_option("--shape", opts->shape, "Model shape: " + shapes)->capture_default_str();
    cmd->add_option("-o,--output", opts->output, "Output .gguf file")->required();
    cmd->add_option("--seed", opts->seed, "Random seed")->capture_default_str();
    cmd->add_option("--layers", opts->n_layers, "Number of layers (default: the shape's)");
    cmd->add_option("--vocab", opts->vocab,
                    "A GGUF with a vocabulary (e.g. llama.cpp's ggml-vocab-*.gguf) whose tokenizer the model takes");
    cmd->callback([opts] {
        const SynthResult r = write_synthetic_model(*opts);
        fmt::print(stderr, "wrote {} ({} tensors, {} bytes); its weights are random, so its output is noise\n", r.path,
                   r.n_tensors, r.file_bytes);
    });
}

}  // namespace hymoe::cli
