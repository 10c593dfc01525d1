// Python's str semantics over UTF-8: lengths, indexes and slices count code points, and the
// string methods and formatting operators templates use behave as CPython's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja_value.hpp"

namespace hymoe::jinja::pystr {

// Decodes one code point at `pos` and advances it; malformed bytes decode as themselves (Latin-1).
char32_t decode(std::string_view s, size_t& pos);
void encode(std::string& out, char32_t cp);
std::vector<char32_t> decode_all(std::string_view s);
std::string encode_all(const std::vector<char32_t>& cps, size_t begin, size_t end);

size_t length(std::string_view s);  // in code points
bool is_space(char32_t cp);         // str.isspace
bool is_printable(char32_t cp);     // str.isprintable, for repr()
// Unicode's Lowercase, Uppercase and Cased properties, as Python's islower/isupper use them.
bool is_lowercase(char32_t cp);
bool is_uppercase(char32_t cp);
bool is_cased(char32_t cp);

std::string repr(std::string_view s);
std::string float_repr(double f);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title(std::string_view s);       // str.title
std::string capitalize(std::string_view s);  // str.capitalize
std::string swapcase(std::string_view s);
// str.strip / lstrip / rstrip; chars nullopt strips whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split / rsplit; sep nullopt splits on runs of whitespace.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
std::string replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);
// str.find / rfind / count over [start, end) in code points; -1 when absent.
int64_t find(std::string_view s, std::string_view sub, std::optional<int64_t> start, std::optional<int64_t> end,
             bool reverse);
int64_t count(std::string_view s, std::string_view sub);

enum class CharClass { Space, Digit, Decimal, Numeric, Alpha, Alnum, Lower, Upper, Title };
bool is_class(std::string_view s, CharClass c);  // str.isspace() and friends

// Python's `fmt % args` (args: a tuple's items, or one value) and str.format.
std::string percent_format(std::string_view fmt, const Value& args);
std::string brace_format(Interp& ip, std::string_view fmt, const CallArgs& args);
// Python's str.center/ljust/rjust padding with spaces.
std::string center(std::string_view s, int64_t width);

// s[index] and s[start:stop:step] with Python's index rules.
std::optional<std::string> index(std::string_view s, int64_t i);
std::string slice(std::string_view s, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step);

// Python's slice.indices(): the concrete start, stop and count for a sequence of `len`.
struct SliceRange {
    int64_t start, step, count;
};
SliceRange slice_indices(int64_t len, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step);

// float(str) and int(str, base) as Python parses them; nullopt when Python raises ValueError.
std::optional<double> parse_float(std::string_view s);
std::optional<int64_t> parse_int(std::string_view s, int base);

}  // namespace hymoe::jinja::pystr
