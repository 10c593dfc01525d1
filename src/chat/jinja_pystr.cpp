// Python str behaviour over UTF-8 strings. Code points come from a lenient decoder: template
// sources and contexts may hold malformed UTF-8, which must not crash or read out of bounds.
#include "chat/jinja_pystr.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>
#include <utf8proc.h>

#include "util/utf8.hpp"

namespace hymoe::jinja::pystr {

namespace {

utf8proc_category_t category(char32_t cp) {
    return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}

bool is_ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool is_line_break(char32_t cp) {
    return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D || cp == 0x1E ||
           cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

}  // namespace

char32_t decode(std::string_view s, size_t& pos) {
    const auto b0 = static_cast<unsigned char>(s[pos]);
    if (b0 < 0x80) {
        ++pos;
        return b0;
    }
    size_t n = 0;
    char32_t cp = 0;
    if ((b0 & 0xE0) == 0xC0) {
        n = 1;
        cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
        n = 2;
        cp = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
        n = 3;
        cp = b0 & 0x07;
    } else {
        ++pos;
        return b0;
    }
    if (pos + n >= s.size()) {  // truncated sequence
        ++pos;
        return b0;
    }
    for (size_t i = 1; i <= n; ++i) {
        const auto b = static_cast<unsigned char>(s[pos + i]);
        if ((b & 0xC0) != 0x80) {
            ++pos;
            return b0;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr char32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF) {
        ++pos;
        return b0;
    }
    pos += n + 1;
    return cp;
}

void encode(std::string& out, char32_t cp) {
    append_utf8(out, std::min<char32_t>(cp, 0x10FFFF));
}

std::vector<char32_t> decode_all(std::string_view s) {
    std::vector<char32_t> cps;
    cps.reserve(s.size());
    size_t pos = 0;
    while (pos < s.size()) cps.push_back(decode(s, pos));
    return cps;
}

std::string encode_all(const std::vector<char32_t>& cps, size_t begin, size_t end) {
    std::string out;
    for (size_t i = begin; i < end && i < cps.size(); ++i) encode(out, cps[i]);
    return out;
}

size_t length(std::string_view s) {
    if (is_ascii(s)) return s.size();
    size_t n = 0, pos = 0;
    while (pos < s.size()) {
        decode(s, pos);
        ++n;
    }
    return n;
}

bool is_space(char32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

bool is_printable(char32_t cp) {
    if (cp < 0x80) return cp >= 0x20 && cp < 0x7F;
    switch (category(cp)) {
        case UTF8PROC_CATEGORY_CC:
        case UTF8PROC_CATEGORY_CF:
        case UTF8PROC_CATEGORY_CS:
        case UTF8PROC_CATEGORY_CO:
        case UTF8PROC_CATEGORY_CN:
        case UTF8PROC_CATEGORY_ZL:
        case UTF8PROC_CATEGORY_ZP:
        case UTF8PROC_CATEGORY_ZS: return false;
        default: return true;
    }
}

std::string repr(std::string_view s) {
    const bool has_single = s.find('\'') != std::string_view::npos;
    const bool has_double = s.find('"') != std::string_view::npos;
    const char quote = has_single && !has_double ? '"' : '\'';
    std::string out(1, quote);
    size_t pos = 0;
    while (pos < s.size()) {
        const char32_t cp = decode(s, pos);
        if (cp == static_cast<char32_t>(quote) || cp == '\\') {
            out += '\\';
            out += static_cast<char>(cp);
        } else if (cp == '\t') {
            out += "\\t";
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\r') {
            out += "\\r";
        } else if (is_printable(cp)) {
            encode(out, cp);
        } else if (cp < 0x100) {
            out += fmt::format("\\x{:02x}", static_cast<uint32_t>(cp));
        } else if (cp < 0x10000) {
            out += fmt::format("\\u{:04x}", static_cast<uint32_t>(cp));
        } else {
            out += fmt::format("\\U{:08x}", static_cast<uint32_t>(cp));
        }
    }
    out += quote;
    return out;
}

// Python's float repr: the shortest digits that round-trip, positional for exponents in
// [-4, 16), scientific otherwise, and always a ".0" or an exponent so it reads as a float.
std::string float_repr(double f) {
    if (std::isnan(f)) return "nan";
    if (std::isinf(f)) return f < 0 ? "-inf" : "inf";
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
    std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
    std::string sign;
    if (!sci.empty() && sci[0] == '-') {
        sign = "-";
        sci.remove_prefix(1);
    }
    const size_t e_pos = sci.find('e');
    std::string digits;
    for (char c : sci.substr(0, e_pos))
        if (c != '.') digits += c;
    int exp = 0;
    std::from_chars(sci.data() + e_pos + 1 + (sci[e_pos + 1] == '+' ? 1 : 0), sci.data() + sci.size(), exp);
    const int n = static_cast<int>(digits.size());
    if (exp >= -4 && exp < 16) {
        std::string out;
        if (exp < 0) {
            out = "0.";
            out.append(static_cast<size_t>(-exp - 1), '0');
            out += digits;
        } else if (exp + 1 >= n) {
            out = digits;
            out.append(static_cast<size_t>(exp + 1 - n), '0');
            out += ".0";
        } else {
            out = digits;
            out.insert(static_cast<size_t>(exp + 1), 1, '.');
        }
        return sign + out;
    }
    const std::string_view d = digits;
    return fmt::format("{}{}{}{}e{}{:02d}", sign, d.substr(0, 1), n > 1 ? "." : "", d.substr(1), exp < 0 ? '-' : '+',
                       std::abs(exp));
}

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
    const std::vector<char32_t> cps = decode_all(s);
    std::vector<char32_t> set;
    if (chars) set = decode_all(*chars);
    auto strip_it = [&](char32_t cp) {
        return chars ? std::find(set.begin(), set.end(), cp) != set.end() : is_space(cp);
    };
    size_t b = 0, e = cps.size();
    if (left)
        while (b < e && strip_it(cps[b])) ++b;
    if (right)
        while (e > b && strip_it(cps[e - 1])) --e;
    return encode_all(cps, b, e);
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
    std::vector<std::string> out;
    if (maxsplit < 0) maxsplit = std::numeric_limits<int64_t>::max();
    if (sep) {
        if (sep->empty()) fail("ValueError: empty separator");
        size_t start = 0;
        while (maxsplit-- > 0) {
            const size_t at = s.find(*sep, start);
            if (at == std::string_view::npos) break;
            out.emplace_back(s.substr(start, at - start));
            start = at + sep->size();
        }
        out.emplace_back(s.substr(start));
        return out;
    }
    const std::vector<char32_t> cps = decode_all(s);
    size_t i = 0;
    const size_t n = cps.size();
    while (maxsplit-- > 0) {
        while (i < n && is_space(cps[i])) ++i;
        if (i == n) break;
        const size_t j = i;
        while (i < n && !is_space(cps[i])) ++i;
        out.push_back(encode_all(cps, j, i));
    }
    if (i < n) {
        while (i < n && is_space(cps[i])) ++i;
        if (i != n) out.push_back(encode_all(cps, i, n));
    }
    return out;
}

std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
    std::vector<std::string> out;
    if (maxsplit < 0) maxsplit = std::numeric_limits<int64_t>::max();
    if (sep) {
        if (sep->empty()) fail("ValueError: empty separator");
        size_t end = s.size();
        while (maxsplit-- > 0) {
            if (end < sep->size()) break;
            const size_t at = s.rfind(*sep, end - sep->size());
            if (at == std::string_view::npos) break;
            out.emplace_back(s.substr(at + sep->size(), end - at - sep->size()));
            end = at;
        }
        out.emplace_back(s.substr(0, end));
    } else {
        const std::vector<char32_t> cps = decode_all(s);
        size_t i = cps.size();
        while (maxsplit-- > 0) {
            while (i > 0 && is_space(cps[i - 1])) --i;
            if (i == 0) break;
            const size_t j = i;
            while (i > 0 && !is_space(cps[i - 1])) --i;
            out.push_back(encode_all(cps, i, j));
        }
        if (i > 0) {
            while (i > 0 && is_space(cps[i - 1])) --i;
            if (i != 0) out.push_back(encode_all(cps, 0, i));
        }
    }
    std::reverse(out.begin(), out.end());
    return out;
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
    const std::vector<char32_t> cps = decode_all(s);
    std::vector<std::string> out;
    size_t start = 0, i = 0;
    while (i < cps.size()) {
        if (!is_line_break(cps[i])) {
            ++i;
            continue;
        }
        size_t eol = i + 1;
        if (cps[i] == '\r' && eol < cps.size() && cps[eol] == '\n') ++eol;
        out.push_back(encode_all(cps, start, keepends ? eol : i));
        start = i = eol;
    }
    if (start < cps.size()) out.push_back(encode_all(cps, start, cps.size()));
    return out;
}

std::string replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count) {
    if (count < 0) count = std::numeric_limits<int64_t>::max();
    std::string out;
    if (old.empty()) {
        // Python inserts the replacement before every character and at the end.
        size_t pos = 0;
        while (pos < s.size() && count-- > 0) {
            out += repl;
            const size_t start = pos;
            decode(s, pos);
            out += s.substr(start, pos - start);
        }
        if (pos < s.size()) {
            out += s.substr(pos);
        } else if (count-- > 0) {
            out += repl;
        }
        return out;
    }
    size_t start = 0;
    while (count-- > 0) {
        const size_t at = s.find(old, start);
        if (at == std::string_view::npos) break;
        out += s.substr(start, at - start);
        out += repl;
        start = at + old.size();
    }
    out += s.substr(start);
    return out;
}

int64_t find(std::string_view s, std::string_view sub, std::optional<int64_t> start, std::optional<int64_t> end,
             bool reverse) {
    const std::vector<char32_t> cps = decode_all(s);
    const std::vector<char32_t> needle = decode_all(sub);
    const auto len = static_cast<int64_t>(cps.size());
    auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
        if (!v) return dflt;
        int64_t x = *v < 0 ? *v + len : *v;
        return std::clamp<int64_t>(x, 0, len);
    };
    const int64_t b = start && *start > len ? len + 1 : clamp(start, 0);
    const int64_t e = clamp(end, len);
    const auto m = static_cast<int64_t>(needle.size());
    if (b > len || e - b < m) return -1;
    auto match_at = [&](int64_t i) { return std::equal(needle.begin(), needle.end(), cps.begin() + i); };
    if (reverse) {
        for (int64_t i = e - m; i >= b; --i)
            if (match_at(i)) return i;
    } else {
        for (int64_t i = b; i + m <= e; ++i)
            if (match_at(i)) return i;
    }
    return -1;
}

int64_t count(std::string_view s, std::string_view sub) {
    if (sub.empty()) return static_cast<int64_t>(length(s)) + 1;
    int64_t n = 0;
    for (size_t at = s.find(sub); at != std::string_view::npos; at = s.find(sub, at + sub.size())) ++n;
    return n;
}

bool is_class(std::string_view s, CharClass c) {
    if (s.empty()) return false;
    bool any_cased = false;
    bool prev_cased = false;
    size_t pos = 0;
    while (pos < s.size()) {
        const char32_t cp = decode(s, pos);
        const auto cat = category(cp);
        const bool alpha = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
        const bool decimal = cat == UTF8PROC_CATEGORY_ND;
        const bool digit = decimal || cp == 0xB2 || cp == 0xB3 || cp == 0xB9 || (cp >= 0x2070 && cp <= 0x2079) ||
                           (cp >= 0x2080 && cp <= 0x2089) || (cp >= 0x2460 && cp <= 0x2468);
        const bool numeric = decimal || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
        switch (c) {
            case CharClass::Space:
                if (!is_space(cp)) return false;
                break;
            case CharClass::Digit:
                if (!digit) return false;
                break;
            case CharClass::Decimal:
                if (!decimal) return false;
                break;
            case CharClass::Numeric:
                if (!numeric && !digit) return false;
                break;
            case CharClass::Alpha:
                if (!alpha) return false;
                break;
            case CharClass::Alnum:
                if (!alpha && !numeric && !digit) return false;
                break;
            case CharClass::Lower:
                if (is_uppercase(cp) || cat == UTF8PROC_CATEGORY_LT) return false;
                any_cased |= is_lowercase(cp);
                break;
            case CharClass::Upper:
                if (is_lowercase(cp) || cat == UTF8PROC_CATEGORY_LT) return false;
                any_cased |= is_uppercase(cp);
                break;
            case CharClass::Title:
                if (is_uppercase(cp) || cat == UTF8PROC_CATEGORY_LT) {
                    if (prev_cased) return false;
                    prev_cased = any_cased = true;
                } else if (is_lowercase(cp)) {
                    if (!prev_cased) return false;
                    prev_cased = any_cased = true;
                } else {
                    prev_cased = false;
                }
                break;
        }
    }
    return (c == CharClass::Lower || c == CharClass::Upper || c == CharClass::Title) ? any_cased : true;
}

std::string center(std::string_view s, int64_t width) {
    const auto len = static_cast<int64_t>(length(s));
    if (width <= len) return std::string(s);
    const int64_t marg = width - len;
    const int64_t left = marg / 2 + (marg & width & 1);
    return std::string(static_cast<size_t>(left), ' ') + std::string(s) +
           std::string(static_cast<size_t>(marg - left), ' ');
}

SliceRange slice_indices(int64_t len, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) {
    if (step == 0) fail("ValueError: slice step cannot be zero");
    const int64_t lower = step < 0 ? -1 : 0;
    const int64_t upper = step < 0 ? len - 1 : len;
    auto fix = [&](std::optional<int64_t> v, int64_t dflt) {
        if (!v) return dflt;
        int64_t x = *v;
        if (x < 0) {
            x += len;
            if (x < lower) x = lower;
        } else if (x > upper) {
            x = upper;
        }
        return x;
    };
    const int64_t b = fix(start, step < 0 ? upper : lower);
    const int64_t e = fix(stop, step < 0 ? lower : upper);
    int64_t count = 0;
    if (step > 0 && b < e) count = (e - b - 1) / step + 1;
    if (step < 0 && e < b) count = (b - e - 1) / (-step) + 1;
    return {b, step, count};
}

std::optional<std::string> index(std::string_view s, int64_t i) {
    const std::vector<char32_t> cps = decode_all(s);
    const auto len = static_cast<int64_t>(cps.size());
    if (i < 0) i += len;
    if (i < 0 || i >= len) return std::nullopt;
    std::string out;
    encode(out, cps[static_cast<size_t>(i)]);
    return out;
}

std::string slice(std::string_view s, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) {
    const std::vector<char32_t> cps = decode_all(s);
    const SliceRange r = slice_indices(static_cast<int64_t>(cps.size()), start, stop, step);
    std::string out;
    for (int64_t k = 0, i = r.start; k < r.count; ++k, i += r.step) encode(out, cps[static_cast<size_t>(i)]);
    return out;
}

}  // namespace hymoe::jinja::pystr
