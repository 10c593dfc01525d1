#include "generate.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <fmt/core.h>

#include "format/model_file.hpp"
#include "hymoe/error.hpp"

namespace hymoe::cli {

void add_sampling_options(CLI::App& cmd, SamplingParams& params) {
    cmd.add_option("--temp", params.temperature, "temperature (0: greedy)")->capture_default_str();
    cmd.add_option("--top-k", params.top_k, "top-k (0: off)")->capture_default_str();
    cmd.add_option("--top-p", params.top_p, "top-p (1: off)")->capture_default_str();
    cmd.add_option("--min-p", params.min_p, "min-p (0: off)")->capture_default_str();
    cmd.add_option("--repeat-penalty", params.repeat_penalty, "repetition penalty (1: off)")->capture_default_str();
    cmd.add_option("--presence-penalty", params.presence_penalty, "presence penalty (0: off)")->capture_default_str();
    cmd.add_option("--frequency-penalty", params.frequency_penalty, "frequency penalty (0: off)")
        ->capture_default_str();
    cmd.add_option("--repeat-last-n", params.penalty_last_n, "tokens the penalties look back over")
        ->capture_default_str();
    cmd.add_option("--seed", params.seed, "sampling seed (0: random)")->capture_default_str();
}

void add_chat_flags(CLI::App& cmd, ChatFlags& flags) {
    cmd.add_option("--chat-template", flags.template_path, "a Jinja chat template file used instead of the model's")
        ->check(CLI::ExistingFile);
    cmd.add_flag("--no-think", flags.no_think, "pass enable_thinking=false to the template (Qwen3)");
    cmd.add_option("--reasoning-effort", flags.reasoning_effort, "pass reasoning_effort to the template (gpt-oss)")
        ->check(CLI::IsMember({"low", "medium", "high"}));
}

ChatRenderOptions chat_render_options(const ChatFlags& flags, bool add_generation_prompt) {
    ChatRenderOptions options;
    options.add_generation_prompt = add_generation_prompt;
    if (flags.no_think) options.extra["enable_thinking"] = false;
    if (!flags.reasoning_effort.empty()) options.extra["reasoning_effort"] = flags.reasoning_effort;
    return options;
}

void note_random_weights(const std::string& model_path) {
    if (std::filesystem::is_directory(model_path)) return;
    const ModelFile file = open_model_file(model_path);
    if (file.metadata().get_string("general.name").value_or("").find("random weights") != std::string_view::npos)
        fmt::print(stderr, "note: {} has random weights (hymoe synth): the text it generates is noise\n", model_path);
}

Tokenizer load_tokenizer(const std::string& model_path) {
    if (std::filesystem::is_directory(model_path)) return Tokenizer::from_hf(model_path);
    const ModelFile file = open_model_file(model_path);
    if (file.format() != FileFormat::Gguf)
        throw Error(fmt::format("{}: a safetensors file has no tokenizer; pass its directory (with tokenizer.json)",
                                model_path));
    return Tokenizer::from_gguf(file);
}

namespace {
bool interrupted(const std::atomic<bool>* flag) {
    return flag != nullptr && flag->load(std::memory_order_relaxed);
}
}  // namespace

Generation generate(Session& session, Sampler& sampler, const Tokenizer& tokenizer, const GenerateOptions& options,
                    const std::function<void(std::string_view)>& emit) {
    Generation g;
    TextStreamer streamer;
    StopMatcher stops(options.stop);
    const int64_t n_ctx = session.model().n_ctx();
    const auto t0 = std::chrono::steady_clock::now();
    auto out = [&](const std::string& text) {
        if (text.empty()) return;
        g.text += text;
        emit(text);
    };
    while (options.n_predict != 0) {
        if (interrupted(options.interrupt)) {
            g.reason = StopReason::Interrupted;
            break;
        }
        const int32_t id = sampler.sample(session.logits());
        ++g.n_generated;
        if (tokenizer.is_end_of_generation(id)) {
            g.reason = StopReason::EndOfGeneration;
            break;
        }
        out(stops.feed(streamer.feed(tokenizer, id)));
        if (stops.stopped()) {
            g.reason = StopReason::StopString;
            break;
        }
        // The last token is evaluated only if another one will be sampled after it.
        if (options.n_predict >= 0 && g.n_generated >= options.n_predict) {
            g.reason = StopReason::TokenLimit;
            break;
        }
        if (session.n_past() >= n_ctx) {
            g.reason = StopReason::ContextFull;
            break;
        }
        session.decode(id);
        g.evaluated.push_back(id);
    }
    if (g.reason != StopReason::StopString) out(stops.feed(streamer.flush()) + stops.flush());
    g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return g;
}

bool prefill_interruptible(Session& session, std::span<const int32_t> tokens, const std::atomic<bool>* interrupt) {
    // Chunks long enough that the per-call overhead does not matter, short enough that Ctrl-C
    // answers within a fraction of a second on a CPU.
    constexpr size_t kChunk = 256;
    for (size_t i = 0; i < tokens.size(); i += kChunk) {
        if (interrupted(interrupt)) return false;
        session.prefill(tokens.subspan(i, std::min(kChunk, tokens.size() - i)));
    }
    return true;
}

}  // namespace hymoe::cli
