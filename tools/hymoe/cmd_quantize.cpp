// `hymoe quantize INPUT OUTPUT TYPE`: re-encode a GGUF model in another file type with the
// per-tensor mix llama-quantize uses (model/quant_mix.hpp), e.g. an F32/F16/BF16 GGUF to Q4_K_M.
#include <memory>
#include <string>

#include <fmt/core.h>

#include "commands.hpp"
#include "hymoe/error.hpp"
#include "model/quantize_model.hpp"

namespace hymoe::cli {

namespace {

struct QuantizeArgs {
    std::string input;
    std::string output;
    std::string type;
    int threads = 0;
    bool allow_requantize = false;
    bool verbose = false;
};

std::string mib(uint64_t bytes) {
    return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

void run_quantize(const QuantizeArgs& args) {
    const auto ftype = file_type_from_name(args.type);
    if (!ftype)
        throw Error(fmt::format("quantize: unknown type '{}' (expected one of: {})", args.type, file_type_names()));
    QuantizeOptions options;
    options.input = args.input;
    options.output = args.output;
    options.ftype = *ftype;
    options.allow_requantize = args.allow_requantize;
    options.n_threads = args.threads;
    const QuantizeResult r = quantize_model(options, [&](const QuantizedTensor& t) {
        if (!args.verbose) return;
        std::string shape;
        for (const int64_t d : t.shape) shape += fmt::format("{}{}", shape.empty() ? "" : " x ", d);
        fmt::print(stderr, "{:<40} [{}] {} -> {} ({} -> {})\n", t.name, shape, type_name(t.from), type_name(t.to),
                   mib(t.bytes_in), mib(t.bytes_out));
    });
    uint64_t in = 0, out = 0, changed = 0;
    for (const QuantizedTensor& t : r.tensors) {
        in += t.bytes_in;
        out += t.bytes_out;
        changed += t.from != t.to ? 1 : 0;
    }
    fmt::print(stderr, "quantize: wrote {} ({}): {} tensors, {} converted; tensor data {} -> {}\n", args.output,
               file_type_info(*ftype).name, r.tensors.size(), changed, mib(in), mib(out));
}

}  // namespace

void add_quantize_command(CLI::App& app) {
    auto* cmd =
        app.add_subcommand("quantize", "Re-encode a GGUF model in another type (Q8_0, Q4_K_M, ...), as llama-quantize");
    auto args = std::make_shared<QuantizeArgs>();
    std::string types = "File type: " + file_type_names() + " (q4_k and q5_k mean the _M mixes)";
    cmd->add_option("input", args->input, "Input .gguf model")->required();
    cmd->add_option("output", args->output, "Output .gguf file")->required();
    cmd->add_option("type", args->type, types)->required();
    cmd->add_option("threads", args->threads, "Threads (default: all)");
    cmd->add_option("-t,--threads", args->threads, "Threads (default: all)");
    cmd->add_flag("--allow-requantize", args->allow_requantize,
                  "Convert tensors that are already quantized (loses precision twice)");
    cmd->add_flag("-v,--verbose", args->verbose, "Print each tensor's conversion");
    cmd->callback([args] { run_quantize(*args); });
}

}  // namespace hymoe::cli
