// `hymoe chat`: an interactive conversation. Each turn renders the whole history through the
// chat template, and only the tokens after the part the KV cache already holds are evaluated.
// Ctrl-C stops the answer being written (the program goes on); /reset starts over; /exit or
// end of input (Ctrl-D) quits.
#include <signal.h>

#include <algorithm>
#include <atomic>
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
#include "hymoe/error.hpp"
#include "line_reader.hpp"
#include "util/utf8.hpp"

namespace hymoe::cli {

namespace {

struct ChatArgs {
    std::string model;
    std::string system;
    int n_predict = -1;
    int threads = 0;
    int64_t ctx = 4096;
    ChatFlags chat_flags;
    std::vector<std::string> stop;
    SamplingParams sampling;
    DeviceFlags device;
};

// Set by SIGINT while an answer is being prefilled or generated. A lock-free atomic is safe to
// store from a signal handler.
std::atomic<bool> g_interrupt{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_sigint(int /*signal*/) {
    g_interrupt.store(true, std::memory_order_relaxed);
}

// While alive, Ctrl-C sets g_interrupt instead of ending the program.
class InterruptScope {
public:
    InterruptScope() {
        g_interrupt.store(false);
        struct sigaction action {};
        action.sa_handler = on_sigint;
        sigemptyset(&action.sa_mask);
        ::sigaction(SIGINT, &action, &previous_);
    }
    ~InterruptScope() { ::sigaction(SIGINT, &previous_, nullptr); }
    InterruptScope(const InterruptScope&) = delete;
    InterruptScope& operator=(const InterruptScope&) = delete;

private:
    struct sigaction previous_ {};
};

std::string trim(const std::string& s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return {};
    return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

void write_out(std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

struct Totals {
    int answers = 0;
    size_t prompt_tokens = 0;
    double prompt_s = 0.0;
    size_t generated = 0;
    double generate_s = 0.0;
};

class ChatLoop {
public:
    ChatLoop(const ChatArgs& args, const Tokenizer& tokenizer, const ChatTemplate& chat,
             std::shared_ptr<const Model> model)
        : args_(args),
          tokenizer_(tokenizer),
          chat_(chat),
          session_(std::move(model)),
          sampler_(args.sampling),
          stops_(args.stop) {
        for (const std::string& s : chat_.stop_strings()) stops_.push_back(s);
        reset();
    }

    void reset() {
        history_.clear();
        if (!args_.system.empty()) history_.emplace_back("system", args_.system);
        session_.reset();
        cached_.clear();
    }

    // One user message in, one answer out (streamed to stdout).
    void turn(const std::string& message) {
        history_.emplace_back("user", message);
        std::vector<int32_t> prompt;
        try {
            const std::string text = chat_.render(history_, chat_render_options(args_.chat_flags));
            prompt = tokenizer_.encode(text, chat_.tokenize_with_special(), true);
        } catch (const Error& e) {
            history_.pop_back();
            fmt::print(stderr, "hymoe: {}\n", e.what());
            return;
        }
        const int64_t n_ctx = session_.model().n_ctx();
        if (static_cast<int64_t>(prompt.size()) >= n_ctx) {
            history_.pop_back();
            fmt::print(stderr,
                       "hymoe: the context is full: the conversation with this message is {} tokens and the "
                       "context holds {} (-c); /reset starts a new conversation\n",
                       prompt.size(), n_ctx);
            return;
        }

        // Keep the longest prefix the cache already holds; at least one token is evaluated so
        // that there are logits to sample from.
        size_t keep = static_cast<size_t>(
            std::mismatch(cached_.begin(), cached_.end(), prompt.begin(), prompt.end()).first - cached_.begin());
        keep = std::min(keep, prompt.size() - 1);
        session_.truncate(static_cast<int64_t>(keep));
        cached_.resize(keep);

        const InterruptScope interrupt_scope;
        const auto t0 = std::chrono::steady_clock::now();
        const std::span<const int32_t> fresh = std::span<const int32_t>(prompt).subspan(keep);
        if (!prefill_interruptible(session_, fresh, &g_interrupt)) {
            session_.truncate(static_cast<int64_t>(keep));
            history_.pop_back();
            fmt::print(stderr, "\n(stopped before the answer began; the message was dropped)\n");
            return;
        }
        totals_.prompt_tokens += fresh.size();
        totals_.prompt_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        cached_ = prompt;
        for (int32_t t : fresh) sampler_.accept(t);

        const Generation g =
            generate(session_, sampler_, tokenizer_,
                     {.n_predict = args_.n_predict, .stop = stops_, .interrupt = &g_interrupt}, write_out);
        write_out("\n");
        cached_.insert(cached_.end(), g.evaluated.begin(), g.evaluated.end());
        ++totals_.answers;
        totals_.generated += static_cast<size_t>(g.n_generated);
        totals_.generate_s += g.seconds;
        history_.emplace_back("assistant", g.text);
        if (g.reason == StopReason::Interrupted) fmt::print(stderr, "(answer stopped)\n");
        if (g.reason == StopReason::ContextFull)
            fmt::print(stderr,
                       "hymoe: the context is full ({} tokens, -c): the answer was cut; /reset starts a new "
                       "conversation\n",
                       n_ctx);
    }

    const Totals& totals() const { return totals_; }

private:
    const ChatArgs& args_;
    const Tokenizer& tokenizer_;
    const ChatTemplate& chat_;
    Session session_;
    Sampler sampler_;
    std::vector<std::string> stops_;
    std::vector<ChatMessage> history_;
    std::vector<int32_t> cached_;  // the tokens session_ holds
    Totals totals_;
};

constexpr const char* kHelp =
    "/reset clears the conversation, /exit quits (or Ctrl-D); end a line with \\ or wrap lines in \"\"\" "
    "to write several lines; Ctrl-C stops an answer";

void run_chat(const ChatArgs& args) {
    require_valid_utf8(args.system, "--system");
    const Tokenizer tokenizer = load_tokenizer(args.model);
    const ChatTemplate chat = ChatTemplate::for_model(args.model, tokenizer, args.chat_flags.template_path);
    const Sampler check_sampling(args.sampling);  // bad sampling values fail before the weights load
    LoadOptions options{.n_threads = args.threads, .n_ctx = args.ctx};
    apply_device_flags(args.device, options);
    const auto model = Model::load(args.model, options);
    note_random_weights(args.model);
    ChatLoop loop(args, tokenizer, chat, model);
    LineReader reader;
    if (reader.interactive())
        fmt::print(stderr, "hymoe chat: {} ({} tokens of context)\n{}\n", args.model, model->n_ctx(), kHelp);

    while (const std::optional<std::string> line = reader.read_message()) {
        const std::string command = trim(*line);
        if (command.empty()) continue;
        if (command == "/exit" || command == "/quit") break;
        if (command == "/reset") {
            loop.reset();
            fmt::print(stderr, "(conversation cleared)\n");
            continue;
        }
        if (command == "/help") {
            fmt::print(stderr, "{}\n", kHelp);
            continue;
        }
        if (const auto bad = find_invalid_utf8(*line)) {
            fmt::print(stderr, "hymoe: the message is not valid UTF-8 (byte {}); it was not sent\n", *bad);
            continue;
        }
        loop.turn(*line);
    }
    const Totals& t = loop.totals();
    fmt::print(stderr,
               "chat: {} answers; prompt: {} tokens in {:.3f} s ({:.1f} tok/s); generation: {} tokens in {:.3f} s "
               "({:.1f} tok/s)\n",
               t.answers, t.prompt_tokens, t.prompt_s,
               static_cast<double>(t.prompt_tokens) / std::max(t.prompt_s, 1e-9), t.generated, t.generate_s,
               static_cast<double>(t.generated) / std::max(t.generate_s, 1e-9));
    if (const std::string cache = expert_cache_summary(model->expert_cache_stats()); !cache.empty())
        fmt::print(stderr, "{}\n", cache);
}

}  // namespace

void add_chat_command(CLI::App& app) {
    auto args = std::make_shared<ChatArgs>();
    auto* cmd = app.add_subcommand("chat", "Interactive multi-turn chat using the model's chat template");
    cmd->add_option("-m,--model", args->model, "GGUF model file, or HF model directory")->required();
    cmd->add_option("--system", args->system, "system message at the start of the conversation");
    cmd->add_option("-n,--n-predict", args->n_predict, "tokens per answer at most (-1: until the model stops)")
        ->capture_default_str()
        ->check(CLI::Range(-1, 1 << 30));
    cmd->add_option("-t,--threads", args->threads, "compute threads (0: all)")->check(CLI::NonNegativeNumber);
    cmd->add_option("-c,--ctx", args->ctx, "context length")->capture_default_str()->check(CLI::PositiveNumber);
    add_sampling_options(*cmd, args->sampling);
    add_device_flags(cmd, args->device);
    cmd->add_option("--stop", args->stop, "end an answer when this text is generated (repeatable)");
    add_chat_flags(*cmd, args->chat_flags);
    cmd->callback([args] { run_chat(*args); });
}

}  // namespace hymoe::cli
