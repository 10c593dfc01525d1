#include "token_ids.hpp"

#include <charconv>
#include <limits>

#include <fmt/core.h>

#include "hymoe/error.hpp"

namespace hymoe::cli {

std::vector<int32_t> parse_token_ids(const std::string& text, std::string_view flag, int64_t n_vocab) {
    const auto is_sep = [](char ch) {
        return ch == ',' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '[' || ch == ']';
    };
    const int64_t limit = n_vocab > 0 ? n_vocab : int64_t{std::numeric_limits<int32_t>::max()} + 1;
    std::vector<int32_t> ids;
    size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && is_sep(text[i])) ++i;
        if (i == text.size()) break;
        size_t j = i;
        while (j < text.size() && !is_sep(text[j])) ++j;
        const std::string item = text.substr(i, j - i);
        int64_t value = 0;
        const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
        if (ec != std::errc() || end != item.data() + item.size() || value < 0 || value >= limit) {
            if (n_vocab > 0)
                throw Error(fmt::format("{}: '{}' (item {}) is not a token id of this vocabulary (0..{})", flag, item,
                                        ids.size(), n_vocab - 1));
            throw Error(fmt::format("{}: '{}' (item {}) is not a token id", flag, item, ids.size()));
        }
        ids.push_back(static_cast<int32_t>(value));
        i = j;
    }
    return ids;
}

}  // namespace hymoe::cli
