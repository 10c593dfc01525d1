// The Jinja interpreter's internals: tokens, the syntax tree, and the entry points of the lexer
// and the parser. The node set mirrors jinja2.nodes for the subset chat templates use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/jinja_value.hpp"

namespace hymoe::jinja {

// ---- tokens -----------------------------------------------------------------------------

enum class Tok : uint8_t { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
    Tok type = Tok::Eof;
    std::string text;  // data, name, operator spelling, or a string literal's value
    int64_t ival = 0;
    double fval = 0.0;
    int line = 1;
    int col = 1;
};

// Splits a template into tokens with trim_blocks and lstrip_blocks on, as transformers sets them.
// Throws hymoe::Error "chat template: line L, column C: ..." on lexical errors.
std::vector<Token> tokenize(std::string_view source);

[[noreturn]] void syntax_error(int line, int col, std::string_view what);

namespace ast {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

using FilterFn = Value (*)(Interp& ip, const Value& value, CallArgs& args);
using TestFn = bool (*)(Interp& ip, const Value& value, CallArgs& args);

enum class ExprKind : uint8_t {
    Const,
    Name,
    Getattr,
    Getitem,
    Slice,
    Call,
    Filter,
    Test,
    Neg,
    Pos,
    Not,
    Binary,
    And,
    Or,
    Compare,
    Concat,
    CondExpr,
    List,
    Tuple,
    Dict
};
enum class BinOp : uint8_t { Add, Sub, Mul, Div, FloorDiv, Mod, Pow };
enum class CmpOp : uint8_t { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

struct Expr {
    Expr(ExprKind k, int l) : kind(k), line(l) {}
    virtual ~Expr() = default;
    ExprKind kind;
    int line;
};

struct Const final : Expr {
    Const(int l, Value v) : Expr(ExprKind::Const, l), value(std::move(v)) {}
    Value value;
};
struct Name final : Expr {
    Name(int l, std::string n) : Expr(ExprKind::Name, l), name(std::move(n)) {}
    std::string name;
};
struct Getattr final : Expr {
    Getattr(int l) : Expr(ExprKind::Getattr, l) {}
    ExprPtr obj;
    std::string attr;
    bool ns_ref = false;  // `ns.attr` as an assignment target
};
struct Getitem final : Expr {
    Getitem(int l) : Expr(ExprKind::Getitem, l) {}
    ExprPtr obj, key;  // key may be a Slice
};
struct Slice final : Expr {
    Slice(int l) : Expr(ExprKind::Slice, l) {}
    ExprPtr start, stop, step;  // each may be null
};
struct Args {
    std::vector<ExprPtr> pos;
    std::vector<std::pair<std::string, ExprPtr>> kw;
    ExprPtr dyn_args, dyn_kwargs;  // *args, **kwargs
};
struct Call final : Expr {
    Call(int l) : Expr(ExprKind::Call, l) {}
    ExprPtr callee;
    Args args;
};
// A filter or a test. fn is resolved at parse time; null when unknown inside an `if`, where
// jinja2 defers the error to the moment the filter runs.
struct Filter final : Expr {
    Filter(int l) : Expr(ExprKind::Filter, l) {}
    ExprPtr value;  // null for the filter of a filter block or a set block
    std::string name;
    FilterFn fn = nullptr;
    Args args;
};
struct Test final : Expr {
    Test(int l) : Expr(ExprKind::Test, l) {}
    ExprPtr value;
    std::string name;
    TestFn fn = nullptr;
    Args args;
};
struct Unary final : Expr {  // Neg, Pos, Not
    Unary(ExprKind k, int l, ExprPtr e) : Expr(k, l), operand(std::move(e)) {}
    ExprPtr operand;
};
struct Binary final : Expr {  // Binary (with op), And, Or
    Binary(ExprKind k, int l, BinOp o, ExprPtr a, ExprPtr b)
        : Expr(k, l), op(o), left(std::move(a)), right(std::move(b)) {}
    BinOp op;
    ExprPtr left, right;
};
struct Compare final : Expr {
    Compare(int l) : Expr(ExprKind::Compare, l) {}
    ExprPtr first;
    std::vector<std::pair<CmpOp, ExprPtr>> ops;
};
struct Concat final : Expr {
    Concat(int l) : Expr(ExprKind::Concat, l) {}
    std::vector<ExprPtr> parts;
};
struct CondExpr final : Expr {
    CondExpr(int l) : Expr(ExprKind::CondExpr, l) {}
    ExprPtr test, then, otherwise;  // otherwise may be null: undefined
};
struct Seq final : Expr {  // List, Tuple
    Seq(ExprKind k, int l) : Expr(k, l) {}
    std::vector<ExprPtr> items;
};
struct DictLit final : Expr {
    DictLit(int l) : Expr(ExprKind::Dict, l) {}
    std::vector<std::pair<ExprPtr, ExprPtr>> items;
};

// What `set`, `for` and `with` assign to: a name, a tuple of targets, or ns.attr.
struct Target {
    enum class Kind : uint8_t { Name, Tuple, NsAttr } kind = Kind::Name;
    std::string name;
    std::string attr;  // NsAttr
    std::vector<Target> items;
    int line = 1;
};

enum class StmtKind : uint8_t {
    Data,
    Output,
    If,
    For,
    Set,
    SetBlock,
    Macro,
    CallBlock,
    FilterBlock,
    Scoped,
    Break,
    Continue
};

struct Stmt {
    Stmt(StmtKind k, int l) : kind(k), line(l) {}
    virtual ~Stmt() = default;
    StmtKind kind;
    int line;
};

struct Data final : Stmt {
    Data(int l, std::string t) : Stmt(StmtKind::Data, l), text(std::move(t)) {}
    std::string text;
};
struct Output final : Stmt {  // {{ expr }} and {% print expr %}
    Output(int l, ExprPtr e) : Stmt(StmtKind::Output, l), expr(std::move(e)) {}
    ExprPtr expr;
};
struct If final : Stmt {
    If(int l) : Stmt(StmtKind::If, l) {}
    std::vector<std::pair<ExprPtr, Body>> branches;  // if, then each elif
    Body else_body;
};
struct For final : Stmt {
    For(int l) : Stmt(StmtKind::For, l) {}
    Target target;
    ExprPtr iter;
    ExprPtr filter;  // `for x in xs if cond`; may be null
    bool recursive = false;
    Body body, else_body;
};
struct Set final : Stmt {
    Set(int l) : Stmt(StmtKind::Set, l) {}
    Target target;
    ExprPtr value;
};
struct SetBlock final : Stmt {
    SetBlock(int l) : Stmt(StmtKind::SetBlock, l) {}
    Target target;
    ExprPtr filter;  // a Filter chain whose innermost value is null; may be null
    Body body;
};
// A macro, or the anonymous `caller` of a call block.
struct MacroDef final : Stmt {
    MacroDef(int l) : Stmt(StmtKind::Macro, l) {}
    std::string name;
    std::vector<std::string> params;
    std::vector<ExprPtr> defaults;  // one per param; null when it has none
    Body body;
    bool uses_caller = false, uses_varargs = false, uses_kwargs = false;
};
struct CallBlock final : Stmt {
    CallBlock(int l) : Stmt(StmtKind::CallBlock, l) {}
    MacroDef caller{0};
    ExprPtr call;  // a Call
};
struct FilterBlock final : Stmt {
    FilterBlock(int l) : Stmt(StmtKind::FilterBlock, l) {}
    ExprPtr filter;
    Body body;
};
// A body with its own scope: `{% with %}` (with assignments) and `{% generation %}`.
struct Scoped final : Stmt {
    Scoped(int l) : Stmt(StmtKind::Scoped, l) {}
    std::vector<std::pair<Target, ExprPtr>> assigns;
    Body body;
};
struct LoopControl final : Stmt {  // Break, Continue
    LoopControl(StmtKind k, int l) : Stmt(k, l) {}
};

}  // namespace ast

// Parses a whole template. Throws hymoe::Error "chat template: line L, column C: ...".
ast::Body parse(std::string_view source);

}  // namespace hymoe::jinja
