// `hymoe run`: generate text from a prompt, streaming tokens to stdout as they are produced;
// prompt and generation speeds go to stderr at the end. --chat wraps the prompt in the model's
// chat template as one user message.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "chat/chat_template.hpp"
#include "commands.hpp"
#include "device_flags.hpp"
#include "generate.hpp"
#include "hymoe/engine.hpp"
#include "hymoe/error.hpp"
#include "util/utf8.hpp"

namespace hymoe::cli {

namespace {

struct RunArgs {
    std::string model;
    std::string prompt;
    int n_predict = 128;
    int threads = 0;
    int64_t ctx = 4096;
    bool no_special = false;
    bool chat = false;
    bool verbose_prompt = false;
    std::string system;
    ChatFlags chat_flags;
    std::vector<std::string> stop;
    SamplingParams sampling;
    DeviceFlags device;
};

void run_generate(RunArgs args) {
    if (args.prompt.empty()) throw Error("-p/--prompt: the prompt is empty");
    require_valid_utf8(args.prompt, "-p/--prompt");
    require_valid_utf8(args.system, "--system");
    if (!args.system.empty() && !args.chat) throw Error("--system needs --chat");
    // The tokenizer and template first: a file without a tokenizer fails before the weights load.
    const Tokenizer tokenizer = load_tokenizer(args.model);
    std::vector<int32_t> prompt;
    std::string prompt_text = args.prompt;
    if (args.chat) {
        const ChatTemplate chat = ChatTemplate::for_model(args.model, tokenizer, args.chat_flags.template_path);
        std::vector<ChatMessage> messages;
        if (!args.system.empty()) messages.emplace_back("system", args.system);
        messages.emplace_back("user", args.prompt);
        prompt_text = chat.render(messages, chat_render_options(args.chat_flags));
        prompt = tokenizer.encode(prompt_text, chat.tokenize_with_special(), true);
        for (const std::string& s : chat.stop_strings()) args.stop.push_back(s);
    } else {
        prompt = tokenizer.encode(args.prompt, true, !args.no_special);
    }
    if (prompt.empty()) throw Error("-p/--prompt: the prompt has no tokens");
    if (args.verbose_prompt)
        fmt::print(stderr, "prompt ({} tokens):\n{}\n[end of prompt]\n", prompt.size(), prompt_text);
    Sampler sampler(args.sampling);
    LoadOptions options{.n_threads = args.threads, .n_ctx = args.ctx};
    apply_device_flags(args.device, options);
    const auto model = Model::load(args.model, options);
    if (static_cast<int64_t>(prompt.size()) >= model->n_ctx())
        throw Error(fmt::format("the prompt is {} tokens, the context only {} (-c)", prompt.size(), model->n_ctx()));
    for (int32_t t : prompt) sampler.accept(t);
    Session session(model);
    note_random_weights(args.model);

    const auto t_prompt = std::chrono::steady_clock::now();
    session.prefill(prompt);
    const double prompt_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_prompt).count();

    const Generation g =
        generate(session, sampler, tokenizer, {.n_predict = args.n_predict, .stop = args.stop, .interrupt = nullptr},
                 [](std::string_view text) {
                     std::fwrite(text.data(), 1, text.size(), stdout);
                     std::fflush(stdout);
                 });
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (g.reason == StopReason::ContextFull)
        fmt::print(stderr, "note: generation stopped: the context of {} tokens is full (-c)\n", model->n_ctx());
    fmt::print(
        stderr,
        "prompt: {} tokens in {:.3f} s ({:.1f} tok/s); generation: {} tokens in {:.3f} s ({:.1f} tok/s); seed {}; "
        "on {}\n",
        prompt.size(), prompt_s, static_cast<double>(prompt.size()) / prompt_s, g.n_generated, g.seconds,
        g.n_generated / std::max(g.seconds, 1e-9), sampler.seed(), model->backend_name());
    if (const std::string cache = expert_cache_summary(model->expert_cache_stats()); !cache.empty())
        fmt::print(stderr, "{}\n", cache);
}

}  // namespace

void add_run_command(CLI::App& app) {
    auto args = std::make_shared<RunArgs>();
    auto* cmd = app.add_subcommand("run", "Generate text from a prompt, streamed to stdout");
    cmd->add_option("-m,--model", args->model, "GGUF model file, or HF model directory")->required();
    cmd->add_option("-p,--prompt", args->prompt, "the prompt")->required();
    cmd->add_option("-n,--n-predict", args->n_predict, "tokens to generate at most")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("-t,--threads", args->threads, "compute threads (0: all)")->check(CLI::NonNegativeNumber);
    cmd->add_option("-c,--ctx", args->ctx, "context length")->capture_default_str()->check(CLI::PositiveNumber);
    add_sampling_options(*cmd, args->sampling);
    cmd->add_option("--stop", args->stop, "stop when this text is generated (repeatable)");
    add_device_flags(cmd, args->device);
    cmd->add_flag("--no-special", args->no_special, "treat special-token text in the prompt as plain text");
    cmd->add_flag("--chat", args->chat, "apply the model's chat template to the prompt as one user message");
    cmd->add_option("--system", args->system, "with --chat: a system message before the prompt");
    add_chat_flags(*cmd, args->chat_flags);
    cmd->add_flag("--verbose-prompt", args->verbose_prompt, "print the prompt text (after the template) to stderr");
    cmd->callback([args] { run_generate(*args); });
}

}  // namespace hymoe::cli
