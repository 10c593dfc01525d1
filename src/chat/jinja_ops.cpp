// Python's operators on template values, and the sandbox's attribute and item lookup
// (jinja2.sandbox.SandboxedEnvironment.getattr / getitem): a failed lookup gives an undefined,
// not an error, except on an undefined itself.
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "chat/jinja_eval.hpp"
#include "chat/jinja_pystr.hpp"

namespace hymoe::jinja {

namespace {

using ast::BinOp;

Value missing_attr(const Value& obj, std::string_view name) {
    return Value::undefined(fmt::format("'{}' has no attribute '{}'", object_type_repr(obj), name));
}

Value missing_item(const Value& obj, const Value& key) {
    if (key.is_string()) return missing_attr(obj, key.str());
    return Value::undefined(fmt::format("{} has no element {}", object_type_repr(obj), repr(key)));
}

bool is_hashable(const Value& v) {
    if (v.kind() == Kind::List || v.kind() == Kind::Dict) return false;
    if (v.kind() == Kind::Tuple)
        for (const Value& item : v.items())
            if (!is_hashable(item)) return false;
    return true;
}

bool is_dunder(std::string_view name) {
    return name.size() > 4 && name.substr(0, 2) == "__" && name.substr(name.size() - 2) == "__";
}

// Python attribute lookup alone: nullopt when there is no such attribute.
std::optional<Value> python_attr(Interp& ip, const Value& obj, std::string_view name) {
    if (is_dunder(name)) {
        return Value::undefined(
            fmt::format("SecurityError: access to attribute '{}' of '{}' object is unsafe.", name, type_name(obj)));
    }
    if (obj.is_object()) {
        std::optional<Value> v = obj.object().attr(ip, name);
        if (v && !name.empty() && name[0] == '_') {
            return Value::undefined(
                fmt::format("SecurityError: access to attribute '{}' of '{}' object is unsafe.", name, type_name(obj)));
        }
        return v;
    }
    return method_attr(obj, name);
}

[[noreturn]] void unsupported(std::string_view op, const Value& a, const Value& b) {
    if (op == "+" && a.is_string())
        fail(fmt::format("TypeError: can only concatenate str (not \"{}\") to str", type_name(b)));
    if (op == "+" && a.is_list_like())
        fail(fmt::format("TypeError: can only concatenate {0} (not \"{1}\") to {0}", type_name(a), type_name(b)));
    fail(fmt::format("TypeError: unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a), type_name(b)));
}

[[noreturn]] void overflow() {
    fail("OverflowError: integer result out of the 64-bit range this interpreter supports");
}

int64_t add_int(int64_t a, int64_t b) {
    int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) overflow();
    return r;
}
int64_t sub_int(int64_t a, int64_t b) {
    int64_t r = 0;
    if (__builtin_sub_overflow(a, b, &r)) overflow();
    return r;
}
int64_t mul_int(int64_t a, int64_t b) {
    int64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) overflow();
    return r;
}

Value repeat(const Value& seq, int64_t n) {
    n = std::max<int64_t>(n, 0);
    if (seq.is_string()) {
        check_size(seq.str().size() * static_cast<size_t>(std::min<int64_t>(n, 1 << 30)));
        std::string out;
        for (int64_t i = 0; i < n; ++i) out += seq.str();
        return Value::string(std::move(out));
    }
    check_size(seq.items().size() * static_cast<size_t>(std::min<int64_t>(n, 1 << 30)) * sizeof(Value));
    std::vector<Value> out;
    for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
    return seq.kind() == Kind::Tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

// CPython's float_divmod: the floor quotient and the modulo with the divisor's sign.
std::pair<double, double> float_divmod(double vx, double wx) {
    if (wx == 0.0) fail("ZeroDivisionError: float divmod()");
    double mod = std::fmod(vx, wx);
    double div = (vx - mod) / wx;
    if (mod != 0.0) {
        if ((wx < 0) != (mod < 0)) {
            mod += wx;
            div -= 1.0;
        }
    } else {
        mod = std::copysign(0.0, wx);
    }
    double floordiv;
    if (div != 0.0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = std::copysign(0.0, vx / wx);
    }
    return {floordiv, mod};
}

Value int_pow(int64_t base, int64_t exp) {
    int64_t result = 1;
    while (exp > 0) {
        if (exp & 1) result = mul_int(result, base);
        exp >>= 1;
        if (exp > 0) base = mul_int(base, base);
    }
    return Value::integer(result);
}

}  // namespace

void check_size(size_t bytes) {
    if (bytes > kMaxStringBytes) fail("MemoryError: the result would be too large");
}

Value get_attr(Interp& ip, const Value& obj, std::string_view name) {
    if (obj.is_undefined()) fail_undefined(obj);
    if (std::optional<Value> v = python_attr(ip, obj, name)) return *v;
    if (obj.is_dict()) {
        if (const Value* v = obj.dict().find(name)) return *v;
    }
    return missing_attr(obj, name);
}

Value get_item(Interp& ip, const Value& obj, const Value& key) {
    if (obj.is_undefined()) fail_undefined(obj);
    switch (obj.kind()) {
        case Kind::Dict:
            // An unhashable key is a TypeError, which the sandbox turns into an undefined.
            if (is_hashable(key)) {
                if (const Value* v = obj.dict().find(key)) return *v;
            }
            break;
        case Kind::List:
        case Kind::Tuple:
        case Kind::String: {
            if (!key.is_int_like()) break;
            int64_t i = key.as_int();
            if (obj.is_string()) {
                if (auto ch = pystr::index(obj.str(), i)) return Value::string(std::move(*ch));
                break;
            }
            const auto n = static_cast<int64_t>(obj.items().size());
            if (i < 0) i += n;
            if (i >= 0 && i < n) return obj.items()[static_cast<size_t>(i)];
            break;
        }
        default: break;
    }
    if (key.is_string()) {
        if (std::optional<Value> v = python_attr(ip, obj, key.str())) return *v;
    }
    return missing_item(obj, key);
}

// Slices bypass the sandbox's getitem in jinja2 (they compile to a plain Python subscript), so a
// bad slice raises instead of giving an undefined.
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
    if (obj.is_undefined()) fail_undefined(obj);
    auto index = [](const Value& v) -> std::optional<int64_t> {
        if (v.is_none()) return std::nullopt;
        if (v.is_undefined()) fail_undefined(v);
        if (!v.is_int_like()) fail("TypeError: slice indices must be integers or None or have an __index__ method");
        return v.as_int();
    };
    const auto b = index(start), e = index(stop), s = index(step);
    if (obj.is_dict()) fail("TypeError: unhashable type: 'slice'");
    if (!(obj.is_string() || obj.is_list_like()))
        fail(fmt::format("TypeError: '{}' object is not subscriptable", type_name(obj)));
    const int64_t st = s.value_or(1);
    if (obj.is_string()) return Value::string(pystr::slice(obj.str(), b, e, st));
    const auto& items = obj.items();
    const pystr::SliceRange r = pystr::slice_indices(static_cast<int64_t>(items.size()), b, e, st);
    std::vector<Value> out;
    out.reserve(static_cast<size_t>(r.count));
    for (int64_t k = 0, i = r.start; k < r.count; ++k, i += r.step) out.push_back(items[static_cast<size_t>(i)]);
    return obj.kind() == Kind::Tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

Value binary_op(BinOp op, const Value& a, const Value& b) {
    static constexpr const char* kSymbols[] = {"+", "-", "*", "/", "//", "%", "**"};
    const char* sym = kSymbols[static_cast<int>(op)];
    if (a.is_undefined()) fail_undefined(a);
    // str % x formats even an undefined x, which Python takes for a mapping ('%s' % x gives '').
    if (op == BinOp::Mod && a.is_string()) return Value::string(pystr::percent_format(a.str(), b));
    if (b.is_undefined()) fail_undefined(b);
    const bool ints = a.is_int_like() && b.is_int_like();
    const bool nums = a.is_number() && b.is_number();
    switch (op) {
        case BinOp::Add:
            if (ints) return Value::integer(add_int(a.as_int(), b.as_int()));
            if (nums) return Value::real(a.as_float() + b.as_float());
            if (a.is_string() && b.is_string()) {
                check_size(a.str().size() + b.str().size());
                return Value::string(a.str() + b.str());
            }
            if (a.is_list_like() && a.kind() == b.kind()) {
                std::vector<Value> out = a.items();
                out.insert(out.end(), b.items().begin(), b.items().end());
                return a.kind() == Kind::Tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
            }
            break;
        case BinOp::Sub:
            if (ints) return Value::integer(sub_int(a.as_int(), b.as_int()));
            if (nums) return Value::real(a.as_float() - b.as_float());
            break;
        case BinOp::Mul:
            if (ints) return Value::integer(mul_int(a.as_int(), b.as_int()));
            if (nums) return Value::real(a.as_float() * b.as_float());
            if ((a.is_string() || a.is_list_like()) && b.is_int_like()) return repeat(a, b.as_int());
            if ((b.is_string() || b.is_list_like()) && a.is_int_like()) return repeat(b, a.as_int());
            break;
        case BinOp::Div:
            if (nums) {
                if (b.as_float() == 0.0) fail("ZeroDivisionError: division by zero");
                return Value::real(a.as_float() / b.as_float());
            }
            break;
        case BinOp::FloorDiv:
        case BinOp::Mod:
            if (ints) {
                const int64_t x = a.as_int(), y = b.as_int();
                if (y == 0) {
                    fail(op == BinOp::Mod ? "ZeroDivisionError: integer modulo by zero"
                                          : "ZeroDivisionError: integer division or modulo by zero");
                }
                if (x == std::numeric_limits<int64_t>::min() && y == -1) {
                    if (op == BinOp::Mod) return Value::integer(0);
                    overflow();
                }
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    m += y;
                    q -= 1;
                }
                return Value::integer(op == BinOp::Mod ? m : q);
            }
            if (nums) {
                const auto [q, m] = float_divmod(a.as_float(), b.as_float());
                return Value::real(op == BinOp::Mod ? m : q);
            }
            break;
        case BinOp::Pow:
            if (ints && b.as_int() >= 0) return int_pow(a.as_int(), b.as_int());
            if (nums) {
                const double x = a.as_float(), y = b.as_float();
                if (x == 0.0 && y < 0) fail("ZeroDivisionError: 0.0 cannot be raised to a negative power");
                if (x < 0 && y != std::floor(y)) fail("ValueError: a negative number to a fractional power is complex");
                return Value::real(std::pow(x, y));
            }
            break;
    }
    unsupported(sym, a, b);
}

Value unary_op(ast::ExprKind op, const Value& a) {
    if (a.is_undefined()) fail_undefined(a);
    const bool neg = op == ast::ExprKind::Neg;
    if (a.is_int_like()) {
        if (!neg) return Value::integer(a.as_int());
        return Value::integer(sub_int(0, a.as_int()));
    }
    if (a.kind() == Kind::Float) return Value::real(neg ? -a.as_float() : a.as_float());
    fail(fmt::format("TypeError: bad operand type for unary {}: '{}'", neg ? '-' : '+', type_name(a)));
}

bool contains(const Value& container, const Value& item) {
    switch (container.kind()) {
        case Kind::Undefined: return false;
        case Kind::String:
            if (!item.is_string()) {
                fail(fmt::format("TypeError: 'in <string>' requires string as left operand, not {}", type_name(item)));
            }
            return container.str().find(item.str()) != std::string::npos;
        case Kind::List:
        case Kind::Tuple:
            for (const Value& v : container.items())
                if (py_eq(v, item)) return true;
            return false;
        case Kind::Dict: return container.dict().find(item) != nullptr;
        case Kind::Iterator: {
            IterData& it = container.iter();
            while (it.pos < it.items.size())
                if (py_eq(it.items[it.pos++], item)) return true;
            if (it.error) throw *it.error;
            return false;
        }
        default: fail(fmt::format("TypeError: argument of type '{}' is not iterable", type_name(container)));
    }
}

bool compare(ast::CmpOp op, const Value& a, const Value& b) {
    switch (op) {
        case ast::CmpOp::Eq: return py_eq(a, b);
        case ast::CmpOp::Ne: return !py_eq(a, b);
        case ast::CmpOp::Lt: return py_order(Order::Lt, a, b);
        case ast::CmpOp::Le: return py_order(Order::Le, a, b);
        case ast::CmpOp::Gt: return py_order(Order::Gt, a, b);
        case ast::CmpOp::Ge: return py_order(Order::Ge, a, b);
        case ast::CmpOp::In: return contains(b, a);
        case ast::CmpOp::NotIn: return !contains(b, a);
    }
    return false;
}

Value str_concat(const std::vector<Value>& parts) {
    std::string out;
    for (const Value& p : parts) {
        append_str(out, p);
        check_size(out.size());
    }
    return Value::string(std::move(out));
}

}  // namespace hymoe::jinja
