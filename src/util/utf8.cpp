#include "util/utf8.hpp"

#include <sys/types.h>

#include <fmt/format.h>
#include <utf8proc.h>

#include "hymoe/error.hpp"

namespace hymoe {

std::optional<size_t> find_invalid_utf8(std::string_view text) {
    const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
    size_t pos = 0;
    while (pos < text.size()) {
        utf8proc_int32_t cp = 0;
        const utf8proc_ssize_t n = utf8proc_iterate(bytes + pos, static_cast<utf8proc_ssize_t>(text.size() - pos), &cp);
        if (n <= 0) return pos;
        pos += static_cast<size_t>(n);
    }
    return std::nullopt;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

void require_valid_utf8(std::string_view text, std::string_view what) {
    if (const auto pos = find_invalid_utf8(text))
        throw Error(
            fmt::format("{}: invalid UTF-8 at byte {} (0x{:02X})", what, *pos, static_cast<unsigned char>(text[*pos])));
}

}  // namespace hymoe
