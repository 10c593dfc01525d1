// Python's object protocol for the interpreter's values: str(), repr(), truth, ==, <, len()
// and iteration. JSON is in jinja_json.cpp.
#include "chat/jinja_value.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "chat/jinja_pystr.hpp"

namespace hymoe::jinja {

namespace {

constexpr int kMaxNesting = 200;
thread_local int g_nesting = 0;

// The containers being printed, innermost last: Python's repr prints a container that contains
// itself as [...], (...) or {...} (Py_ReprEnter), which only a namespace can make happen here.
thread_local std::vector<const void*> g_printing;

struct PrintGuard {
    explicit PrintGuard(const void* id)
        : recursive(std::find(g_printing.begin(), g_printing.end(), id) != g_printing.end()) {
        if (!recursive) g_printing.push_back(id);
    }
    ~PrintGuard() {
        if (!recursive) g_printing.pop_back();
    }
    PrintGuard(const PrintGuard&) = delete;
    PrintGuard& operator=(const PrintGuard&) = delete;
    const bool recursive;
};

void append_dict(std::string& out, const DictData& d);

// Exact comparison of two numbers (bool, int, float); nullopt when a NaN is involved.
std::optional<int> num_cmp(const Value& a, const Value& b) {
    if (a.is_int_like() && b.is_int_like()) {
        const int64_t x = a.as_int(), y = b.as_int();
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (!a.is_int_like() && !b.is_int_like()) {
        const double x = a.as_float(), y = b.as_float();
        if (std::isnan(x) || std::isnan(y)) return std::nullopt;
        return x < y ? -1 : x > y ? 1 : 0;
    }
    // One int, one float: compare exactly, as Python does (2**53 + 1 != 2.0**53).
    const bool int_first = a.is_int_like();
    const int64_t i = int_first ? a.as_int() : b.as_int();
    const double f = int_first ? b.as_float() : a.as_float();
    if (std::isnan(f)) return std::nullopt;
    int r;
    const auto di = static_cast<double>(i);
    if (di != f) {
        r = di < f ? -1 : 1;
    } else if (f >= 9223372036854775808.0) {
        r = -1;
    } else {
        const auto fi = static_cast<int64_t>(f);
        r = i < fi ? -1 : i > fi ? 1 : 0;
    }
    return int_first ? r : -r;
}

void append_repr(std::string& out, const Value& v);

void append_items(std::string& out, const std::vector<Value>& items) {
    for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ", ";
        append_repr(out, items[i]);
    }
}

void append_repr(std::string& out, const Value& v) {
    switch (v.kind()) {
        case Kind::Undefined: out += "Undefined"; return;
        case Kind::String: out += pystr::repr(v.str()); return;
        default: append_str(out, v); return;
    }
}

}  // namespace

NestingGuard::NestingGuard() {
    // A namespace can contain itself; Python would stop such a walk with RecursionError too.
    if (++g_nesting > kMaxNesting) {
        --g_nesting;
        fail("RecursionError: maximum recursion depth exceeded");
    }
}
NestingGuard::~NestingGuard() {
    --g_nesting;
}

void fail(std::string message) {
    throw RenderError{std::move(message), 0};
}

// ---- Value ------------------------------------------------------------------------------

Value Value::undefined(std::string hint) {
    Value v;
    v.data_ = std::make_shared<const std::string>(std::move(hint));
    return v;
}
Value Value::none() {
    Value v;
    v.kind_ = Kind::None;
    return v;
}
Value Value::boolean(bool b) {
    Value v;
    v.kind_ = Kind::Bool;
    v.data_ = b;
    return v;
}
Value Value::integer(int64_t i) {
    Value v;
    v.kind_ = Kind::Int;
    v.data_ = i;
    return v;
}
Value Value::real(double f) {
    Value v;
    v.kind_ = Kind::Float;
    v.data_ = f;
    return v;
}
Value Value::string(std::string s) {
    Value v;
    v.kind_ = Kind::String;
    v.data_ = std::make_shared<const std::string>(std::move(s));
    return v;
}
Value Value::list(std::vector<Value> items) {
    Value v;
    v.kind_ = Kind::List;
    v.data_ = std::make_shared<std::vector<Value>>(std::move(items));
    return v;
}
Value Value::tuple(std::vector<Value> items) {
    Value v = list(std::move(items));
    v.kind_ = Kind::Tuple;
    return v;
}
Value Value::dict(std::shared_ptr<DictData> d) {
    Value v;
    v.kind_ = Kind::Dict;
    v.data_ = std::move(d);
    return v;
}
Value Value::new_dict() {
    return dict(std::make_shared<DictData>());
}
Value Value::iterator(std::vector<Value> items, std::string type_name) {
    auto data = std::make_shared<IterData>();
    data->items = std::move(items);
    data->type_name = std::move(type_name);
    Value v;
    v.kind_ = Kind::Iterator;
    v.data_ = std::move(data);
    return v;
}
Value Value::object(std::shared_ptr<Object> o) {
    Value v;
    v.kind_ = Kind::Object;
    v.data_ = std::move(o);
    return v;
}

int64_t Value::as_int() const {
    return kind_ == Kind::Bool ? static_cast<int64_t>(std::get<bool>(data_)) : std::get<int64_t>(data_);
}

double Value::as_float() const {
    return kind_ == Kind::Float ? std::get<double>(data_) : static_cast<double>(as_int());
}

const std::string& Value::str() const {
    static const std::string empty;
    const auto* p = std::get_if<StrPtr>(&data_);
    return p != nullptr && *p ? **p : empty;
}

const void* Value::identity() const {
    switch (kind_) {
        case Kind::List:
        case Kind::Tuple: return std::get<ListPtr>(data_).get();
        case Kind::Dict: return std::get<DictPtr>(data_).get();
        case Kind::Iterator: return std::get<IterPtr>(data_).get();
        case Kind::Object: return std::get<ObjPtr>(data_).get();
        default: return nullptr;
    }
}

// ---- DictData -----------------------------------------------------------------------------

const Value* DictData::find(const Value& key) const {
    if (key.is_string()) return find(std::string_view(key.str()));
    check_hashable(key);
    for (const auto& [k, v] : items)
        if (py_eq(k, key)) return &v;
    return nullptr;
}

const Value* DictData::find(std::string_view key) const {
    for (const auto& [k, v] : items)
        if (k.is_string() && k.str() == key) return &v;
    return nullptr;
}

void DictData::set(Value key, Value value) {
    check_hashable(key);
    for (auto& [k, v] : items) {
        if (py_eq(k, key)) {
            v = std::move(value);
            return;
        }
    }
    items.emplace_back(std::move(key), std::move(value));
}

// ---- objects ------------------------------------------------------------------------------

std::string Object::repr() const {
    return fmt::format("<{} object>", type_name());
}
std::optional<Value> Object::attr(Interp&, std::string_view) {
    return std::nullopt;
}
Value Object::call(Interp&, CallArgs&) {
    fail(fmt::format("TypeError: '{}' object is not callable", type_name()));
}

std::string Namespace::repr() const {
    std::string out = "<Namespace ";
    append_dict(out, attrs);
    return out + ">";
}

std::optional<Value> Namespace::attr(Interp&, std::string_view name) {
    if (const Value* v = attrs.find(name)) return *v;
    return std::nullopt;
}

void Namespace::set(std::string_view name, Value value) {
    if (!name.empty() && name[0] == '_') {
        fail(
            fmt::format("SecurityError: Chat templates cannot store underscore-prefixed attributes on a "
                        "namespace, but got {}. Please rename the attribute.",
                        pystr::repr(name)));
    }
    attrs.set(Value::string(std::string(name)), std::move(value));
}

std::string Function::repr() const {
    return fmt::format("<built-in function {}>", name_);
}

// ---- the object protocol ----------------------------------------------------------------------

namespace {
void append_dict(std::string& out, const DictData& d) {
    const PrintGuard print(&d);
    if (print.recursive) {
        out += "{...}";
        return;
    }
    const NestingGuard guard;
    out += '{';
    for (size_t i = 0; i < d.items.size(); ++i) {
        if (i > 0) out += ", ";
        append_repr(out, d.items[i].first);
        out += ": ";
        append_repr(out, d.items[i].second);
    }
    out += '}';
}
}  // namespace

std::string type_name(const Value& v) {
    switch (v.kind()) {
        case Kind::Undefined: return "Undefined";
        case Kind::None: return "NoneType";
        case Kind::Bool: return "bool";
        case Kind::Int: return "int";
        case Kind::Float: return "float";
        case Kind::String: return "str";
        case Kind::List: return "list";
        case Kind::Tuple: return "tuple";
        case Kind::Dict: return "dict";
        case Kind::Iterator: return v.iter().type_name;
        case Kind::Object: return v.object().type_name();
    }
    return "object";
}

std::string object_type_repr(const Value& v) {
    if (v.is_none()) return "None";
    return type_name(v) + " object";
}

void append_str(std::string& out, const Value& v) {
    switch (v.kind()) {
        case Kind::Undefined: return;
        case Kind::None: out += "None"; return;
        case Kind::Bool: out += v.as_bool() ? "True" : "False"; return;
        case Kind::Int: out += std::to_string(v.as_int()); return;
        case Kind::Float: out += pystr::float_repr(v.as_float()); return;
        case Kind::String: out += v.str(); return;
        case Kind::List:
        case Kind::Tuple: {
            const bool list = v.kind() == Kind::List;
            const PrintGuard print(v.identity());
            if (print.recursive) {
                out += list ? "[...]" : "(...)";
                return;
            }
            const NestingGuard guard;
            out += list ? '[' : '(';
            append_items(out, v.items());
            out += list ? "]" : v.items().size() == 1 ? ",)" : ")";
            return;
        }
        case Kind::Dict: append_dict(out, v.dict()); return;
        case Kind::Iterator: out += fmt::format("<{} object>", v.iter().type_name); return;
        case Kind::Object: {
            const NestingGuard guard;
            out += v.object().repr();
            return;
        }
    }
}

std::string to_str(const Value& v) {
    if (v.is_string()) return v.str();
    std::string out;
    append_str(out, v);
    return out;
}

std::string repr(const Value& v) {
    std::string out;
    append_repr(out, v);
    return out;
}

bool truthy(const Value& v) {
    switch (v.kind()) {
        case Kind::Undefined:
        case Kind::None: return false;
        case Kind::Bool: return v.as_bool();
        case Kind::Int: return v.as_int() != 0;
        case Kind::Float: return v.as_float() != 0.0;
        case Kind::String: return !v.str().empty();
        case Kind::List:
        case Kind::Tuple: return !v.items().empty();
        case Kind::Dict: return !v.dict().items.empty();
        case Kind::Iterator:
        case Kind::Object: return true;
    }
    return true;
}

bool py_eq(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
        const auto c = num_cmp(a, b);
        return c && *c == 0;
    }
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case Kind::Undefined:
        case Kind::None: return true;
        case Kind::String: return a.str() == b.str();
        case Kind::List:
        case Kind::Tuple: {
            if (a.identity() == b.identity()) return true;
            const NestingGuard guard;
            const auto& x = a.items();
            const auto& y = b.items();
            if (x.size() != y.size()) return false;
            for (size_t i = 0; i < x.size(); ++i)
                if (!py_eq(x[i], y[i])) return false;
            return true;
        }
        case Kind::Dict: {
            if (a.identity() == b.identity()) return true;
            const NestingGuard guard;
            if (a.dict().items.size() != b.dict().items.size()) return false;
            for (const auto& [k, v] : a.dict().items) {
                const Value* other = b.dict().find(k);
                if (other == nullptr || !py_eq(v, *other)) return false;
            }
            return true;
        }
        default: return a.identity() == b.identity();
    }
}

bool py_order(Order op, const Value& a, const Value& b) {
    if (a.is_undefined()) fail_undefined(a);
    if (b.is_undefined()) fail_undefined(b);
    auto apply = [op](int c) {
        switch (op) {
            case Order::Lt: return c < 0;
            case Order::Le: return c <= 0;
            case Order::Gt: return c > 0;
            case Order::Ge: return c >= 0;
        }
        return false;
    };
    if (a.is_number() && b.is_number()) {
        const auto c = num_cmp(a, b);
        return c && apply(*c);
    }
    if (a.is_string() && b.is_string()) return apply(a.str().compare(b.str()));
    if (a.is_list_like() && a.kind() == b.kind()) {
        const NestingGuard guard;
        const auto& x = a.items();
        const auto& y = b.items();
        for (size_t i = 0; i < x.size() && i < y.size(); ++i)
            if (!py_eq(x[i], y[i])) return py_order(op, x[i], y[i]);
        return apply(x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0);
    }
    static constexpr const char* kSymbols[] = {"<", "<=", ">", ">="};
    fail(fmt::format("TypeError: '{}' not supported between instances of '{}' and '{}'", kSymbols[static_cast<int>(op)],
                     type_name(a), type_name(b)));
}

void check_hashable(const Value& v) {
    if (v.kind() == Kind::List || v.kind() == Kind::Dict)
        fail(fmt::format("TypeError: unhashable type: '{}'", type_name(v)));
    if (v.kind() == Kind::Tuple)
        for (const Value& item : v.items()) check_hashable(item);
}

int64_t py_len(const Value& v) {
    switch (v.kind()) {
        case Kind::Undefined: return 0;
        case Kind::String: return static_cast<int64_t>(pystr::length(v.str()));
        case Kind::List:
        case Kind::Tuple: return static_cast<int64_t>(v.items().size());
        case Kind::Dict: return static_cast<int64_t>(v.dict().items.size());
        default: fail(fmt::format("TypeError: object of type '{}' has no len()", type_name(v)));
    }
}

std::vector<Value> iterate(const Value& v) {
    switch (v.kind()) {
        case Kind::Undefined: return {};
        case Kind::List:
        case Kind::Tuple: return v.items();
        case Kind::Dict: {
            std::vector<Value> keys;
            keys.reserve(v.dict().items.size());
            for (const auto& kv : v.dict().items) keys.push_back(kv.first);
            return keys;
        }
        case Kind::String: {
            std::vector<Value> chars;
            const std::string& s = v.str();
            size_t pos = 0;
            while (pos < s.size()) {
                const size_t start = pos;
                pystr::decode(s, pos);
                chars.push_back(Value::string(s.substr(start, pos - start)));
            }
            return chars;
        }
        case Kind::Iterator: {
            IterData& it = v.iter();
            if (it.error) throw *it.error;
            std::vector<Value> rest(it.items.begin() + static_cast<std::ptrdiff_t>(std::min(it.pos, it.items.size())),
                                    it.items.end());
            it.pos = it.items.size();
            return rest;
        }
        default: fail(fmt::format("TypeError: '{}' object is not iterable", type_name(v)));
    }
}

void fail_undefined(const Value& v) {
    const std::string& hint = v.str();
    if (hint.rfind("SecurityError: ", 0) == 0) fail(hint);
    fail("UndefinedError: " + (hint.empty() ? std::string("value is undefined") : hint));
}

}  // namespace hymoe::jinja
