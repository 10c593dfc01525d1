// Python's two string formatting languages: `fmt % args` (printf-style, the `format` filter)
// and str.format's replacement fields with the format-spec mini-language; and the other way,
// float() and int() of a string.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>

#include "chat/jinja_eval.hpp"
#include "chat/jinja_pystr.hpp"

namespace hymoe::jinja::pystr {

namespace {

struct Spec {
    char32_t fill = ' ';
    char align = 0;  // < > ^ =
    char sign = '-';
    bool alt = false;
    bool zero = false;
    int64_t width = -1;
    char grouping = 0;
    int64_t precision = -1;
    char type = 0;
};

std::string pad(const std::string& body, const Spec& s, char default_align, size_t sign_len) {
    const auto len = static_cast<int64_t>(length(body));
    if (s.width <= len) return body;
    const auto n = static_cast<size_t>(s.width - len);
    auto fill = [&](size_t k) {
        std::string out;
        for (size_t i = 0; i < k; ++i) encode(out, s.fill);
        return out;
    };
    switch (s.align ? s.align : default_align) {
        case '<': return body + fill(n);
        case '^': return fill(n / 2) + body + fill(n - n / 2);
        case '=': return body.substr(0, sign_len) + fill(n) + body.substr(sign_len);
        default: return fill(n) + body;
    }
}

std::string group(std::string digits, char sep, size_t every) {
    if (sep == 0) return digits;
    std::string out;
    const size_t n = digits.size();
    for (size_t i = 0; i < n; ++i) {
        if (i > 0 && (n - i) % every == 0) out += sep;
        out += digits[i];
    }
    return out;
}

std::string sign_of(bool negative, char sign) {
    if (negative) return "-";
    return sign == '+' ? "+" : sign == ' ' ? " " : "";
}

std::string format_int(int64_t v, const Spec& s) {
    const bool neg = v < 0;
    const uint64_t mag = neg ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    std::string digits, prefix;
    switch (s.type) {
        case 'x':
            digits = fmt::format("{:x}", mag);
            prefix = s.alt ? "0x" : "";
            break;
        case 'X':
            digits = fmt::format("{:X}", mag);
            prefix = s.alt ? "0X" : "";
            break;
        case 'o':
            digits = fmt::format("{:o}", mag);
            prefix = s.alt ? "0o" : "";
            break;
        case 'b':
            digits = fmt::format("{:b}", mag);
            prefix = s.alt ? "0b" : "";
            break;
        case 'c': {
            if (v < 0 || v > 0x10FFFF) fail("OverflowError: %c arg not in range(0x110000)");
            std::string ch;
            encode(ch, static_cast<char32_t>(v));
            return pad(ch, s, '<', 0);
        }
        default: digits = std::to_string(mag); break;
    }
    digits = group(digits, s.grouping, s.type == 'd' || s.type == 0 || s.type == 'n' ? 3 : 4);
    const std::string head = sign_of(neg, s.sign) + prefix;
    return pad(head + digits, s, '>', head.size());
}

std::string format_float(double v, const Spec& s) {
    const bool neg = std::signbit(v) && !std::isnan(v);
    const double mag = std::fabs(v);
    char type = s.type;
    std::string body;
    const bool upper = type == 'E' || type == 'F' || type == 'G';
    if (std::isinf(mag) || std::isnan(mag)) {
        body = std::isnan(mag) ? "nan" : "inf";
        if (upper) body = pystr::upper(body);
        if (type == '%') body += '%';
    } else if (type == 0 && s.precision < 0) {
        body = float_repr(mag);
    } else {
        int prec = static_cast<int>(std::min<int64_t>(s.precision < 0 ? 6 : s.precision, 500));
        double x = mag;
        char conv = type == 0 ? 'g' : static_cast<char>(type | 0x20);
        if (type == '%') {
            x *= 100;
            conv = 'f';
        }
        if (type == 0 && prec == 0) prec = 1;
        const std::string cfmt =
            fmt::format("%{}.*{}", s.alt ? "#" : "", upper ? static_cast<char>(conv & ~0x20) : conv);
        char buf[640];
        std::snprintf(buf, sizeof buf, cfmt.c_str(), prec, x);
        body = buf;
        if (type == 0 && body.find_first_of(".eE") == std::string::npos) body += ".0";
        if (type == '%') body += '%';
    }
    if (s.grouping != 0) {
        const size_t int_end = body.find_first_not_of("0123456789");
        body =
            group(body.substr(0, int_end), s.grouping, 3) + (int_end == std::string::npos ? "" : body.substr(int_end));
    }
    const std::string head = sign_of(neg, s.sign);
    return pad(head + body, s, '>', head.size());
}

std::string format_value(const Value& v, const Spec& s) {
    if (v.is_number() && s.type != 's') {
        constexpr std::string_view kInt = "bcdoxXn", kFloat = "eEfFgG%";
        if (s.type == 0 && v.kind() == Kind::Bool && s.width < 0 && s.precision < 0) return to_str(v);
        if (s.type == 0) return v.is_int_like() ? format_int(v.as_int(), s) : format_float(v.as_float(), s);
        if (kInt.find(s.type) != std::string_view::npos && v.is_int_like()) return format_int(v.as_int(), s);
        if (kFloat.find(s.type) != std::string_view::npos) return format_float(v.as_float(), s);
        fail(fmt::format("ValueError: Unknown format code '{}' for object of type '{}'", s.type, type_name(v)));
    }
    if (s.type != 0 && s.type != 's') {
        fail(fmt::format("ValueError: Unknown format code '{}' for object of type '{}'", s.type, type_name(v)));
    }
    if (s.sign != '-' || s.alt || s.align == '=' || s.grouping != 0) {
        fail(fmt::format("ValueError: Invalid format specifier for object of type '{}'", type_name(v)));
    }
    std::string text = to_str(v);
    if (s.precision >= 0) {
        const std::vector<char32_t> cps = decode_all(text);
        text = encode_all(cps, 0, static_cast<size_t>(s.precision));
    }
    return pad(text, s, '<', 0);
}

int64_t parse_number(std::string_view f, size_t& i) {
    int64_t n = 0;
    while (i < f.size() && f[i] >= '0' && f[i] <= '9') {
        n = std::min<int64_t>(n * 10 + (f[i] - '0'), 1 << 20);
        ++i;
    }
    return n;
}

// [[fill]align][sign][z][#][0][width][grouping][.precision][type]
Spec parse_spec(std::string_view f) {
    Spec s;
    size_t i = 0;
    auto is_align = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
    size_t first_end = 0;
    const char32_t first = f.empty() ? 0 : decode(f, first_end);
    if (first_end < f.size() && is_align(f[first_end])) {
        s.fill = first;
        s.align = f[first_end];
        i = first_end + 1;
    } else if (!f.empty() && is_align(f[0])) {
        s.align = f[0];
        i = 1;
    }
    if (i < f.size() && (f[i] == '+' || f[i] == '-' || f[i] == ' ')) s.sign = f[i++];
    if (i < f.size() && f[i] == 'z') ++i;
    if (i < f.size() && f[i] == '#') {
        s.alt = true;
        ++i;
    }
    if (i < f.size() && f[i] == '0') {
        s.zero = true;
        if (s.align == 0) {
            s.fill = '0';
            s.align = '=';
        }
        ++i;
    }
    if (i < f.size() && f[i] >= '0' && f[i] <= '9') s.width = parse_number(f, i);
    if (i < f.size() && (f[i] == ',' || f[i] == '_')) s.grouping = f[i++];
    if (i < f.size() && f[i] == '.') {
        ++i;
        if (i >= f.size() || f[i] < '0' || f[i] > '9') fail("ValueError: Format specifier missing precision");
        s.precision = parse_number(f, i);
    }
    if (i < f.size()) s.type = f[i++];
    if (i != f.size()) fail("ValueError: Invalid format specifier");
    return s;
}

}  // namespace

std::string percent_format(std::string_view fmt_str, const Value& args) {
    std::vector<Value> positional;
    const Value* mapping = nullptr;
    if (args.kind() == Kind::Tuple) {
        positional = args.items();
    } else {
        positional.push_back(args);
        // Python treats any object with __getitem__ (dict, list, jinja2's Undefined) as a
        // possible mapping.
        if (args.is_dict() || args.kind() == Kind::List || args.is_undefined()) mapping = &args;
    }
    size_t next = 0;
    bool used_mapping = false;
    auto take = [&]() -> const Value& {
        if (next >= positional.size()) fail("TypeError: not enough arguments for format string");
        return positional[next++];
    };
    std::string out;
    for (size_t i = 0; i < fmt_str.size(); ++i) {
        if (fmt_str[i] != '%') {
            out += fmt_str[i];
            continue;
        }
        if (++i >= fmt_str.size()) fail("ValueError: incomplete format");
        const Value* arg = nullptr;
        if (fmt_str[i] == '(') {
            if (mapping != nullptr && mapping->is_undefined()) fail_undefined(*mapping);
            if (mapping == nullptr || !mapping->is_dict()) fail("TypeError: format requires a mapping");
            const size_t close = fmt_str.find(')', i);
            if (close == std::string_view::npos) fail("ValueError: incomplete format key");
            const Value* v = mapping->dict().find(fmt_str.substr(i + 1, close - i - 1));
            if (v == nullptr) fail(fmt::format("KeyError: '{}'", fmt_str.substr(i + 1, close - i - 1)));
            arg = v;
            used_mapping = true;
            i = close + 1;
        }
        Spec s;
        bool left = false;
        for (; i < fmt_str.size() && std::string_view("-+ #0").find(fmt_str[i]) != std::string_view::npos; ++i) {
            switch (fmt_str[i]) {
                case '-': left = true; break;
                case '+': s.sign = '+'; break;
                case ' ':
                    if (s.sign != '+') s.sign = ' ';
                    break;
                case '#': s.alt = true; break;
                case '0': s.zero = true; break;
            }
        }
        if (i < fmt_str.size() && fmt_str[i] == '*') {
            s.width = require_int(take(), "* wants int");
            ++i;
        } else {
            s.width = parse_number(fmt_str, i);
        }
        if (i < fmt_str.size() && fmt_str[i] == '.') {
            ++i;
            if (i < fmt_str.size() && fmt_str[i] == '*') {
                s.precision = require_int(take(), "* wants int");
                ++i;
            } else {
                s.precision = parse_number(fmt_str, i);
            }
        }
        while (i < fmt_str.size() && (fmt_str[i] == 'h' || fmt_str[i] == 'l' || fmt_str[i] == 'L')) ++i;
        if (i >= fmt_str.size()) fail("ValueError: incomplete format");
        const char type = fmt_str[i];
        if (type == '%') {
            out += '%';
            continue;
        }
        const Value& v = arg != nullptr ? *arg : take();
        s.align = left ? '<' : '>';
        if (s.zero && !left && std::string_view("sra").find(type) == std::string_view::npos) {
            s.fill = '0';
            s.align = '=';
        }
        switch (type) {
            case 's':
            case 'r':
            case 'a': {
                Spec str_spec = s;
                str_spec.sign = '-';
                str_spec.alt = false;
                out += format_value(Value::string(type == 's' ? to_str(v) : repr(v)), str_spec);
                break;
            }
            case 'd':
            case 'i':
            case 'u':
            case 'x':
            case 'X':
            case 'o':
            case 'c': {
                Spec int_spec = s;
                int_spec.type = type == 'i' || type == 'u' ? 'd' : type;
                if (type == 'c' && v.is_string()) {
                    if (length(v.str()) != 1) fail("TypeError: %c requires an int or a unicode character");
                    out += format_value(v, Spec{s.fill, s.align, '-', false, false, s.width, 0, -1, 0});
                    break;
                }
                if (v.kind() == Kind::Float && (type == 'd' || type == 'i' || type == 'u')) {
                    const double f = std::trunc(v.as_float());
                    if (!std::isfinite(f)) fail("OverflowError: cannot convert float infinity to integer");
                    out += format_int(static_cast<int64_t>(f), int_spec);
                } else if (v.is_int_like()) {
                    out += format_int(v.as_int(), int_spec);
                } else {
                    fail(fmt::format("TypeError: %{} format: {} is required, not {}", type,
                                     type == 'd' || type == 'i' || type == 'u' ? "a real number" : "an integer",
                                     type_name(v)));
                }
                break;
            }
            case 'e':
            case 'E':
            case 'f':
            case 'F':
            case 'g':
            case 'G': {
                if (!v.is_number()) fail(fmt::format("TypeError: must be real number, not {}", type_name(v)));
                Spec float_spec = s;
                float_spec.type = type;
                if (float_spec.precision < 0) float_spec.precision = 6;
                out += format_float(v.as_float(), float_spec);
                break;
            }
            default:
                fail(fmt::format("ValueError: unsupported format character '{}' (0x{:x}) at index {}", type,
                                 static_cast<unsigned char>(type), i));
        }
    }
    if (next < positional.size() && mapping == nullptr && !used_mapping)
        fail("TypeError: not all arguments converted during string formatting");
    return out;
}

std::string brace_format(Interp& ip, std::string_view f, const CallArgs& args) {
    std::string out;
    size_t auto_index = 0;
    bool manual = false, automatic = false;
    for (size_t i = 0; i < f.size(); ++i) {
        const char c = f[i];
        if (c == '}') {
            if (i + 1 < f.size() && f[i + 1] == '}') {
                out += '}';
                ++i;
                continue;
            }
            fail("ValueError: Single '}' encountered in format string");
        }
        if (c != '{') {
            out += c;
            continue;
        }
        if (i + 1 < f.size() && f[i + 1] == '{') {
            out += '{';
            ++i;
            continue;
        }
        // Find the matching '}', allowing one level of nested braces in the spec.
        size_t j = i + 1;
        int depth = 1;
        for (; j < f.size(); ++j) {
            if (f[j] == '{') ++depth;
            if (f[j] == '}' && --depth == 0) break;
        }
        if (j >= f.size()) fail("ValueError: expected '}' before end of string");
        std::string_view field = f.substr(i + 1, j - i - 1);
        i = j;
        std::string_view spec, conv;
        if (const size_t colon = field.find(':'); colon != std::string_view::npos) {
            spec = field.substr(colon + 1);
            field = field.substr(0, colon);
        }
        if (const size_t bang = field.find('!'); bang != std::string_view::npos) {
            conv = field.substr(bang + 1);
            field = field.substr(0, bang);
        }
        const size_t name_end = field.find_first_of(".[");
        const std::string_view first = field.substr(0, name_end);
        Value v;
        if (first.empty() || (first.find_first_not_of("0123456789") == std::string_view::npos)) {
            size_t index = 0;
            if (first.empty()) {
                if (manual)
                    fail("ValueError: cannot switch from manual field specification to automatic field numbering");
                automatic = true;
                index = auto_index++;
            } else {
                if (automatic)
                    fail("ValueError: cannot switch from automatic field numbering to manual field specification");
                manual = true;
                index = static_cast<size_t>(std::stoull(std::string(first.substr(0, 9))));
            }
            if (index >= args.pos.size()) fail("IndexError: Replacement index out of range for positional args tuple");
            v = args.pos[index];
        } else {
            const auto it =
                std::find_if(args.kw.begin(), args.kw.end(), [&](const auto& kv) { return kv.first == first; });
            if (it == args.kw.end()) fail(fmt::format("KeyError: '{}'", first));
            v = it->second;
        }
        // .attr and [key] chains, through the sandbox's lookups
        for (size_t p = name_end; p != std::string_view::npos && p < field.size();) {
            if (field[p] == '.') {
                const size_t e = field.find_first_of(".[", p + 1);
                v = get_attr(ip, v, field.substr(p + 1, e == std::string_view::npos ? field.npos : e - p - 1));
                p = e;
            } else {
                const size_t e = field.find(']', p);
                if (e == std::string_view::npos) fail("ValueError: Missing ']' in format string");
                const std::string_view key = field.substr(p + 1, e - p - 1);
                const bool digits = !key.empty() && key.find_first_not_of("0123456789") == std::string_view::npos;
                v = get_item(ip, v,
                             digits ? Value::integer(std::stoll(std::string(key.substr(0, 18))))
                                    : Value::string(std::string(key)));
                p = e + 1;
            }
        }
        if (conv == "r" || conv == "a") {
            v = Value::string(repr(v));
        } else if (conv == "s") {
            v = Value::string(to_str(v));
        } else if (!conv.empty()) {
            fail("ValueError: Unknown conversion specifier");
        }
        out += format_value(v, parse_spec(spec));
    }
    return out;
}

std::optional<double> parse_float(std::string_view s) {
    const std::string t = strip(s, std::nullopt, true, true);
    std::string lowered = lower(t);
    std::string_view body = lowered;
    if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.remove_prefix(1);
    const bool neg = !lowered.empty() && lowered[0] == '-';
    if (body == "inf" || body == "infinity") return neg ? -HUGE_VAL : HUGE_VAL;
    if (body == "nan") return std::nan("");
    // digits with single underscores between them, a fraction, an exponent
    std::string clean;
    bool digits = false, prev_digit = false;
    size_t i = 0;
    auto take_digits = [&]() {
        bool any = false;
        while (i < body.size()) {
            if (body[i] >= '0' && body[i] <= '9') {
                clean += body[i++];
                any = prev_digit = true;
            } else if (body[i] == '_' && prev_digit && i + 1 < body.size() && body[i + 1] >= '0' &&
                       body[i + 1] <= '9') {
                ++i;
            } else {
                break;
            }
        }
        prev_digit = false;
        return any;
    };
    digits = take_digits();
    if (i < body.size() && body[i] == '.') {
        clean += body[i++];
        digits = take_digits() || digits;
    }
    if (!digits) return std::nullopt;
    if (i < body.size() && body[i] == 'e') {
        clean += body[i++];
        if (i < body.size() && (body[i] == '+' || body[i] == '-')) clean += body[i++];
        if (!take_digits()) return std::nullopt;
    }
    if (i != body.size()) return std::nullopt;
    const double v = std::strtod(clean.c_str(), nullptr);
    return neg ? -v : v;
}

std::optional<int64_t> parse_int(std::string_view s, int base) {
    const std::string t = strip(s, std::nullopt, true, true);
    std::string_view body = t;
    bool neg = false;
    if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
        neg = body[0] == '-';
        body.remove_prefix(1);
    }
    if (body.size() >= 2 && body[0] == '0') {
        const char p = static_cast<char>(body[1] | 0x20);
        const int prefixed = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
        if (prefixed != 0 && (base == 0 || base == prefixed)) {
            base = prefixed;
            body.remove_prefix(2);
            if (!body.empty() && body[0] == '_') body.remove_prefix(1);
        }
    }
    if (base == 0) {
        if (body.size() > 1 && body[0] == '0' && body.find_first_not_of("0_") != std::string_view::npos)
            return std::nullopt;
        base = 10;
    }
    if (body.empty() || base < 2 || base > 36) return std::nullopt;
    uint64_t v = 0;
    bool prev_digit = false;
    for (size_t i = 0; i < body.size(); ++i) {
        const char c = body[i];
        if (c == '_' && prev_digit && i + 1 < body.size() && body[i + 1] != '_') {
            prev_digit = false;
            continue;
        }
        int d = -1;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
            d = (c | 0x20) - 'a' + 10;
        if (d < 0 || d >= base) return std::nullopt;
        if (v > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1 - static_cast<uint64_t>(d)) /
                    static_cast<uint64_t>(base))
            return std::nullopt;
        v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
        prev_digit = true;
    }
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        if (neg && v == static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1)
            return std::numeric_limits<int64_t>::min();
        return std::nullopt;
    }
    return neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
}

}  // namespace hymoe::jinja::pystr
