// The parser's expressions, from the conditional expression down to literals, with jinja2's
// precedence: or, and, not, comparisons, + -, ~, * / // %, **, unary minus, then postfix,
// filters and tests.
#include <algorithm>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "chat/jinja_eval.hpp"
#include "chat/jinja_parser.hpp"

namespace hymoe::jinja::ast {

ExprPtr Parser::parse_condexpr() {
    const Nest nest(*this);
    int line = cur().line;
    const size_t unknown_before = unknown_.size();
    ExprPtr expr1 = parse_or();
    // The whole conditional expression is "soft" in jinja2, the part before `if` included.
    if (is_name("if")) unknown_.resize(unknown_before);
    while (is_name("if")) {
        const bool saved = soft_;
        soft_ = true;
        next();
        auto node = std::make_unique<CondExpr>(line);
        node->test = parse_or();
        if (skip_name("else")) node->otherwise = parse_condexpr();
        soft_ = saved;
        node->then = std::move(expr1);
        expr1 = std::move(node);
        line = cur().line;
    }
    return expr1;
}

ExprPtr Parser::parse_or() {
    int line = cur().line;
    ExprPtr left = parse_and();
    while (skip_name("or")) {
        left = std::make_unique<Binary>(ExprKind::Or, line, BinOp::Add, std::move(left), parse_and());
        line = cur().line;
    }
    return left;
}

ExprPtr Parser::parse_and() {
    int line = cur().line;
    ExprPtr left = parse_not();
    while (skip_name("and")) {
        left = std::make_unique<Binary>(ExprKind::And, line, BinOp::Add, std::move(left), parse_not());
        line = cur().line;
    }
    return left;
}

ExprPtr Parser::parse_not() {
    if (is_name("not")) {
        const Nest nest(*this);
        const int line = next().line;
        return std::make_unique<Unary>(ExprKind::Not, line, parse_not());
    }
    return parse_compare();
}

ExprPtr Parser::parse_compare() {
    const int line = cur().line;
    ExprPtr expr = parse_math1();
    std::vector<std::pair<CmpOp, ExprPtr>> ops;
    while (true) {
        static constexpr std::pair<std::string_view, CmpOp> kOps[] = {{"==", CmpOp::Eq}, {"!=", CmpOp::Ne},
                                                                      {"<", CmpOp::Lt},  {"<=", CmpOp::Le},
                                                                      {">", CmpOp::Gt},  {">=", CmpOp::Ge}};
        const auto it = std::find_if(std::begin(kOps), std::end(kOps), [&](const auto& op) { return is_op(op.first); });
        if (it != std::end(kOps)) {
            next();
            ops.emplace_back(it->second, parse_math1());
        } else if (skip_name("in")) {
            ops.emplace_back(CmpOp::In, parse_math1());
        } else if (is_name("not") && look().type == Tok::Name && look().text == "in") {
            next();
            next();
            ops.emplace_back(CmpOp::NotIn, parse_math1());
        } else {
            break;
        }
    }
    if (ops.empty()) return expr;
    auto node = std::make_unique<Compare>(line);
    node->first = std::move(expr);
    node->ops = std::move(ops);
    return node;
}

ExprPtr Parser::parse_math1() {
    int line = cur().line;
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
        const BinOp op = next().text == "+" ? BinOp::Add : BinOp::Sub;
        left = std::make_unique<Binary>(ExprKind::Binary, line, op, std::move(left), parse_concat());
        line = cur().line;
    }
    return left;
}

ExprPtr Parser::parse_concat() {
    const int line = cur().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto node = std::make_unique<Concat>(line);
    node->parts.push_back(std::move(first));
    while (skip_op("~")) node->parts.push_back(parse_math2());
    return node;
}

ExprPtr Parser::parse_math2() {
    int line = cur().line;
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
        const std::string& s = next().text;
        const BinOp op = s == "*" ? BinOp::Mul : s == "/" ? BinOp::Div : s == "//" ? BinOp::FloorDiv : BinOp::Mod;
        left = std::make_unique<Binary>(ExprKind::Binary, line, op, std::move(left), parse_pow());
        line = cur().line;
    }
    return left;
}

ExprPtr Parser::parse_pow() {
    int line = cur().line;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) {
        left = std::make_unique<Binary>(ExprKind::Binary, line, BinOp::Pow, std::move(left), parse_unary(true));
        line = cur().line;
    }
    return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
    const Nest nest(*this);
    const int line = cur().line;
    ExprPtr node;
    if (skip_op("-")) {
        node = std::make_unique<Unary>(ExprKind::Neg, line, parse_unary(false));
    } else if (skip_op("+")) {
        node = std::make_unique<Unary>(ExprKind::Pos, line, parse_unary(false));
    } else {
        node = parse_primary(false);
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
}

ExprPtr Parser::parse_primary(bool with_namespace) {
    const Nest nest(*this);
    const Token& t = cur();
    switch (t.type) {
        case Tok::Name: {
            next();
            if (t.text == "true" || t.text == "True") return std::make_unique<Const>(t.line, Value::boolean(true));
            if (t.text == "false" || t.text == "False") return std::make_unique<Const>(t.line, Value::boolean(false));
            if (t.text == "none" || t.text == "None") return std::make_unique<Const>(t.line, Value::none());
            if (with_namespace && is_op(".")) {
                next();
                auto node = std::make_unique<Getattr>(t.line);
                node->obj = std::make_unique<Name>(t.line, t.text);
                node->attr = expect_name().text;
                node->ns_ref = true;
                return node;
            }
            if (!parsing_target_) loaded_names_.push_back(t.text);
            return std::make_unique<Name>(t.line, t.text);
        }
        case Tok::String: {
            std::string s;
            while (cur().type == Tok::String) s += next().text;
            return std::make_unique<Const>(t.line, Value::string(std::move(s)));
        }
        case Tok::Int: next(); return std::make_unique<Const>(t.line, Value::integer(t.ival));
        case Tok::Float: next(); return std::make_unique<Const>(t.line, Value::real(t.fval));
        default: break;
    }
    if (skip_op("(")) {
        ExprPtr node = parse_tuple(false, true, {}, true, false);
        expect_op(")");
        return node;
    }
    if (is_op("[")) return parse_list();
    if (is_op("{")) return parse_dict();
    fail(fmt::format("unexpected '{}'", describe(t)));
}

bool Parser::is_tuple_end(std::initializer_list<std::string_view> extra) const {
    if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")")) return true;
    return cur().type == Tok::Name && std::find(extra.begin(), extra.end(), cur().text) != extra.end();
}

ExprPtr Parser::parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<std::string_view> extra_end,
                            bool explicit_parentheses, bool with_namespace) {
    const Nest nest(*this);
    const int line = cur().line;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
        if (!args.empty()) expect_op(",");
        if (is_tuple_end(extra_end)) break;
        args.push_back(simplified ? parse_primary(with_namespace) : parse_expression(with_condexpr));
        if (is_op(",")) {
            is_tuple = true;
        } else {
            break;
        }
    }
    if (!is_tuple) {
        if (!args.empty()) return std::move(args[0]);
        if (!explicit_parentheses) fail(fmt::format("Expected an expression, got '{}'", describe(cur())));
    }
    auto node = std::make_unique<Seq>(ExprKind::Tuple, line);
    node->items = std::move(args);
    return node;
}

ExprPtr Parser::parse_list() {
    auto node = std::make_unique<Seq>(ExprKind::List, next().line);
    while (!is_op("]")) {
        if (!node->items.empty()) expect_op(",");
        if (is_op("]")) break;
        node->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return node;
}

ExprPtr Parser::parse_dict() {
    auto node = std::make_unique<DictLit>(next().line);
    while (!is_op("}")) {
        if (!node->items.empty()) expect_op(",");
        if (is_op("}")) break;
        ExprPtr key = parse_expression(true);
        expect_op(":");
        node->items.emplace_back(std::move(key), parse_expression(true));
    }
    expect_op("}");
    return node;
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
    while (true) {
        if (is_op(".") || is_op("[")) {
            node = parse_subscript(std::move(node));
        } else if (is_op("(")) {
            node = parse_call(std::move(node));
        } else {
            return node;
        }
    }
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
    while (true) {
        if (is_op("|")) {
            node = parse_filter(std::move(node), false);
        } else if (is_name("is")) {
            node = parse_test(std::move(node));
        } else if (is_op("(")) {
            node = parse_call(std::move(node));
        } else {
            return node;
        }
    }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
    const Nest nest(*this);
    const Token& t = next();
    if (t.text == ".") {
        const Token& attr = cur();
        if (attr.type == Tok::Name) {
            next();
            auto g = std::make_unique<Getattr>(t.line);
            g->obj = std::move(node);
            g->attr = attr.text;
            return g;
        }
        if (attr.type != Tok::Int) fail("expected name or number");
        next();
        auto g = std::make_unique<Getitem>(t.line);
        g->obj = std::move(node);
        g->key = std::make_unique<Const>(attr.line, Value::integer(attr.ival));
        return g;
    }
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
        if (!args.empty()) expect_op(",");
        args.push_back(parse_subscribed());
    }
    expect_op("]");
    auto g = std::make_unique<Getitem>(t.line);
    g->obj = std::move(node);
    if (args.size() == 1) {
        g->key = std::move(args[0]);
    } else {
        auto tuple = std::make_unique<Seq>(ExprKind::Tuple, t.line);
        tuple->items = std::move(args);
        g->key = std::move(tuple);
    }
    return g;
}

ExprPtr Parser::parse_subscribed() {
    const int line = cur().line;
    auto s = std::make_unique<Slice>(line);
    if (!skip_op(":")) {
        ExprPtr node = parse_expression(true);
        if (!skip_op(":")) return node;
        s->start = std::move(node);
    }
    if (!is_op(":") && !is_op("]") && !is_op(",")) s->stop = parse_expression(true);
    if (skip_op(":")) {
        if (!is_op("]") && !is_op(",")) s->step = parse_expression(true);
    }
    return s;
}

Args Parser::parse_call_args() {
    const Token& open = cur();
    expect_op("(");
    Args a;
    bool require_comma = false;
    auto ensure = [&](bool ok) {
        if (!ok) fail_at(open, "invalid syntax for function call expression");
    };
    while (!is_op(")")) {
        if (require_comma) {
            expect_op(",");
            if (is_op(")")) break;
        }
        if (skip_op("*")) {
            ensure(!a.dyn_args && !a.dyn_kwargs);
            a.dyn_args = parse_expression(true);
        } else if (skip_op("**")) {
            ensure(!a.dyn_kwargs);
            a.dyn_kwargs = parse_expression(true);
        } else if (cur().type == Tok::Name && look().type == Tok::Op && look().text == "=") {
            ensure(!a.dyn_kwargs);
            std::string key = next().text;
            next();
            a.kw.emplace_back(std::move(key), parse_expression(true));
        } else {
            ensure(!a.dyn_args && !a.dyn_kwargs && a.kw.empty());
            a.pos.push_back(parse_expression(true));
        }
        require_comma = true;
    }
    expect_op(")");
    return a;
}

ExprPtr Parser::parse_call(ExprPtr node) {
    const Nest nest(*this);
    auto c = std::make_unique<Call>(cur().line);
    c->callee = std::move(node);
    c->args = parse_call_args();
    return c;
}

std::string Parser::dotted_name() {
    std::string name = expect_name().text;
    while (skip_op(".")) name += "." + expect_name().text;
    return name;
}

ExprPtr Parser::parse_filter(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
        const Nest nest(*this);
        if (!start_inline) next();
        start_inline = false;
        const Token& at = cur();
        auto f = std::make_unique<Filter>(at.line);
        f->name = dotted_name();
        f->fn = find_filter(f->name);
        if (f->fn == nullptr && !soft_) unknown(at, fmt::format("No filter named '{}'.", f->name));
        if (is_op("(")) f->args = parse_call_args();
        f->value = std::move(node);
        node = std::move(f);
    }
    return node;
}

ExprPtr Parser::parse_test(ExprPtr node) {
    const Nest nest(*this);
    const Token& is_tok = next();
    const bool negated = skip_name("not");
    const Token& at = cur();
    auto t = std::make_unique<Test>(is_tok.line);
    t->name = dotted_name();
    t->fn = find_test(t->name);
    if (t->fn == nullptr && !soft_) unknown(at, fmt::format("No test named '{}'.", t->name));
    const Tok ty = cur().type;
    if (is_op("(")) {
        t->args = parse_call_args();
    } else if ((ty == Tok::Name || ty == Tok::String || ty == Tok::Int || ty == Tok::Float || is_op("[") ||
                is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
        if (is_name("is")) fail("You cannot chain multiple tests with is");
        t->args.pos.push_back(parse_postfix(parse_primary(false)));
    }
    t->value = std::move(node);
    if (negated) return std::make_unique<Unary>(ExprKind::Not, is_tok.line, std::move(t));
    return t;
}

void Parser::flush_unknown() {
    if (!unknown_.empty()) syntax_error(unknown_.front().line, unknown_.front().col, unknown_.front().what);
}

}  // namespace hymoe::jinja::ast
