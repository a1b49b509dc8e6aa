#include "frontend/AstBuilder.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <functional>

#include "TDLLexer.h"
#include "frontend/Parser.h"

namespace tdl {

using P = tdlgen::TDLParser;

namespace {
// SPEC §4: brackets, parentheses and operators nest at most kMaxNesting deep around a leaf
// (whose own depth is 1), the parser's token check's bound and message.
constexpr int kMaxDepth = kMaxNesting + 1;
const std::string kNestingMessage = fmt::format("nesting too deep (more than {} levels)", kMaxNesting);
}  // namespace

// ------------------------------------------------------------ positions
Loc AstBuilder::loc(antlr4::Token* t) const {
  uint32_t line = static_cast<uint32_t>(t->getLine()) + lineOff_;
  uint32_t col = static_cast<uint32_t>(t->getCharPositionInLine()) + 1 +
                 (t->getLine() == 1 ? colOff_ : 0);
  uint32_t len = t->getType() == antlr4::Token::EOF
                     ? 1
                     : std::max<uint32_t>(1, static_cast<uint32_t>(t->getStopIndex() - t->getStartIndex() + 1));
  return Loc{file_, line, col, line, col, line, col + len};
}

Loc AstBuilder::loc(antlr4::ParserRuleContext* ctx) const {
  Loc b = loc(ctx->getStart());
  antlr4::Token* stop = ctx->getStop() ? ctx->getStop() : ctx->getStart();
  return Loc::span(b, loc(stop));
}

void AstBuilder::error(const Loc& l, std::string msg) {
  failed_ = true;
  diags_.error(l, std::move(msg));
}

ExprPtr AstBuilder::finish(ExprPtr e) {
  int d = 0;
  for (auto& k : e->kids)
    if (k) d = std::max(d, k->depth);
  for (auto& s : e->subs)
    for (auto* p : {&s.index, &s.lo, &s.hi, &s.step})
      if (*p) d = std::max(d, (*p)->depth);
  for (auto& part : e->parts)
    if (part.expr) d = std::max(d, part.expr->depth);
  e->depth = d + 1;
  if (e->depth == kMaxDepth + 1) error(e->loc, kNestingMessage);
  return e;
}

// -------------------------------------------------------------- program
void AstBuilder::buildProgram(P::ProgramContext* ctx, Module& m) {
  for (auto* s : ctx->statement()) {
    if (auto st = stmt(s)) m.stmts.push_back(std::move(st));
  }
}

ExprPtr AstBuilder::buildExprOnly(P::ExprOnlyContext* ctx) { return expr(ctx->expr()); }

StmtPtr AstBuilder::block(P::BlockContext* ctx) {
  auto b = std::make_unique<Stmt>(StmtKind::Block, loc(ctx));
  for (auto* s : ctx->statement()) {
    if (auto st = stmt(s)) b->stmts.push_back(std::move(st));
  }
  return b;
}

static char assignOpChar(P::AssignOpContext* op) {
  std::string t = op->getText();
  if (t == "//=") return 'F';
  if (t == "**=") return 'P';
  return t == "=" ? '=' : t[0];
}

StmtPtr AstBuilder::stmt(P::StatementContext* ctx) {
  Loc l = loc(ctx);
  if (auto* c = dynamic_cast<P::FnStmtContext*>(ctx)) {
    auto s = std::make_unique<Stmt>(StmtKind::Fn, l);
    s->fn = fnDecl(c->fnDecl());
    return s;
  }
  if (auto* c = dynamic_cast<P::ImportFileStmtContext*>(ctx)) {
    auto s = std::make_unique<Stmt>(StmtKind::Import, l);
    std::string raw = c->STRING()->getText();
    s->str = raw.substr(1, raw.size() - 2);
    s->alias = c->NAME()->getText();
    s->isFileImport = true;
    s->pathLoc = loc(c->STRING()->getSymbol());
    return s;
  }
  if (auto* c = dynamic_cast<P::ImportModuleStmtContext*>(ctx)) {
    auto s = std::make_unique<Stmt>(StmtKind::Import, l);
    s->str = c->module->getText();
    s->alias = c->alias ? c->alias->getText() : s->str;  // `import math as m`, Python's
    s->pathLoc = loc(c->module);
    return s;
  }
  if (auto* c = dynamic_cast<P::BindStmtContext*>(ctx)) {
    auto s = std::make_unique<Stmt>(StmtKind::Let, l);
    s->isVar = c->kind->getText() == "var";
    s->pattern = patterns(c->patterns());
    if (c->type()) s->type = type(c->type());
    s->exprs.push_back(exprs(c->exprs()));
    return s;
  }
  if (auto* c = dynamic_cast<P::IfStatementContext*>(ctx)) return ifStmt(c->ifStmt());
  if (auto* c = dynamic_cast<P::WhileStmtContext*>(ctx)) {
    auto s = std::make_unique<Stmt>(StmtKind::While, l);
    s->exprs.push_back(expr(c->expr()));
    s->body = block(c->block());
    return s;
  }
  if (auto* c = dynamic_cast<P::ForStmtContext*>(ctx)) {
    auto s = std::make_unique<Stmt>(StmtKind::For, l);
    s->pattern = patterns(c->patterns());
    s->exprs.push_back(expr(c->expr()));
    s->body = block(c->block());
    return s;
  }
  if (auto* c = dynamic_cast<P::ReturnStmtContext*>(ctx)) {
    auto s = std::make_unique<Stmt>(StmtKind::Return, l);
    if (c->exprs()) s->exprs.push_back(exprs(c->exprs()));
    return s;
  }
  if (dynamic_cast<P::BreakStmtContext*>(ctx)) return std::make_unique<Stmt>(StmtKind::Break, l);
  if (dynamic_cast<P::ContinueStmtContext*>(ctx)) return std::make_unique<Stmt>(StmtKind::Continue, l);
  if (auto* c = dynamic_cast<P::TypeAliasStmtContext*>(ctx)) {
    auto s = std::make_unique<Stmt>(StmtKind::TypeAlias, l);
    s->str = c->NAME()->getText();
    s->pathLoc = loc(c->NAME()->getSymbol());
    s->type = type(c->type());
    return s;
  }
  if (auto* c = dynamic_cast<P::WithStmtContext*>(ctx)) {
    auto s = std::make_unique<Stmt>(StmtKind::With, l);
    s->exprs.push_back(expr(c->expr()));
    s->str = c->NAME()->getText();
    s->pathLoc = loc(c->NAME()->getSymbol());
    s->body = block(c->block());
    return s;
  }
  if (auto* c = dynamic_cast<P::AssertStmtContext*>(ctx)) return assertStmt(c, l);
  if (auto* c = dynamic_cast<P::ExprStmtContext*>(ctx); c && c->assignOp()) {
    char op = assignOpChar(c->assignOp());
    ExprPtr target = exprs(c->exprs(0)), value = exprs(c->exprs(1));
    if (op == '=' && (target->kind == ExprKind::Tuple || target->kind == ExprKind::List))
      return tupleAssign(std::move(target), std::move(value), l);
    auto s = std::make_unique<Stmt>(StmtKind::Assign, l);
    s->assignOp = op;
    checkTarget(*target);
    s->exprs.push_back(std::move(target));
    s->exprs.push_back(std::move(value));
    return s;
  }
  if (auto* c = dynamic_cast<P::ExprStmtContext*>(ctx)) {
    auto s = std::make_unique<Stmt>(StmtKind::ExprStmt, l);
    s->exprs.push_back(exprs(c->exprs(0)));
    return s;
  }
  throw InternalError("AstBuilder: unknown statement kind");
}

// Python's `assert c, message`: its message is made only when c fails, and it is always the
// builtin's check (named _assert, which no local shadows):
//   { let <assert> = c; if _assert_holds(<assert>) {} else { _assert(<assert>, message) } }
// `assert c` is `_assert(c)`, and `assert(c, m)` (a parenthesized pair) the builtin's call.
StmtPtr AstBuilder::assertStmt(P::AssertStmtContext* c, const Loc& l) {
  const Loc al = loc(c->ASSERT()->getSymbol());
  auto call = [&](const char* fn, std::vector<ExprPtr> args) {
    auto e = std::make_unique<Expr>(ExprKind::Call, l);
    e->kids.push_back(hiddenName(fn, al));
    for (auto& a : args) {
      e->kids.push_back(std::move(a));
      e->names.push_back("");
    }
    auto s = std::make_unique<Stmt>(StmtKind::ExprStmt, l);
    s->exprs.push_back(finish(std::move(e)));
    return s;
  };
  ExprPtr cond = expr(c->expr(0));
  if (c->expr().size() == 1) {
    std::vector<ExprPtr> args;
    if (cond->kind == ExprKind::Tuple && !cond->kids.empty() && cond->kids.size() <= 2)
      for (auto& k : cond->kids) args.push_back(std::move(k));
    else
      args.push_back(std::move(cond));
    return call("_assert", std::move(args));
  }
  ExprPtr message = expr(c->expr(1));
  const Loc cl = cond->loc;
  auto block = std::make_unique<Stmt>(StmtKind::Block, l);
  auto let = std::make_unique<Stmt>(StmtKind::Let, cl);
  let->pattern.name = "<assert>";
  let->pattern.loc = cl;
  let->exprs.push_back(std::move(cond));
  block->stmts.push_back(std::move(let));
  auto test = std::make_unique<Expr>(ExprKind::Call, cl);
  test->kids.push_back(hiddenName("_assert_holds", al));
  test->kids.push_back(hiddenName("<assert>", cl));
  test->names.push_back("");
  auto branch = std::make_unique<Stmt>(StmtKind::If, l);
  branch->exprs.push_back(finish(std::move(test)));
  branch->body = std::make_unique<Stmt>(StmtKind::Block, l);
  branch->orelse = std::make_unique<Stmt>(StmtKind::Block, l);
  std::vector<ExprPtr> args;
  args.push_back(hiddenName("<assert>", cl));
  args.push_back(std::move(message));
  branch->orelse->stmts.push_back(call("_assert", std::move(args)));
  block->stmts.push_back(std::move(branch));
  return block;
}

// An assignment's target: a name, possibly followed by indexing and fields.
void AstBuilder::checkTarget(const Expr& target) {
  const Expr* t = &target;
  while (t && (t->kind == ExprKind::Index || t->kind == ExprKind::Field)) t = t->kids[0].get();
  if (!t || t->kind != ExprKind::Name)
    error(target.loc, target.kind == ExprKind::Tuple || target.kind == ExprKind::List
                          ? "cannot give a tuple or list of targets a compound assignment (`a, b += ...`): "
                            "assign each"
                          : "cannot assign to this expression");
}

// `a, b = b, a` / `(x[i], r.f) = pair` (Python's assignment to several targets) unpacks the
// value once into hidden names, then assigns each target, as a block:
//   { let (<target 0>, <target 1>) = value; a = <target 0>; b = <target 1> }
// so every part of the value is read before any target changes, and the unpacking checks
// the lengths as `let (a, b) = ...` does.
StmtPtr AstBuilder::tupleAssign(ExprPtr target, ExprPtr value, const Loc& l) {
  auto block = std::make_unique<Stmt>(StmtKind::Block, l);
  auto let = std::make_unique<Stmt>(StmtKind::Let, l);
  std::vector<StmtPtr> assigns;
  std::function<Pattern(ExprPtr)> unpack = [&](ExprPtr t) {
    Pattern p;
    p.loc = t->loc;
    if (t->kind == ExprKind::Tuple || t->kind == ExprKind::List) {
      p.kind = t->kind == ExprKind::Tuple ? Pattern::Tuple : Pattern::List;
      for (auto& k : t->kids) p.elems.push_back(unpack(std::move(k)));
      return p;
    }
    checkTarget(*t);
    p.name = fmt::format("<target {}>", assigns.size());
    auto a = std::make_unique<Stmt>(StmtKind::Assign, t->loc);
    a->assignOp = '=';
    auto name = std::make_unique<Expr>(ExprKind::Name, t->loc);
    name->str = p.name;
    a->exprs.push_back(std::move(t));
    a->exprs.push_back(std::move(name));
    assigns.push_back(std::move(a));
    return p;
  };
  let->pattern = unpack(std::move(target));
  let->exprs.push_back(std::move(value));
  block->stmts.push_back(std::move(let));
  for (auto& a : assigns) block->stmts.push_back(std::move(a));
  return block;
}

// `a, b` as a statement's expression or target: the tuple (a, b), as Python's.
ExprPtr AstBuilder::exprs(P::ExprsContext* ctx) {
  auto xs = ctx->expr();
  if (xs.size() == 1 && !ctx->trailing) return expr(xs[0]);
  auto e = std::make_unique<Expr>(ExprKind::Tuple, loc(ctx));
  for (auto* x : xs) e->kids.push_back(expr(x));
  return finish(std::move(e));
}

StmtPtr AstBuilder::ifStmt(P::IfStmtContext* ctx) {
  auto s = std::make_unique<Stmt>(StmtKind::If, loc(ctx));
  s->exprs.push_back(expr(ctx->expr()));
  auto blocks = ctx->block();
  s->body = block(blocks[0]);
  if (ctx->ifStmt()) s->orelse = ifStmt(ctx->ifStmt());
  else if (blocks.size() > 1) s->orelse = block(blocks[1]);
  return s;
}

std::shared_ptr<FnDecl> AstBuilder::fnDecl(P::FnDeclContext* ctx) {
  auto fn = std::make_shared<FnDecl>();
  fn->name = ctx->NAME()->getText();
  fn->loc = loc(ctx->NAME()->getSymbol());
  fn->isGraph = ctx->isGraph != nullptr;
  if (ctx->params()) params(ctx->params(), *fn);
  if (ctx->type()) fn->ret = type(ctx->type());
  fn->body = block(ctx->block());
  return fn;
}

void AstBuilder::params(P::ParamsContext* ctx, FnDecl& fn) {
  for (auto* p : ctx->param()) {
    Param par;
    par.name = p->NAME()->getText();
    par.loc = loc(p->NAME()->getSymbol());
    if (p->type()) par.type = type(p->type());
    if (p->expr()) par.deflt = expr(p->expr());
    for (auto& q : fn.params)
      if (q.name == par.name) error(par.loc, fmt::format("duplicate parameter '{}'", par.name));
    fn.params.push_back(std::move(par));
  }
}

Pattern AstBuilder::pattern(P::PatternContext* ctx) {
  Pattern p;
  p.loc = loc(ctx);
  if (auto* c = dynamic_cast<P::NamePatternContext*>(ctx)) {
    p.kind = Pattern::Name;
    p.name = c->NAME()->getText();
  } else if (auto* c = dynamic_cast<P::TuplePatternContext*>(ctx)) {
    p.kind = Pattern::Tuple;
    for (auto* e : c->pattern()) p.elems.push_back(pattern(e));
  } else if (auto* c = dynamic_cast<P::ListPatternContext*>(ctx)) {
    p.kind = Pattern::List;
    for (auto* e : c->pattern()) p.elems.push_back(pattern(e));
  }
  return p;
}

// `a, b` in let, var and for: the tuple pattern `(a, b)`, as Python's.
Pattern AstBuilder::patterns(P::PatternsContext* ctx) {
  auto ps = ctx->pattern();
  if (ps.size() == 1 && !ctx->trailing) return pattern(ps[0]);
  Pattern p;
  p.loc = loc(ctx);
  p.kind = Pattern::Tuple;
  for (auto* e : ps) p.elems.push_back(pattern(e));
  return p;
}

static bool isDTypeName(const std::string& s) {
  return s == "bool" || s == "i32" || s == "i64" || s == "f32" || s == "f64";
}

TypePtr AstBuilder::type(P::TypeContext* ctx) {
  auto t = std::make_unique<TypeExpr>();
  t->loc = loc(ctx);
  if (auto* c = dynamic_cast<P::TensorTypeContext*>(ctx)) {
    t->kind = TypeExpr::Tensor;
    t->dtype = c->name->getText();
    if (c->qual || !isDTypeName(t->dtype)) {
      // A type alias (`type NAME = ...`, or m.NAME of an imported module): Sema resolves it.
      if (c->LBRACK()) {
        error(loc(c->name), fmt::format("unknown type '{}' (expected bool, i32, i64, f32 or f64)", t->dtype));
      } else {
        t->kind = TypeExpr::Alias;
        if (c->qual) t->qualifier = c->qual->getText();
        return t;
      }
    }
    t->anyShape = c->LBRACK() == nullptr;
    for (auto* d : c->dim()) {
      Dim dim;
      if (d->INT()) {
        dim.kind = Dim::Fixed;
        std::string txt;
        for (char ch : d->INT()->getText())
          if (ch != '_') txt += ch;
        auto [p, ec] = std::from_chars(txt.data(), txt.data() + txt.size(), dim.size);
        if (ec != std::errc()) error(loc(d->INT()->getSymbol()), "dimension is too large");
      } else if (d->NAME()) {
        dim.kind = Dim::Named;
        dim.name = d->NAME()->getText();
      } else {
        dim.kind = Dim::Any;
      }
      t->dims.push_back(dim);
    }
  } else if (auto* c = dynamic_cast<P::RecordTypeContext*>(ctx)) {
    t->kind = TypeExpr::Record;
    auto names = c->NAME();
    auto types = c->type();
    for (size_t i = 0; i < names.size(); ++i) {
      t->names.push_back(names[i]->getText());
      t->elems.push_back(type(types[i]));
    }
  } else if (auto* c = dynamic_cast<P::TupleTypeContext*>(ctx)) {
    t->kind = TypeExpr::Tuple;
    for (auto* e : c->type()) t->elems.push_back(type(e));
  }
  return t;
}

// ---------------------------------------------------------- expressions
ExprPtr AstBuilder::binary(BinOp op, antlr4::Token* opTok, ExprPtr l, ExprPtr r) {
  Loc span = Loc::span(l->loc, r->loc).withCaret(loc(opTok));
  span.bline = l->loc.bline;
  span.bcol = l->loc.bcol;
  auto e = std::make_unique<Expr>(ExprKind::Binary, span);
  e->binop = op;
  e->kids.push_back(std::move(l));
  e->kids.push_back(std::move(r));
  return finish(std::move(e));
}

ExprPtr AstBuilder::unaryNode(UnOp op, antlr4::Token* opTok, ExprPtr x) {
  Loc span = Loc::span(loc(opTok), x->loc);
  auto e = std::make_unique<Expr>(ExprKind::Unary, span);
  e->unop = op;
  e->kids.push_back(std::move(x));
  return finish(std::move(e));
}

ExprPtr AstBuilder::expr(P::ExprContext* ctx) {
  if (ctx->lambda()) return lambda(ctx->lambda());
  if (ctx->orExpr().size() == 2) return conditional(ctx);
  return orExpr(ctx->orExpr(0));
}

// `a if c else b`, Python's conditional expression, is a call of a lambda (as a list
// comprehension is) that sets a variable in an if statement:
//   (fn() { var <value> = none; if c { <value> = a } else { <value> = b } return <value> })()
// so that only the branch taken runs, and a graph fn traces the if (its branches merge as any
// if statement's: equal strings, none from both, tensors of a run-time condition).
ExprPtr AstBuilder::conditional(P::ExprContext* ctx) {
  Loc l = loc(ctx);
  ExprPtr a = orExpr(ctx->orExpr(0)), c = orExpr(ctx->orExpr(1)), b = expr(ctx->expr());
  int depth = std::max({a->depth, b->depth, c->depth});
  auto set = [&](ExprPtr v) {
    Loc at = v->loc;
    auto block = std::make_unique<Stmt>(StmtKind::Block, at);
    auto assign = std::make_unique<Stmt>(StmtKind::Assign, at);
    assign->exprs.push_back(hiddenName(kConditionalExpression, at));
    assign->exprs.push_back(std::move(v));
    block->stmts.push_back(std::move(assign));
    return block;
  };
  auto test = std::make_unique<Stmt>(StmtKind::If, c->loc);
  test->exprs.push_back(std::move(c));
  test->body = set(std::move(a));
  test->orelse = set(std::move(b));
  return hiddenCall(kConditionalExpression, std::make_unique<Expr>(ExprKind::None, l), std::move(test), l, depth);
}

ExprPtr AstBuilder::lambda(P::LambdaContext* ctx) {
  auto fn = std::make_shared<FnDecl>();
  fn->loc = loc(ctx->getStart());
  fn->isLambda = true;
  if (ctx->params()) params(ctx->params(), *fn);
  ExprPtr body = expr(ctx->expr());
  Loc bl = body->loc;
  fn->body = std::make_unique<Stmt>(StmtKind::Block, bl);
  auto ret = std::make_unique<Stmt>(StmtKind::Return, bl);
  ret->exprs.push_back(std::move(body));
  fn->body->stmts.push_back(std::move(ret));
  auto e = std::make_unique<Expr>(ExprKind::Lambda, loc(ctx));
  e->depth = fn->body->stmts[0]->exprs[0]->depth + 1;
  e->fn = std::move(fn);
  if (e->depth == kMaxDepth + 1) error(e->loc, kNestingMessage);
  return e;
}

// [item for p in xs if c ...], Python's list comprehension (its clauses: a `for`, then `for`s
// and `if`s, each inside the ones before), is a call of a lambda that builds the list, so that
// every engine runs it as the statements it stands for (a graph fn unrolls the loops where it
// can):
//   (fn() { var <list> = []; for p in xs { if c { ... <list>.append(item) } } return <list> })()
// As in Python, the loop names and the list are the comprehension's own; what it reads of the
// enclosing code is captured by value (nothing can change it meanwhile). The list's name is
// not one a program can write.
// A generator expression as a call's only argument (`sum(x * x for x in xs)`) is the same,
// named <generator expression>: its items are all made before the call (a list).
ExprPtr AstBuilder::listComp(const std::string& name, const Loc& l, P::ExprContext* itemCtx, P::CompForContext* first,
                             const std::vector<P::CompClauseContext*>& rest) {
  ExprPtr item = expr(itemCtx);
  int depth = item->depth;
  // Innermost: <list>.append(item).
  const Loc il = item->loc;
  auto method = std::make_unique<Expr>(ExprKind::Field, il);
  method->str = "append";
  method->kids.push_back(hiddenName(name.c_str(), il));
  auto call = std::make_unique<Expr>(ExprKind::Call, il);
  call->kids.push_back(std::move(method));
  call->names.push_back("");
  call->kids.push_back(std::move(item));
  StmtPtr inner = std::make_unique<Stmt>(StmtKind::ExprStmt, il);
  inner->exprs.push_back(std::move(call));
  return comprehension(name, std::make_unique<Expr>(ExprKind::List, l), std::move(inner), first, rest, l, depth);
}

// {key: value for p in xs if c ...}, Python's dict comprehension, as a list comprehension:
//   (fn() { var <dict> = {}; for p in xs { if c { ... <dict>[key] = value } } return <dict> })()
// so a key must be a string (a dict's), and a later equal key replaces the value (Python's).
ExprPtr AstBuilder::dictComp(P::BracesLitContext* ctx) {
  Loc l = loc(ctx);
  ExprPtr key = expr(ctx->entry(0)->key), value = expr(ctx->entry(0)->value);
  int depth = std::max(key->depth, value->depth);
  return comprehension(kDictComprehension, std::make_unique<Expr>(ExprKind::Dict, l),
                       keyAssign(kDictComprehension, std::move(key), std::move(value)), ctx->compFor(),
                       ctx->compClause(), l, depth);
}

// {"k": v, ...}: string literal keys make the Dict node; where a key is computed
// ({f"{k}": v}, {name + "_w": w}), the literal is a hidden call, as a comprehension is:
//   (fn() { var <dict literal> = {}; <dict literal>[k] = v; ... return <dict literal> })()
// so a key is checked to be a string when it runs, and a later equal key replaces the value.
// The primary an expression is, when it is one alone (no operator, call, index or field),
// else null: `{name: v}` makes a record only where the key is a bare name.
static antlr4::ParserRuleContext* firstPrimary(P::ExprContext* e) {
  antlr4::ParserRuleContext* n = e;
  while (n && n->children.size() == 1) {
    if (auto* pf = dynamic_cast<P::PostfixContext*>(n)) return pf->postfixOp().empty() ? pf->primary() : nullptr;
    n = dynamic_cast<antlr4::ParserRuleContext*>(n->children[0]);
  }
  return nullptr;
}

ExprPtr AstBuilder::braces(P::BracesLitContext* ctx) {
  if (ctx->compFor()) return dictComp(ctx);
  Loc l = loc(ctx);
  // Names before every colon: a record; else a dict (a name beside keys is an error).
  bool record = !ctx->entry().empty();
  for (auto* en : ctx->entry()) record = record && dynamic_cast<P::NameRefContext*>(firstPrimary(en->key)) != nullptr;
  if (record) {
    auto e = std::make_unique<Expr>(ExprKind::Record, l);
    for (auto* en : ctx->entry()) {
      ExprPtr k = expr(en->key);
      for (auto& n : e->names)
        if (n == k->str) error(k->loc, fmt::format("duplicate field '{}'", k->str));
      e->names.push_back(k->str);
      e->kids.push_back(expr(en->value));
    }
    return finish(std::move(e));
  }
  auto e = std::make_unique<Expr>(ExprKind::Dict, l);
  std::vector<std::pair<ExprPtr, ExprPtr>> entries;
  bool computed = false;
  int depth = 0;
  for (auto* en : ctx->entry()) {
    ExprPtr k = expr(en->key), v = expr(en->value);
    depth = std::max({depth, k->depth, v->depth});
    if (k->kind == ExprKind::Name)  // (only beside other keys: alone names make a record)
      error(k->loc, fmt::format("a literal holds record fields or dict keys, not both: write the key \"{}\"", k->str));
    else if (k->kind == ExprKind::Int || k->kind == ExprKind::Float || k->kind == ExprKind::Bool ||
             k->kind == ExprKind::None || k->kind == ExprKind::List || k->kind == ExprKind::Tuple)
      error(k->loc, "a dict's keys are strings (f\"{k}\" makes one of any value)");
    else if (k->kind != ExprKind::Str)
      computed = true;
    if (k->kind == ExprKind::Str)
      for (auto& [seen, _] : entries)
        if (seen->kind == ExprKind::Str && seen->str == k->str) error(k->loc, fmt::format("duplicate key \"{}\"", k->str));
    entries.emplace_back(std::move(k), std::move(v));
  }
  if (!computed) {
    for (auto& [k, v] : entries) {
      e->names.push_back(k->str);
      e->kids.push_back(std::move(v));
    }
    return finish(std::move(e));
  }
  auto body = std::make_unique<Stmt>(StmtKind::Block, l);
  for (auto& [k, v] : entries) body->stmts.push_back(keyAssign(kDictLiteral, std::move(k), std::move(v)));
  return hiddenCall(kDictLiteral, std::move(e), std::move(body), l, depth);
}

// `<dict>[key] = value` for the hidden dict variable `dict` (comprehensions, computed keys).
StmtPtr AstBuilder::keyAssign(const char* dict, ExprPtr key, ExprPtr value) {
  const Loc kl = key->loc;
  auto target = std::make_unique<Expr>(ExprKind::Index, kl);
  target->kids.push_back(hiddenName(dict, kl));
  Subscript sub;
  sub.loc = kl;
  sub.index = std::move(key);
  target->subs.push_back(std::move(sub));
  auto assign = std::make_unique<Stmt>(StmtKind::Assign, kl);
  assign->exprs.push_back(finish(std::move(target)));
  assign->exprs.push_back(std::move(value));
  return assign;
}

ExprPtr AstBuilder::hiddenName(const char* name, const Loc& at) {
  auto n = std::make_unique<Expr>(ExprKind::Name, at);
  n->str = name;
  return n;
}

// A comprehension's clauses in order (a `for`, then `for`s and `if`s, each inside the ones
// before) around `inner`, in the hidden call that makes `init` its result.
ExprPtr AstBuilder::comprehension(const std::string& name, ExprPtr init, StmtPtr inner, P::CompForContext* first,
                                  const std::vector<P::CompClauseContext*>& rest, const Loc& l, int depth) {
  // The clauses in order: a For (pattern, iterable) or an If (condition), bodies empty.
  std::vector<StmtPtr> clauses;
  auto addFor = [&](P::CompForContext* f) {
    auto loop = std::make_unique<Stmt>(StmtKind::For, loc(f));
    loop->pattern = patterns(f->patterns());
    loop->exprs.push_back(orExpr(f->orExpr()));
    depth = std::max(depth, loop->exprs[0]->depth);
    clauses.push_back(std::move(loop));
  };
  addFor(first);
  for (auto* c : rest) {
    if (c->compFor()) {
      addFor(c->compFor());
      continue;
    }
    auto test = std::make_unique<Stmt>(StmtKind::If, loc(c->orExpr()));
    test->exprs.push_back(orExpr(c->orExpr()));
    depth = std::max(depth, test->exprs[0]->depth);
    clauses.push_back(std::move(test));
  }
  // Each clause, from the last, holds what follows it.
  const Loc il = inner->loc;
  for (size_t k = clauses.size(); k-- > 0;) {
    StmtPtr clause = std::move(clauses[k]);
    clause->body = std::make_unique<Stmt>(StmtKind::Block, il);
    clause->body->stmts.push_back(std::move(inner));
    inner = std::move(clause);
  }
  return hiddenCall(name, std::move(init), std::move(inner), l, depth);
}

// The call of a lambda named `name` (call chains show it) that runs
//   var <name> = init; body; return <name>
// where <name> is also its variable's name, one no program can write.
ExprPtr AstBuilder::hiddenCall(const std::string& name, ExprPtr init, StmtPtr body, const Loc& l, int depth) {
  auto fn = std::make_shared<FnDecl>();
  fn->name = name;
  fn->loc = l;
  fn->isLambda = true;
  fn->body = std::make_unique<Stmt>(StmtKind::Block, l);
  auto let = std::make_unique<Stmt>(StmtKind::Let, l);
  let->isVar = true;
  let->pattern.name = name;
  let->pattern.loc = l;
  let->exprs.push_back(std::move(init));
  fn->body->stmts.push_back(std::move(let));
  fn->body->stmts.push_back(std::move(body));
  auto ret = std::make_unique<Stmt>(StmtKind::Return, l);
  auto result = std::make_unique<Expr>(ExprKind::Name, l);
  result->str = name;
  ret->exprs.push_back(std::move(result));
  fn->body->stmts.push_back(std::move(ret));
  auto lam = std::make_unique<Expr>(ExprKind::Lambda, l);
  lam->fn = std::move(fn);
  lam->depth = depth + 1;
  auto e = std::make_unique<Expr>(ExprKind::Call, l);
  e->kids.push_back(std::move(lam));
  return finish(std::move(e));
}

// Folds `first (op next)*` children of a rule into a left-associated chain.
template <typename Ctx, typename Sub, typename F, typename OpF>
static ExprPtr chain(AstBuilder& b, Ctx* ctx, const std::vector<Sub*>& subs, F build, OpF opOf,
                     ExprPtr (AstBuilder::*mk)(BinOp, antlr4::Token*, ExprPtr, ExprPtr)) {
  ExprPtr acc = build(subs[0]);
  size_t next = 1;
  for (auto* child : ctx->children) {
    antlr4::Token* tok = nullptr;
    BinOp op;
    if (!opOf(child, tok, op)) continue;
    acc = (b.*mk)(op, tok, std::move(acc), build(subs[next++]));
  }
  return acc;
}

static antlr4::Token* firstToken(antlr4::tree::ParseTree* t) {
  if (auto* term = dynamic_cast<antlr4::tree::TerminalNode*>(t)) return term->getSymbol();
  if (auto* r = dynamic_cast<antlr4::ParserRuleContext*>(t)) return r->getStart();
  return nullptr;
}

static bool terminalOp(antlr4::tree::ParseTree* child, const char* text, BinOp val,
                       antlr4::Token*& tok, BinOp& op) {
  auto* term = dynamic_cast<antlr4::tree::TerminalNode*>(child);
  if (!term || term->getText() != text) return false;
  tok = term->getSymbol();
  op = val;
  return true;
}

ExprPtr AstBuilder::orExpr(P::OrExprContext* ctx) {
  return chain(*this, ctx, ctx->andExpr(), [&](auto* s) { return andExpr(s); },
               [](auto* c, antlr4::Token*& t, BinOp& op) { return terminalOp(c, "or", BinOp::Or, t, op); },
               &AstBuilder::binary);
}

ExprPtr AstBuilder::andExpr(P::AndExprContext* ctx) {
  return chain(*this, ctx, ctx->notExpr(), [&](auto* s) { return notExpr(s); },
               [](auto* c, antlr4::Token*& t, BinOp& op) { return terminalOp(c, "and", BinOp::And, t, op); },
               &AstBuilder::binary);
}

ExprPtr AstBuilder::notExpr(P::NotExprContext* ctx) {
  if (ctx->notExpr()) return unaryNode(UnOp::Not, ctx->op, notExpr(ctx->notExpr()));
  return comparison(ctx->comparison());
}

static BinOp opFromText(const std::string& s) {
  static const std::pair<const char*, BinOp> table[] = {
      {"==", BinOp::Eq}, {"!=", BinOp::Ne}, {"<", BinOp::Lt}, {"<=", BinOp::Le},
      {">", BinOp::Gt},  {">=", BinOp::Ge}, {"+", BinOp::Add}, {"-", BinOp::Sub},
      {"*", BinOp::Mul}, {"/", BinOp::Div}, {"//", BinOp::FloorDiv}, {"%", BinOp::Mod},
      {"@", BinOp::MatMul}, {"in", BinOp::In}, {"notin", BinOp::NotIn}};
  for (auto& [t, op] : table)
    if (s == t) return op;
  throw InternalError("unknown operator " + s);
}

template <typename OpCtx>
static bool ruleOp(antlr4::tree::ParseTree* child, antlr4::Token*& tok, BinOp& op) {
  auto* c = dynamic_cast<OpCtx*>(child);
  if (!c) return false;
  tok = firstToken(c);
  op = opFromText(c->getText());
  return true;
}

// Whether e holds a chained comparison (its `and`, kChainedComparison).
static bool containsChain(const Expr& e) {
  if (e.kind == ExprKind::Binary && e.binop == BinOp::And && e.str == kChainedComparison) return true;
  for (const auto& k : e.kids)
    if (k && containsChain(*k)) return true;
  return false;
}

// Comparisons chain as in Python: `a < b <= c` is `a < b and b <= c` (b is evaluated for
// each of its comparisons; Sema requires a middle operand to call no function other than a
// pure builtin, so that no call with effects runs twice). A parenthesized `(a < b) < c` compares a bool.
ExprPtr AstBuilder::comparison(P::ComparisonContext* ctx) {
  std::vector<P::BitOrContext*> subs = ctx->bitOr();
  if (subs.size() <= 2)
    return chain(*this, ctx, subs, [&](auto* s) { return bitOr(s); }, ruleOp<P::CompOpContext>, &AstBuilder::binary);
  std::vector<std::pair<antlr4::Token*, BinOp>> ops;
  for (auto* child : ctx->children) {
    antlr4::Token* tok = nullptr;
    BinOp op;
    if (ruleOp<P::CompOpContext>(child, tok, op)) ops.emplace_back(tok, op);
  }
  ExprPtr acc;
  bool nested = false;  // the last right operand holds a chain itself (then it is not built again)
  for (size_t k = 0; k < ops.size() && k + 1 < subs.size(); ++k) {
    ExprPtr l;
    if (nested) {
      l = std::make_unique<Expr>(ExprKind::Bool, acc->loc);  // stands in; the error is reported
      error(loc(subs[k]->getStart()), "a chained comparison inside the middle operand of another: bind it to a name first");
    } else {
      l = bitOr(subs[k]);  // (Sema checks that it calls no fn that could run twice)
    }
    ExprPtr r = bitOr(subs[k + 1]);
    nested = containsChain(*r);
    ExprPtr cmp = binary(ops[k].second, ops[k].first, std::move(l), std::move(r));
    if (acc) {
      acc = binary(BinOp::And, ops[k].first, std::move(acc), std::move(cmp));
      acc->str = kChainedComparison;  // its operands' error names the chain, not an `and`
    } else {
      acc = std::move(cmp);
    }
  }
  return acc;
}

ExprPtr AstBuilder::bitOr(P::BitOrContext* ctx) {
  return chain(*this, ctx, ctx->bitAnd(), [&](auto* s) { return bitAnd(s); },
               [](auto* c, antlr4::Token*& t, BinOp& op) { return terminalOp(c, "|", BinOp::BitOr, t, op); },
               &AstBuilder::binary);
}

ExprPtr AstBuilder::bitAnd(P::BitAndContext* ctx) {
  return chain(*this, ctx, ctx->additive(), [&](auto* s) { return additive(s); },
               [](auto* c, antlr4::Token*& t, BinOp& op) { return terminalOp(c, "&", BinOp::BitAnd, t, op); },
               &AstBuilder::binary);
}

ExprPtr AstBuilder::additive(P::AdditiveContext* ctx) {
  return chain(*this, ctx, ctx->multiplicative(), [&](auto* s) { return multiplicative(s); },
               ruleOp<P::AddOpContext>, &AstBuilder::binary);
}

ExprPtr AstBuilder::multiplicative(P::MultiplicativeContext* ctx) {
  return chain(*this, ctx, ctx->unary(), [&](auto* s) { return unary(s); }, ruleOp<P::MulOpContext>,
               &AstBuilder::binary);
}

ExprPtr AstBuilder::unary(P::UnaryContext* ctx) {
  if (ctx->unary()) {
    UnOp op = ctx->op->getText() == "-" ? UnOp::Neg : UnOp::BitNot;
    return unaryNode(op, ctx->op, unary(ctx->unary()));
  }
  return power(ctx->power());
}

ExprPtr AstBuilder::power(P::PowerContext* ctx) {
  ExprPtr base = postfix(ctx->postfix());
  if (!ctx->powRhs()) return base;
  return binary(BinOp::Pow, ctx->op, std::move(base), powRhs(ctx->powRhs()));
}

ExprPtr AstBuilder::powRhs(P::PowRhsContext* ctx) {
  if (ctx->powRhs()) {
    UnOp op = ctx->op->getText() == "-" ? UnOp::Neg : UnOp::BitNot;
    return unaryNode(op, ctx->op, powRhs(ctx->powRhs()));
  }
  return power(ctx->power());
}

ExprPtr AstBuilder::postfix(P::PostfixContext* ctx) {
  ExprPtr e = primary(ctx->primary());
  for (auto* op : ctx->postfixOp()) {
    Loc opLoc = loc(op);
    if (auto* c = dynamic_cast<P::CallOpContext*>(op); c && e->kind == ExprKind::Field && e->str == "format" &&
                                                        e->kids[0]->kind == ExprKind::Str && !c->compFor()) {
      e = strFormat(std::move(e), c, opLoc);
      continue;
    }
    if (auto* c = dynamic_cast<P::CallOpContext*>(op)) {
      // A call's position is its callee (SPEC §9).
      Loc l = Loc::span(e->loc, opLoc).withCaret(e->loc);
      l.bline = e->loc.bline;
      l.bcol = e->loc.bcol;
      auto call = std::make_unique<Expr>(ExprKind::Call, l);
      call->kids.push_back(std::move(e));
      if (c->compFor()) {  // a generator expression, the only argument
        auto* a = c->arg(0);
        if (a->NAME()) error(loc(a->NAME()->getSymbol()), "a generator expression is no keyword argument's value: "
                                                          "put it in parentheses, name=(x for x in xs)");
        Loc gl = Loc::span(loc(a), loc(c->compClause().empty() ? static_cast<antlr4::ParserRuleContext*>(c->compFor())
                                                               : c->compClause().back()));
        call->names.push_back("");
        call->kids.push_back(listComp(kGeneratorExpression, gl, a->expr(), c->compFor(), c->compClause()));
      } else if (!c->arg().empty()) {
        bool sawKeyword = false;
        for (auto* a : c->arg()) {
          std::string kw = a->NAME() ? a->NAME()->getText() : "";
          ExprPtr v = expr(a->expr());
          if (kw.empty() && sawKeyword)
            error(v->loc, "positional argument follows keyword argument");
          if (!kw.empty()) {
            for (auto& n : call->names)
              if (n == kw) error(loc(a->NAME()->getSymbol()), fmt::format("duplicate keyword argument '{}'", kw));
            sawKeyword = true;
          }
          call->names.push_back(kw);
          call->kids.push_back(std::move(v));
        }
      }
      e = finish(std::move(call));
    } else if (auto* c = dynamic_cast<P::IndexOpContext*>(op)) {
      Loc l = Loc::span(e->loc, opLoc).withCaret(e->loc);
      l.bline = e->loc.bline;
      l.bcol = e->loc.bcol;
      auto idx = std::make_unique<Expr>(ExprKind::Index, l);
      idx->kids.push_back(std::move(e));
      for (auto* s : c->subscript()) {
        Subscript sub;
        sub.loc = loc(s);
        if (auto* sl = dynamic_cast<P::SliceSubContext*>(s)) {
          sub.isSlice = true;
          if (sl->lo) sub.lo = expr(sl->lo);
          if (sl->hi) sub.hi = expr(sl->hi);
          if (sl->step) sub.step = expr(sl->step);
        } else if (dynamic_cast<P::EllipsisSubContext*>(s)) {
          sub.isSlice = sub.isEllipsis = true;
        } else {
          sub.index = expr(dynamic_cast<P::IndexSubContext*>(s)->expr());
        }
        idx->subs.push_back(std::move(sub));
      }
      e = finish(std::move(idx));
    } else if (auto* c = dynamic_cast<P::FieldOpContext*>(op)) {
      Loc l = Loc::span(e->loc, opLoc).withCaret(e->loc);
      l.bline = e->loc.bline;
      l.bcol = e->loc.bcol;
      auto f = std::make_unique<Expr>(ExprKind::Field, l);
      f->str = c->NAME()->getText();
      f->kids.push_back(std::move(e));
      e = finish(std::move(f));
    }
  }
  return e;
}

static std::string stripUnderscores(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c != '_') out += c;
  return out;
}

// Decodes the escapes of a string literal body; reports unknown escapes.
bool decodeEscapes(std::string_view body, std::string& out, size_t& badAt) {
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    char n = i + 1 < body.size() ? body[i + 1] : '\0';
    switch (n) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      default: badAt = i; return false;
    }
    ++i;
  }
  return true;
}

// Whether the literal `ctx` is the whole operand of a unary minus (`-N`, also `x ** -N`).
static bool negatedLiteral(P::PrimaryContext* ctx) {
  auto* post = dynamic_cast<P::PostfixContext*>(ctx->parent);
  if (!post || !post->postfixOp().empty()) return false;
  auto* pow = dynamic_cast<P::PowerContext*>(post->parent);
  if (!pow || pow->powRhs()) return false;
  auto minus = [](antlr4::Token* op) { return op && op->getText() == "-"; };
  if (auto* u = dynamic_cast<P::UnaryContext*>(pow->parent)) {
    auto* outer = dynamic_cast<P::UnaryContext*>(u->parent);
    return outer && minus(outer->op);
  }
  if (auto* r = dynamic_cast<P::PowRhsContext*>(pow->parent)) {
    auto* outer = dynamic_cast<P::PowRhsContext*>(r->parent);
    return outer && minus(outer->op);
  }
  return false;
}

ExprPtr AstBuilder::primary(P::PrimaryContext* ctx) {
  Loc l = loc(ctx);
  if (auto* c = dynamic_cast<P::IntLitContext*>(ctx)) {
    auto e = std::make_unique<Expr>(ExprKind::Int, l);
    e->text = c->getText();
    std::string digits = stripUnderscores(e->text);
    // As Python: `007` would read as octal in C, so a decimal literal does not start with 0
    // unless it is all zeros.
    if (digits.size() > 1 && digits[0] == '0' && digits.find_first_not_of('0') != std::string::npos)
      error(l, fmt::format("leading zeros are not allowed in an integer literal: write {}, not {}",
                           digits.substr(digits.find_first_not_of('0')), e->text));
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    // 9223372036854775808 only as the operand of a unary minus (`-9223372036854775808` is
    // i64's minimum); anywhere else it is out of range, as is anything larger.
    if (ec != std::errc() || v > (uint64_t(1) << 63) || (v == (uint64_t(1) << 63) && !negatedLiteral(ctx)))
      error(l, "integer literal is too large for i64 (at most 9223372036854775807)");
    e->ival = static_cast<int64_t>(v);
    return e;
  }
  if (auto* c = dynamic_cast<P::FloatLitContext*>(ctx)) {
    auto e = std::make_unique<Expr>(ExprKind::Float, l);
    e->text = c->getText();
    std::string digits = stripUnderscores(e->text);
    e->fval = std::strtod(digits.c_str(), nullptr);
    return e;
  }
  if (auto* c = dynamic_cast<P::StringLitContext*>(ctx)) {
    auto e = std::make_unique<Expr>(ExprKind::Str, l);
    std::string raw = c->getText();
    size_t bad = 0;
    if (!decodeEscapes(std::string_view(raw).substr(1, raw.size() - 2), e->str, bad)) {
      Loc el = l;
      el.col += static_cast<uint32_t>(bad + 1);
      error(el, kUnknownEscape);
    }
    return e;
  }
  if (auto* c = dynamic_cast<P::FstringLitContext*>(ctx)) return fstring(c->FSTRING()->getSymbol());
  if (auto* c = dynamic_cast<P::BoolLitContext*>(ctx)) {
    auto e = std::make_unique<Expr>(ExprKind::Bool, l);
    e->bval = c->value->getText() == "true";
    return e;
  }
  if (dynamic_cast<P::NoneLitContext*>(ctx)) return std::make_unique<Expr>(ExprKind::None, l);
  if (auto* c = dynamic_cast<P::NameRefContext*>(ctx)) {
    auto e = std::make_unique<Expr>(ExprKind::Name, l);
    e->str = c->getText();
    return e;
  }
  if (auto* c = dynamic_cast<P::ParenOrTupleContext*>(ctx); c && c->compFor())
    return listComp(kGeneratorExpression, l, c->expr(0), c->compFor(), c->compClause());
  if (auto* c = dynamic_cast<P::ParenOrTupleContext*>(ctx); c && c->expr().size() == 1 && !c->trailing) {
    ExprPtr inner = expr(c->expr(0));
    inner->depth += 1;
    if (inner->depth == kMaxDepth + 1) error(l, kNestingMessage);
    return inner;
  }
  if (auto* c = dynamic_cast<P::ParenOrTupleContext*>(ctx)) {
    auto e = std::make_unique<Expr>(ExprKind::Tuple, l);
    for (auto* x : c->expr()) e->kids.push_back(expr(x));
    return finish(std::move(e));
  }
  if (auto* c = dynamic_cast<P::ListLitContext*>(ctx); c && c->compFor())
    return listComp(kListComprehension, l, c->expr(0), c->compFor(), c->compClause());
  if (auto* c = dynamic_cast<P::ListLitContext*>(ctx)) {
    auto e = std::make_unique<Expr>(ExprKind::List, l);
    for (auto* x : c->expr()) e->kids.push_back(expr(x));
    return finish(std::move(e));
  }
  if (auto* c = dynamic_cast<P::BracesLitContext*>(ctx)) return braces(c);
  throw InternalError("AstBuilder: unknown primary");
}

// f"text {expr:spec} {{literal}}": literal pieces are decoded here; each
// embedded expression is parsed on its own with positions shifted to where it
// stands in the file.
// "template".format(args...), Python's str.format on a string literal, is the f-string it
// stands for inside a lambda called with the arguments (each evaluated once, in order):
//   (fn(<format 0>, <format name>) => f"...{<format 0>:spec}...{<format name>}...")(a, name=b)
// so every engine formats it as an f-string. Fields: {} (the next argument), {0} (by index),
// {name} (a keyword argument), each with an optional :spec; {{ and }} are braces.
ExprPtr AstBuilder::strFormat(ExprPtr method, P::CallOpContext* call, const Loc& opLoc) {
  const std::string text = method->kids[0]->str;
  const Loc sl = method->kids[0]->loc;
  Loc l = Loc::span(method->loc, opLoc).withCaret(method->loc);
  l.bline = method->loc.bline;
  l.bcol = method->loc.bcol;
  auto fn = std::make_shared<FnDecl>();
  fn->name = "<str.format>";
  fn->loc = l;
  fn->isLambda = true;
  auto callExpr = std::make_unique<Expr>(ExprKind::Call, l);
  std::vector<std::string> keywords;
  size_t positional = 0;
  {
    for (auto* a : call->arg()) {
      std::string kw = a->NAME() ? a->NAME()->getText() : "";
      ExprPtr v = expr(a->expr());
      if (kw.empty() && !keywords.empty()) error(v->loc, "positional argument follows keyword argument");
      Param p;
      p.loc = v->loc;
      p.name = kw.empty() ? fmt::format("<format {}>", positional++) : "<format " + kw + ">";
      if (!kw.empty()) {
        if (std::find(keywords.begin(), keywords.end(), kw) != keywords.end())
          error(v->loc, fmt::format("duplicate keyword argument '{}'", kw));
        keywords.push_back(kw);
      }
      fn->params.push_back(std::move(p));
      callExpr->names.push_back("");
      callExpr->kids.push_back(std::move(v));
    }
  }
  auto str = std::make_unique<Expr>(ExprKind::FStr, sl);
  std::string lit;
  size_t next = 0;
  bool automatic = false, manual = false;
  auto fail = [&](const std::string& m) {
    error(sl, "format(): " + m);
    return std::make_unique<Expr>(ExprKind::None, l);
  };
  for (size_t i = 0; i < text.size();) {
    char ch = text[i];
    if ((ch == '{' || ch == '}') && i + 1 < text.size() && text[i + 1] == ch) { lit += ch; i += 2; continue; }
    if (ch == '}') return fail("single '}' in the string (write '}}' for a brace)");
    if (ch != '{') { lit += ch; ++i; continue; }
    size_t end = text.find('}', i);
    if (end == std::string::npos) return fail("a '{' field is not closed");
    std::string field = text.substr(i + 1, end - i - 1);
    std::string spec;
    if (size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    if (spec.find('{') != std::string::npos) return fail("a spec cannot hold a {...} field");
    if (field.find('!') != std::string::npos) return fail("conversions (!r, !s) are not supported: str(x) makes a string");
    std::string param;
    if (field.empty()) {
      if (manual) return fail("cannot mix {} with numbered fields");
      automatic = true;
      if (next >= positional)
        return fail(fmt::format("field {} has no argument ({} given)", next, positional));
      param = fmt::format("<format {}>", next++);
    } else if (field.find_first_not_of("0123456789") == std::string::npos) {
      if (automatic) return fail("cannot mix {} with numbered fields");
      manual = true;
      size_t k = std::stoul(field.substr(0, 9));
      if (field.size() > 9 || k >= positional)
        return fail(fmt::format("field {{{}}} has no argument ({} given)", field, positional));
      param = fmt::format("<format {}>", k);
    } else {
      if (std::find(keywords.begin(), keywords.end(), field) == keywords.end())
        return fail(fmt::format("field {{{}}} names no keyword argument{}", field,
                                field.find_first_of(".[") != std::string::npos ? " (fields of fields are not supported)" : ""));
      param = "<format " + field + ">";
    }
    FStrPart part;
    part.literal = lit;
    lit.clear();
    part.spec = spec;
    part.expr = hiddenName(param.c_str(), sl);
    str->parts.push_back(std::move(part));
    i = end + 1;
  }
  if (!lit.empty()) {
    FStrPart tail;
    tail.literal = lit;
    str->parts.push_back(std::move(tail));
  }
  ExprPtr body = finish(std::move(str));
  fn->body = std::make_unique<Stmt>(StmtKind::Block, sl);
  auto ret = std::make_unique<Stmt>(StmtKind::Return, sl);
  ret->exprs.push_back(std::move(body));
  fn->body->stmts.push_back(std::move(ret));
  auto lam = std::make_unique<Expr>(ExprKind::Lambda, l);
  lam->fn = std::move(fn);
  lam->depth = method->depth + 1;
  callExpr->kids.insert(callExpr->kids.begin(), std::move(lam));
  return finish(std::move(callExpr));
}

ExprPtr AstBuilder::fstring(antlr4::Token* tok) {
  Loc l = loc(tok);
  std::string raw = tok->getText();
  return fstringBody(std::string_view(raw).substr(2, raw.size() - 3), l, l.col + 2, false);
}

// The fields of an f-string's body (between the quotes; body[0] at column bodyCol). In a
// field's format spec (`inSpec`) fields nest once, as Python's `{x:>{width}.{p}f}`: such a
// spec is itself an f-string, and the field is `format(x, spec)`.
ExprPtr AstBuilder::fstringBody(std::string_view body, const Loc& l, uint32_t bodyCol, bool inSpec) {
  auto e = std::make_unique<Expr>(ExprKind::FStr, l);
  std::string lit;
  auto errAt = [&](size_t i, const std::string& msg) {
    Loc el = l;
    el.col = bodyCol + static_cast<uint32_t>(i);
    el.bcol = el.col;
    el.ecol = el.col + 1;
    error(el, msg);
  };
  size_t i = 0;
  while (i < body.size()) {
    char c = body[i];
    if (c == '{' && i + 1 < body.size() && body[i + 1] == '{') { lit += '{'; i += 2; continue; }
    if (c == '}' && i + 1 < body.size() && body[i + 1] == '}') { lit += '}'; i += 2; continue; }
    if (c == '}') { errAt(i, "single '}' in f-string (write '}}' for a brace)"); return e; }
    if (c == '\\') {
      size_t bad = 0;
      std::string dec;
      if (!decodeEscapes(body.substr(i, 2), dec, bad)) { errAt(i, "unknown escape sequence in f-string"); return e; }
      lit += dec;
      i += 2;
      continue;
    }
    if (c != '{') { lit += c; ++i; continue; }
    // An embedded expression: find its end, and a ':' spec at bracket depth 0.
    size_t start = i + 1, j = start, colon = std::string_view::npos;
    int depth = 0;
    bool inStr = false;
    for (; j < body.size(); ++j) {
      char d = body[j];
      if (inStr) { if (d == '\\') ++j; else if (d == '"') inStr = false; continue; }
      if (d == '"') inStr = true;
      else if (d == '#' && colon == std::string_view::npos) { errAt(j, "an f-string field cannot hold '#' (a comment would end it)"); return e; }
      else if (d == '(' || d == '[' || d == '{') ++depth;
      else if (d == ')' || d == ']' || (d == '}' && depth > 0)) --depth;
      else if (d == '}') break;
      else if (d == ':' && depth == 0 && colon == std::string_view::npos) colon = j;
    }
    if (j >= body.size()) { errAt(i, "unterminated '{' in f-string"); return e; }
    size_t exprEnd = colon == std::string_view::npos ? j : colon;
    std::string exprText(body.substr(start, exprEnd - start));
    FStrPart part;
    part.literal = lit;
    lit.clear();
    // Python's self-documenting `{x=}` (and `{x = }`): the text, then repr(x) (or x by its spec).
    bool debug = false;
    if (size_t k = exprText.find_last_not_of(" \t");
        k != std::string::npos && k > 0 && exprText[k] == '=' && std::string_view("=!<>").find(exprText[k - 1]) == std::string_view::npos) {
      debug = true;
      part.literal += exprText;
      exprText.resize(k);
    }
    if (colon != std::string_view::npos) part.spec = std::string(body.substr(colon + 1, j - colon - 1));
    ExprPtr dynSpec;
    if (part.spec.find_first_of("{}") != std::string::npos) {  // Python's nested {width}
      if (inSpec) {
        errAt(colon + 1, "f-string format specs nest only one level deep");
        return e;
      }
      dynSpec = fstringBody(body.substr(colon + 1, j - colon - 1), l, bodyCol + static_cast<uint32_t>(colon) + 1, true);
      if (failed_) return e;
      part.spec.clear();
    }
    if (exprText.find_first_not_of(" \t") == std::string::npos) {
      errAt(i, "empty expression in f-string");
      return e;
    }
    // Parse the piece with positions shifted to its place in the file.
    antlr4::ANTLRInputStream input(exprText);
    tdlgen::TDLLexer lexer(&input);
    antlr4::CommonTokenStream tokens(&lexer);
    tdlgen::TDLParser parser(&tokens);
    lexer.removeErrorListeners();
    parser.removeErrorListeners();
    auto* tree = parser.exprOnly();
    if (parser.getNumberOfSyntaxErrors() > 0) {
      errAt(start, "invalid expression in f-string");
      return e;
    }
    AstBuilder sub(file_, diags_, l.line - 1, bodyCol + static_cast<uint32_t>(start) - 1);
    part.expr = sub.buildExprOnly(tree);
    if (sub.failed()) failed_ = true;
    // A call of the builtin `name` (whatever the program binds to it) on the field's value.
    auto builtinCall = [&](const char* name, ExprPtr extra) {
      Loc at = part.expr->loc;
      auto callee = std::make_unique<Expr>(ExprKind::Name, at);
      callee->str = name;
      callee->builtinOnly = true;
      auto call = std::make_unique<Expr>(ExprKind::Call, at);
      call->kids.push_back(std::move(callee));
      call->depth = part.expr->depth + 1;
      call->kids.push_back(std::move(part.expr));
      call->names.push_back("");
      if (extra) {
        call->depth = std::max(call->depth, extra->depth + 1);
        call->kids.push_back(std::move(extra));
        call->names.push_back("");
      }
      part.expr = std::move(call);
    };
    if (part.expr && dynSpec) builtinCall("format", std::move(dynSpec));  // format(x, spec)
    else if (part.expr && debug && part.spec.empty()) builtinCall("repr", nullptr);
    e->parts.push_back(std::move(part));
    i = j + 1;
  }
  if (!lit.empty()) {
    FStrPart tail;
    tail.literal = lit;
    e->parts.push_back(std::move(tail));
  }
  return finish(std::move(e));
}

}  // namespace tdl
