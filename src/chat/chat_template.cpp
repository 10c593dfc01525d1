#include "chat/chat_template.hpp"

#include <filesystem>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "chat/jinja.hpp"
#include "format/model_file.hpp"
#include "hymoe/error.hpp"
#include "tokenizer/hf_tokenizer.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/mapped_file.hpp"

namespace hymoe {

namespace {

std::string role_label(const std::string& role) {
    if (role.empty()) return role;
    std::string label = role;
    if (label[0] >= 'a' && label[0] <= 'z') label[0] = static_cast<char>(label[0] - 'a' + 'A');
    return label;
}

std::string read_text_file(const std::string& path) {
    const MappedFile file(path);
    return {reinterpret_cast<const char*>(file.bytes().data()), file.size()};
}

std::string token_text(const Tokenizer& tokenizer, int32_t id) {
    return id >= 0 && id < tokenizer.n_vocab() ? tokenizer.token_to_piece(id) : std::string();
}

}  // namespace

std::string render_plain_chat(std::span<const ChatMessage> messages, bool add_generation_prompt) {
    std::string out;
    for (const ChatMessage& m : messages) out += fmt::format("{}: {}\n\n", role_label(m.role), m.content);
    if (add_generation_prompt) out += "Assistant:";
    return out;
}

ChatTemplate::ChatTemplate(std::string source, std::string bos_token, std::string eos_token, std::string origin)
    : source_(std::move(source)),
      bos_token_(std::move(bos_token)),
      eos_token_(std::move(eos_token)),
      origin_(std::move(origin)) {
    if (source_.empty()) {
        fallback_reason_ = fmt::format("{} has no chat template", origin_);
    } else {
        try {
            template_ = std::make_unique<jinja::Template>(source_);
        } catch (const Error& e) {
            fallback_reason_ = fmt::format("the chat template of {} could not be parsed ({})", origin_, e.what());
        }
    }
    if (!fallback_reason_.empty())
        spdlog::warn("{}: using a plain \"User: ... Assistant:\" format, which the model may not follow",
                     fallback_reason_);
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

ChatTemplate ChatTemplate::for_model(const std::string& model_path, const Tokenizer& tokenizer,
                                     const std::string& override_path) {
    std::string bos = token_text(tokenizer, tokenizer.bos());
    std::string eos = token_text(tokenizer, tokenizer.eos());
    if (!override_path.empty()) return {read_text_file(override_path), bos, eos, override_path};
    if (std::filesystem::is_directory(model_path)) {
        const tok::HfChatConfig hf = tok::read_hf_chat_config(model_path);
        return {hf.chat_template.value_or(""), hf.bos_token.value_or(bos), hf.eos_token.value_or(eos), model_path};
    }
    const ModelFile file = open_model_file(model_path);
    const auto source = file.metadata().get_string("tokenizer.chat_template");
    return {std::string(source.value_or("")), bos, eos, model_path};
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, const ChatRenderOptions& options) const {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const ChatMessage& m : messages) {
        nlohmann::ordered_json msg = {{"role", m.role}, {"content", m.content}};
        if (m.reasoning) msg["reasoning_content"] = *m.reasoning;
        list.push_back(std::move(msg));
    }
    return render(list, options);
}

namespace {

// What transformers does to the conversation before the template sees it: keys whose value is
// None are dropped, and reasoning given under any of its names is offered under all of them
// ({"thinking": r, **message, "reasoning_content": r}).
nlohmann::ordered_json normalize_messages(const nlohmann::ordered_json& messages) {
    if (!messages.is_array()) throw Error("chat messages must be a JSON array");
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& message : messages) {
        if (!message.is_object()) throw Error(fmt::format("chat message is not an object: {}", message.dump()));
        nlohmann::ordered_json clean = nlohmann::ordered_json::object();
        for (const auto& [key, value] : message.items())
            if (!value.is_null()) clean[key] = value;
        const nlohmann::ordered_json* reasoning = nullptr;
        for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
            if (clean.contains(key)) {
                reasoning = &clean[key];
                break;
            }
        }
        if (reasoning == nullptr) {
            out.push_back(std::move(clean));
            continue;
        }
        nlohmann::ordered_json aliased = {{"thinking", *reasoning}};
        for (const auto& [key, value] : clean.items()) aliased[key] = value;
        aliased["reasoning_content"] = aliased["thinking"];
        out.push_back(std::move(aliased));
    }
    return out;
}

}  // namespace

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, const ChatRenderOptions& options) const {
    if (template_ == nullptr) {
        std::vector<ChatMessage> plain;
        for (const auto& m : normalize_messages(messages))
            plain.emplace_back(m.contains("role") && m["role"].is_string() ? m["role"].get<std::string>() : "",
                               !m.contains("content")     ? std::string()
                               : m["content"].is_string() ? m["content"].get<std::string>()
                                                          : m["content"].dump());
        return render_plain_chat(plain, options.add_generation_prompt);
    }
    // The variables apply_chat_template gives the template: the special tokens the tokenizer
    // has, the keyword arguments, then messages, tools, documents and add_generation_prompt.
    nlohmann::ordered_json context = nlohmann::ordered_json::object();
    if (!bos_token_.empty()) context["bos_token"] = bos_token_;
    if (!eos_token_.empty()) context["eos_token"] = eos_token_;
    for (const auto& [key, value] : options.extra.items()) context[key] = value;
    context["messages"] = normalize_messages(messages);
    context["tools"] = options.tools;
    context["documents"] = nullptr;
    context["add_generation_prompt"] = options.add_generation_prompt;
    return template_->render(context, {.now = now_});
}

std::vector<std::string> ChatTemplate::stop_strings() const {
    if (template_ == nullptr) return {"\n\nUser:", "\nUser:"};
    return {};
}

}  // namespace hymoe
