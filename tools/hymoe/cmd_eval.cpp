// `hymoe eval`: evaluate a prompt given as token ids and show (or write) the logits of every
// position, so any reference can be compared from outside the test suite.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.hpp"
#include "device_flags.hpp"
#include "hymoe/engine.hpp"
#include "hymoe/error.hpp"
#include "token_ids.hpp"

namespace hymoe::cli {

namespace {

struct EvalArgs {
    std::string model;
    std::string tokens;
    int top = 5;
    std::string logits_out;
    int threads = 0;
    int64_t ctx = 0;
    DeviceFlags device;
};

void run_eval(const EvalArgs& args) {
    const std::vector<int32_t> tokens = parse_token_ids(args.tokens, "--tokens");
    if (tokens.empty()) throw Error("--tokens: no token ids given");
    LoadOptions options;
    options.n_threads = args.threads;
    options.n_ctx = args.ctx > 0 ? args.ctx : static_cast<int64_t>(tokens.size());
    apply_device_flags(args.device, options);
    const auto model = Model::load(args.model, options);
    Session session(model);
    session.prefill(tokens, true);
    const std::span<const float> logits = session.all_logits();
    const auto n_vocab = static_cast<size_t>(model->n_vocab());
    if (const std::string cache = expert_cache_summary(model->expert_cache_stats()); !cache.empty())
        fmt::print(stderr, "{}\n", cache);

    if (!args.logits_out.empty()) {
        std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(args.logits_out.c_str(), "wb"), &std::fclose);
        if (!f) throw Error(fmt::format("--logits-out: cannot open '{}' for writing", args.logits_out));
        // float32 little-endian, row-major [n_tokens][n_vocab] (this build targets little-endian hosts)
        if (std::fwrite(logits.data(), sizeof(float), logits.size(), f.get()) != logits.size())
            throw Error(fmt::format("--logits-out: writing '{}' failed", args.logits_out));
    }

    const auto top = static_cast<size_t>(std::clamp<int64_t>(args.top, 0, static_cast<int64_t>(n_vocab)));
    if (top == 0) return;
    fmt::print("# {} ({}), {} tokens, {} vocab; top {} logits per position as id:logit\n", model->path(),
               model->architecture(), tokens.size(), n_vocab, top);
    std::vector<int32_t> order(n_vocab);
    for (size_t t = 0; t < tokens.size(); ++t) {
        const float* row = logits.data() + t * n_vocab;
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top), order.end(),
                          [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
        std::string line = fmt::format("{:5d} {:8d} |", t, tokens[t]);
        for (size_t i = 0; i < top; ++i) line += fmt::format(" {}:{:.4f}", order[i], row[order[i]]);
        fmt::print("{}\n", line);
    }
}

}  // namespace

void add_eval_command(CLI::App& app) {
    auto args = std::make_shared<EvalArgs>();
    auto* cmd = app.add_subcommand("eval", "Evaluate a prompt given as token ids; print the top logits per position");
    cmd->add_option("-m,--model", args->model, "GGUF file, safetensors file or HF model directory")->required();
    cmd->add_option("--tokens", args->tokens, "token ids: \"1,2,3\", \"1 2 3\" or \"[1,2,3]\"")->required();
    cmd->add_option("--top", args->top, "logits shown per position (0: none)")->check(CLI::NonNegativeNumber);
    cmd->add_option("--logits-out", args->logits_out,
                    "write every position's logits as raw little-endian float32 [n_tokens][n_vocab]");
    add_device_flags(cmd, args->device);
    cmd->add_option("-t,--threads", args->threads, "compute threads (0: all)")->check(CLI::NonNegativeNumber);
    cmd->add_option("-c,--ctx", args->ctx, "context length (default: the number of tokens)")
        ->check(CLI::NonNegativeNumber);
    cmd->callback([args] { run_eval(*args); });
}

}  // namespace hymoe::cli
