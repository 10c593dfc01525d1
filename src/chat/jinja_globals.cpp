// jinja2's builtin tests (jinja2/tests.py) and the environment's globals as transformers sets
// them up: range (the sandbox's, capped), dict, namespace, cycler, joiner, raise_exception and
// strftime_now.
#include <algorithm>
#include <ctime>

#include <fmt/format.h>

#include "chat/jinja_eval.hpp"
#include "chat/jinja_pystr.hpp"

namespace hymoe::jinja {

namespace {

using ast::TestFn;

constexpr int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

const Value& one_arg(CallArgs& args, std::string_view test, std::vector<std::optional<Value>>& slot) {
    slot = bind_args(args, test, {"other"});
    if (!slot[0]) fail(fmt::format("TypeError: test '{}' takes 1 argument (0 given)", test));
    return *slot[0];
}

// ---- tests ------------------------------------------------------------------------------------

template <bool (*F)(const Value&)>
bool plain_test(Interp&, const Value& v, CallArgs& args) {
    bind_args(args, "test", {});
    return F(v);
}

bool is_defined(const Value& v) {
    return !v.is_undefined();
}
bool is_undefined(const Value& v) {
    return v.is_undefined();
}
bool is_none(const Value& v) {
    return v.is_none();
}
bool is_boolean(const Value& v) {
    return v.kind() == Kind::Bool;
}
bool is_false(const Value& v) {
    return v.kind() == Kind::Bool && !v.as_bool();
}
bool is_true(const Value& v) {
    return v.kind() == Kind::Bool && v.as_bool();
}
bool is_integer(const Value& v) {
    return v.kind() == Kind::Int;
}
bool is_float(const Value& v) {
    return v.kind() == Kind::Float;
}
bool is_number(const Value& v) {
    return v.is_number();
}
bool is_string(const Value& v) {
    return v.is_string();
}
bool is_mapping(const Value& v) {
    return v.is_dict();
}
bool is_lower(const Value& v) {
    return pystr::is_class(to_str(v), pystr::CharClass::Lower);
}
bool is_upper(const Value& v) {
    return pystr::is_class(to_str(v), pystr::CharClass::Upper);
}
bool is_escaped(const Value&) {
    return false;
}  // nothing is Markup without autoescape

bool is_sequence(const Value& v) {  // len() and __getitem__
    switch (v.kind()) {
        case Kind::Undefined:
        case Kind::String:
        case Kind::List:
        case Kind::Tuple:
        case Kind::Dict: return true;
        default: return false;
    }
}

bool is_iterable(const Value& v) {
    switch (v.kind()) {
        case Kind::Undefined:
        case Kind::String:
        case Kind::List:
        case Kind::Tuple:
        case Kind::Dict:
        case Kind::Iterator: return true;
        case Kind::Object: return v.object().type_name() == "LoopContext";
        default: return false;
    }
}

bool is_callable(const Value& v) {
    // jinja2's Undefined defines __call__ (to raise), so callable() is true for it.
    return v.is_undefined() || (v.is_object() && v.object().callable());
}

template <bool Odd>
bool t_parity(Interp&, const Value& v, CallArgs& args) {
    bind_args(args, Odd ? "odd" : "even", {});
    return py_eq(binary_op(ast::BinOp::Mod, v, Value::integer(2)), Value::integer(Odd ? 1 : 0));
}

bool t_divisibleby(Interp&, const Value& v, CallArgs& args) {
    std::vector<std::optional<Value>> slot;
    const Value& num = one_arg(args, "divisibleby", slot);
    return py_eq(binary_op(ast::BinOp::Mod, v, num), Value::integer(0));
}

// `is sameas`: Python identity. Containers and objects compare by address; None and the
// booleans are singletons; CPython caches small ints, empty and one-character strings.
bool t_sameas(Interp&, const Value& v, CallArgs& args) {
    std::vector<std::optional<Value>> slot;
    const Value& other = one_arg(args, "sameas", slot);
    if (v.kind() != other.kind()) return false;
    switch (v.kind()) {
        case Kind::None: return true;
        case Kind::Bool: return v.as_bool() == other.as_bool();
        case Kind::Int: return v.as_int() == other.as_int() && v.as_int() >= -5 && v.as_int() <= 256;
        case Kind::String: return v.str() == other.str() && v.str().size() <= 1;
        case Kind::Undefined:
        case Kind::Float: return false;
        default: return v.identity() == other.identity();
    }
}

bool t_in(Interp&, const Value& v, CallArgs& args) {
    std::vector<std::optional<Value>> slot;
    return contains(one_arg(args, "in", slot), v);
}

template <ast::CmpOp Op>
bool t_compare(Interp&, const Value& v, CallArgs& args) {
    std::vector<std::optional<Value>> slot;
    return compare(Op, v, one_arg(args, "comparison", slot));
}

bool t_filter(Interp&, const Value& v, CallArgs& args) {
    bind_args(args, "filter", {});
    return v.is_string() && find_filter(v.str()) != nullptr;
}

bool t_test(Interp&, const Value& v, CallArgs& args) {
    bind_args(args, "test", {});
    return v.is_string() && find_test(v.str()) != nullptr;
}

struct TestEntry {
    std::string_view name;
    TestFn fn;
};

constexpr TestEntry kTests[] = {
    {"odd", t_parity<true>},
    {"even", t_parity<false>},
    {"divisibleby", t_divisibleby},
    {"defined", plain_test<is_defined>},
    {"undefined", plain_test<is_undefined>},
    {"filter", t_filter},
    {"test", t_test},
    {"none", plain_test<is_none>},
    {"boolean", plain_test<is_boolean>},
    {"false", plain_test<is_false>},
    {"true", plain_test<is_true>},
    {"integer", plain_test<is_integer>},
    {"float", plain_test<is_float>},
    {"lower", plain_test<is_lower>},
    {"upper", plain_test<is_upper>},
    {"string", plain_test<is_string>},
    {"mapping", plain_test<is_mapping>},
    {"number", plain_test<is_number>},
    {"sequence", plain_test<is_sequence>},
    {"iterable", plain_test<is_iterable>},
    {"callable", plain_test<is_callable>},
    {"sameas", t_sameas},
    {"escaped", plain_test<is_escaped>},
    {"in", t_in},
    {"==", t_compare<ast::CmpOp::Eq>},
    {"eq", t_compare<ast::CmpOp::Eq>},
    {"equalto", t_compare<ast::CmpOp::Eq>},
    {"!=", t_compare<ast::CmpOp::Ne>},
    {"ne", t_compare<ast::CmpOp::Ne>},
    {">", t_compare<ast::CmpOp::Gt>},
    {"gt", t_compare<ast::CmpOp::Gt>},
    {"greaterthan", t_compare<ast::CmpOp::Gt>},
    {"ge", t_compare<ast::CmpOp::Ge>},
    {">=", t_compare<ast::CmpOp::Ge>},
    {"<", t_compare<ast::CmpOp::Lt>},
    {"lt", t_compare<ast::CmpOp::Lt>},
    {"lessthan", t_compare<ast::CmpOp::Lt>},
    {"<=", t_compare<ast::CmpOp::Le>},
    {"le", t_compare<ast::CmpOp::Le>},
};

// ---- globals ------------------------------------------------------------------------------------

class Cycler final : public Object, public std::enable_shared_from_this<Cycler> {
public:
    explicit Cycler(std::vector<Value> items) : items_(std::move(items)) {}
    std::string type_name() const override { return "Cycler"; }
    std::optional<Value> attr(Interp&, std::string_view name) override {
        if (name == "current") return items_[pos_];
        if (name == "items") return Value::tuple(items_);
        if (name == "next") return bound("next", next);
        if (name == "reset") return bound("reset", reset);
        return std::nullopt;
    }
    void release() override { items_.clear(); }

private:
    Value bound(const char* name, Function::Fn fn) {
        return Value::object(std::make_shared<Function>(name, fn, Value::object(shared_from_this())));
    }
    static Value next(Interp&, const Value& self, CallArgs& args) {
        bind_args(args, "next", {});
        auto& c = static_cast<Cycler&>(self.object());
        if (c.items_.empty()) fail("RuntimeError: the cycler was released");
        Value rv = c.items_[c.pos_];
        c.pos_ = (c.pos_ + 1) % c.items_.size();
        return rv;
    }
    static Value reset(Interp&, const Value& self, CallArgs& args) {
        bind_args(args, "reset", {});
        static_cast<Cycler&>(self.object()).pos_ = 0;
        return Value::none();
    }
    std::vector<Value> items_;
    size_t pos_ = 0;
};

class Joiner final : public Object {
public:
    explicit Joiner(std::string sep) : sep_(std::move(sep)) {}
    std::string type_name() const override { return "Joiner"; }
    bool callable() const override { return true; }
    Value call(Interp&, CallArgs& args) override {
        bind_args(args, "joiner", {});
        if (!used_) {
            used_ = true;
            return Value::string("");
        }
        return Value::string(sep_);
    }
    std::optional<Value> attr(Interp&, std::string_view name) override {
        if (name == "sep") return Value::string(sep_);
        if (name == "used") return Value::boolean(used_);
        return std::nullopt;
    }

private:
    std::string sep_;
    bool used_ = false;
};

Value g_range(Interp&, const Value&, CallArgs& args) {
    if (!args.kw.empty()) fail("TypeError: range() takes no keyword arguments");
    if (args.pos.empty() || args.pos.size() > 3) {
        fail(fmt::format("TypeError: range expected at most 3 arguments, got {}", args.pos.size()));
    }
    std::vector<int64_t> n;
    for (const Value& v : args.pos) n.push_back(require_int(v, "range()"));
    const int64_t start = n.size() == 1 ? 0 : n[0];
    const int64_t stop = n.size() == 1 ? n[0] : n[1];
    const int64_t step = n.size() == 3 ? n[2] : 1;
    if (step == 0) fail("ValueError: range() arg 3 must not be zero");
    const long double span = step > 0 ? static_cast<long double>(stop) - start : static_cast<long double>(start) - stop;
    const long double count = span <= 0 ? 0 : std::ceil(span / std::abs(static_cast<long double>(step)));
    if (count > kMaxRange) {
        fail(fmt::format("OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).",
                         kMaxRange));
    }
    std::vector<Value> out;
    for (int64_t k = 0, i = start; k < static_cast<int64_t>(count); ++k, i += step) out.push_back(Value::integer(i));
    return Value::list(std::move(out));
}

// dict(*args, **kwargs) as Python builds it: from a mapping or from key/value pairs.
Value build_dict(CallArgs& args, std::string_view func) {
    if (args.pos.size() > 1)
        fail(fmt::format("TypeError: {} expected at most 1 argument, got {}", func, args.pos.size()));
    Value d = Value::new_dict();
    if (!args.pos.empty()) {
        const Value& src = args.pos[0];
        if (src.is_dict()) {
            for (const auto& [k, v] : src.dict().items) d.dict().set(k, v);
        } else {
            size_t i = 0;
            for (const Value& pair : iterate(src)) {
                const std::vector<Value> kv = iterate(pair);
                if (kv.size() != 2) {
                    fail(fmt::format("ValueError: dictionary update sequence element #{} has length {}; 2 is required",
                                     i, kv.size()));
                }
                d.dict().set(kv[0], kv[1]);
                ++i;
            }
        }
    }
    for (auto& [k, v] : args.kw) d.dict().set(Value::string(k), v);
    return d;
}

Value g_dict(Interp&, const Value&, CallArgs& args) {
    return build_dict(args, "dict");
}

Value g_namespace(Interp& ip, const Value&, CallArgs& args) {
    const Value d = build_dict(args, "namespace");
    auto ns = std::make_shared<Namespace>();
    for (const auto& [k, v] : d.dict().items) {
        if (k.is_string()) {
            ns->set(k.str(), v);
        } else {
            ns->attrs.set(k, v);
        }
    }
    ip.track(ns);
    return Value::object(std::move(ns));
}

Value g_cycler(Interp& ip, const Value&, CallArgs& args) {
    if (!args.kw.empty()) fail("TypeError: Cycler() got an unexpected keyword argument");
    if (args.pos.empty()) fail("RuntimeError: at least one item has to be provided");
    auto c = std::make_shared<Cycler>(args.pos);
    ip.track(c);
    return Value::object(std::move(c));
}

Value g_joiner(Interp&, const Value&, CallArgs& args) {
    auto a = bind_args(args, "Joiner", {"sep"});
    return Value::object(std::make_shared<Joiner>(a[0] ? to_str(*a[0]) : ", "));
}

Value g_raise_exception(Interp&, const Value&, CallArgs& args) {
    auto a = bind_args(args, "raise_exception", {"message"});
    if (!a[0]) fail("TypeError: raise_exception() missing 1 required positional argument: 'message'");
    throw RaisedError{to_str(*a[0])};
}

Value g_strftime_now(Interp& ip, const Value&, CallArgs& args) {
    auto a = bind_args(args, "strftime_now", {"format"});
    if (!a[0]) fail("TypeError: strftime_now() missing 1 required positional argument: 'format'");
    const std::string format = require_str(*a[0], "strftime() argument 1");
    const std::tm t = ip.now();
    // strftime returns 0 both for an empty result and a too small buffer: a trailing marker
    // tells them apart.
    const std::string marked = format + "\x01";
    std::string buf(64 + format.size() * 4, '\0');
    for (int attempt = 0; attempt < 8; ++attempt) {
        const size_t n = std::strftime(buf.data(), buf.size(), marked.c_str(), &t);
        if (n > 0) return Value::string(buf.substr(0, n - 1));
        buf.resize(buf.size() * 4);
    }
    fail("ValueError: strftime format produces too long a result");
}

struct GlobalEntry {
    std::string_view name;
    Function::Fn fn;
};

constexpr GlobalEntry kGlobals[] = {
    {"range", g_range},
    {"dict", g_dict},
    {"namespace", g_namespace},
    {"cycler", g_cycler},
    {"joiner", g_joiner},
    {"raise_exception", g_raise_exception},
    {"strftime_now", g_strftime_now},
};

}  // namespace

TestFn find_test(std::string_view name) {
    for (const TestEntry& t : kTests)
        if (t.name == name) return t.fn;
    return nullptr;
}

std::optional<Value> find_global(std::string_view name) {
    for (const GlobalEntry& g : kGlobals)
        if (g.name == name) return Value::object(std::make_shared<Function>(std::string(name), g.fn));
    return std::nullopt;
}

}  // namespace hymoe::jinja
