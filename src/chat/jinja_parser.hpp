// The parser's class, shared by jinja_parser.cpp (the token stream and the statements) and
// jinja_parse_expr.cpp (the expressions). It follows jinja2.parser.Parser function for function.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja_ast.hpp"

namespace hymoe::jinja::ast {

inline constexpr int kMaxNesting = 200;  // parentheses, brackets and blocks inside each other

class Parser {
public:
    explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

    Body parse_template();

private:
    // ---- the token stream ----

    const Token& cur() const { return t_[i_]; }
    const Token& look() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
    const Token& next();
    bool is_op(std::string_view op) const { return cur().type == Tok::Op && cur().text == op; }
    bool is_name(std::string_view n) const { return cur().type == Tok::Name && cur().text == n; }
    bool skip_op(std::string_view op);
    bool skip_name(std::string_view n);

    static std::string describe(const Token& t);

    [[noreturn]] void fail(std::string_view what) const { syntax_error(cur().line, cur().col, what); }
    [[noreturn]] void fail_at(const Token& t, std::string_view what) const { syntax_error(t.line, t.col, what); }

    void expect(Tok type, std::string_view what);
    void expect_op(std::string_view op);
    const Token& expect_name();

    // Bounds the recursion of nested expressions and blocks.
    struct Nest {
        explicit Nest(Parser& p) : p_(p) {
            if (++p_.depth_ > kMaxNesting) p_.fail("the template nests too deeply");
        }
        ~Nest() { --p_.depth_; }
        Nest(const Nest&) = delete;
        Nest& operator=(const Nest&) = delete;
        Parser& p_;
    };

    // Saves and restores the parser's frame state around a body with its own frame.
    struct Frame {
        Frame(Parser& p, bool function) : p_(p), soft_(p.soft_), loop_depth_(p.loop_depth_) {
            p.soft_ = false;
            if (function) p.loop_depth_ = 0;
        }
        ~Frame() {
            p_.soft_ = soft_;
            p_.loop_depth_ = loop_depth_;
        }
        Frame(const Frame&) = delete;
        Frame& operator=(const Frame&) = delete;
        Parser& p_;
        bool soft_;
        int loop_depth_;
    };

    // ---- statements ----

    Body subparse(std::initializer_list<std::string_view> end_tokens);

    Body parse_statements(std::initializer_list<std::string_view> end_tokens, bool drop_needle);

    void parse_statement(Body& out);

    StmtPtr parse_for();

    void check_not_loop(const Target& t);

    StmtPtr parse_if();

    StmtPtr parse_set();

    void parse_signature(MacroDef& m);

    // Parses a macro's (or a caller's) body and notes which of the implicit names it reads.
    void parse_macro_body(MacroDef& m, std::string_view end);

    StmtPtr parse_macro();

    StmtPtr parse_call_block();

    StmtPtr parse_filter_block();

    StmtPtr parse_with();

    // transformers' AssistantTracker: {% generation %}...{% endgeneration %} renders its body
    // as a call block's caller, so it has its own scope.
    StmtPtr parse_generation();

    void parse_print(Body& out);

    // ---- assignment targets ----

    Target parse_assign_target(bool with_tuple, bool name_only, std::initializer_list<std::string_view> extra_end,
                               bool with_namespace);

    Target to_target(const Expr& e, const Token& at);

    // ---- expressions ----

    ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

    ExprPtr parse_condexpr();

    ExprPtr parse_or();

    ExprPtr parse_and();

    ExprPtr parse_not();

    ExprPtr parse_compare();

    ExprPtr parse_math1();

    ExprPtr parse_concat();

    ExprPtr parse_math2();

    ExprPtr parse_pow();

    ExprPtr parse_unary(bool with_filter);

    ExprPtr parse_primary(bool with_namespace);

    bool is_tuple_end(std::initializer_list<std::string_view> extra) const;

    ExprPtr parse_tuple(bool simplified, bool with_condexpr, std::initializer_list<std::string_view> extra_end,
                        bool explicit_parentheses, bool with_namespace);

    ExprPtr parse_list();

    ExprPtr parse_dict();

    ExprPtr parse_postfix(ExprPtr node);

    ExprPtr parse_filter_expr(ExprPtr node);

    ExprPtr parse_subscript(ExprPtr node);

    ExprPtr parse_subscribed();

    Args parse_call_args();

    ExprPtr parse_call(ExprPtr node);

    std::string dotted_name();

    ExprPtr parse_filter(ExprPtr node, bool start_inline);

    ExprPtr parse_test(ExprPtr node);

    // An unknown filter or test outside `if` is a compile error in jinja2, but the expression it
    // sits in may turn out to be the first part of a conditional expression, where it is not.
    // So it waits here until the enclosing statement or output is complete.
    void unknown(const Token& at, std::string what) { unknown_.push_back({at.line, at.col, std::move(what)}); }
    void flush_unknown();
    struct Unknown {
        int line, col;
        std::string what;
    };
    std::vector<Unknown> unknown_;

    std::vector<Token> t_;
    size_t i_ = 0;
    int depth_ = 0;
    bool soft_ = false;
    int loop_depth_ = 0;
    bool parsing_target_ = false;
    std::vector<std::string> loaded_names_;
};

}  // namespace hymoe::jinja::ast
