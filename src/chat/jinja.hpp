// A Jinja2 interpreter for Hugging Face chat templates (`tokenizer.chat_template`). It renders as
// Python's jinja2 3.1 does when transformers' apply_chat_template calls it: an immutable
// sandbox with trim_blocks and lstrip_blocks, the loopcontrols extension, transformers' globals
// raise_exception and strftime_now, its tojson filter, and the {% generation %} tag.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace hymoe::jinja {

struct RenderOptions {
    // The time strftime_now() formats; nullopt: the current local time. Tests set it.
    std::optional<std::tm> now;
};

class Template {
public:
    // Parses once. Throws hymoe::Error "chat template: line L, column C: <what>" on syntax errors.
    explicit Template(std::string_view source);
    ~Template();
    Template(Template&&) noexcept;
    Template& operator=(Template&&) noexcept;

    // Renders with `context` as the global variables (messages, add_generation_prompt, bos_token,
    // eos_token, enable_thinking, tools, ...). Key order of objects is kept (tojson output and
    // dict iteration follow insertion order, as Python dicts do).
    // Throws hymoe::Error: raise_exception's message as "chat template: <message>"; undefined
    // attribute access / type errors / unknown filters as "chat template: line L: <what>".
    std::string render(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace hymoe::jinja
