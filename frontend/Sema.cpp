#include "frontend/Sema.h"

#include <fmt/format.h>

#include <functional>
#include <optional>
#include <map>
#include <algorithm>
#include <set>
#include <unordered_map>

#include "frontend/BuiltinAliases.h"
#include "frontend/Doc.h"
#include "runtime/Shape.h"

namespace tdl {

static const std::set<std::string>& builtinNames() {
  static const std::set<std::string> names = {
#define BUILTIN(n) #n,
#include "frontend/builtins.def"
#undef BUILTIN
  };
  return names;
}

bool isBuiltinName(const std::string& name) { return builtinNames().count(name) > 0; }

namespace {

BuiltinSignatureFn gBuiltinSignatures = nullptr;

struct Binding {
  RefKind kind = RefKind::Local;
  int index = -1;
  int module = 0;
  bool isVar = false;
  bool isFn = false;
  FnDecl* fn = nullptr;  // a top-level fn bound here
  FnDecl* lambda = nullptr;  // the lambda a top-level `let` binds (for graph fn rules)
  Loc decl;              // where it is declared, and what it is (for tools)
  std::string desc;
};

struct Scope {
  std::unordered_map<std::string, Binding> names;
};

// The function being analyzed (or a module's top-level code when fn == null).
struct FnCtx {
  FnDecl* fn = nullptr;
  FnCtx* parent = nullptr;
  std::vector<Scope> scopes;
  int numLocals = 0;
  int loopDepth = 0;
  std::map<std::string, int> captureIndex;
  FnDecl* graphRoot = nullptr;  // the graph fn this code belongs to, if any
};

struct TopName {
  int slot = -1;
  bool isVar = false;
  bool isFn = false;
  FnDecl* fn = nullptr;
  FnDecl* lambda = nullptr;  // `let NAME = fn(...) => ...` once at the top level: that lambda
  int lets = 0;              // how many top-level lets bind the name
  int module = -1;  // for imports: the module id
  bool isModule = false;
  Loc decl;
  std::string desc;
};

// Per top-level fn: direct calls to other top-level fns, and uses of top-level vars.
struct FnFacts {
  std::vector<std::pair<FnDecl*, Loc>> calls;
  std::vector<std::pair<std::string, Loc>> varUses;
};

class Sema {
 public:
  Sema(std::vector<std::unique_ptr<Module>>& mods, DiagEngine& d, SemaOptions o)
      : modules_(mods), diags_(d), opts_(o) {}

  void run() {
    aliases_.resize(modules_.size());
    aliasState_.assign(modules_.size(), 0);
    for (auto& m : modules_) resolveAliases(*m);
    tops_.resize(modules_.size());
    for (auto& m : modules_) declareTop(*m);
    for (auto& m : modules_) checkModule(*m);
    checkGraphFns();
  }

 private:
  // ----------------------------------------------------------- top level
  int topSlot(Module& m, const std::string& name, bool isVar) {
    auto& tops = tops_[m.id];
    auto it = tops.find(name);
    if (it != tops.end()) {
      it->second.isVar |= isVar;
      m.globalIsVar[it->second.slot] = m.globalIsVar[it->second.slot] || isVar;
      return it->second.slot;
    }
    int slot = static_cast<int>(m.globalNames.size());
    m.globalNames.push_back(name);
    m.globalIsVar.push_back(isVar);
    TopName t;
    t.slot = slot;
    t.isVar = isVar;
    tops[name] = t;
    return slot;
  }

  static std::string letDesc(const Stmt& s, const Pattern& p) {
    std::string d = (s.isVar ? "var " : "let ") + p.name;
    if (s.type && s.pattern.kind == Pattern::Name) d += ": " + typeToString(*s.type);
    return d;
  }

  void collectPatternNames(const Pattern& p, std::vector<const Pattern*>& out) {
    if (p.kind == Pattern::Name) out.push_back(&p);
    for (auto& e : p.elems) collectPatternNames(e, out);
  }

  // Every name bound at the top level of a module gets a global slot up front,
  // so that function bodies can refer to names declared later.
  void declareTop(Module& m) {
    std::function<void(std::vector<StmtPtr>&)> walk = [&](std::vector<StmtPtr>& stmts) {
      for (auto& s : stmts) {
        switch (s->kind) {
          case StmtKind::Fn: {
            int slot = topSlot(m, s->fn->name, false);
            auto& t = tops_[m.id][s->fn->name];
            if (t.isFn && t.fn != s->fn.get() && !opts_.session)
              diags_.error(s->fn->loc, fmt::format("function '{}' is defined twice", s->fn->name));
            t.isFn = true;
            t.fn = s->fn.get();
            t.decl = s->fn->loc;
            t.desc = fnSignature(*s->fn);
            s->fn->globalSlot = slot;
            s->fn->module = m.id;
            break;
          }
          case StmtKind::Import: {
            // A failed import still binds its name (module -1), so its uses
            // do not add "undefined name" errors to the one at the import.
            int slot = topSlot(m, s->alias, false);
            auto& t = tops_[m.id][s->alias];
            t.isModule = true;
            t.module = s->module;
            t.decl = s->pathLoc;
            t.desc = "module " + s->alias + (s->isFileImport ? " (\"" + s->str + "\")" : "");
            (void)slot;
            break;
          }
          case StmtKind::Let: {
            std::vector<const Pattern*> names;
            collectPatternNames(s->pattern, names);
            for (auto* p : names) {
              topSlot(m, p->name, s->isVar);
              auto& t = tops_[m.id][p->name];
              // A lambda bound once by a let: calls of the name call it (graph fn rules).
              bool lambda = !s->isVar && p == &s->pattern && !s->exprs.empty() && s->exprs[0]->kind == ExprKind::Lambda;
              t.lambda = ++t.lets == 1 && lambda ? s->exprs[0]->fn.get() : nullptr;
              if (!t.decl.valid()) {
                t.decl = p->loc;
                t.desc = letDesc(*s, *p);
              }
            }
            break;
          }
          case StmtKind::With:
            topSlot(m, s->str, false);
            if (!tops_[m.id][s->str].decl.valid()) {
              tops_[m.id][s->str].decl = s->pathLoc;
              tops_[m.id][s->str].desc = "tape " + s->str;
            }
            // `with` does not open a scope: its body's lets are top-level too.
            walk(s->body->stmts);
            break;
          default: break;
        }
      }
    };
    walk(m.stmts);
  }

  void checkModule(Module& m) {
    module_ = &m;
    FnCtx top;
    top.scopes.emplace_back();
    ctx_ = &top;
    // Hoisted: functions and imports are visible in the whole file.
    for (auto& [name, t] : tops_[m.id]) {
      if (t.isFn || t.isModule) {
        Binding b;
        b.kind = t.isModule ? RefKind::Module : RefKind::Global;
        b.index = t.isModule ? t.module : t.slot;
        b.module = m.id;
        b.isFn = t.isFn;
        b.fn = t.fn;
        b.decl = t.decl;
        b.desc = t.desc;
        top.scopes[0].names[name] = b;
      }
    }
    for (auto& s : m.stmts) stmt(*s);
    m.numTopLocals = top.numLocals;
    ctx_ = nullptr;
  }

  // --------------------------------------------------------------- names
  bool atTopScope() const { return ctx_->fn == nullptr && ctx_->scopes.size() == 1; }

  void bindPattern(Pattern& p, bool isVar, const std::string& what = "") {
    if (p.kind != Pattern::Name) {
      for (auto& e : p.elems) bindPattern(e, isVar, what);
      return;
    }
    Binding b;
    b.isVar = isVar;
    b.decl = p.loc;
    b.desc = what.empty() ? (isVar ? "var " : "let ") + p.name : what;
    if (atTopScope()) {
      b.kind = RefKind::Global;
      const TopName& t = tops_[module_->id].at(p.name);
      b.index = t.slot;
      b.lambda = isVar ? nullptr : t.lambda;
      b.module = module_->id;
      p.global = true;
    } else {
      b.kind = RefKind::Local;
      b.index = ctx_->numLocals++;
    }
    p.slot = b.index;
    ctx_->scopes.back().names[p.name] = b;
  }

  // Looks `name` up from `c` outwards; adds captures to closures on the way.
  std::optional<Binding> lookup(FnCtx* c, const std::string& name) {
    for (auto it = c->scopes.rbegin(); it != c->scopes.rend(); ++it) {
      auto f = it->names.find(name);
      if (f != it->names.end()) return f->second;
    }
    if (c->fn && !c->fn->isLambda && !c->fn->name.empty() && c->fn->name == name && c->parent &&
        c->parent->fn != nullptr) {
      Binding b;
      b.kind = RefKind::Self;
      b.fn = c->fn;
      b.decl = c->fn->loc;
      b.desc = fnSignature(*c->fn);
      return b;
    }
    if (!c->parent) {
      // Module top level: inside a function body every top-level name resolves.
      if (c != ctx_) {
        auto& tops = tops_[module_->id];
        auto t = tops.find(name);
        if (t != tops.end()) {
          Binding b;
          b.kind = t->second.isModule ? RefKind::Module : RefKind::Global;
          b.index = t->second.isModule ? t->second.module : t->second.slot;
          b.module = module_->id;
          b.isVar = t->second.isVar;
          b.isFn = t->second.isFn;
          b.fn = t->second.fn;
          b.lambda = t->second.isVar ? nullptr : t->second.lambda;
          b.decl = t->second.decl;
          b.desc = t->second.desc;
          return b;
        }
      }
      return std::nullopt;
    }
    auto outer = lookup(c->parent, name);
    if (!outer) return std::nullopt;
    if (outer->kind != RefKind::Local && outer->kind != RefKind::Capture && outer->kind != RefKind::Self)
      return outer;
    // A local of an enclosing function: captured by value.
    auto ci = c->captureIndex.find(name);
    int idx;
    if (ci != c->captureIndex.end()) {
      idx = ci->second;
    } else {
      idx = static_cast<int>(c->fn->captures.size());
      Ref r;
      r.kind = outer->kind;
      r.index = outer->index;
      c->fn->captures.push_back(r);
      c->fn->captureNames.push_back(name);
      c->captureIndex[name] = idx;
    }
    Binding b = *outer;
    b.kind = RefKind::Capture;
    b.index = idx;
    b.isVar = false;
    return b;
  }

  // Every name a use here could mean: the scopes out to the top level, the module's top-level
  // names and the builtins (for "did you mean").
  std::vector<std::string> visibleNames() const {
    std::vector<std::string> out;
    for (const FnCtx* c = ctx_; c; c = c->parent)
      for (const Scope& s : c->scopes)
        for (auto& [n, b] : s.names) out.push_back(n);
    if (module_)
      for (auto& [n, t] : tops_[static_cast<size_t>(module_->id)]) out.push_back(n);
    for (const std::string& n : builtinNames())
      if (n[0] != '_') out.push_back(n);  // internal builtins are never suggested
    return out;
  }

  // What follows "undefined name 'x'": Python's spellings of TDL's words, or the closest
  // visible name.
  std::string undefinedHint(const std::string& name) {
    static const std::map<std::string, std::string> python = {
        {"True", "true"}, {"False", "false"}, {"None", "none"}, {"null", "none"}, {"nil", "none"}};
    if (auto it = python.find(name); it != python.end()) return fmt::format(" (TDL spells it '{}')", it->second);
    if (name == "np" || name == "numpy" || name == "torch" || name == "tf")
      return " (TDL's tensor builtins need no module: zeros(...), exp(x), x @ w)";
    if (name == "self") return " (TDL has no classes: pass a record, {w: w, b: b}, and read r.w)";
    auto mods = standardModules();
    if (std::find(mods.begin(), mods.end(), name) != mods.end())
      return fmt::format(" (a standard module: `import {}` first)", name);
    return didYouMean(name, visibleNames());
  }

  void useName(Expr& e) {
    auto b = e.builtinOnly ? std::nullopt : lookup(ctx_, e.str);
    if (!b) {
      if (isBuiltinName(e.str)) {
        e.ref.kind = RefKind::Builtin;
        e.declDesc = "builtin " + e.str;
        return;
      }
      if (opts_.session && ctx_->fn && !e.builtinOnly) {
        // A REPL or notebook: inside a fn, a name a later input may define (Python's late
        // binding: `fn f() { return g() }` before `fn g`), looked up when the fn runs.
        e.ref.kind = RefKind::Global;
        e.ref.index = topSlot(*module_, e.str, false);
        e.ref.module = module_->id;
        e.declDesc = "a top-level name not defined yet";
        return;
      }
      diags_.error(e.loc, fmt::format("undefined name '{}'{}", e.str, undefinedHint(e.str)));
      return;
    }
    e.ref.kind = b->kind;
    e.ref.index = b->index;
    e.ref.module = b->module;
    e.declLoc = b->decl;
    e.declDesc = b->desc;
    if (b->kind == RefKind::Module && b->index >= 0)
      diags_.error(e.loc, fmt::format("module '{}' can only be used as {}.NAME", e.str, e.str));
    if (b->kind == RefKind::Global && b->isVar && ctx_->graphRoot) {
      diags_.error(e.loc, fmt::format("graph fn '{}' cannot use the top-level var '{}' (pass it as an argument)",
                                      ctx_->graphRoot->name, e.str));
    }
    if (b->kind == RefKind::Global && b->isVar && curTopFn_) facts_[curTopFn_].varUses.push_back({e.str, e.loc});
  }

  // ---------------------------------------------------------- statements
  void block(Stmt& b, bool newScope = true) {
    if (newScope) ctx_->scopes.emplace_back();
    for (auto& s : b.stmts) stmt(*s);
    if (newScope) ctx_->scopes.pop_back();
  }

  void stmt(Stmt& s) {
    switch (s.kind) {
      case StmtKind::Let:
        expr(*s.exprs[0]);
        bindPattern(s.pattern, s.isVar,
                    s.pattern.kind == Pattern::Name ? letDesc(s, s.pattern) : std::string());
        break;
      case StmtKind::Assign: assign(s); break;
      case StmtKind::ExprStmt:
        expr(*s.exprs[0]);
        droppedInPlace(*s.exprs[0]);
        break;
      case StmtKind::If:
        expr(*s.exprs[0]);
        block(*s.body);
        if (s.orelse) {
          if (s.orelse->kind == StmtKind::Block) block(*s.orelse);
          else stmt(*s.orelse);
        }
        break;
      case StmtKind::While:
        expr(*s.exprs[0]);
        ctx_->loopDepth++;
        block(*s.body);
        ctx_->loopDepth--;
        break;
      case StmtKind::For:
        expr(*s.exprs[0]);
        ctx_->scopes.emplace_back();
        bindPattern(s.pattern, true, "loop variable");
        ctx_->loopDepth++;
        block(*s.body);
        ctx_->loopDepth--;
        ctx_->scopes.pop_back();
        break;
      case StmtKind::Return:
        if (!ctx_->fn) diags_.error(s.loc, "'return' outside a function");
        if (!s.exprs.empty()) expr(*s.exprs[0]);
        break;
      case StmtKind::Break:
      case StmtKind::Continue:
        if (ctx_->loopDepth == 0)
          diags_.error(s.loc, fmt::format("'{}' outside a loop", s.kind == StmtKind::Break ? "break" : "continue"));
        break;
      case StmtKind::With: {
        expr(*s.exprs[0]);
        Pattern p;
        p.kind = Pattern::Name;
        p.name = s.str;
        p.loc = s.pathLoc;
        bindPattern(p, false, "tape " + s.str);
        s.slot = p.slot;
        s.global = p.global;
        block(*s.body, /*newScope=*/false);
        break;
      }
      case StmtKind::Fn: fnStmt(s); break;
      case StmtKind::Import:
        if (ctx_->fn || ctx_->scopes.size() > 1) diags_.error(s.loc, "'import' is only allowed at the top level");
        break;
      case StmtKind::TypeAlias:  // resolved before (resolveAliases)
        if (ctx_->fn || ctx_->scopes.size() > 1) diags_.error(s.loc, "'type' is only allowed at the top level");
        break;
      case StmtKind::Block: block(s); break;
    }
  }

  void assign(Stmt& s) {
    expr(*s.exprs[1]);
    Expr* t = s.exprs[0].get();
    while (t->kind == ExprKind::Index || t->kind == ExprKind::Field) {
      if (t->kind == ExprKind::Index) {
        for (auto& sub : t->subs)
          for (auto* p : {&sub.index, &sub.lo, &sub.hi, &sub.step})
            if (*p) expr(**p);
      }
      t = t->kids[0].get();
    }
    if (t->kind != ExprKind::Name) return;  // reported by AstBuilder
    auto b = lookup(ctx_, t->str);
    if (!b) {
      diags_.error(t->loc, fmt::format("undefined name '{}'{}", t->str, undefinedHint(t->str)));
      return;
    }
    useName(*t);
    if (b->kind == RefKind::Capture) {
      diags_.error(t->loc, fmt::format("cannot assign to '{}': it is captured from an enclosing function", t->str));
    } else if (!b->isVar) {
      diags_.error(t->loc, fmt::format("cannot assign to '{}' (declared with let, or not a variable)", t->str));
    }
  }

  void fnStmt(Stmt& s) {
    FnDecl& fn = *s.fn;
    if (ctx_->fn == nullptr && ctx_->scopes.size() == 1) {
      // Top-level fn: already bound (hoisted).
      function(fn);
      return;
    }
    if (fn.isGraph) diags_.error(fn.loc, "a graph fn must be declared at the top level");
    // A nested fn is a local bound where it stands.
    Pattern p;
    p.kind = Pattern::Name;
    p.name = fn.name;
    bindPattern(p, false, fnSignature(fn));
    fn.globalSlot = p.slot;  // local slot, for the compiler
    function(fn);
  }

  void function(FnDecl& fn) {
    const Param* defaulted = nullptr;
    for (auto& p : fn.params) {
      if (p.deflt) expr(*p.deflt);  // defaults are evaluated in the enclosing scope
      if (p.deflt) defaulted = &p;
      else if (defaulted)  // Python's rule: a call could never leave it out
        diags_.error(p.loc, fmt::format("parameter '{}' without a default follows '{}', which has one", p.name,
                                        defaulted->name));
    }
    FnCtx c;
    c.fn = &fn;
    c.parent = ctx_;
    c.graphRoot = fn.isGraph ? &fn : ctx_->graphRoot;
    c.scopes.emplace_back();
    FnCtx* saved = ctx_;
    FnDecl* savedTop = curTopFn_;
    // Facts are kept per top-level fn, and per lambda of the top-level code (which a let may
    // bind and a graph fn call); a lambda inside a fn counts as part of that fn.
    if (saved->fn == nullptr && (fn.isLambda || saved->scopes.size() == 1)) curTopFn_ = &fn;
    ctx_ = &c;
    for (auto& p : fn.params) {
      Binding b;
      b.kind = RefKind::Local;
      b.index = c.numLocals++;
      b.isVar = true;
      b.decl = p.loc;
      b.desc = "parameter " + p.name + (p.type ? ": " + typeToString(*p.type) : "");
      c.scopes[0].names[p.name] = b;
    }
    block(*fn.body, /*newScope=*/false);
    fn.numLocals = c.numLocals;
    ctx_ = saved;
    curTopFn_ = savedTop;
  }

  // --------------------------------------------------------- expressions
  // Leaves of a candidate tensor literal: numeric/bool literals, maybe negated.
  static bool isLiteralLeaf(const Expr& e) {
    if (e.kind == ExprKind::Int || e.kind == ExprKind::Float || e.kind == ExprKind::Bool) return true;
    return e.kind == ExprKind::Unary && e.unop == UnOp::Neg &&
           (e.kids[0]->kind == ExprKind::Int || e.kids[0]->kind == ExprKind::Float);
  }

  // Returns true when `e` is a nested list of literal leaves; fills its shape
  // or reports a ragged literal.
  bool literalShape(const Expr& e, std::vector<int64_t>& shape, bool& ragged) {
    if (isLiteralLeaf(e)) {
      shape.clear();
      return true;
    }
    if (e.kind != ExprKind::List || e.kids.empty()) return false;
    std::vector<int64_t> first;
    for (size_t i = 0; i < e.kids.size(); ++i) {
      std::vector<int64_t> sub;
      if (!literalShape(*e.kids[i], sub, ragged)) return false;
      if (i == 0) first = sub;
      else if (sub != first) ragged = true;
    }
    shape = {static_cast<int64_t>(e.kids.size())};
    shape.insert(shape.end(), first.begin(), first.end());
    return true;
  }

  // Marks a literal-only rectangular list as a tensor literal; false when it is a bad one
  // (reported here, once: its inner lists are not looked at again).
  bool markTensorLiterals(Expr& e) {
    std::vector<int64_t> shape;
    bool ragged = false;
    if (literalShape(e, shape, ragged)) {
      if (ragged) {
        diags_.error(e.loc, "ragged tensor literal: rows have different lengths");
        return false;
      }
      if (shape.size() > static_cast<size_t>(rt::kMaxRank)) {
        diags_.error(e.loc, fmt::format("a tensor has at most {} axes, got {}", rt::kMaxRank, shape.size()));
        return false;
      }
      e.isTensorLit = true;
    }
    return true;
  }

  void expr(Expr& e) {
    switch (e.kind) {
      case ExprKind::Name: useName(e); return;
      case ExprKind::Lambda: function(*e.fn); return;
      case ExprKind::List:
        if (!markTensorLiterals(e) || e.isTensorLit) return;
        break;
      case ExprKind::Field:
        if (e.kids[0]->kind == ExprKind::Name) {
          auto b = lookup(ctx_, e.kids[0]->str);
          if (b && b->kind == RefKind::Module) {
            e.kids[0]->declLoc = b->decl;
            e.kids[0]->declDesc = b->desc;
            moduleMember(e, b->index);
            return;
          }
        }
        break;
      case ExprKind::Call:
        noteCall(e);
        if (helpOfModule(e)) {  // help(nn): the module's name (vm/Compiler.cpp)
          expr(*e.kids[0]);
          return;
        }
        for (auto& k : e.kids)
          if (k) expr(*k);
        checkListMutation(e);
        checkCallArguments(e);
        return;
      case ExprKind::FStr:
        for (auto& p : e.parts)
          if (p.expr) expr(*p.expr);
        return;
      case ExprKind::Index:
        expr(*e.kids[0]);
        for (auto& sub : e.subs)
          for (auto* p : {&sub.index, &sub.lo, &sub.hi, &sub.step})
            if (*p) expr(**p);
        return;
      default: break;
    }
    for (auto& k : e.kids)
      if (k) expr(*k);
    if (e.kind == ExprKind::Binary && e.binop == BinOp::And && e.str == kChainedComparison && e.kids.size() == 2 &&
        e.kids[1]->kind == ExprKind::Binary && !e.kids[1]->kids.empty())
      chainMiddle(*e.kids[1]->kids[0]);
  }

  // A chained comparison's middle operand runs once per comparison (frontend/AstBuilder.cpp):
  // a call in it must be a builtin's (by what the name resolved to, not by its spelling: a
  // user fn `abs` would run twice).
  void chainMiddle(const Expr& e) {
    static const std::set<std::string> pure = {"len",  "abs",     "min",     "max",  "sum",  "mean",  "prod", "float",
                                               "int",  "round",   "floor",   "ceil", "sqrt", "exp",   "log",  "norm",
                                               "any",  "all",     "cast",    "str",  "sign", "maximum", "minimum",
                                               "clip", "shape",   "numel",   "std",  "var",  "tanh",  "sigmoid"};
    if (e.kind == ExprKind::Call && !e.kids.empty() &&
        !(e.kids[0]->kind == ExprKind::Name && e.kids[0]->ref.kind == RefKind::Builtin && pure.count(e.kids[0]->str))) {
      diags_.error(e.loc, "the middle operand of a chained comparison calls a function: bind it to a name first "
                          "(let m = ...; then a < m < b)");
      return;
    }
    for (const auto& k : e.kids)
      if (k) chainMiddle(*k);
    if (e.kind == ExprKind::Index)
      for (const auto& sub : e.subs)
        for (const ExprPtr* x : {&sub.index, &sub.lo, &sub.hi, &sub.step})
          if (*x) chainMiddle(**x);
  }

  void moduleMember(Expr& e, int moduleId) {
    if (moduleId < 0) return;  // the import failed and was reported
    Module& m = *modules_.at(moduleId);
    auto& tops = tops_[moduleId];
    auto it = tops.find(e.str);
    e.kids[0]->ref.kind = RefKind::Module;
    e.kids[0]->ref.index = moduleId;
    if (it == tops.end() || it->second.isModule) {
      std::vector<std::string> members;
      for (auto& [name, top] : tops)
        if (!top.isModule) members.push_back(name);
      // Python's math.sqrt / math.floor: in TDL those are builtins.
      std::string hint = isBuiltinName(e.str) && e.str[0] != '_'
                             ? fmt::format(" ('{}' is a builtin: write {}(...))", e.str, e.str)
                             : didYouMean(e.str, members);
      diags_.error(e.loc, fmt::format("module '{}' has no member '{}'{}", e.kids[0]->str, e.str, hint));
      return;
    }
    e.ref.kind = RefKind::Global;
    e.ref.index = it->second.slot;
    e.ref.module = moduleId;
    e.declLoc = it->second.decl;
    e.declDesc = it->second.desc;
    if (it->second.isVar && ctx_->graphRoot) {
      diags_.error(e.loc, fmt::format("graph fn '{}' cannot use the top-level var '{}.{}'", ctx_->graphRoot->name,
                                      e.kids[0]->str, e.str));
    }
    if (it->second.isFn && curTopFn_) facts_[curTopFn_].calls.push_back({it->second.fn, e.loc});
    (void)m;
  }

  // Records direct calls of top-level fns for the graph-fn recursion check.
  // The arguments of a call to a builtin or a top-level fn (of this module or an imported
  // one) against its parameters, with the VM's messages (vm/Builtins.cpp bindBuiltinArgs,
  // Interpreter::bindArguments): keywords that name no parameter (with the closest one),
  // and for fns also too many arguments, a parameter given twice, a missing one.
  void checkCallArguments(const Expr& call) {
    const Expr& callee = *call.kids[0];
    std::vector<std::string> params;
    std::vector<bool> optional;
    std::string what;
    bool full = true;  // all of the binding rules (else only the keyword names)
    if (callee.kind == ExprKind::Name && callee.ref.kind == RefKind::Builtin) {
      const BuiltinSignature* sig = gBuiltinSignatures ? gBuiltinSignatures(callee.str) : nullptr;
      if (!sig) return;
      params = sig->params;
      what = callee.str + "()";
      full = false;
    } else {
      const FnDecl* fn = nullptr;
      if (callee.kind == ExprKind::Name && callee.ref.kind == RefKind::Global) {
        auto b = lookup(ctx_, callee.str);
        if (b && b->kind == RefKind::Global && b->isFn) fn = b->fn;
      } else if (callee.kind == ExprKind::Field && callee.kids[0]->ref.kind == RefKind::Module &&
                 callee.ref.kind == RefKind::Global) {
        auto& tops = tops_[callee.kids[0]->ref.index];
        auto it = tops.find(callee.str);
        if (it != tops.end() && it->second.isFn) fn = it->second.fn;
      }
      if (!fn) return;
      for (const Param& p : fn->params) {
        params.push_back(p.name);
        optional.push_back(p.deflt != nullptr);
      }
      what = fmt::format("fn '{}'", fn->name);
    }
    size_t n = call.kids.size() - 1, npos = 0;
    std::vector<bool> given(params.size(), false);
    for (size_t i = 0; i < n; ++i) {
      const std::string kw = i < call.names.size() ? call.names[i] : std::string();
      if (kw.empty()) {
        if (npos < given.size()) given[npos] = true;
        ++npos;
        continue;
      }
      auto it = std::find(params.begin(), params.end(), kw);
      if (it == params.end() && !full)
        if (const char* alias = builtinKeywordAlias(callee.str, kw)) it = std::find(params.begin(), params.end(), alias);
      if (it == params.end()) {
        diags_.error(call.loc, fmt::format("{} has no parameter named '{}'{}", what, kw, didYouMean(kw, params)));
        return;
      }
      size_t j = static_cast<size_t>(it - params.begin());
      if (full && given[j]) {
        diags_.error(call.loc, fmt::format("{} got two values for parameter '{}'", what, kw));
        return;
      }
      given[j] = true;
    }
    if (!full) return;
    if (npos > params.size()) {
      diags_.error(call.loc, tooManyArgumentsText(what, params.size(), static_cast<size_t>(npos)));
      return;
    }
    for (size_t j = 0; j < params.size(); ++j)
      if (!given[j] && !optional[j]) {
        diags_.error(call.loc, fmt::format("{} is missing its argument '{}'", what, params[j]));
        return;
      }
  }

  // Whether call is help(M) of an imported module M (resolved here: a module is no value).
  bool helpOfModule(Expr& call) {
    const Expr& callee = *call.kids[0];
    if (callee.kind != ExprKind::Name || callee.str != "help" || lookup(ctx_, "help") || call.kids.size() != 2 ||
        (!call.names.empty() && !call.names[0].empty()))
      return false;
    Expr& arg = *call.kids[1];
    if (arg.kind != ExprKind::Name) return false;
    auto b = lookup(ctx_, arg.str);
    if (!b || b->kind != RefKind::Module) return false;
    arg.ref.kind = RefKind::Module;
    arg.ref.index = b->index;
    arg.declLoc = b->decl;
    arg.declDesc = b->desc;
    return true;
  }

  // xs.append(v) and the other list mutators update the variable they are called on: it
  // must be a var of this fn (as for an assignment).
  // `x.sort()` / `x.reverse()` as a statement: NumPy's and Python's sort in place, TDL's
  // methods of a value make a new one, which the statement would drop.
  void droppedInPlace(const Expr& e) {
    if (e.kind != ExprKind::Call || e.kids[0]->kind != ExprKind::Field) return;
    const Expr& callee = *e.kids[0];
    if (callee.str != "sort" && callee.str != "reverse") return;
    const Expr* t = callee.kids[0].get();
    const Expr* root = t;
    while (root->kind == ExprKind::Index || root->kind == ExprKind::Field) root = root->kids[0].get();
    if (root->kind != ExprKind::Name || root->ref.kind == RefKind::Module) return;
    if (t->kind != ExprKind::Name) {  // r.v.sort(), xs[0].sort()
      diags_.error(e.loc, fmt::format("{0}() as a statement does not change the value it is called on (a tensor or "
                                      "list is a value, and this statement drops the {1} copy): assign it back, "
                                      "as x = {2}",
                                      callee.str, callee.str == "sort" ? "sorted" : "reversed",
                                      callee.str == "sort" ? "sort(x) (sorted(x) for a list)" : "x[::-1]"));
      return;
    }
    diags_.error(e.loc, callee.str == "sort"
                            ? fmt::format("{0}.sort() does not change {0} (a tensor or list is a value, and this statement "
                                          "drops the sorted copy): write {0} = sort({0}) for a tensor, {0} = sorted({0}) "
                                          "for a list",
                                          t->str)
                            : fmt::format("{0}.reverse() does not change {0} (a tensor or list is a value): write "
                                          "{0} = {0}[::-1]",
                                          t->str));
  }

  void checkListMutation(Expr& call) {
    const Expr& callee = *call.kids[0];
    if (callee.kind != ExprKind::Field || !isListMutator(callee.str)) return;
    const Expr* t = callee.kids[0].get();
    while (t->kind == ExprKind::Index || t->kind == ExprKind::Field) t = t->kids[0].get();
    if (t->kind != ExprKind::Name || t->ref.kind == RefKind::Module) return;
    auto b = lookup(ctx_, t->str);
    if (!b) return;  // reported
    if (b->kind == RefKind::Capture && ctx_->fn && ctx_->fn->isLambda && !ctx_->fn->name.empty())
      diags_.error(t->loc, fmt::format("{}() cannot change '{}' inside a {} (it reads a copy of the enclosing "
                                       "code's values): use {}",
                                       callee.str, t->str,
                                       comprehensionWords(ctx_->fn->name) ? comprehensionWords(ctx_->fn->name)
                                       : ctx_->fn->name == kDictLiteral   ? "dict literal"
                                                                          : "conditional expression",
                                       comprehensionWords(ctx_->fn->name) ? "a for statement"
                                       : ctx_->fn->name == kDictLiteral   ? "a statement before it"
                                                                          : "an if statement"));
    else if (b->kind == RefKind::Capture)
      diags_.error(t->loc, fmt::format("{}() cannot change '{}': it is captured from an enclosing function",
                                       callee.str, t->str));
    else if (!b->isVar && !b->isFn)
      diags_.error(t->loc, fmt::format("{}() changes '{}', which is declared with let: declare it with var",
                                       callee.str, t->str));
  }

  void noteCall(Expr& call) {
    const Expr& callee = *call.kids[0];
    if (callee.kind != ExprKind::Name || !curTopFn_) return;
    auto b = lookup(ctx_, callee.str);
    if (b && b->kind == RefKind::Global && b->isFn && b->fn) facts_[curTopFn_].calls.push_back({b->fn, call.loc});
    else if (b && b->kind == RefKind::Global && b->lambda) facts_[curTopFn_].calls.push_back({b->lambda, call.loc});
  }

  // ------------------------------------------------------- graph fn rules
  void checkGraphFns() {
    for (auto& [fn, facts] : facts_) {
      if (!fn->isGraph) continue;
      // Reachable fns through direct calls; a path back to `fn` is recursion.
      std::set<FnDecl*> seen{fn};
      std::vector<FnDecl*> work{fn};
      bool reported = false;
      while (!work.empty()) {
        FnDecl* f = work.back();
        work.pop_back();
        auto it = facts_.find(f);
        if (it == facts_.end()) continue;
        if (f != fn) {
          for (auto& [name, loc] : it->second.varUses)
            diags_.error(loc, fmt::format("{} uses the top-level var '{}' and is called from graph fn '{}' "
                                          "(pass it as an argument)",
                                          f->isLambda ? std::string("a lambda") : "'" + f->name + "'", name, fn->name));
        }
        for (auto& [callee, loc] : it->second.calls) {
          if (callee == fn && !opts_.eager && !reported) {
            diags_.error(loc, fmt::format("recursion is not supported in graph fn '{}'", fn->name));
            reported = true;
          }
          if (seen.insert(callee).second) work.push_back(callee);
        }
      }
    }
  }

  std::vector<std::unique_ptr<Module>>& modules_;
  DiagEngine& diags_;
  SemaOptions opts_;
  std::vector<std::map<std::string, TopName>> tops_;
  Module* module_ = nullptr;
  FnCtx* ctx_ = nullptr;
  FnDecl* curTopFn_ = nullptr;
  std::map<FnDecl*, FnFacts> facts_;

  // ------------------------------------------------------------ type aliases
  // `type NAME = T` at a module's top level: every annotation naming NAME (or m.NAME, in a
  // module importing it as m) becomes a copy of T, before anything reads annotations. A
  // module's imports are resolved first; an alias may use the aliases above it.
  std::vector<std::map<std::string, const TypeExpr*>> aliases_;
  std::vector<int> aliasState_;  // 0 not yet, 1 resolving, 2 done

  static TypePtr copyType(const TypeExpr& t) {
    auto c = std::make_unique<TypeExpr>();
    c->kind = t.kind, c->loc = t.loc, c->dtype = t.dtype, c->anyShape = t.anyShape, c->dims = t.dims;
    c->names = t.names, c->qualifier = t.qualifier;
    for (auto& e : t.elems) c->elems.push_back(copyType(*e));
    return c;
  }

  void resolveType(TypeExpr& t, Module& m) {
    if (t.kind == TypeExpr::Alias) {
      const std::map<std::string, const TypeExpr*>* table = &aliases_[static_cast<size_t>(m.id)];
      std::string shown = t.qualifier.empty() ? t.dtype : t.qualifier + "." + t.dtype;
      if (!t.qualifier.empty()) {
        table = nullptr;
        for (auto& s : m.stmts)
          if (s->kind == StmtKind::Import && s->alias == t.qualifier && s->module >= 0)
            table = &aliases_[static_cast<size_t>(s->module)];
        if (!table) {
          diags_.error(t.loc, fmt::format("unknown type '{}': no imported module named '{}'", shown, t.qualifier));
          t.kind = TypeExpr::Tensor, t.dtype = "f32";
          return;
        }
      }
      auto it = table->find(t.dtype);
      if (it == table->end()) {
        diags_.error(t.loc, fmt::format("unknown type '{}' (expected bool, i32, i64, f32, f64 or a type alias)", shown));
        t.kind = TypeExpr::Tensor, t.dtype = "f32";
        return;
      }
      Loc at = t.loc;
      t = std::move(*copyType(*it->second));
      t.loc = at;
      return;
    }
    for (auto& e : t.elems) resolveType(*e, m);
  }

  void resolveFn(FnDecl& fn, Module& m) {
    for (auto& p : fn.params)
      if (p.type) resolveType(*p.type, m);
    if (fn.ret) resolveType(*fn.ret, m);
    if (fn.body) resolveStmt(*fn.body, m);
  }

  void resolveExpr(Expr& e, Module& m) {
    if (e.fn) resolveFn(*e.fn, m);
    for (auto& k : e.kids)
      if (k) resolveExpr(*k, m);
    for (auto& s : e.subs) {
      for (auto* p : {&s.index, &s.lo, &s.hi, &s.step})
        if (*p) resolveExpr(**p, m);
    }
    for (auto& part : e.parts)
      if (part.expr) resolveExpr(*part.expr, m);
  }

  void resolveStmt(Stmt& s, Module& m) {
    if (s.kind == StmtKind::TypeAlias) return;  // its own type: resolved where it is declared
    if (s.type) resolveType(*s.type, m);
    if (s.fn) resolveFn(*s.fn, m);
    for (auto& e : s.exprs)
      if (e) resolveExpr(*e, m);
    for (auto& c : s.stmts)
      if (c) resolveStmt(*c, m);
    if (s.body) resolveStmt(*s.body, m);
    if (s.orelse) resolveStmt(*s.orelse, m);
  }

  void resolveAliases(Module& m) {
    size_t id = static_cast<size_t>(m.id);
    if (aliasState_[id] != 0) return;  // done, or an import cycle (reported by the loader)
    aliasState_[id] = 1;
    for (int dep : m.importedModules)
      if (dep >= 0 && static_cast<size_t>(dep) < modules_.size()) resolveAliases(*modules_[static_cast<size_t>(dep)]);
    auto& table = aliases_[id];
    for (auto& s : m.stmts) {
      if (s->kind != StmtKind::TypeAlias) continue;
      resolveType(*s->type, m);  // the aliases above it (and imported ones) only
      if (isDTypeName(s->str) || (table.count(s->str) && !opts_.session))
        diags_.error(s->pathLoc, fmt::format("type '{}' is already defined", s->str));
      else
        table[s->str] = s->type.get();
    }
    for (auto& s : m.stmts) resolveStmt(*s, m);
    aliasState_[id] = 2;
  }

  static bool isDTypeName(const std::string& s) {
    return s == "bool" || s == "i32" || s == "i64" || s == "f32" || s == "f64";
  }
};

}  // namespace

void setBuiltinSignatures(BuiltinSignatureFn fn) { gBuiltinSignatures = fn; }

bool analyze(std::vector<std::unique_ptr<Module>>& modules, DiagEngine& diags, SemaOptions opts) {
  int before = diags.errorCount();
  Sema s(modules, diags, opts);
  s.run();
  return diags.errorCount() == before;
}

}  // namespace tdl
