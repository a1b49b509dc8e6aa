#include "vm/Compiler.h"

#include <fmt/format.h>

#include <algorithm>

#include "frontend/Diagnostics.h"
#include "vm/Annotations.h"
#include "vm/Builtins.h"
#include "vm/TensorLiteral.h"

namespace tdl::vm {

namespace {

// Registers are 16-bit operands.
constexpr int kMaxRegisters = 65535;
constexpr uint16_t kNoString = 0xFFFF;

}  // namespace

Op binOpcode(BinOp op) {
  switch (op) {
    case BinOp::Add: return Op::Add;
    case BinOp::Sub: return Op::Sub;
    case BinOp::Mul: return Op::Mul;
    case BinOp::Div: return Op::Div;
    case BinOp::FloorDiv: return Op::FloorDiv;
    case BinOp::Mod: return Op::Mod;
    case BinOp::MatMul: return Op::MatMul;
    case BinOp::Pow: return Op::Pow;
    case BinOp::Eq: return Op::Eq;
    case BinOp::Ne: return Op::Ne;
    case BinOp::Lt: return Op::Lt;
    case BinOp::Le: return Op::Le;
    case BinOp::Gt: return Op::Gt;
    case BinOp::Ge: return Op::Ge;
    case BinOp::BitAnd: return Op::BitAnd;
    case BinOp::BitOr: return Op::BitOr;
    case BinOp::In:
    case BinOp::NotIn: return Op::In;
    case BinOp::And:
    case BinOp::Or: break;
  }
  throw InternalError("binOpcode: short-circuit operators have no opcode");
}

namespace {

Op assignOpcode(char op) { return binOpcode(compoundBinOp(op)); }

// Compiles one function (or a module's top-level code) into its proto.
struct FnCompiler {
  FnCompiler(Program& prog, FnProto& proto, int numLocals) : prog_(prog), p_(proto), top_(numLocals) {
    maxTop_ = top_;
    localsEnd_ = numLocals;
  }

  // ------------------------------------------------------------ emitting
  size_t emit(Op op, int a, int b, int c, const Loc& loc) {
    Instr in{op, 0, static_cast<uint16_t>(a), static_cast<uint16_t>(b), static_cast<uint16_t>(c)};
    p_.chunk.code.push_back(in);
    p_.chunk.locs.push_back(loc);
    return p_.chunk.code.size() - 1;
  }
  size_t here() const { return p_.chunk.code.size(); }
  size_t emitJump(Op op, int a, const Loc& loc) { return emit(op, a, 0, 0, loc); }
  void patchJump(size_t at, size_t target) {
    long off = static_cast<long>(target) - static_cast<long>(at + 1);
    if (off < INT16_MIN || off > INT16_MAX)
      throw ScriptError(p_.chunk.locs[at], "this function is too long to compile (a jump exceeds 32767 instructions)");
    p_.chunk.code[at].b = static_cast<uint16_t>(static_cast<int16_t>(off));
  }
  void jumpTo(size_t target, const Loc& loc) { patchJump(emit(Op::Jump, 0, 0, 0, loc), target); }

  int constant(Value v) {
    p_.chunk.values.push_back(std::move(v));
    return static_cast<int>(p_.chunk.values.size() - 1);
  }
  int stringConst(const std::string& s) {
    auto& t = p_.chunk.strings;
    for (size_t i = 0; i < t.size(); ++i)
      if (t[i] == s) return static_cast<int>(i);
    t.push_back(s);
    return static_cast<int>(t.size() - 1);
  }
  int namesConst(std::vector<std::string> names) {
    p_.chunk.names.push_back(std::make_shared<const std::vector<std::string>>(std::move(names)));
    return static_cast<int>(p_.chunk.names.size());  // +1: 0 means none
  }

  // ------------------------------------------------------------ registers
  int temp(const Loc& loc) {
    if (top_ >= kMaxRegisters) throw ScriptError(loc, "expression too complex (out of registers)");
    int r = top_++;
    if (top_ > maxTop_) maxTop_ = top_;
    if (top_ > stmtMax_) stmtMax_ = top_;
    return r;
  }
  // `n` consecutive temporaries; returns the first.
  int temps(int n, const Loc& loc) {
    int first = top_;
    for (int i = 0; i < n; ++i) temp(loc);
    return first;
  }
  void finish() {
    p_.numRegs = maxTop_ + 1;  // +1: native calls from the last register
  }

  // ---------------------------------------------------------- statements
  void block(const Stmt& b) {
    for (auto& s : b.stmts) stmt(*s);
  }

  void stmt(const Stmt& s) {
    int mark = top_;
    int savedMax = stmtMax_;
    stmtMax_ = mark;
    ++depth_;
    stmtInner(s);
    --depth_;
    // Temporaries may hold references to variables' values: clear them, so
    // that an unshared value can be updated in place later.
    if (stmtMax_ > mark) emit(Op::ClearTemps, mark, stmtMax_ - mark, 0, s.loc);
    top_ = mark;
    stmtMax_ = std::max(savedMax, stmtMax_);
  }

  void stmtInner(const Stmt& s) {
    switch (s.kind) {
      case StmtKind::Let: letStmt(s); break;
      case StmtKind::Assign: assignStmt(s); break;
      case StmtKind::ExprStmt: {
        int r = exprAny(*s.exprs[0]);
        if (replPrint_ && p_.isTopLevel && depth_ == 1) emit(Op::Print, r, 0, 0, s.exprs[0]->loc);
        break;
      }
      case StmtKind::If: ifStmt(s); break;
      case StmtKind::While: whileStmt(s); break;
      case StmtKind::For: forStmt(s); break;
      case StmtKind::Return: returnStmt(s); break;
      case StmtKind::Break:
      case StmtKind::Continue: breakStmt(s); break;
      case StmtKind::With: withStmt(s); break;
      case StmtKind::Fn:
        if (p_.isTopLevel && isHoisted(s)) {
          // Created at module start without its defaults; they are evaluated
          // here, where the fn stands (they may use lets above it).
          if (hasDefaults(*s.fn)) closure(*s.fn, s.fn->globalSlot, s.loc, /*global=*/true);
          break;
        }
        closure(*s.fn, s.fn->globalSlot, s.loc);
        break;
      case StmtKind::Import: break;  // imported modules run before the importer
      case StmtKind::TypeAlias: break;  // resolved by Sema
      case StmtKind::Block: block(s); break;
    }
  }

  // Binds the value in register `r` to a pattern (let, for, with).
  void bindPattern(const Pattern& p, int r, const Loc& loc) {
    if (p.kind == Pattern::Name) {
      if (p.global) emit(Op::SetGlobal, r, p.slot, 0, loc);
      else if (p.slot != r) emit(Op::Move, p.slot, r, 0, loc);
      return;
    }
    int n = static_cast<int>(p.elems.size());
    int first = temps(n, loc);
    emit(Op::Unpack, first, r, n, p.loc);
    for (int i = 0; i < n; ++i) bindPattern(p.elems[i], first + i, p.elems[i].loc);
  }

  void letStmt(const Stmt& s) {
    const Expr& init = *s.exprs[0];
    if (s.pattern.kind == Pattern::Name && !s.pattern.global && !s.type) {
      expr(init, s.pattern.slot);
      return;
    }
    int r = exprAny(init);
    if (s.type) {
      if (r < localsEnd_) {  // do not convert a variable's register in place
        int t = temp(s.loc);
        emit(Op::Move, t, r, 0, s.loc);
        r = t;
      }
      p_.chunk.types.push_back(s.type.get());
      emit(Op::CheckType, r, static_cast<int>(p_.chunk.types.size() - 1), 0, s.exprs[0]->loc);
    }
    bindPattern(s.pattern, r, s.pattern.loc);
  }

  void assignStmt(const Stmt& s) {
    const Expr& target = *s.exprs[0];
    const Expr& value = *s.exprs[1];
    if (target.kind == ExprKind::Name) {
      const Ref& ref = target.ref;
      if (ref.kind == RefKind::Local) {
        if (s.assignOp == '=') {
          expr(value, ref.index);
        } else {
          int v = exprAny(value);
          emit(assignOpcode(s.assignOp), ref.index, ref.index, v, s.loc);
        }
      } else if (ref.kind == RefKind::Global) {
        int v;
        if (s.assignOp == '=') {
          v = exprAny(value);
        } else {
          int old = temp(s.loc);
          emit(Op::GetGlobal, old, ref.index, ref.module, target.loc);
          int rhs = exprAny(value);
          emit(assignOpcode(s.assignOp), old, old, rhs, s.loc);
          v = old;
        }
        emit(Op::SetGlobal, v, ref.index, 0, s.loc);
      } else {
        throw ScriptError(target.loc, fmt::format("cannot assign to '{}'", target.str));
      }
      return;
    }
    // An element / slice / field update along a path from a variable.
    std::vector<const Expr*> chain;
    const Expr* t = &target;
    while (t->kind == ExprKind::Index || t->kind == ExprKind::Field) {
      chain.push_back(t);
      t = t->kids[0].get();
    }
    if (t->kind != ExprKind::Name || (t->ref.kind != RefKind::Local && t->ref.kind != RefKind::Global))
      throw ScriptError(target.loc, "cannot assign to this expression");
    if (s.assignOp == '=') {
      int v = exprAny(value);  // Python's order: the value, then the target's subscripts
      storePath(target, v, s.loc);
      return;
    }
    // x[i] op= v: the target's subscripts are evaluated once, then it is read, then v
    // (Python's order); the read and the store use the same subscript registers.
    std::vector<int> bases;
    int path = pathOf(target, &bases);
    const PathDesc& pd = p_.chunk.paths[static_cast<size_t>(path)];
    // The read, step by step from the variable: `cur` holds the current part (-1: the
    // variable itself); an index step indexes in its container register, a field step reads
    // into `field`. Registers left holding a container are cleared after, so that the store
    // finds the tensor unshared (in place).
    int cur = -1, field = -1;
    std::vector<int> used;
    auto load = [&](int dest) {
      if (cur >= 0) emit(Op::Move, dest, cur, 0, s.loc);
      else if (t->ref.kind == RefKind::Global) emit(Op::GetGlobal, dest, t->ref.index, t->ref.module, t->loc);
      else emit(Op::Move, dest, t->ref.index, 0, t->loc);
    };
    for (size_t k = 0; k < pd.steps.size(); ++k) {
      const PathStep& step = pd.steps[k];
      const Expr& e = *chain[chain.size() - 1 - k];
      if (!step.isField) {
        load(bases[k]);
        p_.chunk.indexes.push_back(step.subs);
        emit(Op::Index, bases[k], bases[k], static_cast<int>(p_.chunk.indexes.size() - 1), e.loc);
        cur = bases[k];
      } else {
        if (field < 0) field = temp(e.loc);
        int src = cur >= 0 ? cur : t->ref.kind == RefKind::Local ? t->ref.index : -1;
        if (src < 0) {
          load(field);
          src = field;
        }
        emit(Op::GetField, field, src, stringConst(step.name), e.loc);
        cur = field;
      }
      used.push_back(cur);
    }
    for (int r : used)
      if (r != cur) emit(Op::LoadNone, r, 1, 0, s.loc);
    int rhs = exprAny(value);
    int v = temp(s.loc);
    emit(assignOpcode(s.assignOp), v, cur, rhs, s.loc);
    emit(Op::SetPath, t->ref.index, path, v, s.loc);
  }

  void ifStmt(const Stmt& s) {
    int c = exprAny(*s.exprs[0]);
    size_t jf = emitJump(Op::JumpIfFalse, c, s.exprs[0]->loc);
    block(*s.body);
    if (s.orelse) {
      size_t jend = emitJump(Op::Jump, 0, s.loc);
      patchJump(jf, here());
      if (s.orelse->kind == StmtKind::Block) block(*s.orelse);
      else stmt(*s.orelse);
      patchJump(jend, here());
    } else {
      patchJump(jf, here());
    }
  }

  // continueTarget == kForward: `continue` jumps are patched when the loop's
  // check is emitted (a `for` tests at the bottom).
  static constexpr size_t kForward = ~size_t(0);
  struct Loop {
    size_t continueTarget;
    std::vector<size_t> breaks;
    size_t withDepth;
    std::vector<size_t> continues;
  };

  void whileStmt(const Stmt& s) {
    size_t start = here();
    int mark = top_;
    int c = exprAny(*s.exprs[0]);
    size_t jexit = emitJump(Op::JumpIfFalse, c, s.exprs[0]->loc);
    top_ = mark;
    loops_.push_back({start, {}, withs_.size(), {}});
    block(*s.body);
    jumpTo(start, s.loc);
    patchJump(jexit, here());
    for (size_t b : loops_.back().breaks) patchJump(b, here());
    loops_.pop_back();
  }

  // A rotated loop: one ForNext per iteration at the bottom, which loads the
  // next item (straight into a local loop variable) and jumps back.
  //   ForPrep; Jump check; body: [bind]; ...; check: ForNext -> body
  void forStmt(const Stmt& s) {
    const Loc& loc = s.exprs[0]->loc;
    int it = exprAny(*s.exprs[0]);
    int base = temps(3, s.loc);  // iterable, position, current item
    emit(Op::ForPrep, base, it, 0, loc);
    size_t enter = emitJump(Op::Jump, 0, loc);
    size_t bodyStart = here();
    bool direct = s.pattern.kind == Pattern::Name && !s.pattern.global;
    if (!direct) bindPattern(s.pattern, base + 2, s.pattern.loc);
    loops_.push_back({kForward, {}, withs_.size(), {}});
    block(*s.body);
    size_t check = here();
    patchJump(enter, check);
    for (size_t c : loops_.back().continues) patchJump(c, check);
    size_t next = emit(Op::ForNext, base, 0, direct ? s.pattern.slot + 1 : 0, loc);
    patchJump(next, bodyStart);
    for (size_t b : loops_.back().breaks) patchJump(b, here());
    loops_.pop_back();
  }

  void exitWiths(size_t downTo, const Loc& loc) {
    for (size_t i = withs_.size(); i > downTo; --i) emit(Op::WithExit, withs_[i - 1], 0, 0, loc);
  }

  void breakStmt(const Stmt& s) {
    Loop& l = loops_.back();
    exitWiths(l.withDepth, s.loc);
    if (s.kind == StmtKind::Break) l.breaks.push_back(emitJump(Op::Jump, 0, s.loc));
    else if (l.continueTarget == kForward) l.continues.push_back(emitJump(Op::Jump, 0, s.loc));
    else jumpTo(l.continueTarget, s.loc);
  }

  void returnStmt(const Stmt& s) {
    int r = -1;
    if (!s.exprs.empty()) r = exprAny(*s.exprs[0]);
    if (!withs_.empty()) {
      if (r >= 0 && r < localsEnd_) {
        int t = temp(s.loc);
        emit(Op::Move, t, r, 0, s.loc);
        r = t;
      }
      exitWiths(0, s.loc);
    }
    if (r >= 0) emit(Op::Return, r, 0, 0, s.loc);
    else emit(Op::ReturnNone, 0, 0, 0, s.loc);
  }

  void withStmt(const Stmt& s) {
    int ctx = temp(s.loc);
    expr(*s.exprs[0], ctx);
    if (s.global) emit(Op::SetGlobal, ctx, s.slot, 0, s.loc);
    else emit(Op::Move, s.slot, ctx, 0, s.loc);
    emit(Op::WithEnter, ctx, 0, 0, s.exprs[0]->loc);
    withs_.push_back(ctx);
    int saved = top_;
    block(*s.body);
    top_ = saved;
    withs_.pop_back();
    emit(Op::WithExit, ctx, 0, 0, s.loc);
  }

  static bool hasDefaults(const FnDecl& fn) {
    for (auto& prm : fn.params)
      if (prm.deflt) return true;
    return false;
  }

  // Creates the closure of `fn` into register `slot` (a local), or into the
  // global `slot` when `global`. Without `evalDefaults` (a hoisted fn at
  // module start) its defaults stay undefined until its statement runs.
  void closure(const FnDecl& fn, int slot, const Loc& loc, bool global = false, bool evalDefaults = true) {
    const FnProto* proto = protoFor(fn);
    int base = temp(loc);
    if (evalDefaults) {
      int n = 0;
      for (auto& prm : fn.params)
        if (prm.deflt) ++n;
      int first = temps(n, loc);
      int k = 0;
      for (auto& prm : fn.params)
        if (prm.deflt) expr(*prm.deflt, first + k++);
    }
    int fnIdx = 0;
    while (p_.chunk.fns[static_cast<size_t>(fnIdx)] != proto) ++fnIdx;
    emit(Op::Closure, base, fnIdx, evalDefaults ? 0 : 1, loc);
    if (global) emit(Op::SetGlobal, base, slot, 0, loc);
    else if (slot >= 0) emit(Op::Move, slot, base, 0, loc);
  }

  const FnProto* compileFunction(const FnDecl& fn);
  // The proto of `fn`, compiled once per chunk.
  const FnProto* protoFor(const FnDecl& fn) {
    for (const FnProto* p : p_.chunk.fns)
      if (p->decl == &fn) return p;
    const FnProto* p = compileFunction(fn);
    p_.chunk.fns.push_back(p);
    return p;
  }

  // --------------------------------------------------------- expressions
  // Compiles `e` into a register and returns it: a local's own register for
  // a local name, else a new temporary.
  int exprAny(const Expr& e) {
    if (e.kind == ExprKind::Name && e.ref.kind == RefKind::Local) return e.ref.index;
    int t = temp(e.loc);
    expr(e, t);
    return t;
  }

  // Compiles `e` into register `dest`; `dest` is written by the last
  // instruction only (so `x = f(x)` reads the old x throughout).
  void expr(const Expr& e, int dest) {
    int mark = top_;
    exprInner(e, dest);
    top_ = mark;
  }

  void exprInner(const Expr& e, int dest) {
    switch (e.kind) {
      case ExprKind::Int: emit(Op::LoadK, dest, constant(Value::i64(e.ival, true)), 0, e.loc); return;
      case ExprKind::Float: emit(Op::LoadK, dest, constant(Value::weakFloat(e.fval)), 0, e.loc); return;
      case ExprKind::Bool: emit(Op::LoadK, dest, constant(Value::boolean(e.bval, true)), 0, e.loc); return;
      case ExprKind::Str: emit(Op::LoadK, dest, constant(makeStr(e.str)), 0, e.loc); return;
      case ExprKind::None: emit(Op::LoadNone, dest, 1, 0, e.loc); return;
      case ExprKind::FStr: fstring(e, dest); return;
      case ExprKind::Name: name(e, dest); return;
      case ExprKind::Tuple:
      case ExprKind::List:
        if (e.isTensorLit) {
          emit(Op::LoadK, dest, constant(tensorLiteral(e)), 0, e.loc);
          return;
        }
        sequence(e, dest, e.kind == ExprKind::Tuple ? Op::Tuple : Op::List, 0);
        return;
      case ExprKind::Record: sequence(e, dest, Op::Record, namesConst(e.names)); return;
      case ExprKind::Dict: sequence(e, dest, Op::Dict, namesConst(e.names)); return;
      case ExprKind::Lambda: lambda(e, dest); return;
      case ExprKind::Unary: unary(e, dest); return;
      case ExprKind::Binary: binary(e, dest); return;
      case ExprKind::Call: call(e, dest); return;
      case ExprKind::Index: index(e, dest); return;
      case ExprKind::Field: field(e, dest); return;
    }
  }

  void name(const Expr& e, int dest) {
    const Ref& r = e.ref;
    switch (r.kind) {
      case RefKind::Local:
        if (r.index != dest) emit(Op::Move, dest, r.index, 0, e.loc);
        return;
      case RefKind::Capture: emit(Op::GetCapture, dest, r.index, 0, e.loc); return;
      case RefKind::Self: emit(Op::GetSelf, dest, 0, 0, e.loc); return;
      case RefKind::Global: emit(Op::GetGlobal, dest, r.index, r.module, e.loc); return;
      case RefKind::Builtin: {
        int id = builtinId(e.str);
        if (id < 0) throw ScriptError(e.loc, fmt::format("undefined name '{}'", e.str));
        emit(Op::LoadBuiltin, dest, id, 0, e.loc);
        return;
      }
      case RefKind::Module:
        throw ScriptError(e.loc, fmt::format("module '{}' can only be used as {}.NAME", e.str, e.str));
      case RefKind::Unresolved: break;
    }
    throw ScriptError(e.loc, fmt::format("undefined name '{}'", e.str));
  }

  void sequence(const Expr& e, int dest, Op op, int namesIdx) {
    int n = static_cast<int>(e.kids.size());
    int first = temps(n, e.loc);
    for (int i = 0; i < n; ++i) expr(*e.kids[i], first + i);
    emit(op, dest, first, op == Op::Record || op == Op::Dict ? namesIdx : n, e.loc);
  }

  void fstring(const Expr& e, int dest) {
    std::vector<int> regs;
    for (auto& part : e.parts) {
      if (!part.literal.empty()) {
        int t = temp(e.loc);
        emit(Op::LoadK, t, constant(makeStr(part.literal)), 0, e.loc);
        regs.push_back(t);
      }
      if (part.expr) {
        int t = temp(part.expr->loc);
        expr(*part.expr, t);
        int spec = part.spec.empty() ? kNoString : stringConst(part.spec);
        emit(Op::ToStr, t, 0, spec, part.expr->loc);
        regs.push_back(t);
      }
    }
    if (regs.empty()) {
      emit(Op::LoadK, dest, constant(makeStr("")), 0, e.loc);
      return;
    }
    // The pieces are consecutive registers (allocated in order above).
    emit(Op::Concat, dest, regs.front(), static_cast<int>(regs.size()), e.loc);
  }

  void lambda(const Expr& e, int dest) {
    int mark = top_;
    closure(*e.fn, -1, e.loc);
    emit(Op::Move, dest, mark, 0, e.loc);
  }

  void unary(const Expr& e, int dest) {
    const Expr& k = *e.kids[0];
    if (e.unop == UnOp::Neg && (k.kind == ExprKind::Int || k.kind == ExprKind::Float)) {
      Value v = k.kind == ExprKind::Int ? Value::i64(static_cast<int64_t>(0ull - static_cast<uint64_t>(k.ival)), true)
                                        : Value::weakFloat(-k.fval);
      emit(Op::LoadK, dest, constant(std::move(v)), 0, e.loc);
      return;
    }
    int r = exprAny(k);
    Op op = e.unop == UnOp::Neg ? Op::Neg : e.unop == UnOp::BitNot ? Op::BitNot : Op::Not;
    emit(op, dest, r, 0, e.loc);
  }

  void binary(const Expr& e, int dest) {
    if (e.binop == BinOp::And || e.binop == BinOp::Or) {
      bool isAnd = e.binop == BinOp::And;
      int t = temp(e.loc);
      int opName = stringConst(boolOperandSubject(e));
      expr(*e.kids[0], t);
      emit(Op::TestBool, t, 0, opName, e.kids[0]->loc);
      size_t j = emitJump(isAnd ? Op::JumpIfFalse : Op::JumpIfTrue, t, e.loc);
      expr(*e.kids[1], t);
      emit(Op::TestBool, t, 0, opName, e.kids[1]->loc);
      patchJump(j, here());
      emit(Op::Move, dest, t, 0, e.loc);
      return;
    }
    uint8_t flags = 0;
    int a = operand(*e.kids[0], kConstB, flags);
    int b = operand(*e.kids[1], kConstC, flags);
    size_t at = emit(binOpcode(e.binop), dest, a, b, e.loc);
    p_.chunk.code[at].flags = flags;
    if (e.binop == BinOp::NotIn) emit(Op::Not, dest, dest, 0, e.loc);
  }

  // A binary operator's operand: a numeric literal is read straight from the
  // constants (flag set), anything else is compiled into a register.
  int operand(const Expr& e, uint8_t constFlag, uint8_t& flags) {
    Value v;
    if (e.kind == ExprKind::Int) v = Value::i64(e.ival, true);
    else if (e.kind == ExprKind::Float) v = Value::weakFloat(e.fval);
    else if (e.kind == ExprKind::Bool) v = Value::boolean(e.bval, true);
    else {
      int r = exprAny(e);
      // A temporary (not a variable's register) dies with this operator.
      if (r >= localsEnd_) flags |= constFlag == kConstB ? kTempB : kTempC;
      return r;
    }
    int k = constant(std::move(v));
    if (k > 0xFFFF) return exprAny(e);
    flags |= constFlag;
    return k;
  }

  // Arguments of a call into consecutive registers from `first`; returns the
  // keyword-names operand (0 = none).
  int arguments(const Expr& e, int first) {
    int n = static_cast<int>(e.kids.size()) - 1;
    std::vector<std::string> kws;
    for (int i = 0; i < n; ++i) {
      expr(*e.kids[i + 1], first + i);
      if (!e.names[i].empty()) kws.push_back(e.names[i]);
    }
    return kws.empty() ? 0 : namesConst(std::move(kws));
  }

  void call(const Expr& e, int dest) {
    const Expr& callee = *e.kids[0];
    int n = static_cast<int>(e.kids.size()) - 1;
    bool temporary = false;
    if (const Expr* place = listMethodPlace(e, &temporary)) return listMethod(e, *place, dest, temporary);
    if (callee.kind == ExprKind::Field && callee.ref.kind != RefKind::Global) {
      // x.f(args): a record field f, else f(x, args) (method sugar).
      int base = temps(n + 2, e.loc);
      expr(*callee.kids[0], base + 1);
      MethodSite site;
      site.name = callee.str;
      int kw = arguments(e, base + 2);
      if (kw) site.kwNames = p_.chunk.names[kw - 1];
      p_.chunk.sites.push_back(std::move(site));
      emit(Op::CallMethod, base, n, static_cast<int>(p_.chunk.sites.size() - 1), e.loc);
      if (dest != base) emit(Op::Move, dest, base, 0, e.loc);
      return;
    }
    // The callee goes into `dest` itself when dest is the newest temporary
    // (the result then needs no move).
    int base = dest == top_ - 1 && dest >= localsEnd_ ? dest : temp(e.loc);
    temps(n, e.loc);
    expr(callee, base);
    if (callee.kind == ExprKind::Name && callee.ref.kind == RefKind::Builtin && callee.str == "help" && n == 1 &&
        e.kids[1]->kind == ExprKind::Name && e.kids[1]->ref.kind == RefKind::Module) {
      // help(nn): a module is no value, so its name stands for it (help("nn"))
      emit(Op::LoadK, base + 1, constant(makeStr(e.kids[1]->str)), 0, e.kids[1]->loc);
      emit(Op::Call, base, n, 0, e.loc);
      if (dest != base) emit(Op::Move, dest, base, 0, e.loc);
      return;
    }
    int kw = arguments(e, base + 1);
    emit(Op::Call, base, n, kw, e.loc);
    if (dest != base) emit(Op::Move, dest, base, 0, e.loc);
  }

  // xs.append(v), xs.extend(ys), xs.pop(), xs.pop(i), xs.insert(i, v) on a variable (or an
  // element or field of one) change what it holds (SPEC §12): the place they are called on,
  // else null (an ordinary method call).
  // A call result or other temporary (`f().pop()`, Python's too) is changed where it stands,
  // nothing stored back: `temporary` says so.
  static const Expr* listMethodPlace(const Expr& e, bool* temporary = nullptr) {
    const Expr& callee = *e.kids[0];
    if (callee.kind != ExprKind::Field || !isListMutator(callee.str)) return nullptr;
    const Expr* t = callee.kids[0].get();
    while (t->kind == ExprKind::Index || t->kind == ExprKind::Field) t = t->kids[0].get();
    if (t->kind != ExprKind::Name) {
      if (temporary) *temporary = true;
      return callee.kids[0].get();
    }
    if (t->ref.kind != RefKind::Local && t->ref.kind != RefKind::Global) return nullptr;
    return callee.kids[0].get();
  }

  void listMethod(const Expr& e, const Expr& place, int dest, bool temporary) {
    int n = static_cast<int>(e.kids.size()) - 1;
    for (size_t i = 0; i + 1 < e.kids.size(); ++i)
      if (i < e.names.size() && !e.names[i].empty())
        throw ScriptError(e.kids[i + 1]->loc, fmt::format("{}() takes no keyword arguments", e.kids[0]->str));
    int base = temps(n + 1, e.loc);
    for (int i = 0; i < n; ++i) expr(*e.kids[static_cast<size_t>(i) + 1], base + 1 + i);
    MethodSite site;
    site.name = e.kids[0]->str;
    site.argc = n;
    if (temporary) {  // changed in a register, as Python changes the object nothing else holds
      int t = temp(e.loc);
      expr(place, t);
      p_.chunk.sites.push_back(std::move(site));
      emit(Op::ListMethod, base, t, static_cast<int>(p_.chunk.sites.size() - 1), e.loc);
    } else if (place.kind == ExprKind::Name && place.ref.kind == RefKind::Local) {
      // In the variable's own register: an unshared list grows in place.
      p_.chunk.sites.push_back(std::move(site));
      emit(Op::ListMethod, base, place.ref.index, static_cast<int>(p_.chunk.sites.size() - 1), e.loc);
    } else if (place.kind == ExprKind::Name) {
      site.global = true;
      site.module = place.ref.module;
      p_.chunk.sites.push_back(std::move(site));
      emit(Op::ListMethod, base, place.ref.index, static_cast<int>(p_.chunk.sites.size() - 1), e.loc);
    } else {
      // An element or field: taken out, changed, and stored back along its path.
      int t = temp(e.loc);
      expr(place, t);
      p_.chunk.sites.push_back(std::move(site));
      emit(Op::ListMethod, base, t, static_cast<int>(p_.chunk.sites.size() - 1), e.loc);
      storePath(place, t, e.loc);
    }
    if (dest != base) emit(Op::Move, dest, base, 0, e.loc);
  }

  // target := R[v] for an Index/Field chain from a variable (an assignment's path update).
  void storePath(const Expr& target, int v, const Loc& loc) {
    const Expr* t = &target;
    while (t->kind == ExprKind::Index || t->kind == ExprKind::Field) t = t->kids[0].get();
    emit(Op::SetPath, t->ref.index, pathOf(target, nullptr), v, loc);
  }

  // The update path of an assignment target (its subscripts evaluated into registers, from
  // the variable outwards); returns its index in the chunk's paths. With `bases`, each index
  // step also gets a register just before its subscripts (an Index instruction's container,
  // for a compound assignment's read); field steps get -1.
  int pathOf(const Expr& target, std::vector<int>* bases) {
    std::vector<const Expr*> chain;
    const Expr* t = &target;
    while (t->kind == ExprKind::Index || t->kind == ExprKind::Field) {
      chain.push_back(t);
      t = t->kids[0].get();
    }
    PathDesc path;
    path.global = t->ref.kind == RefKind::Global;
    path.varName = t->str;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      const Expr& e = **it;
      PathStep step;
      step.loc = e.loc;
      if (e.kind == ExprKind::Field) {
        step.isField = true;
        step.name = e.str;
        if (bases) bases->push_back(-1);
      } else {
        int base = bases ? temp(e.loc) : -1;
        step.subs = subscripts(e, step.firstReg);
        if (bases) {
          if (step.firstReg != base + 1) throw InternalError("subscript registers not after their container's");
          bases->push_back(base);
        }
      }
      path.steps.push_back(std::move(step));
    }
    p_.chunk.paths.push_back(std::move(path));
    return static_cast<int>(p_.chunk.paths.size() - 1);
  }

  // Subscripts of an Index expression into consecutive new registers; returns
  // their flags and sets `first`.
  std::vector<uint8_t> subscripts(const Expr& e, int& first) {
    std::vector<uint8_t> flags;
    int n = 0;
    for (auto& s : e.subs) {
      uint8_t f = s.isSlice ? kSubSlice : 0;
      if (s.isSlice) f |= (s.lo ? kSubLo : 0) | (s.hi ? kSubHi : 0) | (s.step ? kSubStep : 0) | (s.isEllipsis ? kSubEllipsis : 0);
      flags.push_back(f);
      n += subRegs(f);
    }
    first = temps(n, e.loc);
    int r = first;
    for (auto& s : e.subs) {
      if (!s.isSlice) {
        expr(*s.index, r++);
        continue;
      }
      for (auto* p : {&s.lo, &s.hi, &s.step})
        if (*p) expr(**p, r++);
    }
    return flags;
  }

  void index(const Expr& e, int dest) {
    int base = dest == top_ - 1 && dest >= localsEnd_ ? dest : temp(e.loc);
    expr(*e.kids[0], base);
    int first = 0;
    auto flags = subscripts(e, first);
    (void)first;  // == base + 1
    p_.chunk.indexes.push_back(std::move(flags));
    emit(Op::Index, dest, base, static_cast<int>(p_.chunk.indexes.size() - 1), e.loc);
  }

  void field(const Expr& e, int dest) {
    if (e.ref.kind == RefKind::Global) {  // module member m.name
      emit(Op::GetGlobal, dest, e.ref.index, e.ref.module, e.loc);
      return;
    }
    int r = exprAny(*e.kids[0]);
    emit(Op::GetField, dest, r, stringConst(e.str), e.loc);
  }

  bool isHoisted(const Stmt& s) const {
    for (auto* h : hoisted_)
      if (h == &s) return true;
    return false;
  }

  // ------------------------------------------------------------- state
  Program& prog_;
  FnProto& p_;
  int top_;
  int maxTop_;
  int stmtMax_ = 0;
  int depth_ = 0;
  int localsEnd_;
  bool replPrint_ = false;
  std::vector<Loop> loops_;
  std::vector<int> withs_;  // registers of the active `with` contexts
  std::vector<const Stmt*> hoisted_;

};

const FnProto* FnCompiler::compileFunction(const FnDecl& fn) {
  auto proto = std::make_unique<FnProto>();
  FnProto& p = *proto;
  p.name = fn.name.empty() ? "<lambda>" : fn.name;  // a lambda has none (a list comprehension's has)
  p.decl = &fn;
  p.module = p_.module;  // a fn belongs to the module whose code declares it
  p.isGraph = fn.isGraph;
  p.numParams = static_cast<int>(fn.params.size());
  for (auto& prm : fn.params) {
    p.paramNames.push_back(prm.name);
    p.paramTypes.push_back(prm.type.get());
    p.hasDefault.push_back(prm.deflt != nullptr);
  }
  p.retType = fn.ret.get();
  p.retNamesDims = p.retType && namesDims(*p.retType);
  p.captures = fn.captures;
  FnCompiler fc(prog_, p, fn.numLocals);
  fc.block(*fn.body);
  fc.emit(Op::ReturnNone, 0, 0, 0, fn.body->loc);
  fc.finish();
  prog_.protos.push_back(std::move(proto));
  return &p;
}

// Every fn statement hoisted to the start of a module's code: the top-level
// ones and those in top-level `with` bodies (which open no scope).
void collectHoisted(const std::vector<StmtPtr>& stmts, size_t first, std::vector<const Stmt*>& out) {
  for (size_t i = first; i < stmts.size(); ++i) {
    const Stmt& s = *stmts[i];
    if (s.kind == StmtKind::Fn) out.push_back(&s);
    if (s.kind == StmtKind::With) collectHoisted(s.body->stmts, 0, out);
  }
}

}  // namespace

const FnProto* compileModuleCode(Program& prog, Module& m, size_t firstStmt, CompileOptions opts) {
  auto proto = std::make_unique<FnProto>();
  FnProto& p = *proto;
  p.name = m.id == 0 ? "<main>" : fmt::format("<module {}>", m.name);
  p.module = m.id;
  p.isTopLevel = true;
  FnCompiler fc(prog, p, m.numTopLocals);
  fc.replPrint_ = opts.replPrint;
  collectHoisted(m.stmts, firstStmt, fc.hoisted_);
  for (const Stmt* s : fc.hoisted_) {
    int mark = fc.top_;
    fc.closure(*s->fn, s->fn->globalSlot, s->loc, /*global=*/true, /*evalDefaults=*/false);
    fc.top_ = mark;
  }
  for (size_t i = firstStmt; i < m.stmts.size(); ++i) fc.stmt(*m.stmts[i]);
  fc.emit(Op::ReturnNone, 0, 0, 0, Loc{});
  fc.finish();
  prog.protos.push_back(std::move(proto));
  return &p;
}

Compiler::Compiler(Program& program, std::vector<std::unique_ptr<Module>>& modules)
    : program_(program), modules_(modules) {}

void Compiler::compileAll() {
  program_.moduleCode.assign(modules_.size(), nullptr);
  for (auto& m : modules_) program_.moduleCode[m->id] = compileModule(*m);
}

const FnProto* Compiler::compileModule(Module& m, size_t firstStmt, CompileOptions opts) {
  return compileModuleCode(program_, m, firstStmt, opts);
}

}  // namespace tdl::vm
