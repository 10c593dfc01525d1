// Chat prompts: a conversation rendered through the model's own Jinja chat template
// (`tokenizer.chat_template`), with the variables Hugging Face's apply_chat_template passes, so
// the prompt text is the one the model was trained on. A model without a template, or with one
// the interpreter cannot parse, gets a plain "Role: text" format and a warning saying so.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace hymoe {

class ModelFile;
class Tokenizer;

namespace jinja {
class Template;
}

struct ChatMessage {
    ChatMessage(std::string r, std::string c, std::optional<std::string> reasoning_text = std::nullopt)
        : role(std::move(r)), content(std::move(c)), reasoning(std::move(reasoning_text)) {}

    std::string role;  // "system", "user", "assistant" (templates may accept others, e.g. "tool")
    std::string content;
    // An assistant turn's reasoning kept apart from its content. Passed to the template as
    // `reasoning_content` and `thinking`, as transformers does.
    std::optional<std::string> reasoning;
};

struct ChatRenderOptions {
    bool add_generation_prompt = true;
    // Tool schemas (a JSON array) the template lists for the model; null: no tools.
    nlohmann::ordered_json tools;
    // More template variables, as keyword arguments to apply_chat_template: Qwen3's
    // enable_thinking, gpt-oss's reasoning_effort, ...
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

class ChatTemplate {
public:
    // `source` empty: the plain format. bos/eos: the token texts the template sees as
    // bos_token/eos_token (empty: not defined, as for a tokenizer without that token).
    // `origin` names where the template came from in messages. A template that does not parse
    // falls back to the plain format with a warning on stderr (never silently).
    ChatTemplate(std::string source, std::string bos_token, std::string eos_token, std::string origin);
    ~ChatTemplate();
    ChatTemplate(ChatTemplate&&) noexcept;
    ChatTemplate& operator=(ChatTemplate&&) noexcept;

    // The template of a model file: tokenizer.chat_template from GGUF metadata, or for an HF
    // directory chat_template.jinja / tokenizer_config.json; bos/eos texts from the tokenizer.
    // `override_path` (a .jinja file) replaces the model's own template.
    static ChatTemplate for_model(const std::string& model_path, const Tokenizer& tokenizer,
                                  const std::string& override_path = {});

    // The prompt text. Throws hymoe::Error when the template itself raises (e.g. "Conversation
    // roles must alternate user/assistant/...") or fails while rendering.
    std::string render(std::span<const ChatMessage> messages, const ChatRenderOptions& options = {}) const;
    // The same for messages as JSON objects, with whatever fields the template reads
    // (tool_calls, name, ...). The plain format reads role and content.
    std::string render(const nlohmann::ordered_json& messages, const ChatRenderOptions& options = {}) const;

    // True when the plain fallback is in use (no template, or one that did not parse).
    bool is_plain() const { return template_ == nullptr; }
    // Whether the tokenizer adds its BOS/EOS to the rendered text. A template writes the special
    // tokens it wants itself (transformers tokenizes its output with add_special_tokens=False);
    // the plain format relies on the tokenizer.
    bool tokenize_with_special() const { return is_plain(); }
    // Stop strings the format needs beyond the end-of-generation tokens (the plain format's
    // next "User:" turn).
    std::vector<std::string> stop_strings() const;
    const std::string& origin() const { return origin_; }
    // The local time strftime_now() reports (tests fix it); by default the current time.
    void set_now(const std::tm& now) { now_ = now; }
    // Why the plain format is used ("no chat template in model.gguf", a parse error), or "".
    const std::string& fallback_reason() const { return fallback_reason_; }

private:
    std::unique_ptr<jinja::Template> template_;
    std::string source_;
    std::string bos_token_;
    std::string eos_token_;
    std::string origin_;
    std::string fallback_reason_;
    std::optional<std::tm> now_;
};

// The plain format used when there is no usable template: "System: ...\n\nUser: ...\n\n
// Assistant: ...\n\n" turns, ending with "Assistant:" when a reply is wanted.
std::string render_plain_chat(std::span<const ChatMessage> messages, bool add_generation_prompt);

}  // namespace hymoe
