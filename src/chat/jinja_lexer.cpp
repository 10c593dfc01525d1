// The lexer, a hand-written form of jinja2.lexer.Lexer's regular expressions with trim_blocks
// and lstrip_blocks on (how transformers builds its environment). Where the regexes have a
// subtle rule (lstrip only at a line start, `-` stripping every whitespace, the newline a block
// tag swallows) the code follows them case by case; the comments name the rule.
#include <cstring>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <utf8proc.h>

#include "chat/jinja_ast.hpp"
#include "chat/jinja_pystr.hpp"
#include "hymoe/error.hpp"

namespace hymoe::jinja {

void syntax_error(int line, int col, std::string_view what) {
    throw Error(fmt::format("chat template: line {}, column {}: {}", line, col, what));
}

namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_ident_cp(char32_t cp, bool first) {
    if (cp < 0x80) {
        const char c = static_cast<char>(cp);
        return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && is_digit(c));
    }
    // Python identifiers: letters, marks, digits and connector punctuation.
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
        case UTF8PROC_CATEGORY_NL: return true;
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC:
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_PC: return !first;
        default: return false;
    }
}

// Newlines become "\n", and one trailing newline goes (keep_trailing_newline=False).
std::string normalize(std::string_view src) {
    std::string out;
    out.reserve(src.size());
    for (size_t i = 0; i < src.size(); ++i) {
        if (src[i] == '\r') {
            out += '\n';
            if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
        } else {
            out += src[i];
        }
    }
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

class Lexer {
public:
    explicit Lexer(std::string_view source) : src_(normalize(source)) {
        line_starts_.push_back(0);
        for (size_t i = 0; i < src_.size(); ++i)
            if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }

    std::vector<Token> run() {
        while (pos_ < src_.size()) root();
        push(Tok::Eof, src_.size());
        return std::move(tokens_);
    }

private:
    enum class TagKind { Variable, Block, Comment, Raw };

    std::pair<int, int> line_col(size_t at) const {
        size_t lo = 0, hi = line_starts_.size();
        while (hi - lo > 1) {
            const size_t mid = (lo + hi) / 2;
            if (line_starts_[mid] <= at)
                lo = mid;
            else
                hi = mid;
        }
        const size_t start = line_starts_[lo];
        const size_t col = pystr::length(std::string_view(src_).substr(start, at - start));
        return {static_cast<int>(lo + 1), static_cast<int>(col + 1)};
    }

    [[noreturn]] void error(size_t at, std::string_view what) const {
        const auto [line, col] = line_col(at);
        syntax_error(line, col, what);
    }

    Token& push(Tok type, size_t at, std::string text = {}) {
        Token t;
        t.type = type;
        t.text = std::move(text);
        std::tie(t.line, t.col) = line_col(at);
        tokens_.push_back(std::move(t));
        return tokens_.back();
    }

    // Length of `text` without its trailing whitespace (Python's str.rstrip()).
    static size_t rstripped_size(std::string_view text) {
        size_t keep = 0, pos = 0;
        while (pos < text.size()) {
            const char32_t cp = pystr::decode(text, pos);
            if (!pystr::is_space(cp)) keep = pos;
        }
        return keep;
    }

    static bool all_space(std::string_view text) {
        size_t pos = 0;
        while (pos < text.size())
            if (!pystr::is_space(pystr::decode(text, pos))) return false;
        return true;
    }

    // Whitespace (Python's \s) starting at `at`; returns its end.
    size_t skip_space(size_t at) const {
        while (at < src_.size()) {
            size_t next = at;
            if (!pystr::is_space(pystr::decode(src_, next))) break;
            at = next;
        }
        return at;
    }

    bool starts_with(size_t at, std::string_view s) const {
        return at <= src_.size() && std::string_view(src_).substr(at, s.size()) == s;
    }

    // `{%(-|+|)\s*raw\s*(?:-%}\s*|%})` at `at`: the end of the match, or 0.
    size_t match_raw_begin(size_t at) const {
        size_t p = at + 2;
        if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
        p = skip_space(p);
        if (!starts_with(p, "raw")) return 0;
        p = skip_space(p + 3);
        if (starts_with(p, "-%}")) return skip_space(p + 3);
        if (starts_with(p, "%}")) return p + 2;
        return 0;
    }

    // Emits the data before a tag, applying `-` (strip all whitespace before) or lstrip_blocks
    // (strip spaces from the line start, for block and comment tags only, unless `+`).
    void emit_text(size_t begin, size_t end, char sign, bool lstrip_allowed) {
        std::string_view text = std::string_view(src_).substr(begin, end - begin);
        if (sign == '-') {
            text = text.substr(0, rstripped_size(text));
        } else if (sign != '+' && lstrip_allowed) {
            const size_t nl = text.rfind('\n');
            const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
            if ((l_pos > 0 || line_starting_) && l_pos < text.size() && all_space(text.substr(l_pos)))
                text = text.substr(0, l_pos);
        }
        if (!text.empty()) push(Tok::Data, begin, std::string(text));
    }

    void root() {
        size_t p = pos_;
        TagKind kind{};
        size_t raw_end = 0;
        for (;; ++p) {
            p = src_.find('{', p);
            if (p == std::string::npos || p + 1 >= src_.size()) {
                push(Tok::Data, pos_, src_.substr(pos_));
                pos_ = src_.size();
                return;
            }
            const char c = src_[p + 1];
            if (c == '%') {
                raw_end = match_raw_begin(p);
                kind = raw_end != 0 ? TagKind::Raw : TagKind::Block;
                break;
            }
            if (c == '{') {
                kind = TagKind::Variable;
                break;
            }
            if (c == '#') {
                kind = TagKind::Comment;
                break;
            }
        }
        const char sign = p + 2 < src_.size() && (src_[p + 2] == '-' || src_[p + 2] == '+') ? src_[p + 2] : '\0';
        emit_text(pos_, p, sign, kind != TagKind::Variable);
        switch (kind) {
            case TagKind::Raw:
                line_starting_ = src_[raw_end - 1] == '\n';
                raw(raw_end);
                return;
            case TagKind::Comment: comment(p + 2 + (sign != '\0' ? 1 : 0)); return;
            case TagKind::Variable:
            case TagKind::Block:
                line_starting_ = false;
                tag(p, sign, kind == TagKind::Block);
                return;
        }
    }

    // `(.*?)((?:\+#}|\-#}\s*|#}\n?))`
    void comment(size_t from) {
        const size_t close = src_.find("#}", from);
        if (close == std::string::npos) error(from, "Missing end of comment tag");
        size_t end = close + 2;
        const char before = close > from ? src_[close - 1] : '\0';
        if (before == '-') {
            end = skip_space(end);
        } else if (before != '+' && end < src_.size() && src_[end] == '\n') {
            ++end;  // trim_blocks
        }
        line_starting_ = src_[end - 1] == '\n';
        pos_ = end;
    }

    // The body of {% raw %} up to `{%(-|+|)\s*endraw\s*(?:\+%}|\-%}\s*|%}\n?)`.
    void raw(size_t from) {
        for (size_t p = from;; ++p) {
            p = src_.find("{%", p);
            if (p == std::string::npos) error(from, "Missing end of raw directive");
            size_t q = p + 2;
            const char sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q] : '\0';
            if (sign != '\0') ++q;
            q = skip_space(q);
            if (!starts_with(q, "endraw")) continue;
            q = skip_space(q + 6);
            size_t end = 0;
            if (starts_with(q, "+%}")) {
                end = q + 3;
            } else if (starts_with(q, "-%}")) {
                end = skip_space(q + 3);
            } else if (starts_with(q, "%}")) {
                end = q + 2;
                if (end < src_.size() && src_[end] == '\n') ++end;
            } else {
                continue;
            }
            emit_text(from, p, sign, true);
            line_starting_ = src_[end - 1] == '\n';
            pos_ = end;
            return;
        }
    }

    // Inside {{ }} or {% %}: tokens up to the end tag, which only counts outside brackets.
    void tag(size_t at, char sign, bool block) {
        push(block ? Tok::BlockBegin : Tok::VarBegin, at);
        size_t p = at + 2 + (sign != '\0' ? 1 : 0);
        std::string balance;
        while (p < src_.size()) {
            if (balance.empty()) {
                if (block) {
                    if (starts_with(p, "+%}")) return end_tag(Tok::BlockEnd, p, p + 3);
                    if (starts_with(p, "-%}")) return end_tag(Tok::BlockEnd, p, skip_space(p + 3));
                    if (starts_with(p, "%}")) {
                        const size_t end = p + 2 < src_.size() && src_[p + 2] == '\n' ? p + 3 : p + 2;
                        return end_tag(Tok::BlockEnd, p, end);  // trim_blocks
                    }
                } else {
                    if (starts_with(p, "-}}")) return end_tag(Tok::VarEnd, p, skip_space(p + 3));
                    if (starts_with(p, "}}")) return end_tag(Tok::VarEnd, p, p + 2);
                }
            }
            const size_t after_space = skip_space(p);
            if (after_space != p) {
                p = after_space;
                continue;
            }
            p = token(p, balance);
        }
        pos_ = p;  // the template ended inside the tag: the parser reports it
    }

    void end_tag(Tok type, size_t at, size_t end) {
        push(type, at);
        line_starting_ = src_[end - 1] == '\n';
        pos_ = end;
    }

    // (\d+_)*\d+ at `at`: its end, or npos.
    size_t digits(size_t at) const {
        if (at >= src_.size() || !is_digit(src_[at])) return std::string::npos;
        size_t p = at;
        while (p < src_.size() && is_digit(src_[p])) {
            ++p;
            if (p + 1 < src_.size() && src_[p] == '_' && is_digit(src_[p + 1])) ++p;
        }
        return p;
    }

    size_t float_end(size_t at) const {
        if (at > 0 && src_[at - 1] == '.') return std::string::npos;  // (?<!\.)
        const size_t a = digits(at);
        if (a == std::string::npos) return a;
        size_t frac = std::string::npos;
        if (a < src_.size() && src_[a] == '.') frac = digits(a + 1);
        const size_t b = frac != std::string::npos ? frac : a;
        if (b < src_.size() && (src_[b] == 'e' || src_[b] == 'E')) {
            size_t c = b + 1;
            if (c < src_.size() && (src_[c] == '+' || src_[c] == '-')) ++c;
            const size_t d = digits(c);
            if (d != std::string::npos) return d;
        }
        return frac;
    }

    size_t int_end(size_t at, int& base) const {
        auto run = [&](size_t p, auto ok) {
            const size_t start = p;
            while (p < src_.size()) {
                if (ok(src_[p])) {
                    ++p;
                    continue;
                }
                if (src_[p] == '_' && p + 1 < src_.size() && ok(src_[p + 1])) {
                    p += 2;
                    continue;
                }
                break;
            }
            return p == start ? std::string::npos : p;
        };
        const char c0 = src_[at];
        const char c1 = at + 1 < src_.size() ? static_cast<char>(src_[at + 1] | 0x20) : '\0';
        if (c0 == '0' && (c1 == 'b' || c1 == 'o' || c1 == 'x')) {
            base = c1 == 'b' ? 2 : c1 == 'o' ? 8 : 16;
            const size_t end = run(at + 2, [&](char c) {
                if (base == 2) return c == '0' || c == '1';
                if (base == 8) return c >= '0' && c <= '7';
                return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
            });
            if (end != std::string::npos) return end;
        }
        base = 10;
        if (c0 >= '1' && c0 <= '9') return run(at, is_digit);
        if (c0 == '0') return run(at, [](char c) { return c == '0'; });
        return std::string::npos;
    }

    size_t token(size_t p, std::string& balance) {
        const char c = src_[p];
        if (is_digit(c)) {
            if (const size_t end = float_end(p); end != std::string::npos) {
                std::string text;
                for (size_t i = p; i < end; ++i)
                    if (src_[i] != '_') text += src_[i];
                push(Tok::Float, p).fval = std::strtod(text.c_str(), nullptr);
                return end;
            }
            int base = 10;
            const size_t end = int_end(p, base);
            std::string text;
            for (size_t i = p + (base == 10 ? 0 : 2); i < end; ++i)
                if (src_[i] != '_') text += src_[i];
            const auto value = pystr::parse_int(text, base);
            if (!value) error(p, "integer literal too large");
            push(Tok::Int, p).ival = *value;
            return end;
        }
        size_t next = p;
        if (is_ident_cp(pystr::decode(src_, next), true)) {
            size_t end = next;
            while (end < src_.size()) {
                size_t q = end;
                if (!is_ident_cp(pystr::decode(src_, q), false)) break;
                end = q;
            }
            push(Tok::Name, p, src_.substr(p, end - p));
            return end;
        }
        if (c == '\'' || c == '"') {
            for (size_t q = p + 1; q < src_.size(); ++q) {
                if (src_[q] == '\\') {
                    ++q;
                } else if (src_[q] == c) {
                    push(Tok::String, p, unescape(p + 1, q));
                    return q + 1;
                }
            }
            error(p, fmt::format("unexpected char {} at {}", pystr::repr(std::string(1, c)), p));
        }
        static constexpr const char* kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
        for (const char* op : kTwo) {
            if (starts_with(p, op)) {
                push(Tok::Op, p, op);
                return p + 2;
            }
        }
        if (std::strchr("+-/*%~[](){}><=.:|,;", c) == nullptr || c == '\0') {
            size_t q = p;
            const char32_t cp = pystr::decode(src_, q);
            std::string ch;
            pystr::encode(ch, cp);
            error(p, fmt::format("unexpected char {} at {}", pystr::repr(ch), p));
        }
        if (c == '(' || c == '[' || c == '{') {
            balance += c == '(' ? ')' : c == '[' ? ']' : '}';
        } else if (c == ')' || c == ']' || c == '}') {
            if (balance.empty()) error(p, fmt::format("unexpected '{}'", c));
            if (balance.back() != c) error(p, fmt::format("unexpected '{}', expected '{}'", c, balance.back()));
            balance.pop_back();
        }
        push(Tok::Op, p, std::string(1, c));
        return p + 1;
    }

    // A string literal's body as Python's "unicode-escape" codec reads it (jinja2 first
    // backslash-escapes non-ASCII characters, so a backslash before one keeps that escape).
    std::string unescape(size_t begin, size_t end) const {
        std::string out;
        size_t p = begin;
        auto hex = [&](size_t n, const char* what) {
            uint32_t v = 0;
            for (size_t i = 0; i < n; ++i, ++p) {
                const char h = p < end ? static_cast<char>(src_[p] | 0x20) : '\0';
                if (!is_digit(h) && !(h >= 'a' && h <= 'f')) error(begin, fmt::format("truncated {} escape", what));
                v = v * 16 + static_cast<uint32_t>(is_digit(h) ? h - '0' : h - 'a' + 10);
            }
            return v;
        };
        while (p < end) {
            if (src_[p] != '\\') {
                out += src_[p++];
                continue;
            }
            ++p;
            if (p >= end) error(begin, "\\ at end of string");
            const char e = src_[p++];
            switch (e) {
                case '\n': break;
                case '\\': out += '\\'; break;
                case '\'': out += '\''; break;
                case '"': out += '"'; break;
                case 'a': out += '\a'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'v': out += '\v'; break;
                case 'x': pystr::encode(out, hex(2, "\\xXX")); break;
                case 'u': pystr::encode(out, hex(4, "\\uXXXX")); break;
                case 'U': {
                    const uint32_t v = hex(8, "\\UXXXXXXXX");
                    if (v > 0x10FFFF) error(begin, "illegal Unicode character");
                    pystr::encode(out, v);
                    break;
                }
                case 'N': error(begin, "\\N{...} escapes are not supported");
                default:
                    if (e >= '0' && e <= '7') {
                        uint32_t v = static_cast<uint32_t>(e - '0');
                        for (int i = 0; i < 2 && p < end && src_[p] >= '0' && src_[p] <= '7'; ++i)
                            v = v * 8 + static_cast<uint32_t>(src_[p++] - '0');
                        pystr::encode(out, v);
                    } else if (static_cast<unsigned char>(e) >= 0x80) {
                        size_t q = p - 1;
                        const char32_t cp = pystr::decode(src_, q);
                        p = q;
                        out += cp <= 0xFF     ? fmt::format("\\x{:02x}", static_cast<uint32_t>(cp))
                               : cp <= 0xFFFF ? fmt::format("\\u{:04x}", static_cast<uint32_t>(cp))
                                              : fmt::format("\\U{:08x}", static_cast<uint32_t>(cp));
                    } else {
                        out += '\\';
                        out += e;
                    }
            }
        }
        return out;
    }

    std::string src_;
    size_t pos_ = 0;
    bool line_starting_ = true;
    std::vector<size_t> line_starts_;
    std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) {
    return Lexer(source).run();
}

}  // namespace hymoe::jinja
