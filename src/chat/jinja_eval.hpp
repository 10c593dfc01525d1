// The evaluator's interface for the builtins: calling values, filters and tests by name, the
// sandbox's attribute and item lookup, Python's operators, and the builtin tables.
#pragma once

#include <ctime>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja.hpp"
#include "chat/jinja_ast.hpp"
#include "chat/jinja_value.hpp"

namespace hymoe::jinja {

// Bounds that keep a hostile template from exhausting the stack, memory or time.
inline constexpr int kMaxMacroDepth = 500;             // nested macro calls (and recursive loops)
inline constexpr int64_t kMaxIterations = 10'000'000;  // loop iterations in one render
inline constexpr size_t kMaxStringBytes = 256u << 20;  // any one string, the output included

// A variable scope: the template's top level, a loop iteration, a macro call, a block body.
// Lookups fall through to the parent, so a macro sees the scope it was defined in.
struct Scope {
    explicit Scope(std::shared_ptr<Scope> p) : parent(std::move(p)) {}
    std::shared_ptr<Scope> parent;
    std::vector<std::pair<std::string, Value>> vars;

    const Value* find(std::string_view name) const;
    void set(std::string_view name, Value value);
};
using ScopePtr = std::shared_ptr<Scope>;

class Interp {
public:
    Interp(const RenderOptions& options, const nlohmann::ordered_json& context);
    ~Interp();
    Interp(const Interp&) = delete;
    Interp& operator=(const Interp&) = delete;

    std::string render(const ast::Body& body);

    Value call(const Value& callee, CallArgs& args);
    Value call_filter(std::string_view name, const Value& value, CallArgs& args);
    bool call_test(std::string_view name, const Value& value, CallArgs& args);
    std::tm now() const;
    // Registers an object whose references must be dropped when the render ends.
    void track(const std::shared_ptr<Object>& object);

    // For the macro and loop objects.
    Value make_macro(const ast::MacroDef& def, const ScopePtr& scope);
    Value invoke_macro(const ast::MacroDef& def, const ScopePtr& closure, CallArgs& args);
    std::string run_loop(const ast::For& node, const ScopePtr& scope, const Value& iterable, int depth0);
    Value eval(const ast::Expr& e, const ScopePtr& scope);
    void assign(const ast::Target& target, Value value, const ScopePtr& scope);
    // Counts one loop iteration against kMaxIterations.
    void count_iteration();

private:
    enum class Flow { Normal, Break, Continue };

    Flow exec(const ast::Body& body, const ScopePtr& scope, std::string& out);
    Flow exec_stmt(const ast::Stmt& s, const ScopePtr& scope, std::string& out);
    void loop_into(const ast::For& node, const ScopePtr& scope, const Value& iterable, int depth0, std::string& out);
    Value eval_expr(const ast::Expr& e, const ScopePtr& scope);
    Value lookup(std::string_view name, const ScopePtr& scope) const;
    CallArgs eval_args(const ast::Args& args, const ScopePtr& scope);
    Value eval_call(const ast::Call& c, const ScopePtr& scope, const Value* caller);
    // A filter chain; `block` is the input of a filter block or set block's innermost filter.
    Value eval_filter(const ast::Filter& f, const ScopePtr& scope, const Value* block);
    std::string render_block(const ast::Body& body, const ScopePtr& scope, Flow& flow);

    // Nesting that the macro-depth bound alone does not cap (deep expressions inside deep macro
    // recursion) is bounded by the stack this thread has left: see check_stack().
    void check_stack() const;
    const char* stack_base_ = nullptr;
    size_t stack_budget_ = 0;

    const RenderOptions& options_;
    Value context_;  // the render's variables: a dict
    ScopePtr root_;
    int macro_depth_ = 0;
    int64_t iterations_ = 0;
    std::vector<std::weak_ptr<Object>> tracked_;
};

// ---- operators (jinja_ops.cpp) ---------------------------------------------------------------

// The sandbox's getattr: the attribute first, then the item. Undefined when neither exists.
Value get_attr(Interp& ip, const Value& obj, std::string_view name);
// The sandbox's getitem: the item first, then (for string keys) the attribute.
Value get_item(Interp& ip, const Value& obj, const Value& key);
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
Value binary_op(ast::BinOp op, const Value& a, const Value& b);
Value unary_op(ast::ExprKind op, const Value& a);  // Neg or Pos
bool compare(ast::CmpOp op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);  // Python's `item in container`
Value str_concat(const std::vector<Value>& parts);
// A string of at most kMaxStringBytes; raises MemoryError past it.
void check_size(size_t bytes);

// ---- builtins (jinja_builtins.cpp, jinja_methods.cpp) ------------------------------------------

ast::FilterFn find_filter(std::string_view name);
ast::FilterFn find_text_filter(std::string_view name);  // the string and number filters
ast::TestFn find_test(std::string_view name);
std::optional<Value> find_global(std::string_view name);
// The method `name` of a str, list or dict, bound to it; an unsafe undefined for the mutating
// methods the immutable sandbox blocks; nullopt when the type has no such attribute.
std::optional<Value> method_attr(const Value& self, std::string_view name);

// Binds call arguments like a Python signature: one slot per name, nullopt where none was given.
// TypeError for unknown keywords, duplicates, or too many positional arguments.
std::vector<std::optional<Value>> bind_args(CallArgs& args, std::string_view func,
                                            std::initializer_list<std::string_view> names);
// Python int() of a value that must be an integer (bool included); TypeError otherwise.
int64_t require_int(const Value& v, std::string_view what);
std::string require_str(const Value& v, std::string_view what);

}  // namespace hymoe::jinja
