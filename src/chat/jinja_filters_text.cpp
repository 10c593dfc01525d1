// jinja2's filters on strings and numbers (jinja2/filters.py), and transformers' tojson, which
// is json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) rather than
// jinja2's HTML-safe one.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "chat/jinja_eval.hpp"
#include "chat/jinja_pystr.hpp"

namespace hymoe::jinja {

namespace {

using ast::FilterFn;

std::string soft_str(const Value& v) {
    return to_str(v);
}

bool flag(const std::optional<Value>& v) {
    return v && truthy(*v);
}

void no_args(CallArgs& args, std::string_view name) {
    bind_args(args, name, {});
}

Value f_capitalize(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "capitalize");
    return Value::string(pystr::capitalize(soft_str(v)));
}

Value f_center(Interp&, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "center", {"width"});
    const int64_t width = a[0] ? require_int(*a[0], "width") : 80;
    return Value::string(pystr::center(soft_str(v), std::min<int64_t>(width, 1 << 24)));
}

Value f_escape(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "escape");
    std::string out;
    for (char c : soft_str(v)) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return Value::string(std::move(out));
}

Value f_float(Interp&, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "float", {"default"});
    const Value dflt = a[0] ? *a[0] : Value::real(0.0);
    if (v.is_undefined()) fail_undefined(v);
    if (v.is_number()) return Value::real(v.as_float());
    if (v.is_string()) {
        if (auto f = pystr::parse_float(v.str())) return Value::real(*f);
    }
    return dflt;
}

Value f_int(Interp&, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "int", {"default", "base"});
    const Value dflt = a[0] ? *a[0] : Value::integer(0);
    const int64_t base = a[1] ? require_int(*a[1], "base") : 10;
    if (v.is_undefined()) fail_undefined(v);
    if (v.is_int_like()) return Value::integer(v.as_int());
    double f = 0;
    if (v.kind() == Kind::Float) {
        f = v.as_float();
    } else if (v.is_string()) {
        if (base != 0 && (base < 2 || base > 36)) fail("ValueError: int() base must be >= 2 and <= 36, or 0");
        if (auto i = pystr::parse_int(v.str(), static_cast<int>(base))) return Value::integer(*i);
        auto parsed = pystr::parse_float(v.str());
        if (!parsed) return dflt;
        f = *parsed;
    } else {
        return dflt;
    }
    if (!std::isfinite(f) || std::fabs(f) >= 9.2e18) return dflt;
    return Value::integer(static_cast<int64_t>(std::trunc(f)));
}

Value f_format(Interp&, const Value& v, CallArgs& args) {
    if (!args.pos.empty() && !args.kw.empty())
        fail("FilterArgumentError: can't handle positional and keyword arguments at the same time");
    if (!args.kw.empty()) {
        Value d = Value::new_dict();
        for (auto& [k, val] : args.kw) d.dict().set(Value::string(k), val);
        return Value::string(pystr::percent_format(soft_str(v), d));
    }
    return Value::string(pystr::percent_format(soft_str(v), Value::tuple(args.pos)));
}

Value f_indent(Interp&, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "indent", {"width", "first", "blank"});
    std::string indention;
    if (a[0] && a[0]->is_string()) {
        indention = a[0]->str();
    } else {
        indention = std::string(
            static_cast<size_t>(std::clamp<int64_t>(a[0] ? require_int(*a[0], "width") : 4, 0, 1 << 20)), ' ');
    }
    if (v.is_undefined()) fail_undefined(v);
    if (!v.is_string())
        fail(fmt::format("TypeError: unsupported operand type(s) for +=: '{}' and 'str'", type_name(v)));
    const std::vector<std::string> lines = pystr::splitlines(v.str() + "\n", false);
    std::string rv = flag(a[1]) ? indention : std::string();
    for (size_t i = 0; i < lines.size(); ++i) {
        if (i > 0) {
            rv += '\n';
            if (flag(a[2]) || !lines[i].empty()) rv += indention;
        }
        rv += lines[i];
    }
    check_size(rv.size());
    return Value::string(std::move(rv));
}

Value f_lower(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "lower");
    return Value::string(pystr::lower(soft_str(v)));
}

Value f_upper(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "upper");
    return Value::string(pystr::upper(soft_str(v)));
}

Value f_replace(Interp&, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "replace", {"old", "new", "count"});
    if (!a[0] || !a[1]) fail("TypeError: do_replace() missing required arguments 'old' and 'new'");
    const int64_t count = a[2] && !a[2]->is_none() ? require_int(*a[2], "count") : -1;
    std::string out = pystr::replace(soft_str(v), soft_str(*a[0]), soft_str(*a[1]), count);
    check_size(out.size());
    return Value::string(std::move(out));
}

Value f_round(Interp&, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "round", {"precision", "method"});
    const int64_t precision = a[0] ? require_int(*a[0], "precision") : 0;
    const std::string method = a[1] ? require_str(*a[1], "method") : "common";
    if (method != "common" && method != "ceil" && method != "floor")
        fail("FilterArgumentError: method must be common, ceil or floor");
    if (!v.is_number()) fail(fmt::format("TypeError: type {} doesn't define __round__ method", type_name(v)));
    if (method == "common") {
        if (v.is_int_like()) {
            if (precision >= 0) return Value::integer(v.as_int());
            const double p = std::pow(10.0, static_cast<double>(-precision));
            return Value::integer(static_cast<int64_t>(std::nearbyint(static_cast<double>(v.as_int()) / p) * p));
        }
        const double x = v.as_float();
        if (!std::isfinite(x) || precision > 300) return Value::real(x);
        if (precision < -308) return Value::real(std::copysign(0.0, x));
        // Python rounds the exact binary value to `precision` decimals, ties to even.
        if (precision >= 0) {
            const std::string text = fmt::format("{:.{}f}", x, precision);
            return Value::real(std::strtod(text.c_str(), nullptr));
        }
        const double p = std::pow(10.0, static_cast<double>(-precision));
        return Value::real(std::nearbyint(x / p) * p);
    }
    const double p = std::pow(10.0, static_cast<double>(precision));
    const double x = v.as_float() * p;
    return Value::real((method == "ceil" ? std::ceil(x) : std::floor(x)) / p);
}

Value f_safe(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "safe");
    return Value::string(soft_str(v));
}

Value f_string(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "string");
    return Value::string(soft_str(v));
}

Value f_title(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "title");
    // Words begin after runs of [-\s({\[<]; each word is capitalized as item[0].upper() + rest.lower().
    const std::vector<char32_t> cps = pystr::decode_all(soft_str(v));
    auto sep = [](char32_t c) {
        return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || pystr::is_space(c);
    };
    std::string out;
    for (size_t i = 0; i < cps.size();) {
        const bool is_sep = sep(cps[i]);
        size_t j = i;
        while (j < cps.size() && sep(cps[j]) == is_sep) ++j;
        const std::string part = pystr::encode_all(cps, i, j);
        if (is_sep) {
            out += part;
        } else {
            const std::string head = pystr::encode_all(cps, i, i + 1);
            out += pystr::upper(head) + pystr::lower(pystr::encode_all(cps, i + 1, j));
        }
        i = j;
    }
    return Value::string(std::move(out));
}

Value f_tojson(Interp&, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
    JsonOptions o;
    o.ensure_ascii = flag(a[0]);
    if (a[1] && !a[1]->is_none()) {
        if (a[1]->is_string()) {
            o.indent = a[1]->str();
        } else {
            o.indent =
                std::string(static_cast<size_t>(std::clamp<int64_t>(require_int(*a[1], "indent"), 0, 1 << 10)), ' ');
        }
        o.item_separator = std::string(1, ',');
    }
    if (a[2] && !a[2]->is_none()) {
        const std::vector<Value> seps = iterate(*a[2]);
        if (seps.size() != 2) fail("ValueError: separators must be an (item_separator, key_separator) pair");
        o.item_separator = require_str(seps[0], "item separator");
        o.key_separator = require_str(seps[1], "key separator");
    }
    o.sort_keys = flag(a[3]);
    std::string out = dump_json(v, o);
    check_size(out.size());
    return Value::string(std::move(out));
}

Value f_trim(Interp&, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "trim", {"chars"});
    std::optional<std::string> chars;
    if (a[0] && !a[0]->is_none()) chars = require_str(*a[0], "strip arg");
    return Value::string(pystr::strip(soft_str(v), chars, true, true));
}

Value f_truncate(Interp&, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "truncate", {"length", "killwords", "end", "leeway"});
    const int64_t length = a[0] ? require_int(*a[0], "length") : 255;
    const std::string end = a[2] ? require_str(*a[2], "end") : "...";
    const int64_t leeway = a[3] && !a[3]->is_none() ? require_int(*a[3], "leeway") : 5;
    const auto end_len = static_cast<int64_t>(pystr::length(end));
    if (length < end_len) fail(fmt::format("AssertionError: expected length >= {}, got {}", end_len, length));
    if (leeway < 0) fail(fmt::format("AssertionError: expected leeway >= 0, got {}", leeway));
    if (!v.is_string()) {  // Python takes len() of the value and slices it as a str
        if (py_len(v) <= length + leeway) return v;
        fail(fmt::format("AttributeError: '{}' object has no attribute 'rsplit'", type_name(v)));
    }
    const std::string& s = v.str();
    if (static_cast<int64_t>(pystr::length(s)) <= length + leeway) return v;
    std::string head = pystr::slice(s, std::nullopt, length - end_len, 1);
    if (!flag(a[1])) head = pystr::rsplit(head, std::string(" "), 1).front();
    return Value::string(head + end);
}

Value f_wordcount(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "wordcount");
    const std::vector<char32_t> cps = pystr::decode_all(soft_str(v));
    int64_t words = 0;
    bool in_word = false;
    for (char32_t c : cps) {
        std::string ch;
        pystr::encode(ch, c);
        const bool w = c == '_' || pystr::is_class(ch, pystr::CharClass::Alnum);
        if (w && !in_word) ++words;
        in_word = w;
    }
    return Value::integer(words);
}

struct FilterEntry {
    std::string_view name;
    FilterFn fn;
};

constexpr FilterEntry kTextFilters[] = {
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"e", f_escape},
    {"escape", f_escape},
    {"float", f_float},
    {"forceescape", f_escape},
    {"format", f_format},
    {"indent", f_indent},
    {"int", f_int},
    {"lower", f_lower},
    {"replace", f_replace},
    {"round", f_round},
    {"safe", f_safe},
    {"string", f_string},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"truncate", f_truncate},
    {"upper", f_upper},
    {"wordcount", f_wordcount},
};

}  // namespace

FilterFn find_text_filter(std::string_view name) {
    for (const FilterEntry& f : kTextFilters)
        if (f.name == name) return f.fn;
    return nullptr;
}

}  // namespace hymoe::jinja
