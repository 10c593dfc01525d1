// UTF-8 validation of user text (prompts, chat messages), through utf8proc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hymoe {

// The byte offset of the first byte that does not start a valid UTF-8 sequence (overlong
// forms, surrogates and code points above U+10FFFF included), or nullopt if `text` is valid.
std::optional<size_t> find_invalid_utf8(std::string_view text);

// Appends the UTF-8 bytes of code point `cp` (< 0x110000; surrogates are encoded as they are).
void append_utf8(std::string& out, uint32_t cp);

// Throws hymoe::Error "<what>: invalid UTF-8 at byte N (0xXX)" if `text` is not valid UTF-8.
void require_valid_utf8(std::string_view text, std::string_view what);

}  // namespace hymoe
