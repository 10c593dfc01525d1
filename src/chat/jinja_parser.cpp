// The parser: jinja2.parser.Parser's recursive descent, function for function, so precedence
// and the odd corners (`-x|f` filters the negation, `a ~ b * c`, tests taking one bare
// argument) come out the same. Also checks what jinja2 checks at compile time: unknown filters
// and tests (except inside `if`, where jinja2 defers them to run time), and break/continue
// outside a loop. This file: the token stream and the statements.
#include "chat/jinja_parser.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace hymoe::jinja {

namespace ast {

Body Parser::parse_template() {
    Body body = subparse({});
    return body;
}

const Token& Parser::next() {
    const Token& t = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return t;
}

bool Parser::skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
}

bool Parser::skip_name(std::string_view n) {
    if (!is_name(n)) return false;
    next();
    return true;
}

std::string Parser::describe(const Token& t) {
    switch (t.type) {
        case Tok::Data: return "template data";
        case Tok::VarBegin: return "begin of print statement";
        case Tok::VarEnd: return "end of print statement";
        case Tok::BlockBegin: return "begin of statement block";
        case Tok::BlockEnd: return "end of statement block";
        case Tok::Name:
        case Tok::Op: return t.text;
        case Tok::String: return "string";
        case Tok::Int: return "integer";
        case Tok::Float: return "float";
        case Tok::Eof: return "end of template";
    }
    return "token";
}

void Parser::expect(Tok type, std::string_view what) {
    if (cur().type != type) fail(fmt::format("expected token '{}', got '{}'", what, describe(cur())));
    next();
}

void Parser::expect_op(std::string_view op) {
    if (!is_op(op)) fail(fmt::format("expected token '{}', got '{}'", op, describe(cur())));
    next();
}

const Token& Parser::expect_name() {
    if (cur().type != Tok::Name) fail(fmt::format("expected token 'name', got '{}'", describe(cur())));
    return next();
}

Body Parser::subparse(std::initializer_list<std::string_view> end_tokens) {
    Body body;
    while (cur().type != Tok::Eof) {
        const Token& t = cur();
        if (t.type == Tok::Data) {
            body.push_back(std::make_unique<Data>(t.line, t.text));
            next();
        } else if (t.type == Tok::VarBegin) {
            next();
            const int line = cur().line;
            ExprPtr e = parse_tuple(false, true, {}, false, false);
            flush_unknown();
            expect(Tok::VarEnd, "end of print statement");
            body.push_back(std::make_unique<Output>(line, std::move(e)));
        } else if (t.type == Tok::BlockBegin) {
            next();
            if (cur().type == Tok::Name &&
                std::find(end_tokens.begin(), end_tokens.end(), cur().text) != end_tokens.end())
                return body;
            parse_statement(body);
            flush_unknown();
            expect(Tok::BlockEnd, "end of statement block");
        } else {
            fail(fmt::format("unexpected '{}'", describe(t)));
        }
    }
    return body;
}

Body Parser::parse_statements(std::initializer_list<std::string_view> end_tokens, bool drop_needle) {
    flush_unknown();
    skip_op(":");
    expect(Tok::BlockEnd, "end of statement block");
    Body body = subparse(end_tokens);
    if (cur().type == Tok::Eof) {
        std::string looking;
        for (std::string_view e : end_tokens) looking += fmt::format("{}'{}'", looking.empty() ? "" : " or ", e);
        fail(fmt::format("Unexpected end of template. Jinja was looking for the following tags: {}.", looking));
    }
    if (drop_needle) next();
    return body;
}

void Parser::parse_statement(Body& out) {
    const Nest nest(*this);
    const Token& t = cur();
    if (t.type != Tok::Name) fail("tag name expected");
    const std::string& n = t.text;
    if (n == "for") return out.push_back(parse_for());
    if (n == "if") return out.push_back(parse_if());
    if (n == "set") return out.push_back(parse_set());
    if (n == "macro") return out.push_back(parse_macro());
    if (n == "call") return out.push_back(parse_call_block());
    if (n == "filter") return out.push_back(parse_filter_block());
    if (n == "with") return out.push_back(parse_with());
    if (n == "generation") return out.push_back(parse_generation());
    if (n == "print") return parse_print(out);
    if (n == "break" || n == "continue") {
        if (loop_depth_ == 0) fail(fmt::format("'{}' outside loop", n));
        const int line = next().line;
        return out.push_back(std::make_unique<LoopControl>(n == "break" ? StmtKind::Break : StmtKind::Continue, line));
    }
    static constexpr std::string_view kUnsupported[] = {"block", "extends", "include", "import", "from", "autoescape"};
    if (std::find(std::begin(kUnsupported), std::end(kUnsupported), n) != std::end(kUnsupported))
        fail(fmt::format("the '{}' tag is not supported in chat templates", n));
    fail(fmt::format("Encountered unknown tag '{}'.", n));
}

StmtPtr Parser::parse_for() {
    auto node = std::make_unique<For>(next().line);
    node->target = parse_assign_target(true, false, {"in"}, false);
    check_not_loop(node->target);
    if (!skip_name("in")) fail(fmt::format("expected token 'in', got '{}'", describe(cur())));
    node->iter = parse_tuple(false, false, {"recursive"}, false, false);
    if (skip_name("if")) {
        const Frame frame(*this, false);
        node->filter = parse_expression(true);
    }
    node->recursive = skip_name("recursive");
    {
        const Frame frame(*this, false);
        ++loop_depth_;
        node->body = parse_statements({"endfor", "else"}, false);
    }
    if (next().text != "endfor") {
        const Frame frame(*this, false);
        node->else_body = parse_statements({"endfor"}, true);
    }
    return node;
}

void Parser::check_not_loop(const Target& t) {
    if (t.kind == Target::Kind::Name && t.name == "loop")
        fail("Can't assign to special loop variable in for-loop target");
    for (const Target& item : t.items) check_not_loop(item);
}

StmtPtr Parser::parse_if() {
    auto node = std::make_unique<If>(next().line);
    const bool saved = soft_;
    soft_ = true;
    while (true) {
        ExprPtr test = parse_tuple(false, false, {}, false, false);
        Body body = parse_statements({"elif", "else", "endif"}, false);
        node->branches.emplace_back(std::move(test), std::move(body));
        const Token& t = next();
        if (t.text == "elif") continue;
        if (t.text == "else") node->else_body = parse_statements({"endif"}, true);
        break;
    }
    soft_ = saved;
    return node;
}

StmtPtr Parser::parse_set() {
    const int line = next().line;
    Target target = parse_assign_target(true, false, {}, true);
    if (skip_op("=")) {
        auto node = std::make_unique<Set>(line);
        node->target = std::move(target);
        node->value = parse_tuple(false, true, {}, false, false);
        return node;
    }
    auto node = std::make_unique<SetBlock>(line);
    node->target = std::move(target);
    const Frame frame(*this, false);
    node->filter = parse_filter(nullptr, false);
    node->body = parse_statements({"endset"}, true);
    return node;
}

void Parser::parse_signature(MacroDef& m) {
    expect_op("(");
    while (!is_op(")")) {
        if (!m.params.empty()) expect_op(",");
        m.params.push_back(expect_name().text);
        if (skip_op("=")) {
            m.defaults.push_back(parse_expression(true));
        } else {
            if (std::any_of(m.defaults.begin(), m.defaults.end(), [](const ExprPtr& d) { return d != nullptr; }))
                fail("non-default argument follows default argument");
            m.defaults.push_back(nullptr);
        }
    }
    expect_op(")");
}

// Parses a macro's (or a caller's) body and notes which of the implicit names it reads.
void Parser::parse_macro_body(MacroDef& m, std::string_view end) {
    const Frame frame(*this, true);
    const size_t names_before = loaded_names_.size();
    m.body = parse_statements({end}, true);
    for (size_t i = names_before; i < loaded_names_.size(); ++i) {
        m.uses_caller |= loaded_names_[i] == "caller";
        m.uses_varargs |= loaded_names_[i] == "varargs";
        m.uses_kwargs |= loaded_names_[i] == "kwargs";
    }
}

StmtPtr Parser::parse_macro() {
    auto node = std::make_unique<MacroDef>(next().line);
    node->name = expect_name().text;
    {
        const Frame frame(*this, true);
        parse_signature(*node);
    }
    parse_macro_body(*node, "endmacro");
    return node;
}

StmtPtr Parser::parse_call_block() {
    auto node = std::make_unique<CallBlock>(next().line);
    node->caller.line = node->line;
    node->caller.name = "caller";
    if (is_op("(")) {
        const Frame frame(*this, true);
        parse_signature(node->caller);
    }
    const Token& at = cur();
    node->call = parse_expression(true);
    if (node->call->kind != ExprKind::Call) fail_at(at, "expected call");
    parse_macro_body(node->caller, "endcall");
    return node;
}

StmtPtr Parser::parse_filter_block() {
    auto node = std::make_unique<FilterBlock>(next().line);
    const Frame frame(*this, false);
    node->filter = parse_filter(nullptr, true);
    node->body = parse_statements({"endfilter"}, true);
    return node;
}

StmtPtr Parser::parse_with() {
    auto node = std::make_unique<Scoped>(next().line);
    while (cur().type != Tok::BlockEnd) {
        if (!node->assigns.empty()) expect_op(",");
        Target target = parse_assign_target(true, false, {}, false);
        expect_op("=");
        node->assigns.emplace_back(std::move(target), parse_expression(true));
    }
    const Frame frame(*this, false);
    node->body = parse_statements({"endwith"}, true);
    return node;
}

// transformers' AssistantTracker: {% generation %}...{% endgeneration %} renders its body
// as a call block's caller, so it has its own scope.
StmtPtr Parser::parse_generation() {
    auto node = std::make_unique<Scoped>(next().line);
    const Frame frame(*this, true);
    node->body = parse_statements({"endgeneration"}, true);
    return node;
}

void Parser::parse_print(Body& out) {
    next();
    bool first = true;
    while (cur().type != Tok::BlockEnd) {
        if (!first) expect_op(",");
        first = false;
        const int line = cur().line;
        out.push_back(std::make_unique<Output>(line, parse_expression(true)));
    }
}

Target Parser::parse_assign_target(bool with_tuple, bool name_only, std::initializer_list<std::string_view> extra_end,
                                   bool with_namespace) {
    const Token& at = cur();
    if (name_only) {
        Target t;
        t.line = at.line;
        t.name = expect_name().text;
        return t;
    }
    parsing_target_ = true;
    ExprPtr e = with_tuple ? parse_tuple(true, true, extra_end, false, with_namespace) : parse_primary(with_namespace);
    parsing_target_ = false;
    return to_target(*e, at);
}

Target Parser::to_target(const Expr& e, const Token& at) {
    Target t;
    t.line = e.line;
    switch (e.kind) {
        case ExprKind::Name: t.name = static_cast<const Name&>(e).name; return t;
        case ExprKind::Getattr: {
            const auto& g = static_cast<const Getattr&>(e);
            if (!g.ns_ref) fail_at(at, "can't assign to 'getattr'");
            t.kind = Target::Kind::NsAttr;
            t.name = static_cast<const Name&>(*g.obj).name;
            t.attr = g.attr;
            return t;
        }
        case ExprKind::Tuple:
            t.kind = Target::Kind::Tuple;
            for (const ExprPtr& item : static_cast<const Seq&>(e).items) t.items.push_back(to_target(*item, at));
            return t;
        default: fail_at(at, "can't assign to this expression");
    }
}

}  // namespace ast

ast::Body parse(std::string_view source) {
    return ast::Parser(tokenize(source)).parse_template();
}

}  // namespace hymoe::jinja
