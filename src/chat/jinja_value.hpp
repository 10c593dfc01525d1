// The runtime values of the Jinja interpreter: Python's objects as the templates see them
// (None, bool, int, float, str, list, tuple, dict, jinja2's Undefined, generators, and objects
// like namespaces, macros and bound methods), with Python's semantics for printing, truthiness,
// equality and ordering. Containers are shared by reference, as in Python; the sandbox forbids
// mutating lists and dicts, so only namespaces ever change after creation.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace hymoe::jinja {

class Interp;
class Object;
class Value;
struct DictData;
struct IterData;

// A failure while rendering, as Python would raise it ("TypeError: ..."). The evaluator fills in
// the line of the innermost node being evaluated; Template::render turns it into hymoe::Error.
struct RenderError {
    std::string message;
    int line = 0;
};
// raise_exception() from a template: its message is shown as is.
struct RaisedError {
    std::string message;
};

[[noreturn]] void fail(std::string message);

// Bounds the recursion of printing, comparing and dumping nested values: RecursionError past
// 200 levels (a namespace can contain itself).
class NestingGuard {
public:
    NestingGuard();
    ~NestingGuard();
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;
};

enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Tuple, Dict, Iterator, Object };

class Value {
public:
    Value() = default;  // undefined, without a hint
    static Value undefined(std::string hint);
    static Value none();
    static Value boolean(bool b);
    static Value integer(int64_t i);
    static Value real(double f);
    static Value string(std::string s);
    static Value list(std::vector<Value> items);
    static Value tuple(std::vector<Value> items);
    static Value dict(std::shared_ptr<DictData> d);
    static Value new_dict();
    // A one-shot iterator (Python generator): iterating it consumes it.
    static Value iterator(std::vector<Value> items, std::string type_name);
    static Value object(std::shared_ptr<Object> o);

    Kind kind() const { return kind_; }
    bool is_undefined() const { return kind_ == Kind::Undefined; }
    bool is_none() const { return kind_ == Kind::None; }
    bool is_string() const { return kind_ == Kind::String; }
    bool is_int_like() const { return kind_ == Kind::Bool || kind_ == Kind::Int; }  // bool is an int in Python
    bool is_number() const { return is_int_like() || kind_ == Kind::Float; }
    bool is_list_like() const { return kind_ == Kind::List || kind_ == Kind::Tuple; }
    bool is_dict() const { return kind_ == Kind::Dict; }
    bool is_object() const { return kind_ == Kind::Object; }

    bool as_bool() const { return std::get<bool>(data_); }
    int64_t as_int() const;          // Bool or Int
    double as_float() const;         // any number
    const std::string& str() const;  // String, or an Undefined's hint
    const std::vector<Value>& items() const { return *std::get<ListPtr>(data_); }
    DictData& dict() const { return *std::get<DictPtr>(data_); }
    IterData& iter() const { return *std::get<IterPtr>(data_); }
    Object& object() const { return *std::get<ObjPtr>(data_); }
    const std::shared_ptr<Object>& object_ptr() const { return std::get<ObjPtr>(data_); }
    // The address behind a container or object, for `is sameas`; null for plain values.
    const void* identity() const;

private:
    using StrPtr = std::shared_ptr<const std::string>;
    using ListPtr = std::shared_ptr<std::vector<Value>>;
    using DictPtr = std::shared_ptr<DictData>;
    using IterPtr = std::shared_ptr<IterData>;
    using ObjPtr = std::shared_ptr<Object>;

    Kind kind_ = Kind::Undefined;
    std::variant<std::monostate, bool, int64_t, double, StrPtr, ListPtr, DictPtr, IterPtr, ObjPtr> data_;
};

// An insertion-ordered dict, as Python's. Keys are hashable values; 1, 1.0 and True are one key.
struct DictData {
    std::vector<std::pair<Value, Value>> items;

    const Value* find(const Value& key) const;
    const Value* find(std::string_view key) const;
    void set(Value key, Value value);
};

struct IterData {
    std::vector<Value> items;
    size_t pos = 0;
    std::string type_name;
    // Python generators run lazily: an error raised while computing the items surfaces only when
    // the generator is consumed past the items it had made.
    std::optional<RenderError> error;
};

struct CallArgs {
    std::vector<Value> pos;
    std::vector<std::pair<std::string, Value>> kw;
};

// Namespaces, loops, macros, functions and bound methods.
class Object {
public:
    virtual ~Object() = default;
    virtual std::string type_name() const = 0;  // Python's type(x).__name__
    virtual std::string repr() const;
    // The attribute `name`, or nullopt when there is none (jinja then tries x[name]).
    virtual std::optional<Value> attr(Interp& ip, std::string_view name);
    virtual bool callable() const { return false; }
    virtual Value call(Interp& ip, CallArgs& args);
    // Drops the references this object holds, at the end of a render: namespaces, macros and
    // loops can form reference cycles (a macro's scope holds the macro), which this breaks.
    virtual void release() {}
};

// jinja2.utils.Namespace as transformers restricts it: attributes set by `{% set ns.x = ... %}`.
class Namespace final : public Object {
public:
    DictData attrs;
    std::string type_name() const override { return "Namespace"; }
    std::string repr() const override;
    std::optional<Value> attr(Interp& ip, std::string_view name) override;
    void set(std::string_view name, Value value);
    void release() override { attrs.items.clear(); }
};

// A builtin function, or a method bound to its object.
class Function final : public Object {
public:
    using Fn = Value (*)(Interp& ip, const Value& self, CallArgs& args);
    Function(std::string name, Fn fn, Value self = {}) : name_(std::move(name)), fn_(fn), self_(std::move(self)) {}
    std::string type_name() const override { return "builtin_function_or_method"; }
    std::string repr() const override;
    bool callable() const override { return true; }
    Value call(Interp& ip, CallArgs& args) override { return fn_(ip, self_, args); }

private:
    std::string name_;
    Fn fn_;
    Value self_;
};

std::string type_name(const Value& v);
// "'dict object'", "None" and so on: how jinja2 names an object in an undefined's message.
std::string object_type_repr(const Value& v);
std::string to_str(const Value& v);  // Python str()
void append_str(std::string& out, const Value& v);
std::string repr(const Value& v);  // Python repr()
bool truthy(const Value& v);
bool py_eq(const Value& a, const Value& b);
enum class Order : uint8_t { Lt, Le, Gt, Ge };
// a < b and friends; TypeError between unorderable types, as Python.
bool py_order(Order op, const Value& a, const Value& b);
inline bool py_lt(const Value& a, const Value& b) {
    return py_order(Order::Lt, a, b);
}
void check_hashable(const Value& v);
int64_t py_len(const Value& v);
// The values a `for` loop sees (dict keys, string characters); consumes an iterator.
std::vector<Value> iterate(const Value& v);
// jinja2's Undefined raising on use: the error an operation on `v` gives.
[[noreturn]] void fail_undefined(const Value& v);

Value from_json(const nlohmann::ordered_json& j);

struct JsonOptions {
    bool ensure_ascii = false;
    std::optional<std::string> indent;  // nullopt: one line
    std::string item_separator = ", ";
    std::string key_separator = ": ";
    bool sort_keys = false;
};
// json.dumps as transformers' tojson calls it.
std::string dump_json(const Value& v, const JsonOptions& options);

}  // namespace hymoe::jinja
