// Macros with jinja2.runtime.Macro's argument rules, loops with jinja2.runtime.LoopContext's
// attributes (recursive loops included), and calling values.
#include <algorithm>
#include <deque>

#include <fmt/format.h>

#include "chat/jinja_eval.hpp"
#include "chat/jinja_pystr.hpp"

namespace hymoe::jinja {

namespace {

using namespace ast;

class Macro final : public Object {
public:
    Macro(const MacroDef& def, ScopePtr closure) : def_(def), closure_(std::move(closure)) {}
    std::string type_name() const override { return "Macro"; }
    std::string repr() const override { return fmt::format("<Macro {}>", pystr::repr(def_.name)); }
    bool callable() const override { return true; }
    Value call(Interp& ip, CallArgs& args) override {
        if (!closure_) fail("RuntimeError: the macro was called after the render ended");
        return ip.invoke_macro(def_, closure_, args);
    }
    std::optional<Value> attr(Interp&, std::string_view name) override {
        if (name == "name") return Value::string(def_.name);
        if (name == "arguments") {
            std::vector<Value> params;
            for (const std::string& p : def_.params) params.push_back(Value::string(p));
            return Value::tuple(std::move(params));
        }
        if (name == "catch_kwargs") return Value::boolean(def_.uses_kwargs);
        if (name == "catch_varargs") return Value::boolean(def_.uses_varargs);
        if (name == "caller") return Value::boolean(def_.uses_caller);
        return std::nullopt;
    }
    void release() override { closure_.reset(); }

private:
    const MacroDef& def_;
    ScopePtr closure_;
};

// jinja2.runtime.LoopContext. Items pass the loop's `if` filter lazily, as jinja2's generator
// does: `loop.last`, `loop.nextitem` and `loop.length` look ahead and run the filter early.
class Loop final : public Object, public std::enable_shared_from_this<Loop> {
public:
    Loop(Interp& ip, const For& node, ScopePtr scope, std::vector<Value> items, int depth0)
        : ip_(ip), node_(node), scope_(std::move(scope)), items_(std::move(items)), depth0_(depth0) {}

    bool advance() {
        if (pending_.empty() && !pull()) return false;
        before_ = std::move(current_);
        current_ = std::move(pending_.front());
        pending_.pop_front();
        ++index0_;
        return true;
    }
    const Value& current() const { return current_; }

    std::string type_name() const override { return "LoopContext"; }
    std::string repr() const override {
        return fmt::format("<LoopContext {}/{}>", index0_ + 1, const_cast<Loop*>(this)->length());
    }
    bool callable() const override { return true; }
    Value call(Interp& ip, CallArgs& args) override {
        if (!node_.recursive) {
            fail("TypeError: The loop must have the 'recursive' marker to be called recursively.");
        }
        auto bound = bind_args(args, "loop", {"iterable"});
        if (!bound[0]) fail("TypeError: loop() missing 1 required positional argument: 'iterable'");
        if (!scope_) fail("RuntimeError: the loop was called after the render ended");
        return Value::string(ip.run_loop(node_, scope_, *bound[0], depth0_ + 1));
    }
    std::optional<Value> attr(Interp&, std::string_view name) override {
        if (name == "index0") return Value::integer(index0_);
        if (name == "index") return Value::integer(index0_ + 1);
        if (name == "first") return Value::boolean(index0_ == 0);
        if (name == "length") return Value::integer(length());
        if (name == "revindex") return Value::integer(length() - index0_);
        if (name == "revindex0") return Value::integer(length() - index0_ - 1);
        if (name == "last") return Value::boolean(!peek());
        if (name == "depth") return Value::integer(depth0_ + 1);
        if (name == "depth0") return Value::integer(depth0_);
        if (name == "previtem") return index0_ == 0 ? Value::undefined("there is no previous item") : before_;
        if (name == "nextitem") return peek() ? pending_.front() : Value::undefined("there is no next item");
        if (name == "cycle") return bound("cycle", cycle);
        if (name == "changed") return bound("changed", changed);
        return std::nullopt;
    }
    void release() override {
        scope_.reset();
        items_.clear();
        pending_.clear();
        before_ = current_ = last_changed_ = Value();
    }

private:
    Value bound(const char* name, Function::Fn fn) {
        return Value::object(std::make_shared<Function>(name, fn, Value::object(shared_from_this())));
    }

    static Value cycle(Interp&, const Value& self, CallArgs& args) {
        auto& loop = static_cast<Loop&>(self.object());
        if (args.pos.empty()) fail("TypeError: no items for cycling given");
        return args.pos[static_cast<size_t>(loop.index0_) % args.pos.size()];
    }
    static Value changed(Interp&, const Value& self, CallArgs& args) {
        auto& loop = static_cast<Loop&>(self.object());
        Value now = Value::tuple(args.pos);
        if (!loop.last_changed_.is_undefined() && py_eq(loop.last_changed_, now)) return Value::boolean(false);
        loop.last_changed_ = std::move(now);
        return Value::boolean(true);
    }

    // Moves the next item that passes the filter into pending_.
    bool pull() {
        while (next_ < items_.size()) {
            Value v = items_[next_++];
            if (node_.filter) {
                auto test_scope = std::make_shared<Scope>(scope_);
                ip_.assign(node_.target, v, test_scope);
                if (!truthy(ip_.eval(*node_.filter, test_scope))) continue;
            }
            pending_.push_back(std::move(v));
            return true;
        }
        return false;
    }
    bool peek() { return !pending_.empty() || pull(); }
    int64_t length() {
        if (!node_.filter) return static_cast<int64_t>(items_.size());
        while (pull()) {
        }
        return index0_ + 1 + static_cast<int64_t>(pending_.size());
    }

    Interp& ip_;
    const For& node_;
    ScopePtr scope_;
    std::vector<Value> items_;
    size_t next_ = 0;
    std::deque<Value> pending_;
    int64_t index0_ = -1;
    int depth0_;
    Value before_, current_, last_changed_;
};

}  // namespace

Value Interp::make_macro(const MacroDef& def, const ScopePtr& scope) {
    auto macro = std::make_shared<Macro>(def, scope);
    track(macro);
    return Value::object(std::move(macro));
}

void Interp::loop_into(const For& node, const ScopePtr& scope, const Value& iterable, int depth0, std::string& out) {
    auto loop = std::make_shared<Loop>(*this, node, scope, iterate(iterable), depth0);
    track(loop);
    const Value loop_value = Value::object(loop);
    // jinja2 clears its "no iteration" flag at the end of the body, so the else block also runs
    // when every iteration was cut short by break or continue.
    bool completed = false;
    while (loop->advance()) {
        count_iteration();
        auto inner = std::make_shared<Scope>(scope);
        assign(node.target, loop->current(), inner);
        inner->set("loop", loop_value);
        const Flow flow = exec(node.body, inner, out);
        if (flow == Flow::Normal) completed = true;
        if (flow == Flow::Break) break;
    }
    if (!completed) exec(node.else_body, std::make_shared<Scope>(scope), out);
}

std::string Interp::run_loop(const For& node, const ScopePtr& scope, const Value& iterable, int depth0) {
    if (++macro_depth_ > kMaxMacroDepth) {
        --macro_depth_;
        fail("RecursionError: maximum recursion depth exceeded");
    }
    std::string out;
    try {
        loop_into(node, scope, iterable, depth0, out);
    } catch (...) {
        --macro_depth_;
        throw;
    }
    --macro_depth_;
    return out;
}

// jinja2.runtime.Macro.__call__: positional arguments first, then keywords by name; missing
// ones take their default or are undefined; `caller`, `varargs` and `kwargs` exist when the
// body reads them.
Value Interp::invoke_macro(const MacroDef& def, const ScopePtr& closure, CallArgs& args) {
    const size_t n = def.params.size();
    std::vector<std::optional<Value>> bound(n);
    const size_t given = std::min(args.pos.size(), n);
    for (size_t i = 0; i < given; ++i) bound[i] = args.pos[i];
    // Keywords are taken by name; what is left over goes to `kwargs` or is an error.
    std::vector<bool> taken(args.kw.size(), false);
    auto take_kw = [&](std::string_view name) -> const Value* {
        for (size_t k = 0; k < args.kw.size(); ++k) {
            if (!taken[k] && args.kw[k].first == name) {
                taken[k] = true;
                return &args.kw[k].second;
            }
        }
        return nullptr;
    };
    bool found_caller = false;
    if (given != n) {
        for (size_t i = given; i < n; ++i) {
            if (const Value* v = take_kw(def.params[i])) bound[i] = *v;
            found_caller |= def.params[i] == "caller";
        }
    } else {
        found_caller = std::find(def.params.begin(), def.params.end(), "caller") != def.params.end();
    }
    Value caller;
    if (def.uses_caller && !found_caller) {
        const Value* v = take_kw("caller");
        caller = v != nullptr && !v->is_none() ? *v : Value::undefined("No caller defined");
    }
    Value kwargs = Value::new_dict();
    for (size_t k = 0; k < args.kw.size(); ++k) {
        if (taken[k]) continue;
        if (!def.uses_kwargs) {
            for (size_t j = k; j < args.kw.size(); ++j) {
                if (!taken[j] && args.kw[j].first == "caller") {
                    fail(
                        fmt::format("TypeError: macro '{}' was invoked with two values for the special caller "
                                    "argument. This is most likely a bug.",
                                    def.name));
                }
            }
            fail(fmt::format("TypeError: macro '{}' takes no keyword argument '{}'", def.name, args.kw[k].first));
        }
        kwargs.dict().set(Value::string(args.kw[k].first), args.kw[k].second);
    }
    Value varargs;
    if (def.uses_varargs) {
        varargs =
            Value::tuple(std::vector<Value>(args.pos.begin() + static_cast<std::ptrdiff_t>(given), args.pos.end()));
    } else if (args.pos.size() > n) {
        fail(fmt::format("TypeError: macro '{}' takes not more than {} argument(s)", def.name, n));
    }

    if (++macro_depth_ > kMaxMacroDepth) {
        --macro_depth_;
        fail("RecursionError: maximum recursion depth exceeded");
    }
    std::string out;
    try {
        auto scope = std::make_shared<Scope>(closure);
        for (size_t i = 0; i < n; ++i) {
            if (bound[i]) {
                scope->set(def.params[i], std::move(*bound[i]));
            } else if (def.defaults[i]) {
                scope->set(def.params[i], eval(*def.defaults[i], scope));
            } else {
                scope->set(def.params[i],
                           Value::undefined(fmt::format("parameter '{}' was not provided", def.params[i])));
            }
        }
        if (def.uses_caller && !found_caller) scope->set("caller", std::move(caller));
        if (def.uses_kwargs) scope->set("kwargs", std::move(kwargs));
        if (def.uses_varargs) scope->set("varargs", std::move(varargs));
        exec(def.body, scope, out);
    } catch (...) {
        --macro_depth_;
        throw;
    }
    --macro_depth_;
    return Value::string(std::move(out));
}

Value Interp::call(const Value& callee, CallArgs& args) {
    if (callee.is_undefined()) fail_undefined(callee);
    if (callee.is_object() && callee.object().callable()) return callee.object().call(*this, args);
    fail(fmt::format("TypeError: '{}' object is not callable", type_name(callee)));
}

}  // namespace hymoe::jinja
