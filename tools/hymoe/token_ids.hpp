// Token ids as users type them on the command line: "1,2,3", "1 2 3" or "[1, 2, 3]".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hymoe::cli {

// Throws hymoe::Error naming `flag`, the item and its index for anything that is not an id;
// with n_vocab > 0 an id must also be below it.
std::vector<int32_t> parse_token_ids(const std::string& text, std::string_view flag, int64_t n_vocab = 0);

}  // namespace hymoe::cli
