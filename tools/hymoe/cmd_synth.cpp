// `hymoe synth`: write a GGUF model with random weights in the shape of a real MoE model.
#include <memory>

#include <fmt/core.h>

#include "commands.hpp"
#include "hymoe/synth.hpp"

namespace hymoe::cli {

namespace {

std::string joined(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& s : names) out += (out.empty() ? "" : ", ") + s;
    return out;
}

}  // namespace

void add_synth_command(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "synth", "Write a GGUF model with random weights in the shape of a real model (for demos, tests, benchmarks)");
    auto opts = std::make_shared<SynthOptions>();
    cmd->add_option("--shape", opts->shape, "Model shape: " + joined(synth_shape_names()))->capture_default_str();
    cmd->add_option("--type", opts->type,
                    "Weight type, as llama-quantize writes it: " + joined(synth_type_names()) +
                        " (q4_k = Q4_K_M, q5_k = Q5_K_M, mxfp4 = MXFP4_MOE)")
        ->capture_default_str();
    cmd->add_option("-o,--output", opts->output, "Output .gguf file")->required();
    cmd->add_option("--seed", opts->seed, "Random seed")->capture_default_str();
    cmd->add_option("--layers", opts->n_layers, "Number of layers, 1..the shape's (default: the shape's)");
    cmd->add_option("--vocab", opts->vocab,
                    "Vocabulary: builtin (Llama's 32000-token SPM), none, or a GGUF with one (e.g. llama.cpp's "
                    "ggml-vocab-*.gguf); padded to the shape's size (default: builtin; none for tiny shapes)");
    cmd->add_option("--zipf", opts->zipf, "Expert popularity skew: popularity ~ rank^-zipf (0: uniform)")
        ->capture_default_str();
    cmd->add_option("--locality", opts->locality,
                    "Attention recency bias that makes consecutive tokens share experts (0: none)")
        ->capture_default_str();
    cmd->add_option("-t,--threads", opts->n_threads,
                    "Generation threads (default: all; the file does not depend on it)");
    cmd->callback([opts] {
        const SynthResult r = write_synthetic_model(*opts);
        const double mb = static_cast<double>(r.file_bytes) / 1e6;
        fmt::print(stderr,
                   "wrote {} ({} tensors, {} bytes, {:.0f} MB/s); its weights are random, so its output is noise\n",
                   r.path, r.n_tensors, r.file_bytes, r.seconds > 0 ? mb / r.seconds : 0.0);
    });
}

}  // namespace hymoe::cli
