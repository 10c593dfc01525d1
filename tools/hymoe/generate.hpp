// What `hymoe run` and `hymoe chat` share: the sampling flags, and the loop that samples,
// streams text and stops on an end-of-generation token, a stop string, the token limit, a full
// context or an interrupt (Ctrl-C).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "chat/chat_template.hpp"
#include "hymoe/engine.hpp"
#include "runtime/sampler.hpp"
#include "tokenizer/tokenizer.hpp"

namespace hymoe::cli {

// --temp, --top-k, --top-p, --min-p, the penalties, --repeat-last-n, --seed.
void add_sampling_options(CLI::App& cmd, SamplingParams& params);

// How a conversation becomes a prompt: --chat-template FILE, --no-think, --reasoning-effort.
struct ChatFlags {
    std::string template_path;
    bool no_think = false;
    std::string reasoning_effort;
};
void add_chat_flags(CLI::App& cmd, ChatFlags& flags);
ChatRenderOptions chat_render_options(const ChatFlags& flags, bool add_generation_prompt = true);

// The tokenizer of a GGUF file (its tokenizer.ggml.* metadata) or of an HF directory
// (tokenizer.json).
Tokenizer load_tokenizer(const std::string& model_path);
// Says on stderr that a model's weights are random (hymoe synth writes "random weights" into
// general.name), so nobody mistakes its text for a model's.
void note_random_weights(const std::string& model_path);

enum class StopReason { EndOfGeneration, StopString, TokenLimit, ContextFull, Interrupted };

struct Generation {
    std::string text;                // what was streamed (a matched stop string excluded)
    int n_generated = 0;             // sampled, an end-of-generation token included
    std::vector<int32_t> evaluated;  // generated tokens now in the session, in order
    double seconds = 0.0;
    StopReason reason = StopReason::TokenLimit;
};

struct GenerateOptions {
    int n_predict = -1;  // tokens at most; < 0: until the context is full
    std::vector<std::string> stop;
    const std::atomic<bool>* interrupt = nullptr;  // set from a signal handler to stop early
};

// Generates after what `session` holds (its logits() are the next token's), writing text to
// `emit` as it becomes complete UTF-8. Generated tokens are evaluated into the session when
// another follows them (Generation::evaluated), so a conversation can continue from it.
// Needs n_predict != 0 and session.n_past() < n_ctx.
Generation generate(Session& session, Sampler& sampler, const Tokenizer& tokenizer, const GenerateOptions& options,
                    const std::function<void(std::string_view)>& emit);

// Evaluates `tokens` in chunks, checking `interrupt` between them; false if interrupted (the
// session then holds some of them).
bool prefill_interruptible(Session& session, std::span<const int32_t> tokens, const std::atomic<bool>* interrupt);

}  // namespace hymoe::cli
