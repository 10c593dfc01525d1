// The evaluator: statements and expressions over scopes that follow jinja2's frames (a loop
// iteration, a macro call and a block body each get their own scope; `if` does not). It also
// holds Template, which turns the evaluator's errors into hymoe::Error. Macros and loops are in
// jinja_callables.cpp.
#include "chat/jinja.hpp"

#include <deque>

#include <pthread.h>

#include <fmt/format.h>

#include "chat/jinja_eval.hpp"
#include "chat/jinja_pystr.hpp"
#include "hymoe/error.hpp"

namespace hymoe::jinja {

namespace {

using namespace ast;

// Raises jinja2's `undefined` errors with the line of the innermost node.
template <class F>
auto at_line(int line, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (RenderError& e) {
        if (e.line == 0) e.line = line;
        throw;
    }
}

}  // namespace

// ---- scopes ---------------------------------------------------------------------------------

const Value* Scope::find(std::string_view name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent.get())
        for (const auto& [k, v] : s->vars)
            if (k == name) return &v;
    return nullptr;
}

void Scope::set(std::string_view name, Value value) {
    for (auto& [k, v] : vars) {
        if (k == name) {
            v = std::move(value);
            return;
        }
    }
    vars.emplace_back(std::string(name), std::move(value));
}

// ---- the interpreter --------------------------------------------------------------------------

namespace {

// The bytes of stack this thread has below the caller's frame; a fixed guess where the platform
// cannot say.
size_t stack_left(const char* here) {
    size_t left = 1u << 20;
#if defined(__linux__) && defined(__GLIBC__)
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void* low = nullptr;
        size_t size = 0;
        if (pthread_attr_getstack(&attr, &low, &size) == 0 && here > static_cast<const char*>(low))
            left = static_cast<size_t>(here - static_cast<const char*>(low));
        pthread_attr_destroy(&attr);
    }
#endif
    return left;
}

}  // namespace

Interp::Interp(const RenderOptions& options, const nlohmann::ordered_json& context)
    : options_(options), root_(std::make_shared<Scope>(nullptr)) {
    stack_base_ = static_cast<const char*>(__builtin_frame_address(0));
    // Use at most half of what is left (and 64 MiB): sanitizers and callees need the rest.
    stack_budget_ = std::min<size_t>(stack_left(stack_base_) / 2, 64u << 20);
    if (context.is_null()) {
        context_ = Value::new_dict();
    } else if (context.is_object()) {
        context_ = from_json(context);
    } else {
        fail("TypeError: the template context must be a JSON object");
    }
}

Interp::~Interp() {
    for (const auto& weak : tracked_)
        if (auto obj = weak.lock()) obj->release();
}

void Interp::track(const std::shared_ptr<Object>& object) {
    // Drop the entries of objects that are gone, so the list stays as small as what is alive.
    if (tracked_.size() >= 64 && tracked_.size() == tracked_.capacity()) {
        std::erase_if(tracked_, [](const auto& w) { return w.expired(); });
    }
    tracked_.push_back(object);
}

void Interp::check_stack() const {
    const auto* here = static_cast<const char*>(__builtin_frame_address(0));
    if (here<stack_base_&& static_cast<size_t>(stack_base_ - here)> stack_budget_)
        fail("RecursionError: maximum recursion depth exceeded (the template nests too deeply)");
}

void Interp::count_iteration() {
    if (++iterations_ > kMaxIterations) fail("RuntimeError: the template loops too many times");
}

std::tm Interp::now() const {
    if (options_.now) return *options_.now;
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    return tm;
}

std::string Interp::render(const Body& body) {
    std::string out;
    exec(body, root_, out);
    return out;
}

Value Interp::lookup(std::string_view name, const ScopePtr& scope) const {
    if (const Value* v = scope->find(name)) return *v;
    if (const Value* v = context_.dict().find(name)) return *v;
    if (std::optional<Value> g = find_global(name)) return *g;
    return Value::undefined(fmt::format("'{}' is undefined", name));
}

Interp::Flow Interp::exec(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const StmtPtr& s : body) {
        const Flow flow = at_line(s->line, [&] { return exec_stmt(*s, scope, out); });
        if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
}

std::string Interp::render_block(const Body& body, const ScopePtr& scope, Flow& flow) {
    std::string text;
    flow = exec(body, std::make_shared<Scope>(scope), text);
    return text;
}

Interp::Flow Interp::exec_stmt(const Stmt& s, const ScopePtr& scope, std::string& out) {
    check_stack();
    switch (s.kind) {
        case StmtKind::Data: out += static_cast<const Data&>(s).text; break;
        case StmtKind::Output: append_str(out, eval(*static_cast<const Output&>(s).expr, scope)); break;
        case StmtKind::If: {
            const auto& node = static_cast<const If&>(s);
            for (const auto& [test, body] : node.branches)
                if (truthy(eval(*test, scope))) return exec(body, scope, out);
            return exec(node.else_body, scope, out);
        }
        case StmtKind::For: {
            const auto& node = static_cast<const For&>(s);
            loop_into(node, scope, eval(*node.iter, scope), 0, out);
            break;
        }
        case StmtKind::Set: {
            const auto& node = static_cast<const Set&>(s);
            assign(node.target, eval(*node.value, scope), scope);
            break;
        }
        case StmtKind::SetBlock: {
            const auto& node = static_cast<const SetBlock&>(s);
            Flow flow = Flow::Normal;
            Value text = Value::string(render_block(node.body, scope, flow));
            if (flow != Flow::Normal) return flow;
            if (node.filter) text = eval_filter(static_cast<const Filter&>(*node.filter), scope, &text);
            assign(node.target, std::move(text), scope);
            break;
        }
        case StmtKind::Macro: {
            const auto& node = static_cast<const MacroDef&>(s);
            scope->set(node.name, make_macro(node, scope));
            break;
        }
        case StmtKind::CallBlock: {
            const auto& node = static_cast<const CallBlock&>(s);
            const Value caller_value = make_macro(node.caller, scope);
            append_str(out, at_line(node.call->line, [&] {
                           return eval_call(static_cast<const Call&>(*node.call), scope, &caller_value);
                       }));
            break;
        }
        case StmtKind::FilterBlock: {
            const auto& node = static_cast<const FilterBlock&>(s);
            Flow flow = Flow::Normal;
            const Value text = Value::string(render_block(node.body, scope, flow));
            if (flow != Flow::Normal) return flow;
            append_str(out, eval_filter(static_cast<const Filter&>(*node.filter), scope, &text));
            break;
        }
        case StmtKind::Scoped: {
            const auto& node = static_cast<const Scoped&>(s);
            auto inner = std::make_shared<Scope>(scope);
            for (const auto& [target, value] : node.assigns) assign(target, eval(*value, scope), inner);
            const Flow flow = exec(node.body, inner, out);
            if (flow != Flow::Normal) return flow;
            break;
        }
        case StmtKind::Break: return Flow::Break;
        case StmtKind::Continue: return Flow::Continue;
    }
    check_size(out.size());
    return Flow::Normal;
}

void Interp::assign(const Target& target, Value value, const ScopePtr& scope) {
    switch (target.kind) {
        case Target::Kind::Name: scope->set(target.name, std::move(value)); return;
        case Target::Kind::NsAttr: {
            const Value ns = lookup(target.name, scope);
            auto* space = ns.is_object() ? dynamic_cast<Namespace*>(&ns.object()) : nullptr;
            if (space == nullptr) fail("TemplateRuntimeError: cannot assign attribute on non-namespace object");
            space->set(target.attr, std::move(value));
            return;
        }
        case Target::Kind::Tuple: {
            const std::vector<Value> items = iterate(value);
            const size_t want = target.items.size();
            if (items.size() > want) fail(fmt::format("ValueError: too many values to unpack (expected {})", want));
            if (items.size() < want) {
                fail(fmt::format("ValueError: not enough values to unpack (expected {}, got {})", want, items.size()));
            }
            for (size_t i = 0; i < want; ++i) assign(target.items[i], items[i], scope);
            return;
        }
    }
}

Value Interp::call_filter(std::string_view name, const Value& value, CallArgs& args) {
    const FilterFn fn = find_filter(name);
    if (fn == nullptr) fail(fmt::format("TemplateRuntimeError: No filter named '{}' found.", name));
    return fn(*this, value, args);
}

bool Interp::call_test(std::string_view name, const Value& value, CallArgs& args) {
    const TestFn fn = find_test(name);
    if (fn == nullptr) fail(fmt::format("TemplateRuntimeError: No test named '{}' found.", name));
    return fn(*this, value, args);
}

CallArgs Interp::eval_args(const Args& args, const ScopePtr& scope) {
    CallArgs out;
    out.pos.reserve(args.pos.size());
    for (const ExprPtr& e : args.pos) out.pos.push_back(eval(*e, scope));
    for (const auto& [k, e] : args.kw) out.kw.emplace_back(k, eval(*e, scope));
    if (args.dyn_args) {
        for (Value& v : iterate(eval(*args.dyn_args, scope))) out.pos.push_back(std::move(v));
    }
    if (args.dyn_kwargs) {
        const Value d = eval(*args.dyn_kwargs, scope);
        if (!d.is_dict()) fail(fmt::format("TypeError: argument after ** must be a mapping, not {}", type_name(d)));
        for (const auto& [k, v] : d.dict().items) {
            if (!k.is_string()) fail("TypeError: keywords must be strings");
            out.kw.emplace_back(k.str(), v);
        }
    }
    return out;
}

Value Interp::eval_call(const Call& c, const ScopePtr& scope, const Value* caller) {
    const Value callee = eval(*c.callee, scope);
    CallArgs args = eval_args(c.args, scope);
    if (caller != nullptr) args.kw.emplace_back("caller", *caller);
    return call(callee, args);
}

Value Interp::eval_filter(const Filter& f, const ScopePtr& scope, const Value* block) {
    Value input;
    if (f.value) {
        input = f.value->kind == ExprKind::Filter && block != nullptr
                    ? eval_filter(static_cast<const Filter&>(*f.value), scope, block)
                    : eval(*f.value, scope);
    } else if (block != nullptr) {
        input = *block;
    }
    return at_line(f.line, [&] {
        CallArgs args = eval_args(f.args, scope);
        if (f.fn == nullptr) fail(fmt::format("TemplateRuntimeError: No filter named '{}' found.", f.name));
        return f.fn(*this, input, args);
    });
}

Value Interp::eval(const Expr& e, const ScopePtr& scope) {
    return at_line(e.line, [&] { return eval_expr(e, scope); });
}

Value Interp::eval_expr(const Expr& e, const ScopePtr& scope) {
    check_stack();
    switch (e.kind) {
        case ExprKind::Const: return static_cast<const Const&>(e).value;
        case ExprKind::Name: return lookup(static_cast<const Name&>(e).name, scope);
        case ExprKind::Getattr: {
            const auto& g = static_cast<const Getattr&>(e);
            return get_attr(*this, eval(*g.obj, scope), g.attr);
        }
        case ExprKind::Getitem: {
            const auto& g = static_cast<const Getitem&>(e);
            const Value obj = eval(*g.obj, scope);
            if (g.key->kind == ExprKind::Slice) {
                const auto& s = static_cast<const Slice&>(*g.key);
                auto part = [&](const ExprPtr& p) { return p ? eval(*p, scope) : Value::none(); };
                const Value start = part(s.start), stop = part(s.stop), step = part(s.step);
                return get_slice(obj, start, stop, step);
            }
            return get_item(*this, obj, eval(*g.key, scope));
        }
        case ExprKind::Slice: fail("TypeError: a slice is only valid inside []");
        case ExprKind::Call: return eval_call(static_cast<const Call&>(e), scope, nullptr);
        case ExprKind::Filter: return eval_filter(static_cast<const Filter&>(e), scope, nullptr);
        case ExprKind::Test: {
            const auto& t = static_cast<const Test&>(e);
            const Value value = eval(*t.value, scope);
            CallArgs args = eval_args(t.args, scope);
            if (t.fn == nullptr) fail(fmt::format("TemplateRuntimeError: No test named '{}' found.", t.name));
            return Value::boolean(t.fn(*this, value, args));
        }
        case ExprKind::Neg:
        case ExprKind::Pos: return unary_op(e.kind, eval(*static_cast<const Unary&>(e).operand, scope));
        case ExprKind::Not: return Value::boolean(!truthy(eval(*static_cast<const Unary&>(e).operand, scope)));
        case ExprKind::Binary: {
            const auto& b = static_cast<const Binary&>(e);
            const Value left = eval(*b.left, scope);
            return binary_op(b.op, left, eval(*b.right, scope));
        }
        case ExprKind::And:
        case ExprKind::Or: {
            const auto& b = static_cast<const Binary&>(e);
            Value left = eval(*b.left, scope);
            if (truthy(left) == (e.kind == ExprKind::Or)) return left;
            return eval(*b.right, scope);
        }
        case ExprKind::Compare: {
            const auto& c = static_cast<const Compare&>(e);
            Value left = eval(*c.first, scope);
            for (const auto& [op, expr] : c.ops) {
                Value right = eval(*expr, scope);
                if (!compare(op, left, right)) return Value::boolean(false);
                left = std::move(right);
            }
            return Value::boolean(true);
        }
        case ExprKind::Concat: {
            std::vector<Value> parts;
            for (const ExprPtr& p : static_cast<const Concat&>(e).parts) parts.push_back(eval(*p, scope));
            return str_concat(parts);
        }
        case ExprKind::CondExpr: {
            const auto& c = static_cast<const CondExpr&>(e);
            if (truthy(eval(*c.test, scope))) return eval(*c.then, scope);
            if (c.otherwise) return eval(*c.otherwise, scope);
            return Value::undefined(fmt::format(
                "the inline if-expression on line {} evaluated to false and no else section was defined.", e.line));
        }
        case ExprKind::List:
        case ExprKind::Tuple: {
            std::vector<Value> items;
            for (const ExprPtr& p : static_cast<const Seq&>(e).items) items.push_back(eval(*p, scope));
            return e.kind == ExprKind::List ? Value::list(std::move(items)) : Value::tuple(std::move(items));
        }
        case ExprKind::Dict: {
            Value d = Value::new_dict();
            for (const auto& [k, v] : static_cast<const DictLit&>(e).items) {
                Value key = eval(*k, scope);
                d.dict().set(std::move(key), eval(*v, scope));
            }
            return d;
        }
    }
    fail("RuntimeError: unknown expression");
}

// ---- Template ---------------------------------------------------------------------------------

struct Template::Impl {
    Body body;
};

Template::Template(std::string_view source) : impl_(std::make_unique<Impl>(Impl{parse(source)})) {}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
    try {
        Interp ip(options, context);
        return ip.render(impl_->body);
    } catch (const RenderError& e) {
        if (e.line == 0) throw Error(fmt::format("chat template: {}", e.message));
        throw Error(fmt::format("chat template: line {}: {}", e.line, e.message));
    } catch (const RaisedError& e) {
        throw Error(fmt::format("chat template: {}", e.message));
    } catch (const Error&) {
        throw;
    } catch (const std::exception& e) {
        throw Error(fmt::format("chat template: {}", e.what()));
    }
}

}  // namespace hymoe::jinja
