// jinja2's builtin filters on sequences and mappings (jinja2/filters.py); the ones on strings
// and numbers are in jinja_filters_text.cpp. Each follows its Python source, including which
// ones return one-shot generators (map, select, unique, ...) rather than lists: a generator is
// always true and has no length, and templates notice.
#include <algorithm>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

#include "chat/jinja_eval.hpp"
#include "chat/jinja_pystr.hpp"

namespace hymoe::jinja {

namespace {

using ast::FilterFn;

Value ignore_case(const Value& v) {
    return v.is_string() ? Value::string(pystr::lower(v.str())) : v;
}

std::string soft_str(const Value& v) {
    return to_str(v);
}

// filters.make_attrgetter: "a.b.0" walks items (digits become indexes) through the sandbox.
Value get_path(Interp& ip, Value item, const Value& attribute, const Value* dflt) {
    std::vector<Value> parts;
    if (attribute.is_string()) {
        for (std::string& p : pystr::split(attribute.str(), std::string("."), -1)) {
            const bool digits =
                !p.empty() && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
            const auto n = digits ? pystr::parse_int(p, 10) : std::nullopt;
            parts.push_back(n ? Value::integer(*n) : Value::string(std::move(p)));
        }
    } else if (!attribute.is_none()) {
        parts.push_back(attribute);
    }
    for (const Value& part : parts) {
        item = get_item(ip, item, part);
        if (dflt != nullptr && item.is_undefined()) item = *dflt;
    }
    return item;
}

bool flag(const std::optional<Value>& v) {
    return v && truthy(*v);
}

Value generator(std::vector<Value> items) {
    return Value::iterator(std::move(items), "generator");
}

// The body of a filter that Python writes as a generator function: its errors wait until the
// result is consumed. `compute` appends to `items` as it goes.
template <class F>
Value lazily(F compute) {
    std::vector<Value> items;
    std::optional<RenderError> error;
    try {
        compute(items);
    } catch (RenderError& e) {
        error = std::move(e);
    }
    Value v = generator(std::move(items));
    v.iter().error = std::move(error);
    return v;
}

void no_args(CallArgs& args, std::string_view name) {
    bind_args(args, name, {});
}

// ---- filters --------------------------------------------------------------------------------

Value f_abs(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "abs");
    if (v.is_int_like()) {
        if (v.as_int() == INT64_MIN) fail("OverflowError: integer result out of range");
        return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
    }
    if (v.kind() == Kind::Float) return Value::real(std::fabs(v.as_float()));
    fail(fmt::format("TypeError: bad operand type for abs(): '{}'", type_name(v)));
}

Value f_attr(Interp& ip, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "attr", {"name"});
    if (!a[0]) fail("TypeError: do_attr() missing 1 required positional argument: 'name'");
    const std::string name = require_str(*a[0], "attribute name");
    if (v.is_undefined()) fail_undefined(v);
    // Attributes only, never items: a dict key is not an attribute.
    if (v.is_dict() && !method_attr(v, name))
        return Value::undefined(fmt::format("'dict object' has no attribute '{}'", name));
    return get_attr(ip, v, name);
}

Value f_batch(Interp&, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "batch", {"linecount", "fill_with"});
    if (!a[0]) fail("TypeError: do_batch() missing 1 required positional argument: 'linecount'");
    return lazily([&](std::vector<Value>& out) {
        const int64_t n = require_int(*a[0], "linecount");
        std::vector<Value> tmp;
        for (Value& item : iterate(v)) {
            if (static_cast<int64_t>(tmp.size()) == n) out.push_back(Value::list(std::exchange(tmp, {})));
            tmp.push_back(std::move(item));
        }
        if (!tmp.empty()) {
            if (a[1] && !a[1]->is_none())
                while (static_cast<int64_t>(tmp.size()) < n) tmp.push_back(*a[1]);
            out.push_back(Value::list(std::move(tmp)));
        }
    });
}

Value f_length(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "length");
    return Value::integer(py_len(v));
}

Value f_default(Interp&, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "default", {"default_value", "boolean"});
    if (v.is_undefined() || (flag(a[1]) && !truthy(v))) return a[0] ? *a[0] : Value::string("");
    return v;
}

Value f_dictsort(Interp&, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "dictsort", {"case_sensitive", "by", "reverse"});
    const std::string by = a[1] ? require_str(*a[1], "by") : "key";
    if (by != "key" && by != "value") fail("FilterArgumentError: You can only sort by either \"key\" or \"value\"");
    if (!v.is_dict()) fail(fmt::format("AttributeError: '{}' object has no attribute 'items'", type_name(v)));
    std::vector<std::pair<Value, Value>> items = v.dict().items;
    const size_t pos = by == "key" ? 0 : 1;
    const bool cs = flag(a[0]), rev = flag(a[2]);
    auto key = [&](const std::pair<Value, Value>& kv) {
        return cs ? (pos ? kv.second : kv.first) : ignore_case(pos ? kv.second : kv.first);
    };
    std::stable_sort(items.begin(), items.end(),
                     [&](const auto& x, const auto& y) { return rev ? py_lt(key(y), key(x)) : py_lt(key(x), key(y)); });
    std::vector<Value> out;
    for (auto& [k, val] : items) out.push_back(Value::tuple({k, val}));
    return Value::list(std::move(out));
}

Value f_first(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "first");
    if (v.kind() == Kind::Iterator) {
        IterData& it = v.iter();
        if (it.pos < it.items.size()) return it.items[it.pos++];
        if (it.error) throw *it.error;
    } else {
        std::vector<Value> items = iterate(v);
        if (!items.empty()) return items.front();
    }
    return Value::undefined("No first item, sequence was empty.");
}

Value f_last(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "last");
    if (v.kind() == Kind::Iterator) fail(fmt::format("TypeError: '{}' object is not reversible", type_name(v)));
    std::vector<Value> items = iterate(v);
    if (!items.empty()) return items.back();
    return Value::undefined("No last item, sequence was empty.");
}

Value f_items(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "items");
    return lazily([&](std::vector<Value>& out) {
        if (v.is_undefined()) return;
        if (!v.is_dict()) fail("TypeError: Can only get item pairs from a mapping.");
        for (const auto& [k, val] : v.dict().items) out.push_back(Value::tuple({k, val}));
    });
}

Value f_join(Interp& ip, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "join", {"d", "attribute"});
    const std::string sep = a[0] ? soft_str(*a[0]) : "";
    std::string out;
    bool first = true;
    for (const Value& item : iterate(v)) {
        if (!first) out += sep;
        first = false;
        append_str(out, a[1] && !a[1]->is_none() ? get_path(ip, item, *a[1], nullptr) : item);
        check_size(out.size());
    }
    return Value::string(std::move(out));
}

Value f_list(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "list");
    return Value::list(iterate(v));
}

Value f_map(Interp& ip, const Value& v, CallArgs& args) {
    return lazily([&](std::vector<Value>& out) {
        if (!truthy(v)) return;
        const std::vector<Value> items = iterate(v);
        if (args.pos.empty()) {
            auto a = bind_args(args, "map", {"attribute", "default"});
            if (!a[0]) fail("FilterArgumentError: map requires a filter argument");
            const Value* dflt = a[1] && !a[1]->is_none() ? &*a[1] : nullptr;
            for (const Value& item : items) out.push_back(get_path(ip, item, *a[0], dflt));
            return;
        }
        const std::string name = require_str(args.pos[0], "filter name");
        for (const Value& item : items) {
            CallArgs rest{std::vector<Value>(args.pos.begin() + 1, args.pos.end()), args.kw};
            out.push_back(ip.call_filter(name, item, rest));
        }
    });
}

template <bool Max>
Value f_minmax(Interp& ip, const Value& v, CallArgs& args) {
    auto a = bind_args(args, Max ? "max" : "min", {"case_sensitive", "attribute"});
    const std::vector<Value> items = iterate(v);
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    auto key = [&](const Value& item) {
        Value k = a[1] && !a[1]->is_none() ? get_path(ip, item, *a[1], nullptr) : item;
        return flag(a[0]) ? k : ignore_case(k);
    };
    size_t best = 0;
    Value best_key = key(items[0]);
    for (size_t i = 1; i < items.size(); ++i) {
        Value k = key(items[i]);
        if (Max ? py_lt(best_key, k) : py_lt(k, best_key)) {
            best = i;
            best_key = std::move(k);
        }
    }
    return items[best];
}

// select / reject / selectattr / rejectattr
template <bool Select, bool Attr>
void select_into(Interp& ip, const Value& v, CallArgs& args, std::vector<Value>& out) {
    if (!truthy(v)) return;
    size_t off = 0;
    Value attribute;
    if (Attr) {
        if (args.pos.empty()) fail("FilterArgumentError: Missing parameter for attribute name");
        attribute = args.pos[0];
        off = 1;
    }
    std::optional<std::string> test;
    if (args.pos.size() > off) test = require_str(args.pos[off], "test name");
    for (const Value& item : iterate(v)) {
        const Value x = Attr ? get_path(ip, item, attribute, nullptr) : item;
        bool ok;
        if (test) {
            CallArgs rest{std::vector<Value>(args.pos.begin() + static_cast<std::ptrdiff_t>(off) + 1, args.pos.end()),
                          args.kw};
            ok = ip.call_test(*test, x, rest);
        } else {
            ok = truthy(x);
        }
        if (ok == Select) out.push_back(item);
    }
}

template <bool Select, bool Attr>
Value f_select(Interp& ip, const Value& v, CallArgs& args) {
    return lazily([&](std::vector<Value>& out) { select_into<Select, Attr>(ip, v, args, out); });
}

Value f_reverse(Interp&, const Value& v, CallArgs& args) {
    no_args(args, "reverse");
    if (v.is_string()) return Value::string(pystr::slice(v.str(), std::nullopt, std::nullopt, -1));
    std::vector<Value> items = iterate(v);
    std::reverse(items.begin(), items.end());
    switch (v.kind()) {
        case Kind::List: return Value::iterator(std::move(items), "list_reverseiterator");
        case Kind::Dict: return Value::iterator(std::move(items), "dict_reversekeyiterator");
        case Kind::Tuple:
        case Kind::Undefined: return Value::iterator(std::move(items), "reversed");
        default: return Value::list(std::move(items));  // a generator: jinja2 falls back to a list
    }
}

Value f_slice(Interp&, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "slice", {"slices", "fill_with"});
    if (!a[0]) fail("TypeError: do_slice() missing 1 required positional argument: 'slices'");
    return lazily([&](std::vector<Value>& out) {
        const int64_t slices = require_int(*a[0], "slices");
        if (slices <= 0) fail("ZeroDivisionError: integer division or modulo by zero");
        const std::vector<Value> seq = iterate(v);
        const auto length = static_cast<int64_t>(seq.size());
        const int64_t per = length / slices, extra = length % slices;
        int64_t offset = 0;
        for (int64_t n = 0; n < std::min<int64_t>(slices, 1 << 20); ++n) {
            const int64_t start = offset + n * per;
            if (n < extra) ++offset;
            const int64_t end = offset + (n + 1) * per;
            std::vector<Value> tmp(seq.begin() + start, seq.begin() + end);
            if (a[1] && !a[1]->is_none() && n >= extra) tmp.push_back(*a[1]);
            out.push_back(Value::list(std::move(tmp)));
        }
    });
}

Value f_sort(Interp& ip, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "sort", {"reverse", "case_sensitive", "attribute"});
    std::vector<Value> items = iterate(v);
    std::vector<Value> attrs;  // make_multi_attrgetter: "a,b" sorts by a then b
    if (a[2] && a[2]->is_string()) {
        for (std::string& p : pystr::split(a[2]->str(), std::string(","), -1))
            attrs.push_back(Value::string(std::move(p)));
    } else if (a[2] && !a[2]->is_none()) {
        attrs.push_back(*a[2]);
    }
    const bool cs = flag(a[1]), rev = flag(a[0]);
    std::vector<std::pair<Value, Value>> keyed;
    for (Value& item : items) {
        std::vector<Value> key;
        if (attrs.empty()) {
            key.push_back(cs ? item : ignore_case(item));
        } else {
            for (const Value& attr : attrs) {
                Value k = get_path(ip, item, attr, nullptr);
                key.push_back(cs ? k : ignore_case(k));
            }
        }
        keyed.emplace_back(Value::list(std::move(key)), std::move(item));
    }
    std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
        return rev ? py_lt(y.first, x.first) : py_lt(x.first, y.first);
    });
    std::vector<Value> out;
    for (auto& kv : keyed) out.push_back(std::move(kv.second));
    return Value::list(std::move(out));
}

Value f_sum(Interp& ip, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "sum", {"attribute", "start"});
    Value total = a[1] ? *a[1] : Value::integer(0);
    if (total.is_string()) fail("TypeError: sum() can't sum strings [use ''.join(seq) instead]");
    for (const Value& item : iterate(v))
        total = binary_op(ast::BinOp::Add, total, a[0] && !a[0]->is_none() ? get_path(ip, item, *a[0], nullptr) : item);
    return total;
}

Value f_unique(Interp& ip, const Value& v, CallArgs& args) {
    auto a = bind_args(args, "unique", {"case_sensitive", "attribute"});
    return lazily([&](std::vector<Value>& out) {
        std::vector<Value> seen;
        for (const Value& item : iterate(v)) {
            Value key = a[1] && !a[1]->is_none() ? get_path(ip, item, *a[1], nullptr) : item;
            if (!flag(a[0])) key = ignore_case(key);
            check_hashable(key);
            if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return py_eq(s, key); })) {
                seen.push_back(std::move(key));
                out.push_back(item);
            }
        }
    });
}

struct FilterEntry {
    std::string_view name;
    FilterFn fn;
};

constexpr FilterEntry kFilters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"batch", f_batch},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"first", f_first},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"map", f_map},
    {"max", f_minmax<true>},
    {"min", f_minmax<false>},
    {"reject", f_select<false, false>},
    {"rejectattr", f_select<false, true>},
    {"reverse", f_reverse},
    {"select", f_select<true, false>},
    {"selectattr", f_select<true, true>},
    {"slice", f_slice},
    {"sort", f_sort},
    {"sum", f_sum},
    {"unique", f_unique},
};

}  // namespace

FilterFn find_filter(std::string_view name) {
    for (const FilterEntry& f : kFilters)
        if (f.name == name) return f.fn;
    return find_text_filter(name);
}

}  // namespace hymoe::jinja
