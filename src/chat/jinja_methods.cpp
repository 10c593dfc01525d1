// The methods templates call on strings, lists and dicts (`s.strip()`, `d.items()`), bound to
// their object as Python binds them. The immutable sandbox blocks the methods that mutate a
// list or a dict: looking one up gives an undefined that raises SecurityError when called.
#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "chat/jinja_eval.hpp"
#include "chat/jinja_pystr.hpp"

namespace hymoe::jinja {

std::vector<std::optional<Value>> bind_args(CallArgs& args, std::string_view func,
                                            std::initializer_list<std::string_view> names) {
    std::vector<std::optional<Value>> out(names.size());
    if (args.pos.size() > names.size()) {
        fail(fmt::format("TypeError: {}() takes at most {} argument{} ({} given)", func, names.size(),
                         names.size() == 1 ? "" : "s", args.pos.size()));
    }
    for (size_t i = 0; i < args.pos.size(); ++i) out[i] = std::move(args.pos[i]);
    for (auto& [k, v] : args.kw) {
        const auto it = std::find(names.begin(), names.end(), k);
        if (it == names.end()) fail(fmt::format("TypeError: {}() got an unexpected keyword argument '{}'", func, k));
        auto& slot = out[static_cast<size_t>(it - names.begin())];
        if (slot) fail(fmt::format("TypeError: {}() got multiple values for argument '{}'", func, k));
        slot = std::move(v);
    }
    return out;
}

int64_t require_int(const Value& v, std::string_view what) {
    if (v.is_undefined()) fail_undefined(v);
    if (!v.is_int_like()) {
        fail(fmt::format("TypeError: {}: '{}' object cannot be interpreted as an integer", what, type_name(v)));
    }
    return v.as_int();
}

std::string require_str(const Value& v, std::string_view what) {
    if (v.is_undefined()) fail_undefined(v);
    if (!v.is_string()) fail(fmt::format("TypeError: {} must be str, not {}", what, type_name(v)));
    return v.str();
}

namespace {

using Method = Value (*)(Interp& ip, const Value& self, CallArgs& args);

std::optional<std::string> opt_str(const std::optional<Value>& v, std::string_view what) {
    if (!v || v->is_none()) return std::nullopt;
    return require_str(*v, what);
}

std::optional<int64_t> opt_int(const std::optional<Value>& v, std::string_view what) {
    if (!v || v->is_none()) return std::nullopt;
    return require_int(*v, what);
}

Value str_list(std::vector<std::string> parts) {
    std::vector<Value> items;
    items.reserve(parts.size());
    for (std::string& p : parts) items.push_back(Value::string(std::move(p)));
    return Value::list(std::move(items));
}

// ---- str ----

template <std::string (*F)(std::string_view)>
Value str_transform(Interp&, const Value& self, CallArgs& args) {
    bind_args(args, "str method", {});
    return Value::string(F(self.str()));
}

template <pystr::CharClass C>
Value str_is(Interp&, const Value& self, CallArgs& args) {
    bind_args(args, "str method", {});
    return Value::boolean(pystr::is_class(self.str(), C));
}

template <bool Left, bool Right>
Value str_strip(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "strip", {"chars"});
    return Value::string(pystr::strip(self.str(), opt_str(a[0], "strip arg"), Left, Right));
}

template <bool Reverse>
Value str_split(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "split", {"sep", "maxsplit"});
    const auto sep = opt_str(a[0], "sep");
    const int64_t maxsplit = opt_int(a[1], "maxsplit").value_or(-1);
    return str_list(Reverse ? pystr::rsplit(self.str(), sep, maxsplit) : pystr::split(self.str(), sep, maxsplit));
}

Value str_splitlines(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "splitlines", {"keepends"});
    return str_list(pystr::splitlines(self.str(), a[0] && truthy(*a[0])));
}

// startswith / endswith: a str or a tuple of them, with optional start and end.
template <bool Ends>
Value str_affix(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, Ends ? "endswith" : "startswith", {"affix", "start", "end"});
    if (!a[0]) fail("TypeError: startswith/endswith takes at least 1 argument (0 given)");
    const std::string sub = pystr::slice(self.str(), opt_int(a[1], "start"), opt_int(a[2], "end"), 1);
    std::vector<Value> options = a[0]->kind() == Kind::Tuple ? a[0]->items() : std::vector<Value>{*a[0]};
    for (const Value& o : options) {
        if (!o.is_string()) {
            fail(fmt::format("TypeError: {} first arg must be str or a tuple of str, not {}",
                             Ends ? "endswith" : "startswith", type_name(o)));
        }
        const std::string& x = o.str();
        if (x.size() <= sub.size() &&
            (Ends ? sub.compare(sub.size() - x.size(), x.size(), x) == 0 : sub.compare(0, x.size(), x) == 0))
            return Value::boolean(true);
    }
    return Value::boolean(false);
}

template <bool Reverse, bool Raise>
Value str_find(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "find", {"sub", "start", "end"});
    if (!a[0]) fail("TypeError: find() takes at least 1 argument (0 given)");
    const int64_t at = pystr::find(self.str(), require_str(*a[0], "must be str"), opt_int(a[1], "start"),
                                   opt_int(a[2], "end"), Reverse);
    if (Raise && at < 0) fail("ValueError: substring not found");
    return Value::integer(at);
}

Value str_count(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "count", {"sub", "start", "end"});
    if (!a[0]) fail("TypeError: count() takes at least 1 argument (0 given)");
    const std::string s = pystr::slice(self.str(), opt_int(a[1], "start"), opt_int(a[2], "end"), 1);
    return Value::integer(pystr::count(s, require_str(*a[0], "must be str")));
}

Value str_replace(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "replace", {"old", "new", "count"});
    if (!a[0] || !a[1]) fail("TypeError: replace() takes at least 2 arguments");
    return Value::string(pystr::replace(self.str(), require_str(*a[0], "replace() argument 1"),
                                        require_str(*a[1], "replace() argument 2"),
                                        opt_int(a[2], "count").value_or(-1)));
}

Value str_join(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "join", {"iterable"});
    if (!a[0]) fail("TypeError: str.join() takes exactly one argument (0 given)");
    std::string out;
    const std::vector<Value> items = iterate(*a[0]);
    for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i].is_string()) {
            fail(fmt::format("TypeError: sequence item {}: expected str instance, {} found", i, type_name(items[i])));
        }
        if (i > 0) out += self.str();
        out += items[i].str();
        check_size(out.size());
    }
    return Value::string(std::move(out));
}

Value str_format(Interp& ip, const Value& self, CallArgs& args) {
    return Value::string(pystr::brace_format(ip, self.str(), args));
}

template <char Align>
Value str_justify(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "justify", {"width", "fillchar"});
    if (!a[0]) fail("TypeError: justify expected at least 1 argument, got 0");
    const int64_t width = std::min<int64_t>(require_int(*a[0], "width"), 1 << 24);
    const std::string fill = a[1] ? require_str(*a[1], "fill character") : " ";
    if (pystr::length(fill) != 1) fail("TypeError: The fill character must be exactly one character long");
    const auto len = static_cast<int64_t>(pystr::length(self.str()));
    if (width <= len) return self;
    const int64_t n = width - len;
    const int64_t left = Align == '<' ? 0 : Align == '>' ? n : n / 2 + (n & width & 1);
    std::string out;
    for (int64_t i = 0; i < left; ++i) out += fill;
    out += self.str();
    for (int64_t i = left; i < n; ++i) out += fill;
    return Value::string(std::move(out));
}

Value str_zfill(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "zfill", {"width"});
    if (!a[0]) fail("TypeError: zfill() takes exactly one argument (0 given)");
    const int64_t width = std::min<int64_t>(require_int(*a[0], "width"), 1 << 24);
    std::string s = self.str();
    const auto len = static_cast<int64_t>(pystr::length(s));
    if (width <= len) return self;
    const size_t at = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
    s.insert(at, static_cast<size_t>(width - len), '0');
    return Value::string(std::move(s));
}

template <bool Reverse>
Value str_partition(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "partition", {"sep"});
    if (!a[0]) fail("TypeError: partition() takes exactly one argument (0 given)");
    const std::string sep = require_str(*a[0], "partition() argument");
    if (sep.empty()) fail("ValueError: empty separator");
    const std::string& s = self.str();
    const size_t at = Reverse ? s.rfind(sep) : s.find(sep);
    if (at == std::string::npos) {
        return Reverse ? Value::tuple({Value::string(""), Value::string(""), self})
                       : Value::tuple({self, Value::string(""), Value::string("")});
    }
    return Value::tuple({Value::string(s.substr(0, at)), Value::string(sep), Value::string(s.substr(at + sep.size()))});
}

template <bool Suffix>
Value str_remove(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "removeprefix", {"affix"});
    if (!a[0]) fail("TypeError: removeprefix() takes exactly one argument (0 given)");
    const std::string x = require_str(*a[0], "argument");
    const std::string& s = self.str();
    if (x.size() <= s.size()) {
        if (!Suffix && s.compare(0, x.size(), x) == 0) return Value::string(s.substr(x.size()));
        if (Suffix && s.compare(s.size() - x.size(), x.size(), x) == 0)
            return Value::string(s.substr(0, s.size() - x.size()));
    }
    return self;
}

Value str_isascii(Interp&, const Value& self, CallArgs& args) {
    bind_args(args, "isascii", {});
    const std::string& s = self.str();
    return Value::boolean(std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
}

Value str_isprintable(Interp&, const Value& self, CallArgs& args) {
    bind_args(args, "isprintable", {});
    const std::vector<char32_t> cps = pystr::decode_all(self.str());
    return Value::boolean(std::all_of(cps.begin(), cps.end(), pystr::is_printable));
}

Value not_supported(Interp&, const Value& self, CallArgs&) {
    fail(fmt::format("TypeError: this {} method is not supported by hymoe's template engine", type_name(self)));
}

// ---- list, tuple, dict ----

Value seq_count(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "count", {"value"});
    if (!a[0]) fail("TypeError: count() takes exactly one argument (0 given)");
    return Value::integer(
        std::count_if(self.items().begin(), self.items().end(), [&](const Value& v) { return py_eq(v, *a[0]); }));
}

Value seq_index(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "index", {"value", "start", "stop"});
    if (!a[0]) fail("TypeError: index expected at least 1 argument, got 0");
    const auto& items = self.items();
    const pystr::SliceRange r =
        pystr::slice_indices(static_cast<int64_t>(items.size()), opt_int(a[1], "start"), opt_int(a[2], "stop"), 1);
    for (int64_t i = r.start; i < r.start + r.count; ++i)
        if (py_eq(items[static_cast<size_t>(i)], *a[0])) return Value::integer(i);
    fail(fmt::format("ValueError: {} is not in {}", repr(*a[0]), type_name(self)));
}

Value seq_copy(Interp&, const Value& self, CallArgs& args) {
    bind_args(args, "copy", {});
    return Value::list(self.items());
}

Value dict_get(Interp&, const Value& self, CallArgs& args) {
    auto a = bind_args(args, "get", {"key", "default"});
    if (!a[0]) fail("TypeError: get expected at least 1 argument, got 0");
    if (const Value* v = self.dict().find(*a[0])) return *v;
    return a[1] ? *a[1] : Value::none();
}

Value dict_items(Interp&, const Value& self, CallArgs& args) {
    bind_args(args, "items", {});
    std::vector<Value> out;
    for (const auto& [k, v] : self.dict().items) out.push_back(Value::tuple({k, v}));
    return Value::list(std::move(out));
}

Value dict_keys(Interp&, const Value& self, CallArgs& args) {
    bind_args(args, "keys", {});
    return Value::list(iterate(self));
}

Value dict_values(Interp&, const Value& self, CallArgs& args) {
    bind_args(args, "values", {});
    std::vector<Value> out;
    for (const auto& kv : self.dict().items) out.push_back(kv.second);
    return Value::list(std::move(out));
}

Value dict_copy(Interp&, const Value& self, CallArgs& args) {
    bind_args(args, "copy", {});
    return Value::dict(std::make_shared<DictData>(self.dict()));
}

struct MethodEntry {
    std::string_view name;
    Method fn;  // null: a mutating method the sandbox blocks
};

constexpr std::array kStrMethods = {
    MethodEntry{"capitalize", str_transform<pystr::capitalize>},
    MethodEntry{"casefold", str_transform<pystr::lower>},
    MethodEntry{"center", str_justify<'^'>},
    MethodEntry{"count", str_count},
    MethodEntry{"encode", not_supported},
    MethodEntry{"endswith", str_affix<true>},
    MethodEntry{"expandtabs", not_supported},
    MethodEntry{"find", str_find<false, false>},
    MethodEntry{"format", str_format},
    MethodEntry{"format_map", not_supported},
    MethodEntry{"index", str_find<false, true>},
    MethodEntry{"isalnum", str_is<pystr::CharClass::Alnum>},
    MethodEntry{"isalpha", str_is<pystr::CharClass::Alpha>},
    MethodEntry{"isascii", str_isascii},
    MethodEntry{"isdecimal", str_is<pystr::CharClass::Decimal>},
    MethodEntry{"isdigit", str_is<pystr::CharClass::Digit>},
    MethodEntry{"isidentifier", not_supported},
    MethodEntry{"islower", str_is<pystr::CharClass::Lower>},
    MethodEntry{"isnumeric", str_is<pystr::CharClass::Numeric>},
    MethodEntry{"isprintable", str_isprintable},
    MethodEntry{"isspace", str_is<pystr::CharClass::Space>},
    MethodEntry{"istitle", str_is<pystr::CharClass::Title>},
    MethodEntry{"isupper", str_is<pystr::CharClass::Upper>},
    MethodEntry{"join", str_join},
    MethodEntry{"ljust", str_justify<'<'>},
    MethodEntry{"lower", str_transform<pystr::lower>},
    MethodEntry{"lstrip", str_strip<true, false>},
    MethodEntry{"maketrans", not_supported},
    MethodEntry{"partition", str_partition<false>},
    MethodEntry{"removeprefix", str_remove<false>},
    MethodEntry{"removesuffix", str_remove<true>},
    MethodEntry{"replace", str_replace},
    MethodEntry{"rfind", str_find<true, false>},
    MethodEntry{"rindex", str_find<true, true>},
    MethodEntry{"rjust", str_justify<'>'>},
    MethodEntry{"rpartition", str_partition<true>},
    MethodEntry{"rsplit", str_split<true>},
    MethodEntry{"rstrip", str_strip<false, true>},
    MethodEntry{"split", str_split<false>},
    MethodEntry{"splitlines", str_splitlines},
    MethodEntry{"startswith", str_affix<false>},
    MethodEntry{"strip", str_strip<true, true>},
    MethodEntry{"swapcase", str_transform<pystr::swapcase>},
    MethodEntry{"title", str_transform<pystr::title>},
    MethodEntry{"translate", not_supported},
    MethodEntry{"upper", str_transform<pystr::upper>},
    MethodEntry{"zfill", str_zfill},
};

constexpr std::array kListMethods = {
    MethodEntry{"append", nullptr},  MethodEntry{"clear", nullptr},  MethodEntry{"copy", seq_copy},
    MethodEntry{"count", seq_count}, MethodEntry{"extend", nullptr}, MethodEntry{"index", seq_index},
    MethodEntry{"insert", nullptr},  MethodEntry{"pop", nullptr},    MethodEntry{"remove", nullptr},
    MethodEntry{"reverse", nullptr}, MethodEntry{"sort", nullptr},
};

constexpr std::array kTupleMethods = {MethodEntry{"count", seq_count}, MethodEntry{"index", seq_index}};

constexpr std::array kDictMethods = {
    MethodEntry{"clear", nullptr},  MethodEntry{"copy", dict_copy},     MethodEntry{"fromkeys", not_supported},
    MethodEntry{"get", dict_get},   MethodEntry{"items", dict_items},   MethodEntry{"keys", dict_keys},
    MethodEntry{"pop", nullptr},    MethodEntry{"popitem", nullptr},    MethodEntry{"setdefault", nullptr},
    MethodEntry{"update", nullptr}, MethodEntry{"values", dict_values},
};

template <size_t N>
std::optional<Value> lookup(const std::array<MethodEntry, N>& table, const Value& self, std::string_view name) {
    for (const MethodEntry& m : table) {
        if (m.name != name) continue;
        if (m.fn == nullptr) {
            return Value::undefined(fmt::format("SecurityError: access to attribute '{}' of '{}' object is unsafe.",
                                                name, type_name(self)));
        }
        return Value::object(std::make_shared<Function>(std::string(name), m.fn, self));
    }
    return std::nullopt;
}

}  // namespace

std::optional<Value> method_attr(const Value& self, std::string_view name) {
    switch (self.kind()) {
        case Kind::String: return lookup(kStrMethods, self, name);
        case Kind::List: return lookup(kListMethods, self, name);
        case Kind::Tuple: return lookup(kTupleMethods, self, name);
        case Kind::Dict: return lookup(kDictMethods, self, name);
        default: return std::nullopt;
    }
}

}  // namespace hymoe::jinja
