// `hymoe run`: generate text from a prompt, streaming tokens to stdout as they are produced;
// prompt and generation speeds go to stderr at the end.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.hpp"
#include "format/model_file.hpp"
#include "hymoe/engine.hpp"
#include "hymoe/error.hpp"
#include "runtime/sampler.hpp"
#include "tokenizer/tokenizer.hpp"

namespace hymoe::cli {

namespace {

struct RunArgs {
    std::string model;
    std::string prompt;
    int n_predict = 128;
    int threads = 0;
    int64_t ctx = 4096;
    bool no_special = false;
    std::vector<std::string> stop;
    SamplingParams sampling;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void run_generate(const RunArgs& args) {
    if (args.prompt.empty()) throw Error("-p/--prompt: the prompt is empty");
    // The tokenizer first: a file without one fails before the weights are loaded.
    const ModelFile file = open_model_file(args.model);  // a mapping of its own (cheap), for the tokenizer
    if (file.format() != FileFormat::Gguf)
        throw Error(
            fmt::format("{}: hymoe run reads the tokenizer from GGUF metadata; HF tokenizer.json is not "
                        "supported yet (hymoe eval takes token ids)",
                        args.model));
    const Tokenizer tokenizer = Tokenizer::from_gguf(file);
    if (file.metadata().get_string("general.name").value_or("").find("random weights") != std::string_view::npos)
        fmt::print(stderr, "note: {} has random weights (hymoe synth): the text below is noise\n", args.model);
    const auto model = Model::load(args.model, {.n_threads = args.threads, .n_ctx = args.ctx});
    const std::vector<int32_t> prompt = tokenizer.encode(args.prompt, true, !args.no_special);
    if (static_cast<int64_t>(prompt.size()) >= model->n_ctx())
        throw Error(fmt::format("the prompt is {} tokens, the context only {} (-c)", prompt.size(), model->n_ctx()));
    Sampler sampler(args.sampling);
    for (int32_t t : prompt) sampler.accept(t);
    Session session(model);

    const auto t_prompt = std::chrono::steady_clock::now();
    session.prefill(prompt);
    const double prompt_s = seconds_since(t_prompt);

    TextStreamer streamer;
    StopMatcher stops(args.stop);
    int n_generated = 0;
    const auto t_gen = std::chrono::steady_clock::now();
    bool stopped = false;
    while (n_generated < args.n_predict && !stopped) {
        const int32_t id = sampler.sample(session.logits());
        ++n_generated;
        if (tokenizer.is_end_of_generation(id)) break;
        const std::string out = stops.feed(streamer.feed(tokenizer, id));
        std::fwrite(out.data(), 1, out.size(), stdout);
        std::fflush(stdout);
        stopped = stops.stopped();
        if (stopped || n_generated == args.n_predict || session.n_past() + 1 >= model->n_ctx()) break;
        session.decode(id);
    }
    if (!stopped) {
        const std::string rest = stops.feed(streamer.flush()) + stops.flush();
        std::fwrite(rest.data(), 1, rest.size(), stdout);
    }
    const double gen_s = seconds_since(t_gen);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    fmt::print(
        stderr,
        "prompt: {} tokens in {:.3f} s ({:.1f} tok/s); generation: {} tokens in {:.3f} s ({:.1f} tok/s); seed {}\n",
        prompt.size(), prompt_s, static_cast<double>(prompt.size()) / prompt_s, n_generated, gen_s,
        n_generated / std::max(gen_s, 1e-9), sampler.seed());
}

}  // namespace

void add_run_command(CLI::App& app) {
    auto args = std::make_shared<RunArgs>();
    auto* cmd = app.add_subcommand("run", "Generate text from a prompt, streamed to stdout");
    cmd->add_option("-m,--model", args->model, "GGUF model file")->required();
    cmd->add_option("-p,--prompt", args->prompt, "the prompt")->required();
    cmd->add_option("-n,--n-predict", args->n_predict, "tokens to generate at most")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("-t,--threads", args->threads, "compute threads (0: all)")->check(CLI::NonNegativeNumber);
    cmd->add_option("-c,--ctx", args->ctx, "context length")->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--temp", args->sampling.temperature, "temperature (0: greedy)")->capture_default_str();
    cmd->add_option("--top-k", args->sampling.top_k, "top-k (0: off)")->capture_default_str();
    cmd->add_option("--top-p", args->sampling.top_p, "top-p (1: off)")->capture_default_str();
    cmd->add_option("--min-p", args->sampling.min_p, "min-p (0: off)")->capture_default_str();
    cmd->add_option("--repeat-penalty", args->sampling.repeat_penalty, "repetition penalty (1: off)")
        ->capture_default_str();
    cmd->add_option("--presence-penalty", args->sampling.presence_penalty, "presence penalty (0: off)")
        ->capture_default_str();
    cmd->add_option("--frequency-penalty", args->sampling.frequency_penalty, "frequency penalty (0: off)")
        ->capture_default_str();
    cmd->add_option("--repeat-last-n", args->sampling.penalty_last_n, "tokens the penalties look back over")
        ->capture_default_str();
    cmd->add_option("--seed", args->sampling.seed, "sampling seed (0: random)")->capture_default_str();
    cmd->add_option("--stop", args->stop, "stop when this text is generated (repeatable)");
    cmd->add_flag("--no-special", args->no_special, "treat special-token text in the prompt as plain text");
    cmd->callback([args] { run_generate(*args); });
}

}  // namespace hymoe::cli
