// The tracer: graph fn AST + signature → IR (see GraphTracer.h).
#include "vm/Compiler.h"
#include "vm/GraphTracer.h"
#include "vm/Annotations.h"

#include <fmt/format.h>

#include <deque>
#include <functional>
#include <set>

#include "ir/Builder.h"
#include "ir/autodiff/Grad.h"
#include "runtime/Create.h"
#include "ir/ShapeInference.h"
#include "vm/Builtins.h"
#include "vm/Format.h"
#include "vm/Interpreter.h"
#include "vm/NumericOps.h"
#include "vm/TensorLiteral.h"
#include "vm/ValueOps.h"

namespace tdl::vm {

using ir::Dim;
using ir::TensorType;

uint64_t locKey(const Loc& l) { return (uint64_t(l.file) << 48) ^ (uint64_t(l.line) << 20) ^ uint64_t(l.col); }

Value ResultTemplate::build(const std::vector<rt::Tensor>& results) const {
  switch (kind) {
    case Static: return value;
    case Leaf: return fromTensor(results.at(static_cast<size_t>(leaf)));
    case Seq: {
      std::vector<Value> v;
      for (auto& i : items) v.push_back(i.build(results));
      return seqTag == Tag::List ? makeList(std::move(v)) : makeTuple(std::move(v));
    }
    case Rec: {
      std::vector<Value> v;
      for (auto& i : items) v.push_back(i.build(results));
      return makeRecord(names, std::move(v));
    }
  }
  return Value();
}

namespace {

// A static loop (known trip count) runs at most this many iterations at trace time;
// longer loops are traced as `while` (the trace restarts with that loop dynamic).
constexpr int kMaxUnroll = 64;
// Inlined calls nest at most this deep (deeper means runaway static recursion).
constexpr size_t kMaxInlineDepth = 200;
// A trace restarts at most this often (each restart makes one more loop dynamic).
constexpr int kMaxRestarts = 64;
// A data-dependent loop is retraced at most this often while its carried types settle.
constexpr int kMaxLoopAttempts = 6;

struct Restart {};

// ------------------------------------------------------------------ trace values

struct TV {
  enum K : uint8_t { Undef, Static, Dyn, Seq, Rec, Fn, Range, Tape, GradFn, Fmt } k = Undef;
  Value sv;                 // Static; Fmt: the print format (`{}`/`{:spec}` holes, braces doubled)
  ir::Value* dv = nullptr;  // Dyn
  bool weak = false;        // Dyn: a weak scalar (its IR dtype is the default dtype)
  Tag seqTag = Tag::Tuple;  // Seq
  std::vector<TV> items;    // Seq / Rec fields / Fn captures / Range start, stop, step / Fmt holes
  Names names;              // Rec
  const FnDecl* fn = nullptr;      // Fn
  std::vector<Value> defaults;     // Fn (from a VM closure)
  std::vector<TV> traceDefaults;   // Fn declared in the graph fn: defaults evaluated at the declaration
  int tape = -1;                   // Tape: index into the tracer's tapes
  std::vector<int64_t> argnums;    // GradFn: items[0] is the function
  bool tupleArgs = false, withValue = false;  // GradFn

  static TV of(Value v) { TV t; t.k = Static; t.sv = std::move(v); return t; }
  static TV dyn(ir::Value* v, bool weak = false) { TV t; t.k = Dyn; t.dv = v; t.weak = weak; return t; }
  bool isStatic() const { return k == Static; }
  bool isDyn() const { return k == Dyn; }
  bool defined() const { return k != Undef; }
};

TV staticBool(bool b) { return TV::of(Value::boolean(b)); }
bool isStaticFalse(const TV& t) { return t.isStatic() && t.sv.isScalar() && !t.sv.asBool(); }
bool isStaticTrue(const TV& t) { return t.isStatic() && t.sv.isScalar() && t.sv.asBool(); }

bool sameTV(const TV& a, const TV& b) {
  if (a.k != b.k) return false;
  switch (a.k) {
    case TV::Undef: return true;
    case TV::Static:
      if (a.sv.tag() != b.sv.tag()) return false;
      if (a.sv.isScalar()) return a.sv.dtype() == b.sv.dtype() && a.sv.weak() == b.sv.weak() && a.sv.rawInt() == b.sv.rawInt();
      if (a.sv.isHeap() && a.sv.obj() == b.sv.obj()) return true;
      try {
        return valuesEqual(a.sv, b.sv);
      } catch (...) {
        return false;
      }
    case TV::Dyn: return a.dv == b.dv && a.weak == b.weak;
    case TV::Fn: return a.fn == b.fn;
    case TV::Tape: return a.tape == b.tape;
    case TV::Fmt:
      if (a.sv.as<StrObj>()->s != b.sv.as<StrObj>()->s) return false;
      [[fallthrough]];
    case TV::GradFn:
      if (a.k == TV::Fmt) goto items;

      if (a.argnums != b.argnums || a.withValue != b.withValue || a.tupleArgs != b.tupleArgs) return false;
      [[fallthrough]];
    default:
    items:
      if (a.items.size() != b.items.size() || a.seqTag != b.seqTag) return false;
      if (a.k == TV::Rec && *a.names != *b.names) return false;
      for (size_t i = 0; i < a.items.size(); ++i)
        if (!sameTV(a.items[i], b.items[i])) return false;
      return true;
  }
}

// A static container as a Seq/Rec of static items (so it can be merged leaf by leaf).
TV expandStatic(const TV& t) {
  if (!t.isStatic()) return t;
  if (t.sv.isSeq()) {
    TV r; r.k = TV::Seq; r.seqTag = t.sv.tag();
    for (auto& v : t.sv.as<SeqObj>()->items) r.items.push_back(TV::of(v));
    return r;
  }
  if (t.sv.tag() == Tag::Record) {
    TV r; r.k = TV::Rec;
    auto* rec = t.sv.as<RecordObj>();
    r.names = rec->names;
    for (auto& v : rec->vals) r.items.push_back(TV::of(v));
    return r;
  }
  return t;
}

// ------------------------------------------------------------------ frames

struct FrameState {
  std::vector<TV> slots;
  TV ret, retFlag, brk, cont;
};

struct Frame {
  const FnDecl* decl = nullptr;
  std::string name;
  Loc callLoc;
  std::vector<TV> captures;
  FrameState st;
  std::vector<std::string> slotNames;
  std::vector<Loc> assignLocs;
};

rt::BinaryOp rtBinary(BinOp op) {
  switch (op) {
    case BinOp::Add: return rt::BinaryOp::Add;
    case BinOp::Sub: return rt::BinaryOp::Sub;
    case BinOp::Mul: return rt::BinaryOp::Mul;
    case BinOp::Div: return rt::BinaryOp::Div;
    case BinOp::FloorDiv: return rt::BinaryOp::FloorDiv;
    case BinOp::Mod: return rt::BinaryOp::Mod;
    case BinOp::Pow: return rt::BinaryOp::Pow;
    case BinOp::Eq: return rt::BinaryOp::Eq;
    case BinOp::Ne: return rt::BinaryOp::Ne;
    case BinOp::Lt: return rt::BinaryOp::Lt;
    case BinOp::Le: return rt::BinaryOp::Le;
    case BinOp::Gt: return rt::BinaryOp::Gt;
    case BinOp::Ge: return rt::BinaryOp::Ge;
    case BinOp::BitAnd: return rt::BinaryOp::BitAnd;
    case BinOp::BitOr: return rt::BinaryOp::BitOr;
    case BinOp::And: return rt::BinaryOp::LogicalAnd;
    case BinOp::Or: return rt::BinaryOp::LogicalOr;
    case BinOp::MatMul: break;
  }
  return rt::BinaryOp::Add;
}

std::optional<rt::UnaryOp> unaryBuiltinByName(const std::string& n) {
#define TDL_UNARY_BUILTIN(e, name, ...) \
  if (n == #name) return rt::UnaryOp::e;
#include "runtime/ops.def"
  return std::nullopt;
}

std::optional<rt::BinaryOp> binaryBuiltinByName(const std::string& n) {
#define TDL_BINARY_BUILTIN(e, name, ...) \
  if (n == #name) return rt::BinaryOp::e;
#include "runtime/ops.def"
  return std::nullopt;
}

// Slots assigned (not declared) anywhere inside a statement; and slots declared there.
void scanAssigned(const Stmt& s, std::set<int>& assigned, std::set<int>& declared, bool& hasBreak, bool& hasReturn,
                  int loopDepth) {
  auto patSlots = [&](const Pattern& p, auto& self) -> void {
    if (p.kind == Pattern::Name) {
      if (!p.global && p.slot >= 0) declared.insert(p.slot);
    } else {
      for (auto& e : p.elems) self(e, self);
    }
  };
  switch (s.kind) {
    case StmtKind::Let: patSlots(s.pattern, patSlots); break;
    case StmtKind::Assign: {
      const Expr* t = s.exprs[0].get();
      while (t->kind == ExprKind::Index || t->kind == ExprKind::Field) t = t->kids[0].get();
      if (t->kind == ExprKind::Name && t->ref.kind == RefKind::Local) assigned.insert(t->ref.index);
      break;
    }
    case StmtKind::Return: hasReturn = true; break;
    case StmtKind::Break: if (loopDepth == 0) hasBreak = true; break;
    case StmtKind::For: patSlots(s.pattern, patSlots); [[fallthrough]];
    case StmtKind::While:
      if (s.body) scanAssigned(*s.body, assigned, declared, hasBreak, hasReturn, loopDepth + 1);
      break;
    case StmtKind::If:
      if (s.body) scanAssigned(*s.body, assigned, declared, hasBreak, hasReturn, loopDepth);
      if (s.orelse) scanAssigned(*s.orelse, assigned, declared, hasBreak, hasReturn, loopDepth);
      break;
    case StmtKind::Block:
      for (auto& k : s.stmts) scanAssigned(*k, assigned, declared, hasBreak, hasReturn, loopDepth);
      break;
    case StmtKind::With:
      if (s.body) scanAssigned(*s.body, assigned, declared, hasBreak, hasReturn, loopDepth);
      break;
    default: break;
  }
}

// ------------------------------------------------------------------ the tracer

class Tracer {
 public:
  Tracer(Interpreter& vm, ir::Function& f, std::set<const Stmt*>& forced, Trace& out)
      : vm_(vm), f_(f), b_(f), forced_(forced), out_(out) {}

  TV run(const ClosureObj& c, std::vector<TV> args, Loc loc) {
    TV fnv;
    fnv.k = TV::Fn;
    fnv.fn = c.proto->decl;
    for (auto& v : c.captures) fnv.items.push_back(TV::of(v));
    fnv.defaults = c.defaults;
    std::vector<std::string> kw;
    return inlineCall(fnv, args, kw, loc, c.proto->name);
  }

 private:
  Interpreter& vm_;
  ir::Function& f_;
  ir::Builder b_;
  std::set<const Stmt*>& forced_;
  Trace& out_;
  std::vector<Frame*> frames_;

  Frame& fr() { return *frames_.back(); }

  // A trace-time error at `loc`, with the chain of fns inlined into the graph fn (innermost
  // first), as eager mode's error would show them; the graph fn's own call site is added
  // by the caller of the trace.
  [[noreturn]] void fail(const Loc& loc, const std::string& msg) {
    TraceError e(loc, msg);
    for (size_t k = frames_.size(); k-- > 1;) {
      const Loc& at = frames_[k]->callLoc;
      std::string where = at.file < vm_.sources().size()
                              ? fmt::format("{}:{}:{}", vm_.sources().file(at.file).path, at.line, at.col)
                              : std::string("?");
      e.trace.push_back(fmt::format("in fn {} at {}", frames_[k]->name, where));
    }
    throw e;
  }

  void setLoc(const Loc& l) {
    b_.set_loc(l);
    if (frames_.size() > 1) {
      CallChain chain;
      for (size_t k = frames_.size(); k-- > 1;) chain.emplace_back(frames_[k]->name, frames_[k]->callLoc);
      out_.chains.emplace(locKey(l), std::move(chain));
    }
  }

  // Runs `f`, turning IR shape errors and runtime errors into trace errors at `loc`.
  template <class F> auto guarded(const Loc& loc, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const ir::ShapeError& e) {
      fail(loc, e.what());
    } catch (const rt::Error& e) {
      fail(loc, e.what());
    }
  }

  // ---------------------------------------------------------------- conversions

  static DType defaultDType(const Value& v) { return v.dtype(); }

  bool isNumeric(const TV& t) const { return t.isDyn() || (t.isStatic() && t.sv.isNumeric()); }

  // The type a numeric trace value has in the IR, and whether it is weak.
  TensorType typeOf(const TV& t) {
    if (t.isDyn()) return t.dv->type;
    if (t.sv.isScalar()) return TensorType::scalar(t.sv.dtype());
    const rt::Tensor& x = t.sv.as<TensorObj>()->t;
    return TensorType::of(x.dtype(), x.shape());
  }
  bool weakOf(const TV& t) const { return t.isDyn() ? t.weak : (t.sv.isScalar() && t.sv.weak()); }

  // A numeric trace value as an IR value (of dtype `dt` when given: weak scalars convert
  // exactly, strong values are cast).
  ir::Value* materialize(const TV& t, const Loc& loc, std::optional<DType> dt = std::nullopt) {
    if (t.isDyn()) {
      if (dt && *dt != t.dv->type.dtype) {
        setLoc(loc);
        return b_.cast(t.dv, *dt);
      }
      return t.dv;
    }
    if (!t.isStatic() || !t.sv.isNumeric()) fail(loc, fmt::format("expected a tensor here, got {}", describe(t)));
    setLoc(loc);
    if (t.sv.isScalar()) {
      DType d = dt ? *dt : t.sv.dtype();
      return b_.constant(scalarTensor(t.sv, d));
    }
    rt::Tensor x = t.sv.as<TensorObj>()->t;
    if (dt && *dt != x.dtype()) return b_.constant(rt::cast(x, *dt));
    return tensorConstant(t.sv);
  }

  // A static tensor as an IR value: one constant per tensor object, placed at the top of the
  // function (so it dominates every use), so that the tensor keeps its identity in the IR as
  // it has in eager mode: a tape's gradient with respect to a captured `let W` or to a
  // `ones(...)` made while tracing flows to the same value the ops used.
  std::map<const Obj*, std::pair<Value, ir::Value*>> constants_;  // the Value pins the object
  size_t hoistedConstants_ = 0;                                  // at the top of the entry block
  ir::Value* tensorConstant(const Value& v) {
    const Obj* key = v.as<TensorObj>();
    if (auto it = constants_.find(key); it != constants_.end()) return it->second.second;
    ir::Block& entry = f_.entry();
    ir::Block& cur = b_.block();
    size_t pos = b_.pos();
    size_t at = hoistedConstants_++;
    b_.set_insertion(entry, at);
    ir::Value* c = b_.constant(v.as<TensorObj>()->t);
    b_.set_insertion(cur, &cur == &entry && pos >= at ? pos + 1 : pos);
    constants_.emplace(key, std::make_pair(v, c));
    return c;
  }
  // The insertion point `pos` of `block` as an op to re-find after ops were inserted above
  // it (hoisted constants): the op before it, or null for the block's start.
  ir::Op* anchorOf(ir::Block& block, size_t pos) { return pos > 0 ? &block.op(pos - 1) : nullptr; }
  size_t positionAfter(ir::Block& block, ir::Op* anchor) {
    if (anchor) return block.index_of(anchor) + 1;
    return &block == &f_.entry() ? hoistedConstants_ : 0;
  }

  // An integer argument as an i64 scalar, accepted as eager mode's Args::integer accepts it
  // (an integer scalar or a one-element integer tensor), else eager's error.
  ir::Value* integerArg(const TV& t, const char* builtin, const char* param, const Loc& loc) {
    if (isNumeric(t)) {
      TensorType ty = typeOf(t);
      bool one = true;
      for (const ir::Dim& d : ty.dims) one = one && d.is_known() && d.size == 1;
      if (one && !rt::is_float(ty.dtype) && ty.dtype != DType::Bool) {
        ir::Value* v = materialize(t, loc, DType::I64);
        setLoc(loc);
        return ty.rank() == 0 ? v : b_.reshape(v, {});
      }
      if (one && ty.dtype == DType::Bool && t.isStatic() && t.sv.isScalar()) return materialize(t, loc, DType::I64);
    }
    fail(loc, fmt::format("{}(): '{}' must be an integer, got {}", builtin, param, describe(t)));
  }

  std::string describe(const TV& t) {
    switch (t.k) {
      case TV::Static: return typeText(t.sv);
      case TV::Dyn: return t.dv->type.str();
      case TV::Seq: return t.seqTag == Tag::List ? "list" : "tuple";
      case TV::Rec: return "record";
      case TV::Fn: return "function";
      case TV::Range: return "range";
      case TV::Tape: return "tape";
      case TV::GradFn: return t.withValue ? "value_and_grad function" : "grad function";
      case TV::Fmt: return "string of run-time values (an f-string, which a graph fn can only print)";
      default: return "undefined";
    }
  }

  // ---------------------------------------------------------------- arithmetic

  // Under a tape, an op on a float tensor fixed at trace time is traced, not computed while
  // tracing: the tape records it, as eager's does, so that gradients with respect to that
  // tensor flow through it.
  bool tapedStatic(const TV& t) const {
    return !recording_.empty() && t.isStatic() && t.sv.isTensor() && rt::is_float(t.sv.as<TensorObj>()->t.dtype());
  }

  TV binop(rt::BinaryOp op, const TV& a, const TV& b, const Loc& loc, std::optional<Op> vop = std::nullopt) {
    if (a.isStatic() && b.isStatic() && !tapedStatic(a) && !tapedStatic(b)) {
      try {
        return TV::of(vop ? binaryOperator(*vop, a.sv, b.sv) : binaryValues(op, a.sv, b.sv));
      } catch (const rt::Error& e) {
        fail(loc, e.what());
      }
    }
    if (!isNumeric(a) || !isNumeric(b)) {
      if (vop && *vop == Op::Add && (a.k == TV::Seq || b.k == TV::Seq)) {
        TV x = expandStatic(a), y = expandStatic(b);
        if (x.k == TV::Seq && y.k == TV::Seq && x.seqTag == y.seqTag) {
          x.items.insert(x.items.end(), y.items.begin(), y.items.end());
          return x;
        }
      }
      fail(loc, fmt::format("unsupported operand types {} and {} in a graph fn", describe(a), describe(b)));
    }
    bool wa = weakOf(a), wb = weakOf(b);
    TensorType ta = typeOf(a), tb = typeOf(b);
    ir::Value *x, *y;
    if (wa && !wb) {
      DType d = weakTarget(a.isStatic() ? a.sv : proxy(ta.dtype), tb.dtype);
      x = materialize(a, loc, d);
      y = materialize(b, loc);
    } else if (wb && !wa) {
      DType d = weakTarget(b.isStatic() ? b.sv : proxy(tb.dtype), ta.dtype);
      x = materialize(a, loc);
      y = materialize(b, loc, d);
    } else {
      x = materialize(a, loc);
      y = materialize(b, loc);
    }
    setLoc(loc);
    ir::Value* r = guarded(loc, [&] { return b_.binary(op, x, y); });
    return TV::dyn(r, wa && wb);
  }

  static Value proxy(DType d) {
    if (d == DType::Bool) return Value::boolean(false, true);
    if (rt::is_float(d)) return Value::weakFloat(0);
    return Value::i64(0, true);
  }

  TV unop(rt::UnaryOp op, const TV& x, const Loc& loc) {
    if (x.isStatic() && !tapedStatic(x)) {
      try {
        return TV::of(unaryValues(op, x.sv));
      } catch (const rt::Error& e) {
        fail(loc, e.what());
      }
    }
    ir::Value* v = materialize(x, loc);
    setLoc(loc);
    return TV::dyn(guarded(loc, [&] { return b_.unary(op, v); }), x.isDyn() && x.weak);
  }

  TV castTV(const TV& x, DType d, const Loc& loc) {
    if (x.isStatic()) {
      try {
        return TV::of(castValue(x.sv, d));
      } catch (const rt::Error& e) {
        fail(loc, e.what());
      }
    }
    return TV::dyn(materialize(x, loc, d));
  }

  // A strong dynamic value (weak ones take their default dtype).
  ir::Value* dynStrong(const TV& t, const Loc& loc) { return materialize(t, loc); }

  // ---------------------------------------------------------------- conditions

  // A condition: static bool, or a dynamic bool[]; else the SPEC error.
  TV condition(const TV& c, const Loc& loc) {
    if (c.isStatic()) {
      if (!(c.sv.isScalar() && c.sv.dtype() == DType::Bool))
        fail(loc, fmt::format("condition must be a bool scalar, got {}", typeText(c.sv)));
      return c;
    }
    if (!c.isDyn() || c.dv->type.dtype != DType::Bool || !c.dv->type.is_scalar())
      fail(loc, fmt::format("condition must be a bool scalar, got {}", describe(c)));
    return c;
  }

  TV notTV(const TV& c, const Loc& loc) { return unop(rt::UnaryOp::LogicalNot, c, loc); }
  TV orTV(const TV& a, const TV& b, const Loc& loc) {
    if (isStaticFalse(a)) return b;
    if (isStaticFalse(b)) return a;
    if (isStaticTrue(a) || isStaticTrue(b)) return staticBool(true);
    return binop(rt::BinaryOp::LogicalOr, a, b, loc);
  }

  // ---------------------------------------------------------------- state and merging

  FrameState save() { return fr().st; }
  void restore(const FrameState& s) { fr().st = s; }

  struct MergeLeaf {
    TV a, b;
    TensorType type;
    bool weak;
  };

  // The merged skeleton of a and b; differing numeric leaves become Dyn placeholders
  // (dv == nullptr, index in `leaves` in .sv as an i64).
  TV mergeTV(const TV& a, const TV& b, const std::string& name, const Loc& loc, std::vector<MergeLeaf>& leaves,
             bool undefOk) {
    if (sameTV(a, b)) return a;
    if (!a.defined() || !b.defined()) {
      if (undefOk) return TV();
      const TV& d = a.defined() ? a : b;
      TV x = expandStatic(d);
      if (x.k == TV::Seq || x.k == TV::Rec) {
        // A container (a returned tuple) on one path only: each leaf merged with nothing.
        TV r = x;
        for (size_t i = 0; i < x.items.size(); ++i)
          r.items[i] = a.defined() ? mergeTV(x.items[i], TV(), name, loc, leaves, false)
                                   : mergeTV(TV(), x.items[i], name, loc, leaves, false);
        return r;
      }
      if (!isNumeric(d)) fail(loc, fmt::format("'{}' is not defined on every path", name));
      TensorType t = typeOf(d);
      leaves.push_back(MergeLeaf{a, b, t, weakOf(d)});
      TV r = TV::dyn(nullptr, weakOf(d));
      r.sv = Value::i64(static_cast<int64_t>(leaves.size() - 1));
      return r;
    }
    if (isNumeric(a) && isNumeric(b)) {
      TensorType ta = typeOf(a), tb = typeOf(b);
      bool wa = weakOf(a), wb = weakOf(b);
      TensorType t = ta;
      bool weak = wa && wb;
      if (wa && !wb) t = TensorType(tb.dtype, ta.dims);
      else if (wb && !wa) t = TensorType(ta.dtype, ta.dims);
      else if (ta.dtype != tb.dtype)
        fail(loc, fmt::format("'{}' has type {} on one path and {} on another", name, ta.str(), tb.str()));
      if (ta.rank() != tb.rank())
        fail(loc, fmt::format("'{}' has type {} on one path and {} on another", name, ta.str(), tb.str()));
      for (size_t i = 0; i < t.dims.size(); ++i)
        if (!(ta.dims[i] == tb.dims[i])) t.dims[i] = Dim::symbolic(f_.fresh_sym());
      leaves.push_back(MergeLeaf{a, b, t, weak});
      TV r = TV::dyn(nullptr, weak);
      r.sv = Value::i64(static_cast<int64_t>(leaves.size() - 1));
      return r;
    }
    TV x = expandStatic(a), y = expandStatic(b);
    if ((x.k == TV::Seq || x.k == TV::Rec) && x.k == y.k && x.items.size() == y.items.size() &&
        x.seqTag == y.seqTag && (x.k == TV::Seq || *x.names == *y.names)) {
      TV r = x;
      for (size_t i = 0; i < x.items.size(); ++i) r.items[i] = mergeTV(x.items[i], y.items[i], name, loc, leaves, false);
      return r;
    }
    fail(loc, fmt::format("'{}' holds a {} on one path and a {} on another (only tensors can differ at run time)", name,
                          describe(a), describe(b)));
  }

  // Replaces placeholders in a merged skeleton by the values in `vals`.
  static void fill(TV& t, const std::vector<ir::Value*>& vals) {
    if (t.isDyn() && t.dv == nullptr) {
      t.dv = vals.at(static_cast<size_t>(t.sv.rawInt()));
      t.sv = Value();
      return;
    }
    for (auto& i : t.items) fill(i, vals);
  }

  // A value of type t whose contents never matter (the other side of a merge was undefined).
  ir::Value* placeholder(const TensorType& t) {
    ir::Value* z = b_.constant(rt::Tensor::scalar_of(t.dtype, 0));
    if (t.is_scalar()) return z;
    return b_.broadcast_to(z, t.dims);
  }

  ir::Value* leafValue(const TV& side, const MergeLeaf& m, const Loc& loc) {
    if (!side.defined()) return placeholder(m.type);
    return materialize(side, loc, m.type.dtype);
  }

  // Merges the states after the two regions of a cond op; yields and results.
  void mergeCond(ir::Op& op, const FrameState& s0, const FrameState& st, const FrameState& se, const Loc& loc) {
    std::vector<MergeLeaf> leaves;
    FrameState m = s0;
    for (size_t i = 0; i < st.slots.size(); ++i)
      m.slots[i] = mergeTV(st.slots[i], se.slots[i], fr().slotNames[i], loc, leaves, !s0.slots[i].defined());
    m.ret = mergeTV(st.ret, se.ret, "the return value", loc, leaves, false);
    m.retFlag = mergeTV(st.retFlag, se.retFlag, "return", loc, leaves, false);
    m.brk = mergeTV(st.brk, se.brk, "break", loc, leaves, false);
    m.cont = mergeTV(st.cont, se.cont, "continue", loc, leaves, false);
    for (int side = 0; side < 2; ++side) {
      b_.set_insertion_end(op.region(side).block());
      std::vector<ir::Value*> ys;
      for (auto& l : leaves) ys.push_back(leafValue(side == 0 ? l.a : l.b, l, loc));
      setLoc(loc);
      b_.yield(ys);
    }
    std::vector<ir::Value*> results;
    for (auto& l : leaves) results.push_back(op.add_result(l.type));
    for (auto& s : m.slots) fill(s, results);
    fill(m.ret, results), fill(m.retFlag, results), fill(m.brk, results), fill(m.cont, results);
    restore(m);
  }

  // if p { thenFn() } else { elseFn() } with p dynamic.
  void emitCond(const TV& p, const std::function<void()>& thenFn, const std::function<void()>& elseFn, const Loc& loc) {
    ir::Value* pv = materialize(p, loc);
    setLoc(loc);
    ir::Op& op = b_.cond(pv, {});
    ir::Block& outer = b_.block();
    FrameState s0 = save();
    b_.set_insertion_end(op.region(0).block());
    thenFn();
    FrameState st = save();
    restore(s0);
    b_.set_insertion_end(op.region(1).block());
    elseFn();
    FrameState se = save();
    restore(s0);
    mergeCond(op, s0, st, se, loc);
    // (re-read: a gradient taken inside the branches may have inserted stack_new before op)
    b_.set_insertion(outer, outer.index_of(&op) + 1);
  }

  // The value of `thenFn()` if p else of `elseFn()` (p dynamic), as one trace value.
  TV condValue(const TV& p, const std::function<TV()>& thenFn, const std::function<TV()>& elseFn, const Loc& loc) {
    // Carry the value through the return slot of a scratch state.
    FrameState s0 = save();
    TV saved = fr().st.ret;
    emitCond(p, [&] { fr().st.ret = thenFn(); }, [&] { fr().st.ret = elseFn(); }, loc);
    TV r = fr().st.ret;
    fr().st.ret = saved;
    (void)s0;
    return r;
  }

  // ---------------------------------------------------------------- statements

  bool stops() {
    auto& s = fr().st;
    return isStaticTrue(s.retFlag) || isStaticTrue(s.brk) || isStaticTrue(s.cont);
  }
  bool flagsDynamic() {
    auto& s = fr().st;
    return s.retFlag.isDyn() || s.brk.isDyn() || s.cont.isDyn();
  }
  TV anyFlag(const Loc& loc) {
    auto& s = fr().st;
    return orTV(orTV(s.retFlag, s.brk, loc), s.cont, loc);
  }

  void execBlock(const std::vector<StmtPtr>& stmts, size_t from) {
    for (size_t i = from; i < stmts.size(); ++i) {
      exec(*stmts[i]);
      if (stops()) return;
      if (flagsDynamic() && i + 1 < stmts.size()) {
        const Loc& loc = stmts[i + 1]->loc;
        TV go = notTV(anyFlag(loc), loc);
        emitCond(go, [&] { execBlock(stmts, i + 1); }, [] {}, loc);
        return;
      }
    }
  }

  void execBody(const Stmt& s) {
    if (s.kind == StmtKind::Block) execBlock(s.stmts, 0);
    else exec(s);
  }

  void assignSlot(int slot, TV v, const Loc& loc, const std::string& name) {
    auto& f = fr();
    if (slot < 0 || static_cast<size_t>(slot) >= f.st.slots.size()) fail(loc, "internal: bad local slot");
    f.st.slots[static_cast<size_t>(slot)] = std::move(v);
    if (!name.empty()) f.slotNames[static_cast<size_t>(slot)] = name;
    f.assignLocs[static_cast<size_t>(slot)] = loc;
  }

  std::vector<TV> unpack(const TV& v, size_t n, const Loc& loc) {
    TV x = expandStatic(v);
    if (x.k == TV::Seq) {
      if (x.items.size() != n) fail(loc, fmt::format("cannot unpack {} values into {} names", x.items.size(), n));
      return x.items;
    }
    if (isNumeric(v)) {
      TensorType t = typeOf(v);
      if (t.rank() < 1 || !t.dims[0].is_known() || t.dims[0].size != static_cast<int64_t>(n))
        fail(loc, fmt::format("cannot unpack {} into {} names", t.str(), n));
      std::vector<TV> r;
      for (size_t i = 0; i < n; ++i) r.push_back(indexInt(v, TV::of(Value::i64(static_cast<int64_t>(i), true)), loc));
      return r;
    }
    fail(loc, fmt::format("cannot unpack a {}", describe(v)));
  }

  void bindPattern(const Pattern& p, const TV& v, const Loc& loc) {
    if (p.kind == Pattern::Name) {
      if (p.global) fail(loc, "a graph fn cannot bind a top-level name");
      assignSlot(p.slot, v, p.loc, p.name);
      return;
    }
    std::vector<TV> items = unpack(v, p.elems.size(), loc);
    for (size_t i = 0; i < items.size(); ++i) bindPattern(p.elems[i], items[i], loc);
  }

  void exec(const Stmt& s) {
    switch (s.kind) {
      case StmtKind::Let: bindPattern(s.pattern, eval(*s.exprs[0]), s.loc); return;
      case StmtKind::Assign: assign(s); return;
      case StmtKind::ExprStmt: eval(*s.exprs[0]); return;
      case StmtKind::Block: execBlock(s.stmts, 0); return;
      case StmtKind::If: {
        TV c = condition(eval(*s.exprs[0]), s.exprs[0]->loc);
        if (c.isStatic()) {
          if (c.sv.asBool()) execBody(*s.body);
          else if (s.orelse) execBody(*s.orelse);
          return;
        }
        emitCond(c, [&] { execBody(*s.body); }, [&] { if (s.orelse) execBody(*s.orelse); }, s.loc);
        return;
      }
      case StmtKind::While: whileLoop(s); return;
      case StmtKind::For: forLoop(s); return;
      case StmtKind::Return: {
        TV v = s.exprs.empty() ? TV::of(Value()) : eval(*s.exprs[0]);
        if (fr().decl) v = checkReturn(*fr().decl, std::move(v), fr().name, s.loc);
        fr().st.ret = v;
        fr().st.retFlag = staticBool(true);
        return;
      }
      case StmtKind::Break: fr().st.brk = staticBool(true); return;
      case StmtKind::Continue: fr().st.cont = staticBool(true); return;
      case StmtKind::With: withTape(s); return;
      case StmtKind::Fn: {
        // A nested fn is a local bound where it stands (as a lambda is; calls inline it).
        const FnDecl& d = *s.fn;
        TV f;
        f.k = TV::Fn;
        f.fn = &d;
        for (const Ref& r : d.captures) {
          switch (r.kind) {
            case RefKind::Local: f.items.push_back(fr().st.slots.at(static_cast<size_t>(r.index))); break;
            case RefKind::Capture: f.items.push_back(fr().captures.at(static_cast<size_t>(r.index))); break;
            case RefKind::Self: fail(d.loc, fmt::format("recursion is not supported in graph fn '{}'", d.name));
            default: fail(d.loc, "this fn cannot be traced in a graph fn");
          }
        }
        // Defaults are evaluated where the fn is declared, in the enclosing scope (as the VM does).
        for (auto& p : d.params) f.traceDefaults.push_back(p.deflt ? eval(*p.deflt) : TV());
        if (d.globalSlot < 0 || static_cast<size_t>(d.globalSlot) >= fr().st.slots.size())
          fail(s.loc, "internal: a nested fn without a slot");
        fr().st.slots[static_cast<size_t>(d.globalSlot)] = f;
        return;
      }
      case StmtKind::Import: fail(s.loc, "import inside a graph fn");
    }
  }

  void assign(const Stmt& s) {
    const Expr& target = *s.exprs[0];
    auto compound = [&](const TV& cur) -> TV {
      TV rhs = eval(*s.exprs[1]);
      if (s.assignOp == '=') return rhs;
      BinOp op = s.assignOp == '+' ? BinOp::Add : s.assignOp == '-' ? BinOp::Sub : s.assignOp == '*' ? BinOp::Mul : BinOp::Div;
      return binop(rtBinary(op), cur, rhs, s.loc, binOpcode(op));
    };
    if (target.kind == ExprKind::Name) {
      if (target.ref.kind != RefKind::Local) fail(target.loc, fmt::format("cannot assign to '{}' in a graph fn", target.str));
      TV cur = s.assignOp == '=' ? TV() : fr().st.slots.at(static_cast<size_t>(target.ref.index));
      assignSlot(target.ref.index, compound(cur), s.loc, target.str);
      return;
    }
    const Expr& base = *target.kids[0];
    if (base.kind != ExprKind::Name || base.ref.kind != RefKind::Local)
      fail(target.loc, "only assignments to a local variable, its elements or its fields are supported in graph fns");
    TV cur = fr().st.slots.at(static_cast<size_t>(base.ref.index));
    if (target.kind == ExprKind::Field) {
      TV r = expandStatic(cur);
      if (r.k != TV::Rec) fail(target.loc, fmt::format("a {} has no field '{}'", describe(cur), target.str));
      auto it = std::find(r.names->begin(), r.names->end(), target.str);
      if (it == r.names->end()) fail(target.loc, fmt::format("the record has no field '{}'", target.str));
      size_t k = static_cast<size_t>(it - r.names->begin());
      r.items[k] = compound(r.items[k]);
      assignSlot(base.ref.index, r, s.loc, base.str);
      return;
    }
    // x[i, j] = v
    TV old = s.assignOp == '=' ? TV() : indexTV(cur, target, target.loc);
    TV v = compound(old);
    assignSlot(base.ref.index, updateTV(cur, target, v, s.loc), s.loc, base.str);
  }

  // ---------------------------------------------------------------- loops

  struct Carried {
    enum Kind : uint8_t { Slot, Ret, RetFlag, Brk, Counter } kind;
    int slot = -1;
    TV* ref(Frame& f, TV& counter) {
      switch (kind) {
        case Slot: return &f.st.slots[static_cast<size_t>(slot)];
        case Ret: return &f.st.ret;
        case RetFlag: return &f.st.retFlag;
        case Brk: return &f.st.brk;
        default: return &counter;
      }
    }
  };

  struct LeafSpec {
    TensorType type;
    bool weak;
    std::vector<bool> widened = {};  // dims made fresh symbols by this loop: any size fits
  };

  // Numeric leaves of a carried value (non-numeric statics stay static).
  void leavesOf(const TV& t, std::vector<TV>& out) {
    TV x = expandStatic(t);
    if (isNumeric(x)) { out.push_back(x); return; }
    if (x.k == TV::Seq || x.k == TV::Rec) for (auto& i : x.items) leavesOf(i, out);
  }
  // The skeleton of t with its numeric leaves replaced by vals[k++].
  TV rebuild(const TV& t, const std::vector<ir::Value*>& vals, const std::vector<LeafSpec>& specs, size_t& k) {
    TV x = expandStatic(t);
    if (isNumeric(x)) {
      size_t i = k++;
      return TV::dyn(vals[i], specs[i].weak);
    }
    if (x.k == TV::Seq || x.k == TV::Rec) {
      for (auto& i : x.items) i = rebuild(i, vals, specs, k);
      return x;
    }
    return t;
  }

  // The rest of a loop as an IR while. `cond` gives the loop condition (inside the cond
  // region), `body` runs one iteration; `counter` (Counter carried) is the hidden index of a
  // for loop (Undef for a while).
  void dynamicLoop(const Stmt& s, const std::function<TV(TV&)>& cond, const std::function<void(TV&)>& body, TV counter) {
    Frame& f = fr();
    std::set<int> assigned, declared;
    bool hasBreak = false, hasReturn = false;
    scanAssigned(*s.body, assigned, declared, hasBreak, hasReturn, 0);
    std::vector<Carried> carried;
    for (int slot : assigned)
      if (!declared.count(slot) && f.st.slots[static_cast<size_t>(slot)].defined()) carried.push_back({Carried::Slot, slot});
    if (counter.defined()) carried.push_back({Carried::Counter});
    if (hasBreak || f.st.brk.isDyn()) carried.push_back({Carried::Brk});
    if (hasReturn || f.st.retFlag.isDyn()) {
      carried.push_back({Carried::RetFlag});
      carried.push_back({Carried::Ret});
    }
    // Leaf types, refined by retracing until the body keeps them.
    std::vector<std::vector<LeafSpec>> specs(carried.size());
    TV retSkeleton;  // the structure of a value returned from inside the loop, once seen
    for (size_t c = 0; c < carried.size(); ++c) {
      std::vector<TV> ls;
      leavesOf(*carried[c].ref(f, counter), ls);
      for (auto& l : ls) specs[c].push_back(LeafSpec{typeOf(l), weakOf(l)});
    }
    for (int attempt = 0;; ++attempt) {
      if (attempt >= kMaxLoopAttempts) fail(s.loc, "the carried values of this loop do not settle");
      FrameState s0 = save();
      TV counter0 = counter;
      ir::Block& outer = b_.block();
      // Initial values.
      std::vector<ir::Value*> inits;
      std::vector<TensorType> types;
      std::vector<LeafSpec> flat;
      for (size_t c = 0; c < carried.size(); ++c) {
        TV* r = carried[c].ref(f, counter);
        std::vector<TV> ls;
        leavesOf(*r, ls);
        if (carried[c].kind == Carried::Ret && !r->defined()) ls.clear();
        for (size_t i = 0; i < specs[c].size(); ++i) {
          const LeafSpec& sp = specs[c][i];
          if (i < ls.size()) inits.push_back(materialize(ls[i], s.loc, sp.type.dtype));
          else { setLoc(s.loc); inits.push_back(placeholder(sp.type)); }
          types.push_back(sp.type);
          flat.push_back(sp);
        }
      }
      setLoc(s.loc);
      ir::Op& op = b_.while_loop(inits, types);
      // Binds the carried components to the block args of region `r`.
      auto bindArgs = [&](int r) {
        std::vector<ir::Value*> args = op.region(static_cast<size_t>(r)).block().args();
        size_t k = 0;
        for (size_t c = 0; c < carried.size(); ++c) {
          TV* ref = carried[c].ref(f, counter);
          TV skeleton = *ref;
          if (carried[c].kind == Carried::Ret && !skeleton.defined()) {
            if (specs[c].empty()) continue;
            skeleton = retSkeleton;  // the structure discovered on an earlier attempt
          }
          std::vector<LeafSpec> sp(flat.begin() + static_cast<long>(k), flat.begin() + static_cast<long>(k + specs[c].size()));
          std::vector<ir::Value*> vals(args.begin() + static_cast<long>(k), args.begin() + static_cast<long>(k + specs[c].size()));
          size_t j = 0;
          *ref = rebuild(skeleton, vals, sp, j);
          k += specs[c].size();
        }
      };
      // cond region
      b_.set_insertion_end(op.region(0).block());
      bindArgs(0);
      {
        TV stop = orTV(f.st.retFlag, f.st.brk, s.loc);
        TV p;
        if (isStaticFalse(stop)) p = condition(cond(counter), s.loc);
        else p = condValue(notTV(stop, s.loc), [&] { return condition(cond(counter), s.loc); },
                           [] { return staticBool(false); }, s.loc);
        ir::Value* pv = materialize(p, s.loc, DType::Bool);
        setLoc(s.loc);
        b_.yield({pv});
      }
      restore(s0);
      counter = counter0;
      // body region
      b_.set_insertion_end(op.region(1).block());
      bindArgs(1);
      f.st.cont = staticBool(false);
      body(counter);
      f.st.cont = staticBool(false);
      // What the body leaves, against the carried types.
      bool retry = false;
      std::vector<ir::Value*> ys;
      for (size_t c = 0; c < carried.size(); ++c) {
        TV* ref = carried[c].ref(f, counter);
        if (carried[c].kind == Carried::Ret && !ref->defined()) {
          for (auto& sp : specs[c]) ys.push_back(placeholder(sp.type));
          continue;
        }
        std::vector<TV> ls;
        leavesOf(*ref, ls);
        if (carried[c].kind == Carried::Ret && specs[c].empty()) {
          // The first return seen: its structure (a tensor, a tuple, ...) is carried from now on.
          if (ls.empty()) fail(s.loc, "only tensors and containers of them can be returned from inside a data-dependent loop");
          retSkeleton = *ref;
          for (auto& l : ls) specs[c].push_back(LeafSpec{typeOf(l), weakOf(l)});
          retry = true;
          continue;
        }
        if (ls.size() != specs[c].size()) fail(carriedLoc(carried[c], s), "a carried value changes its structure in the loop");
        for (size_t i = 0; i < ls.size(); ++i) {
          LeafSpec& sp = specs[c][i];
          TensorType t = typeOf(ls[i]);
          bool w = weakOf(ls[i]);
          if (t.dtype != sp.type.dtype || t.rank() != sp.type.rank()) {
            if (sp.weak && !w && t.rank() == sp.type.rank()) {
              sp.type.dtype = t.dtype;
              sp.weak = false;
              retry = true;
              continue;
            }
            if (!(w && t.rank() == sp.type.rank())) {
              std::string name = carriedName(carried[c]);
              fail(carriedLoc(carried[c], s),
                   fmt::format("'{}' changes from {} to {} in the loop; a carried value must keep its dtype and rank",
                               name, sp.type.str(), t.str()));
            }
          }
          // A dim that changes in the body becomes a fresh symbol (no other value has it, so
          // nothing assumes its size): a loop-carried tensor may shrink or grow.
          sp.widened.resize(t.dims.size(), false);
          for (size_t d = 0; d < t.dims.size(); ++d)
            if (!(t.dims[d] == sp.type.dims[d]) && !sp.widened[d]) {
              sp.type.dims[d] = Dim::symbolic(f_.fresh_sym());
              sp.widened[d] = true;
              retry = true;
            }
          if (!retry) ys.push_back(materialize(ls[i], s.loc, sp.type.dtype));
        }
      }
      if (retry) {
        for (size_t r = 0; r < 2; ++r) op.region(r).block().drop_all_references();
        size_t at = outer.index_of(&op);
        outer.erase(at);
        restore(s0);
        counter = counter0;
        b_.set_insertion(outer, at);
        continue;
      }
      setLoc(s.loc);
      b_.yield(ys);
      restore(s0);
      counter = counter0;
      b_.set_insertion(outer, outer.index_of(&op) + 1);
      std::vector<ir::Value*> results = op.results();
      size_t k = 0;
      for (size_t c = 0; c < carried.size(); ++c) {
        TV* ref = carried[c].ref(f, counter);
        TV skeleton = *ref;
        if (carried[c].kind == Carried::Ret && !skeleton.defined()) {
          if (specs[c].empty()) continue;
          skeleton = retSkeleton;
        }
        std::vector<LeafSpec> sp(flat.begin() + static_cast<long>(k), flat.begin() + static_cast<long>(k + specs[c].size()));
        std::vector<ir::Value*> vals(results.begin() + static_cast<long>(k), results.begin() + static_cast<long>(k + specs[c].size()));
        size_t j = 0;
        *ref = rebuild(skeleton, vals, sp, j);
        k += specs[c].size();
      }
      f.st.brk = staticBool(false);
      f.st.cont = staticBool(false);
      return;
    }
  }

  std::string carriedName(const Carried& c) {
    switch (c.kind) {
      case Carried::Slot: return fr().slotNames[static_cast<size_t>(c.slot)];
      case Carried::Ret: return "the return value";
      default: return "a loop flag";
    }
  }
  Loc carriedLoc(const Carried& c, const Stmt& s) {
    if (c.kind == Carried::Slot) {
      Loc l = fr().assignLocs[static_cast<size_t>(c.slot)];
      if (l.valid()) return l;
    }
    return s.loc;
  }

  // After one statically unrolled iteration: whether to go on statically.
  enum class After { Next, Stop, Dynamic };
  After afterIteration() {
    auto& st = fr().st;
    st.cont = staticBool(false);
    if (isStaticTrue(st.brk)) {
      st.brk = staticBool(false);
      return After::Stop;
    }
    if (isStaticTrue(st.retFlag)) return After::Stop;
    if (st.brk.isDyn() || st.retFlag.isDyn()) return After::Dynamic;
    return After::Next;
  }

  void whileLoop(const Stmt& s) {
    const Expr& ce = *s.exprs[0];
    auto cond = [&](TV&) { return eval(ce); };
    auto body = [&](TV&) { execBody(*s.body); };
    if (!forced_.count(&s)) {
      for (int iter = 0;; ++iter) {
        TV c = condition(eval(ce), ce.loc);
        if (!c.isStatic()) break;
        if (!c.sv.asBool()) return;
        if (iter >= kMaxUnroll) {
          forced_.insert(&s);
          throw Restart{};
        }
        fr().st.cont = staticBool(false);
        execBody(*s.body);
        After a = afterIteration();
        if (a == After::Stop) return;
        if (a == After::Dynamic) break;
      }
    }
    dynamicLoop(s, cond, body, TV());
  }

  void forLoop(const Stmt& s) {
    TV it = eval(*s.exprs[0]);
    const Loc& loc = s.loc;
    auto bindVar = [&](const TV& v) { bindPattern(s.pattern, v, loc); };
    // A range: unroll when short and static, else a while over a hidden counter.
    if (it.k == TV::Range || (it.isStatic() && it.sv.tag() == Tag::Range)) {
      TV start, stop, step;
      if (it.k == TV::Range) start = it.items[0], stop = it.items[1], step = it.items[2];
      else {
        auto* r = it.sv.as<RangeObj>();
        start = TV::of(Value::i64(r->start, true)), stop = TV::of(Value::i64(r->stop, true)), step = TV::of(Value::i64(r->step, true));
        if (r->length() <= kMaxUnroll && !forced_.count(&s)) {
          for (int64_t i = 0; i < r->length(); ++i) {
            bindVar(TV::of(Value::i64(r->at(i), true)));
            execBody(*s.body);
            After a = afterIteration();
            if (a == After::Stop) return;
            if (a == After::Dynamic) {
              start = TV::of(Value::i64(r->at(i + 1), true));
              break;
            }
          }
          if (!fr().st.brk.isDyn() && !fr().st.retFlag.isDyn()) return;
        }
      }
      TV counter = TV::dyn(materialize(start, loc, DType::I64), true);
      // The direction: known at trace time, or chosen at run time by the step's sign.
      std::optional<bool> upStatic;
      if (step.isStatic()) upStatic = step.sv.asInt() > 0;
      auto directed = [&](rt::BinaryOp whenUp, rt::BinaryOp whenDown, const TV& k, const TV& bound, const TV& boundDown) {
        if (upStatic) return binop(*upStatic ? whenUp : whenDown, k, *upStatic ? bound : boundDown, loc);
        TV up = binop(rt::BinaryOp::Gt, step, TV::of(Value::i64(0, true)), loc);
        TV a = binop(whenUp, k, bound, loc), b = binop(whenDown, k, boundDown, loc);
        ir::Value *uv = materialize(up, loc, DType::Bool), *av = materialize(a, loc, DType::Bool),
                  *bv = materialize(b, loc, DType::Bool);
        setLoc(loc);
        return TV::dyn(b_.select(uv, av, bv));
      };
      auto cond = [&](TV& k) { return directed(rt::BinaryOp::Lt, rt::BinaryOp::Gt, k, stop, stop); };
      // The next counter, k + step, unless that would pass i64's limit: then the loop is
      // over (the stop is within i64), and the counter becomes the stop instead of wrapping.
      TV lastUp, lastDown;
      if (upStatic) {
        int64_t by = step.sv.asInt();
        lastUp = lastDown = TV::of(Value::i64(*upStatic ? INT64_MAX - by : INT64_MIN - by, true));
      } else {  // integers wrap in the IR; the select keeps the meaningful one
        lastUp = binop(rt::BinaryOp::Sub, TV::of(Value::i64(INT64_MAX, true)), step, loc);
        lastDown = binop(rt::BinaryOp::Sub, TV::of(Value::i64(INT64_MIN, true)), step, loc);
      }
      auto body = [&](TV& k) {
        bindVar(k);
        execBody(*s.body);
        TV next = binop(rt::BinaryOp::Add, k, step, loc);
        TV past = directed(rt::BinaryOp::Gt, rt::BinaryOp::Lt, k, lastUp, lastDown);
        DType d = typeOf(next).dtype;
        ir::Value *pv = materialize(past, loc, DType::Bool), *nv = materialize(next, loc, d), *sv = materialize(stop, loc, d);
        setLoc(loc);
        k = TV::dyn(b_.select(pv, sv, nv), true);
      };
      dynamicLoop(s, cond, body, counter);
      return;
    }
    TV x = expandStatic(it);
    if (x.k == TV::Seq || x.k == TV::Rec) {
      for (auto& item : x.items) {
        bindVar(item);
        execBody(*s.body);
        After a = afterIteration();
        if (a == After::Stop) return;
        if (a == After::Dynamic) fail(loc, "a data-dependent break or return inside a loop over a list is not supported in graph fns yet");
      }
      return;
    }
    if (isNumeric(it)) {
      TensorType t = typeOf(it);
      if (t.rank() < 1) fail(s.exprs[0]->loc, "cannot iterate over a scalar");
      TV n = t.dims[0].is_known() ? TV::of(Value::i64(t.dims[0].size, true)) : TV::dyn(dimOf(it, 0, loc), true);
      int64_t first = 0;  // where the loop goes on at run time
      if (n.isStatic() && n.sv.rawInt() <= kMaxUnroll && !forced_.count(&s)) {
        bool dynamic = false;
        for (int64_t i = 0; i < n.sv.rawInt() && !dynamic; ++i) {
          bindVar(indexInt(it, TV::of(Value::i64(i, true)), loc));
          execBody(*s.body);
          After a = afterIteration();
          if (a == After::Stop) return;
          // A data-dependent break or return: the remaining elements in a while loop,
          // which stops on the flag.
          if (a == After::Dynamic) dynamic = true, first = i + 1;
        }
        if (!dynamic) return;
      }
      TV counter = TV::dyn(materialize(TV::of(Value::i64(first, true)), loc), true);
      auto cond = [&](TV& k) { return binop(rt::BinaryOp::Lt, k, n, loc); };
      auto body = [&](TV& k) {
        bindVar(indexInt(it, k, loc));
        execBody(*s.body);
        k = binop(rt::BinaryOp::Add, k, TV::of(Value::i64(1, true)), loc);
      };
      dynamicLoop(s, cond, body, counter);
      return;
    }
    fail(s.exprs[0]->loc, fmt::format("cannot iterate over a {} in a graph fn", describe(it)));
  }

  // ---------------------------------------------------------------- expressions

  TV eval(const Expr& e) {
    switch (e.kind) {
      case ExprKind::Int: return TV::of(Value::i64(e.ival, true));
      case ExprKind::Float: return TV::of(Value::weakFloat(e.fval));
      case ExprKind::Bool: return TV::of(Value::boolean(e.bval, true));
      case ExprKind::Str: return TV::of(makeStr(e.str));
      case ExprKind::None: return TV::of(Value());
      case ExprKind::FStr: {
        // Static parts are formatted now; run-time values become holes of a print format
        // (`{}`, or `{:spec}` formatted at run time by rt::format_with_spec), so an f-string
        // of run-time values is a Fmt value that print() takes apart.
        std::string s, format;
        std::vector<TV> holes;
        bool dynamic = false;
        for (auto& p : e.parts) {
          s += p.literal;
          format += escapeBraces(p.literal);
          if (!p.expr) continue;
          TV v = eval(*p.expr);
          if (v.isStatic()) {
            try {
              std::string text = p.spec.empty() ? str(v.sv) : formatWithSpec(v.sv, p.spec);
              s += text;
              format += escapeBraces(text);
            } catch (const rt::Error& err) {
              fail(p.expr->loc, err.what());
            }
            continue;
          }
          dynamic = true;
          if (v.isDyn()) {
            if (p.spec.find_first_of("{}") != std::string::npos) fail(p.expr->loc, "a format spec cannot contain braces");
            holes.push_back(v);
            format += p.spec.empty() ? std::string("{}") : fmt::format("{{:{}}}", p.spec);
            continue;
          }
          if (!p.spec.empty()) fail(p.expr->loc, fmt::format("a format spec needs a number, got a {}", describe(v)));
          std::vector<ir::Value*> hs;
          format += formatOf(v, hs, p.expr->loc, true);
          for (ir::Value* h : hs) holes.push_back(TV::dyn(h));
        }
        if (!dynamic) return TV::of(makeStr(s));
        TV t;
        t.k = TV::Fmt;
        t.sv = makeStr(format);
        t.items = std::move(holes);
        return t;
      }
      case ExprKind::Name: return name(e);
      case ExprKind::Tuple:
      case ExprKind::List: {
        if (e.kind == ExprKind::List && e.isTensorLit) return TV::of(tensorLiteral(e));
        std::vector<TV> items;
        for (auto& k : e.kids) items.push_back(eval(*k));
        return makeSeq(e.kind == ExprKind::List ? Tag::List : Tag::Tuple, std::move(items));
      }
      case ExprKind::Record: {
        std::vector<TV> items;
        for (auto& k : e.kids) items.push_back(eval(*k));
        TV r; r.k = TV::Rec;
        r.names = std::make_shared<const std::vector<std::string>>(e.names);
        r.items = std::move(items);
        return normalize(r);
      }
      case ExprKind::Lambda: {
        TV f; f.k = TV::Fn; f.fn = e.fn.get();
        for (const Ref& r : e.fn->captures) {
          switch (r.kind) {
            case RefKind::Local: f.items.push_back(fr().st.slots.at(static_cast<size_t>(r.index))); break;
            case RefKind::Capture: f.items.push_back(fr().captures.at(static_cast<size_t>(r.index))); break;
            default: fail(e.loc, "this lambda cannot be traced in a graph fn");
          }
        }
        for (auto& p : e.fn->params) f.traceDefaults.push_back(p.deflt ? eval(*p.deflt) : TV());
        return f;
      }
      case ExprKind::Unary: {
        TV x = eval(*e.kids[0]);
        if (e.unop == UnOp::Not) return notTV(condition(x, e.kids[0]->loc), e.loc);
        return unop(e.unop == UnOp::Neg ? rt::UnaryOp::Neg : rt::UnaryOp::BitNot, x, e.loc);
      }
      case ExprKind::Binary: return binary(e);
      case ExprKind::Call: return call(e);
      case ExprKind::Index: return indexTV(eval(*e.kids[0]), e, e.loc);
      case ExprKind::Field: return field(e);
    }
    fail(e.loc, "unsupported expression in a graph fn");
  }

  TV makeSeq(Tag tag, std::vector<TV> items) {
    TV r; r.k = TV::Seq; r.seqTag = tag; r.items = std::move(items);
    return normalize(r);
  }
  // A container of static items becomes one static value.
  TV normalize(TV r) {
    for (auto& i : r.items)
      if (!i.isStatic()) return r;
    std::vector<Value> vals;
    for (auto& i : r.items) vals.push_back(i.sv);
    if (r.k == TV::Rec) return TV::of(makeRecord(r.names, std::move(vals)));
    return TV::of(r.seqTag == Tag::List ? makeList(std::move(vals)) : makeTuple(std::move(vals)));
  }

  TV globalValue(int module, int slot, const std::string& nm, const Loc& loc) {
    const Value& g = vm_.globalValue(module, slot);
    if (g.isUndef()) fail(loc, fmt::format("'{}' is used before its definition", nm));
    return TV::of(g);
  }

  TV name(const Expr& e) {
    switch (e.ref.kind) {
      case RefKind::Local: {
        const TV& v = fr().st.slots.at(static_cast<size_t>(e.ref.index));
        if (!v.defined()) fail(e.loc, fmt::format("'{}' is used before its definition", e.str));
        return v;
      }
      case RefKind::Capture: return fr().captures.at(static_cast<size_t>(e.ref.index));
      case RefKind::Global: return globalValue(e.ref.module, e.ref.index, e.str, e.loc);
      case RefKind::Builtin: {
        int id = builtinId(e.str);
        DType dt;
        if (id >= 0 && builtinIsDType(id, dt)) return TV::of(Value::dtype(dt));
        if (id < 0) fail(e.loc, fmt::format("undefined name '{}'", e.str));
        return TV::of(Value::builtin(id));
      }
      case RefKind::Self: fail(e.loc, fmt::format("recursion is not supported in graph fn '{}'", e.str));
      default: fail(e.loc, fmt::format("'{}' cannot be used here in a graph fn", e.str));
    }
  }

  TV moduleMember(int module, const std::string& member, const Loc& loc) {
    auto& mods = vm_.modules();
    if (module < 0 || static_cast<size_t>(module) >= mods.size()) fail(loc, "unknown module");
    const Module& m = *mods[static_cast<size_t>(module)];
    for (size_t i = m.globalNames.size(); i-- > 0;)
      if (m.globalNames[i] == member) return globalValue(module, static_cast<int>(i), member, loc);
    fail(loc, fmt::format("module '{}' has no member '{}'", m.name, member));
  }

  TV binary(const Expr& e) {
    if (e.binop == BinOp::And || e.binop == BinOp::Or) {
      TV a = condition(eval(*e.kids[0]), e.kids[0]->loc);
      bool isAnd = e.binop == BinOp::And;
      if (a.isStatic()) {
        if (a.sv.asBool() != isAnd) return a;
        return condition(eval(*e.kids[1]), e.kids[1]->loc);
      }
      auto rhs = [&] { return condition(eval(*e.kids[1]), e.kids[1]->loc); };
      auto lhs = [&] { return a; };
      return isAnd ? condValue(a, rhs, lhs, e.loc) : condValue(a, lhs, rhs, e.loc);
    }
    TV a = eval(*e.kids[0]);
    TV b = eval(*e.kids[1]);
    if (e.binop == BinOp::MatMul) {
      if (a.isStatic() && b.isStatic() && !tapedStatic(a) && !tapedStatic(b))
        return staticCall(e.loc, [&] { return matmulValues(a.sv, b.sv); });
      ir::Value *x = dynStrong(a, e.loc), *y = dynStrong(b, e.loc);
      setLoc(e.loc);
      return TV::dyn(guarded(e.loc, [&] { return b_.matmul(x, y); }));
    }
    return binop(rtBinary(e.binop), a, b, e.loc, binOpcode(e.binop));
  }

  template <class F> TV staticCall(const Loc& loc, F&& f) {
    try {
      return TV::of(f());
    } catch (const rt::Error& err) {
      fail(loc, err.what());
    } catch (const ScriptError& err) {
      fail(loc, err.what());
    }
  }

  TV field(const Expr& e) {
    const Expr& base = *e.kids[0];
    if (base.kind == ExprKind::Name && base.ref.kind == RefKind::Module) return moduleMember(base.ref.index, e.str, e.loc);
    TV b = eval(base);
    return fieldOf(b, e.str, e.loc);
  }

  TV fieldOf(const TV& b, const std::string& nm, const Loc& loc) {
    if (b.isStatic()) return staticCall(loc, [&] { return fieldValue(b.sv, nm); });
    if (b.k == TV::Rec) {
      for (size_t i = 0; i < b.names->size(); ++i)
        if ((*b.names)[i] == nm) return b.items[i];
      fail(loc, fmt::format("the record has no field '{}'", nm));
    }
    if (b.isDyn()) {
      const TensorType& t = b.dv->type;
      if (nm == "rank") return TV::of(Value::i64(t.rank()));
      if (nm == "dtype") return TV::of(Value::dtype(t.dtype));
      if (nm == "shape") {
        if (auto s = t.static_shape()) return TV::of(fromTensor(rt::Tensor::from_vector(*s, {static_cast<int64_t>(s->size())})));
        std::vector<TV> dims;
        for (int64_t i = 0; i < t.rank(); ++i) dims.push_back(dimTV(b, i, loc));
        return stackScalars(dims, loc);
      }
      if (nm == "size") {
        TV n = TV::of(Value::i64(1));
        for (int64_t i = 0; i < t.rank(); ++i) n = binop(rt::BinaryOp::Mul, n, dimTV(b, i, loc), loc);
        return n;
      }
      fail(loc, fmt::format("a tensor has no field '{}' (it has shape, rank, size, dtype)", nm));
    }
    fail(loc, fmt::format("a {} has no field '{}'", describe(b), nm));
  }

  ir::Value* dimOf(const TV& x, int64_t axis, const Loc& loc) {
    setLoc(loc);
    return b_.dim(materialize(x, loc), axis);
  }
  TV dimTV(const TV& x, int64_t axis, const Loc& loc) {
    TensorType t = typeOf(x);
    axis = guarded(loc, [&] { return rt::normalize_axis(axis, t.rank()); });
    if (t.dims[static_cast<size_t>(axis)].is_known()) return TV::of(Value::i64(t.dims[static_cast<size_t>(axis)].size));
    return TV::dyn(dimOf(x, axis, loc));
  }

  TV stackScalars(const std::vector<TV>& xs, const Loc& loc) {
    std::vector<ir::Value*> parts;
    for (auto& x : xs) {
      ir::Value* v = materialize(x, loc, DType::I64);
      setLoc(loc);
      parts.push_back(b_.reshape(v, {Dim::known(1)}));
    }
    setLoc(loc);
    return TV::dyn(guarded(loc, [&] { return b_.concat(parts, 0); }));
  }

  // ---------------------------------------------------------------- indexing

  // An index as an i64 value: an integer (i32/i64), as eager mode requires; a float or bool
  // index is eager's error, never truncated.
  ir::Value* integerIndex(const TV& i, const Loc& loc) {
    if (isNumeric(i)) {
      DType d = typeOf(i).dtype;
      if (d == DType::I32 || d == DType::I64) return materialize(i, loc, DType::I64);
    }
    fail(loc, fmt::format("an index must be an integer, got {}", describe(i)));
  }

  TV indexInt(const TV& x, const TV& i, const Loc& loc) {
    if (x.isStatic() && i.isStatic()) return staticCall(loc, [&] { return iterItem(x.sv, i.sv.asInt()); });
    ir::Value* xv = materialize(x, loc);
    ir::Value* iv = integerIndex(i, loc);
    setLoc(loc);
    return TV::dyn(guarded(loc, [&] { return b_.index(xv, {iv}); }));
  }

  TV indexTV(const TV& base, const Expr& e, const Loc& loc) {
    // x.shape[k] without building the shape vector.
    const Expr& be = *e.kids[0];
    if (be.kind == ExprKind::Field && be.str == "shape" && e.subs.size() == 1 && !e.subs[0].isSlice) {
      TV inner = eval(*be.kids[0]);
      TV k = eval(*e.subs[0].index);
      if (isNumeric(inner) && k.isStatic() && k.sv.isScalar()) return dimTV(inner, k.sv.asInt(), loc);
    }
    TV b = expandStatic(base);
    if (b.k == TV::Seq || b.k == TV::Rec) {
      if (e.subs.size() != 1 || e.subs[0].isSlice) fail(loc, "only a single integer index is supported on a list in graph fns");
      TV k = eval(*e.subs[0].index);
      if (!k.isStatic()) fail(e.subs[0].loc, "a list index must be known at trace time in a graph fn");
      int64_t n = static_cast<int64_t>(b.items.size()), i = k.sv.asInt();
      if (i < 0) i += n;
      if (i < 0 || i >= n) fail(e.subs[0].loc, fmt::format("index {} is out of range for a list of length {}", k.sv.asInt(), n));
      return b.items[static_cast<size_t>(i)];
    }
    if (base.isStatic() && !base.sv.isNumeric()) {
      // strings etc.: only static indexing
      std::vector<Value> regs;
      std::vector<uint8_t> flags;
      for (auto& s : e.subs) {
        if (s.isSlice) fail(s.loc, "slices of this value are not supported in graph fns");
        TV k = eval(*s.index);
        if (!k.isStatic()) fail(s.loc, "this index must be known at trace time");
        regs.push_back(k.sv);
        flags.push_back(0);
      }
      return staticCall(loc, [&] { return indexValue(base.sv, flags, regs.data()); });
    }
    if (!isNumeric(base)) fail(loc, fmt::format("cannot index a {}", describe(base)));
    TensorType t = typeOf(base);
    // Evaluate subscripts.
    struct Sub { bool slice; TV idx; int64_t start, stop, step; TV lo = {}, hi = {}; };
    std::vector<Sub> subs;
    bool allStatic = base.isStatic();
    for (auto& s : e.subs) {
      if (!s.isSlice) {
        TV k = eval(*s.index);
        if (isNumeric(k) && typeOf(k).rank() > 0) {
          if (e.subs.size() != 1) fail(s.loc, "a tensor index must be the only subscript in graph fns");
          if (base.isStatic() && k.isStatic()) return staticCall(loc, [&] { std::vector<Value> r{k.sv}; std::vector<uint8_t> f{0}; return indexValue(base.sv, f, r.data()); });
          return gatherTV(base, k, 0, loc);
        }
        allStatic = allStatic && k.isStatic();
        subs.push_back(Sub{false, k, 0, 0, 0});
        continue;
      }
      int64_t start, stop, step;
      TV lo, hi;
      sliceBounds(s, start, stop, step, &lo, &hi);
      allStatic = allStatic && !lo.defined() && !hi.defined();
      subs.push_back(Sub{true, TV(), start, stop, step, lo, hi});
    }
    if (allStatic) {
      std::vector<Value> regs;
      std::vector<uint8_t> flags;
      for (size_t i = 0; i < e.subs.size(); ++i) {
        auto& s = e.subs[i];
        if (!s.isSlice) { regs.push_back(subs[i].idx.sv); flags.push_back(0); continue; }
        uint8_t f = kSubSlice;
        if (s.lo) f |= kSubLo, regs.push_back(eval(*s.lo).sv);
        if (s.hi) f |= kSubHi, regs.push_back(eval(*s.hi).sv);
        if (s.step) f |= kSubStep, regs.push_back(eval(*s.step).sv);
        flags.push_back(f);
      }
      return staticCall(loc, [&] { return indexValue(base.sv, flags, regs.data()); });
    }
    if (static_cast<int64_t>(subs.size()) > t.rank()) fail(loc, fmt::format("too many indices for a tensor of rank {}", t.rank()));
    ir::Value* x = materialize(base, loc);
    ir::IntList movedAxes;  // the source axes of the index operands, when they moved
    // Integer indices after a slice (x[:, i]): the indexed axes move to the front first
    // (a transpose), so that the index op takes leading integers and the slices follow in
    // their order.
    size_t nint = 0;
    while (nint < subs.size() && !subs[nint].slice) ++nint;
    bool later = false;
    for (size_t i = nint; i < subs.size(); ++i) later = later || !subs[i].slice;
    if (later) {
      ir::IntList perm;
      std::vector<Sub> ordered;
      for (size_t i = 0; i < subs.size(); ++i)
        if (!subs[i].slice) perm.push_back(static_cast<int64_t>(i)), ordered.push_back(subs[i]);
      for (int64_t a = 0; a < x->type.rank(); ++a)
        if (static_cast<size_t>(a) >= subs.size() || subs[static_cast<size_t>(a)].slice) {
          perm.push_back(a);
          if (static_cast<size_t>(a) < subs.size()) ordered.push_back(subs[static_cast<size_t>(a)]);
        }
      setLoc(loc);
      x = guarded(loc, [&] { return b_.transpose(x, perm); });
      subs = std::move(ordered);
      nint = 0;
      while (nint < subs.size() && !subs[nint].slice) ++nint;
      movedAxes.assign(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(nint));
    }
    if (nint > 0) {
      std::vector<ir::Value*> idx;
      for (size_t i = 0; i < nint; ++i) idx.push_back(integerIndex(subs[i].idx, loc));
      setLoc(loc);
      x = guarded(loc, [&] { return b_.index(x, idx); });
      if (!movedAxes.empty() && x->def()) x->def()->attrs["axes"] = movedAxes;
    }
    if (nint < subs.size()) {
      ir::IntList st, sp, stp, dyn;
      std::vector<TV> los, his;
      bool anyDyn = false;
      for (int64_t a = 0; a < x->type.rank(); ++a) {
        size_t k = nint + static_cast<size_t>(a);
        if (k < subs.size()) {
          st.push_back(subs[k].start), sp.push_back(subs[k].stop), stp.push_back(subs[k].step);
          los.push_back(subs[k].lo), his.push_back(subs[k].hi);
        } else {
          st.push_back(0), sp.push_back(ir::kSliceEnd), stp.push_back(1), los.emplace_back(), his.emplace_back();
        }
        dyn.push_back(los.back().defined() || his.back().defined());
        anyDyn = anyDyn || dyn.back();
      }
      if (anyDyn) {  // bounds known at run time: a dyn_slice, its sizes symbolic
        std::vector<ir::Value*> ops{x};
        for (ir::Value* v : dynBounds(dyn, st, sp, los, his, loc)) ops.push_back(v);
        setLoc(loc);
        x = guarded(loc, [&] {
          return b_.create_inferred(ir::OpKind::DynSlice, ops, {{"start", st}, {"stop", sp}, {"step", stp}, {"dynamic", dyn}})
              .result();
        });
      } else {
        setLoc(loc);
        x = guarded(loc, [&] { return b_.slice(x, st, sp, stp); });
      }
    }
    return TV::dyn(x);
  }

  // The start, stop and step of slice `s` (open ends: kSliceEnd and kSliceBegin as the
  // step's direction needs). The step must be known at trace time; a start or stop known
  // only at run time is left in lo / hi (an integer scalar) and its static value is open.
  void sliceBounds(const Subscript& s, int64_t& start, int64_t& stop, int64_t& step, TV* lo = nullptr, TV* hi = nullptr) {
    auto bound = [&](const ExprPtr& p, int64_t dflt, TV* dynOut) -> int64_t {
      if (!p) return dflt;
      TV v = eval(*p);
      if (v.isStatic() && v.sv.isScalar()) return v.sv.asInt();
      if (!dynOut || !isNumeric(v) || typeOf(v).rank() != 0)
        fail(p->loc, "slice bounds must be known at trace time in a graph fn");
      *dynOut = v;
      return dflt;
    };
    step = bound(s.step, 1, nullptr);
    if (step == 0) fail(s.loc, "slice step cannot be zero");
    start = bound(s.lo, step > 0 ? 0 : ir::kSliceEnd, lo);
    stop = bound(s.hi, step > 0 ? ir::kSliceEnd : ir::kSliceBegin, hi);
  }

  // The operands of a dyn_slice / dyn_slice_update for the axes in `dyn`: start and stop as
  // i64 scalars (run-time values, or the static bound as a constant).
  std::vector<ir::Value*> dynBounds(const ir::IntList& dyn, const ir::IntList& st, const ir::IntList& sp,
                                    const std::vector<TV>& los, const std::vector<TV>& his, const Loc& loc) {
    std::vector<ir::Value*> out;
    for (size_t i = 0; i < dyn.size(); ++i) {
      if (!dyn[i]) continue;
      auto one = [&](const TV& t, int64_t v) {
        if (t.defined()) return integerIndex(t, loc);
        setLoc(loc);
        return b_.constant(rt::Tensor::scalar(v));
      };
      out.push_back(one(los[i], st[i]));
      out.push_back(one(his[i], sp[i]));
    }
    return out;
  }

  // x[idx] and take(x, idx, axis) for an integer tensor idx: a `take` op (its gradient is
  // index_add). A boolean mask selects a data-dependent number of elements: not traceable.
  TV gatherTV(const TV& base, const TV& index, int64_t axis, const Loc& loc) {
    if (!isNumeric(base)) fail(loc, fmt::format("cannot index a {}", describe(base)));
    DType it = typeOf(index).dtype;
    if (it == DType::Bool)
      fail(loc, "indexing with a boolean mask is not supported in graph fns (the result's size depends on the data)");
    if (it != DType::I32 && it != DType::I64) fail(loc, fmt::format("indices must be integers, got {}", typeOf(index).str()));
    ir::Value* x = materialize(base, loc);
    ir::Value* idx = materialize(index, loc);
    int64_t rank = x->type.rank();
    axis = guarded(loc, [&] { return rt::normalize_axis(axis, rank); });
    setLoc(loc);
    return TV::dyn(guarded(loc, [&] { return b_.create_inferred(ir::OpKind::Take, {x, idx}, {{"axis", axis}}).result(); }));
  }

  // x[i, ..., a:b:c, ...] = v: the sub-tensor at the leading integer indices (an index op,
  // bounds-checked), the value broadcast to the slice and scattered into zeros of the
  // sub-tensor's shape, a mask scattered the same way, a select, and an update at the
  // integer indices — ops that all have gradients, so a tape sees through it.
  TV sliceUpdateTV(const TV& base, const Expr& target, const TV& v, const Loc& loc) {
    // Integer indices anywhere (x[:, i] = v): their axes move to the front (a transpose),
    // the update runs there, and the result moves back.
    std::vector<ir::Value*> idx;
    ir::IntList intAxes, sliceAxes, st, sp, stp, dyn;
    std::vector<TV> los, his;
    bool anyDyn = false;
    for (size_t k = 0; k < target.subs.size(); ++k) {
      const Subscript& s = target.subs[k];
      if (!s.isSlice) {
        TV i = eval(*s.index);
        if (!isNumeric(i) || typeOf(i).rank() != 0) fail(s.loc, "slice assignment needs integer indices or slices in graph fns");
        idx.push_back(integerIndex(i, loc));
        intAxes.push_back(static_cast<int64_t>(k));
        continue;
      }
      int64_t start, stop, step;
      TV lo, hi;
      sliceBounds(s, start, stop, step, &lo, &hi);
      st.push_back(start);
      sp.push_back(stop);
      stp.push_back(step);
      los.push_back(lo);
      his.push_back(hi);
      dyn.push_back(lo.defined() || hi.defined());
      anyDyn = anyDyn || dyn.back();
      sliceAxes.push_back(static_cast<int64_t>(k));
    }
    ir::Value* x = materialize(base, loc);
    setLoc(loc);
    int64_t rank = x->type.rank();
    if (static_cast<int64_t>(target.subs.size()) > rank) fail(loc, fmt::format("too many indices for a tensor of rank {}", rank));
    bool moved = !intAxes.empty() && !sliceAxes.empty() && intAxes.back() > sliceAxes.front();
    ir::IntList perm, inverse;
    if (moved) {
      perm = intAxes;
      for (int64_t a = 0; a < rank; ++a)
        if (std::find(intAxes.begin(), intAxes.end(), a) == intAxes.end()) perm.push_back(a);
      inverse.assign(static_cast<size_t>(rank), 0);
      for (size_t q = 0; q < perm.size(); ++q) inverse[static_cast<size_t>(perm[q])] = static_cast<int64_t>(q);
      x = guarded(loc, [&] { return b_.transpose(x, perm); });
    }
    ir::Value* sub = idx.empty() ? x : guarded(loc, [&] { return b_.index(x, idx); });
    if (moved && sub != x && sub->def()) sub->def()->attrs["axes"] = intAxes;
    while (static_cast<int64_t>(st.size()) < sub->type.rank()) {
      st.push_back(0), sp.push_back(ir::kSliceEnd), stp.push_back(1), dyn.push_back(0);
      los.emplace_back(), his.emplace_back();
    }
    ir::Value* val = materialize(v, loc, x->type.dtype);
    // A slice along an axis of symbolic size: its extent is known at run time too.
    for (size_t a = 0; a < dyn.size() && a < static_cast<size_t>(sub->type.rank()); ++a)
      if (!sub->type.dims[a].is_known() && !(st[a] == 0 && sp[a] == ir::kSliceEnd && stp[a] == 1)) dyn[a] = 1, anyDyn = true;
    if (anyDyn) {  // bounds known at run time: one dyn_slice_update (it has a gradient)
      std::vector<ir::Value*> ops{sub, val};
      for (ir::Value* bv : dynBounds(dyn, st, sp, los, his, loc)) ops.push_back(bv);
      setLoc(loc);
      ir::Value* out = guarded(loc, [&] {
        ir::Value* updated =
            b_.create_inferred(ir::OpKind::DynSliceUpdate, ops, {{"start", st}, {"stop", sp}, {"step", stp}, {"dynamic", dyn}})
                .result();
        return idx.empty() ? updated : b_.update(x, updated, idx);
      });
      if (moved) out = guarded(loc, [&] { return b_.transpose(out, inverse); });
      return TV::dyn(out);
    }
    ir::Value* out = guarded(loc, [&] {
      std::vector<ir::Dim> sdims = b_.slice(sub, st, sp, stp)->type.dims;
      ir::Value* placed = nullptr;
      ir::Value* mask = nullptr;
      try {
        placed = ir::autodiff::scatter_slice(b_, b_.broadcast_to(val, sdims), sub->type.dims, st, sp, stp);
        ir::Value* yes = b_.broadcast_to(b_.constant(rt::Tensor::scalar(true)), sdims);
        mask = ir::autodiff::scatter_slice(b_, yes, sub->type.dims, st, sp, stp);
      } catch (const ir::ShapeError&) {
        throw rt::Error("slice assignment along an axis of unknown size is not supported in graph fns yet");
      }
      ir::Value* updated = b_.select(mask, placed, sub);
      return idx.empty() ? updated : b_.update(x, updated, idx);
    });
    if (moved) out = guarded(loc, [&] { return b_.transpose(out, inverse); });
    return TV::dyn(out);
  }

  TV updateTV(const TV& base, const Expr& target, const TV& v, const Loc& loc) {
    if (!isNumeric(base)) fail(loc, "element assignment needs a tensor in graph fns");
    for (auto& s : target.subs)
      if (s.isSlice) return sliceUpdateTV(base, target, v, loc);
    std::vector<ir::Value*> idx;
    for (auto& s : target.subs) {
      TV k = eval(*s.index);
      if (!isNumeric(k) || typeOf(k).rank() != 0) fail(s.loc, "element assignment needs integer indices in graph fns");
      idx.push_back(integerIndex(k, loc));
    }
    ir::Value* x = materialize(base, loc);
    ir::Value* val = materialize(v, loc, x->type.dtype);
    setLoc(loc);
    return TV::dyn(guarded(loc, [&] { return b_.update(x, val, idx); }));
  }

  // ---------------------------------------------------------------- calls

  TV call(const Expr& e) {
    const Expr& ce = *e.kids[0];
    std::vector<TV> args;
    std::vector<std::string> kw;
    size_t nargs = e.kids.size() - 1;
    TV callee;
    bool method = false;
    if (ce.kind == ExprKind::Field && !(ce.kids[0]->kind == ExprKind::Name && ce.kids[0]->ref.kind == RefKind::Module)) {
      // x.f(args): a record field f holding a function, else f(x, args).
      TV self = eval(*ce.kids[0]);
      TV x = expandStatic(self);
      bool isField = false;
      if (x.k == TV::Rec)
        for (size_t i = 0; i < x.names->size(); ++i)
          if ((*x.names)[i] == ce.str) callee = x.items[i], isField = true;
      if (!isField && self.k == TV::Tape) {
        if (ce.str != "gradient") fail(ce.loc, fmt::format("a tape has no method '{}'", ce.str));
        for (size_t i = 0; i < nargs; ++i) {
          args.push_back(eval(*e.kids[i + 1]));
          const std::string& k = i < e.names.size() ? e.names[i] : std::string();
          if (!k.empty()) kw.push_back(k);
        }
        TV* target = nullptr;
        TV* sources = nullptr;
        size_t npos = args.size() - kw.size();
        if (npos > 0) target = &args[0];
        if (npos > 1) sources = &args[1];
        for (size_t k = 0; k < kw.size(); ++k) {
          if (kw[k] == "target") target = &args[npos + k];
          else if (kw[k] == "sources") sources = &args[npos + k];
          else fail(e.loc, fmt::format("gradient has no parameter '{}'", kw[k]));
        }
        if (!target || !sources) fail(e.loc, "gradient takes (target, sources)");
        return tapeGradient(tapes_.at(static_cast<size_t>(self.tape)), *target, *sources, e.loc);
      }
      if (!isField) {
        int mod = frames_.back()->decl ? frames_.back()->decl->module : 0;
        callee = lookupMethod(ce.str, mod, ce.loc);
        args.push_back(self);
        method = true;
      }
    } else {
      callee = eval(ce);
    }
    (void)method;
    for (size_t i = 0; i < nargs; ++i) {
      args.push_back(eval(*e.kids[i + 1]));
      const std::string& k = i < e.names.size() ? e.names[i] : std::string();
      if (!k.empty()) kw.push_back(k);
      else if (!kw.empty()) fail(e.kids[i + 1]->loc, "positional argument after a keyword argument");
    }
    return callTV(callee, args, kw, e.loc);
  }

  TV lookupMethod(const std::string& nm, int module, const Loc& loc) {
    auto& mods = vm_.modules();
    const Module& m = *mods.at(static_cast<size_t>(module));
    for (size_t i = m.globalNames.size(); i-- > 0;)
      if (m.globalNames[i] == nm) {
        const Value& g = vm_.globalValue(module, static_cast<int>(i));
        if (!g.isUndef()) return TV::of(g);
      }
    int id = builtinId(nm);
    if (id < 0) fail(loc, fmt::format("undefined name '{}'", nm));
    return TV::of(Value::builtin(id));
  }

  TV callTV(const TV& callee, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc) {
    if (callee.k == TV::Fn) return inlineCall(callee, args, kw, loc, callee.fn->name.empty() ? "<lambda>" : callee.fn->name);
    if (callee.k == TV::GradFn) return callGradFn(callee, args, kw, loc);
    if (callee.isStatic()) {
      const Value& f = callee.sv;
      if (f.tag() == Tag::Builtin) return builtin(f.builtinId(), args, kw, loc);
      if (f.tag() == Tag::DType) {
        if (args.size() != 1) fail(loc, "a dtype call takes one argument");
        return castTV(args[0], f.dtype(), loc);
      }
      if (f.tag() == Tag::Closure) {
        auto* c = f.as<ClosureObj>();
        TV fnv; fnv.k = TV::Fn; fnv.fn = c->proto->decl;
        for (auto& v : c->captures) fnv.items.push_back(TV::of(v));
        fnv.defaults = c->defaults;
        return inlineCall(fnv, args, kw, loc, c->proto->name);
      }
    }
    fail(loc, fmt::format("a {} cannot be called in a graph fn", describe(callee)));
  }

  TV inlineCall(const TV& fnv, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc,
                const std::string& nm) {
    const FnDecl* d = fnv.fn;
    if (!d) fail(loc, "this function cannot be traced");
    for (Frame* f : frames_)
      if (f->decl == d) fail(loc, fmt::format("recursion is not supported in graph fn '{}'", nm));
    if (frames_.size() >= kMaxInlineDepth) fail(loc, "calls nest too deeply in a graph fn");
    Frame f;
    f.decl = d;
    f.name = nm;
    f.callLoc = loc;
    f.captures = fnv.items;
    size_t n = static_cast<size_t>(std::max<int>(d->numLocals, static_cast<int>(d->params.size())));
    f.st.slots.resize(n);
    f.slotNames.resize(n);
    f.assignLocs.resize(n);
    f.st.retFlag = f.st.brk = f.st.cont = staticBool(false);
    size_t npos = args.size() - kw.size();
    if (npos > d->params.size()) fail(loc, fmt::format("{} takes {} arguments, got {}", nm, d->params.size(), npos));
    std::vector<bool> bound(d->params.size(), false);
    for (size_t i = 0; i < npos; ++i) f.st.slots[i] = args[i], bound[i] = true;
    for (size_t k = 0; k < kw.size(); ++k) {
      size_t i = 0;
      while (i < d->params.size() && d->params[i].name != kw[k]) ++i;
      if (i == d->params.size()) fail(loc, fmt::format("{} has no parameter '{}'", nm, kw[k]));
      f.st.slots[i] = args[npos + k];
      bound[i] = true;
    }
    for (size_t i = 0; i < d->params.size(); ++i) {
      f.slotNames[i] = d->params[i].name;
      if (bound[i]) continue;
      if (i < fnv.defaults.size() && d->params[i].deflt && !fnv.defaults[i].isUndef()) {
        f.st.slots[i] = TV::of(fnv.defaults[i]);
        continue;
      }
      if (i < fnv.traceDefaults.size() && fnv.traceDefaults[i].defined()) {
        f.st.slots[i] = fnv.traceDefaults[i];
        continue;
      }
      fail(loc, fmt::format("{}: missing argument '{}'", nm, d->params[i].name));
    }
    checkParamAnnotations(*d, f, nm, loc);
    frames_.push_back(&f);
    struct Pop {
      std::vector<Frame*>& v;
      ~Pop() { v.pop_back(); }
    } pop{frames_};
    execBody(*d->body);
    if (isStaticFalse(f.st.retFlag)) return checkReturn(*d, TV::of(Value()), nm, d->loc);
    if (!f.st.ret.defined()) fail(loc, fmt::format("{} does not return a value on every path", nm));
    return f.st.ret;  // checked at each `return`
  }

  // The result against the return annotation (eager checks it at `return`).
  TV checkReturn(const FnDecl& d, TV r, const std::string& nm, const Loc& loc) {
    if (!d.ret) return r;
    TraceDims dims;
    const Loc& at = loc;
    TV before = r;
    std::string head = fmt::format("fn '{}' must return {}, got ", nm, d.ret->str());
    if (!matchTV(r, *d.ret, dims, at)) fail(at, head + annotationText(before));
    checkDims(dims, head, before, at);
    return r;
  }

  // ---------------------------------------------------------------- annotations (SPEC §3)

  // Dims of one call's annotations: a named dim's first value (a size known at trace time
  // or an IR dim), and the equalities left for run time.
  struct TraceDims {
    std::map<std::string, std::pair<int64_t, ir::Value*>> named;
    std::vector<std::pair<ir::Value*, ir::Value*>> equal;
  };

  // Whether `v` matches `t`, as the VM's matchesAnnotation decides; a weak scalar is
  // converted to the annotated dtype in place. What the trace knows is decided now; a
  // symbolic dim that must equal a size or another dim adds a run-time check to `dims`.
  bool matchTV(TV& v, const TypeExpr& t, TraceDims& dims, const Loc& loc) {
    if (v.isStatic() && (v.sv.tag() == Tag::Record || v.sv.tag() == Tag::Tuple)) v = expandStatic(v);
    switch (t.kind) {
      case TypeExpr::Tensor: {
        auto dt = rt::dtype_from_name(t.dtype);
        if (!dt || !isNumeric(v)) return false;
        if (v.isStatic()) {
          if (v.sv.isScalar() || t.anyShape) {
            DimBindings none;
            Value x = v.sv;
            if (!matchesAnnotation(x, t, none)) return false;
            v = TV::of(x);
            return true;
          }
        }
        TensorType ty = typeOf(v);
        if (weakOf(v) && ty.rank() == 0) {
          if (!t.anyShape && !t.dims.empty()) return false;
          bool fits = rt::is_float(*dt) ? ty.dtype != DType::Bool
                      : *dt == DType::Bool ? ty.dtype == DType::Bool
                                           : !rt::is_float(ty.dtype) && ty.dtype != DType::Bool;
          if (!fits) return false;
          v = TV::dyn(materialize(v, loc, *dt), false);
          return true;
        }
        if (ty.dtype != *dt) return false;
        if (t.anyShape) return true;
        if (static_cast<size_t>(ty.rank()) != t.dims.size()) return false;
        auto dimValue = [&](size_t i) {
          setLoc(loc);
          return b_.dim(materialize(v, loc), static_cast<int64_t>(i));
        };
        for (size_t i = 0; i < t.dims.size(); ++i) {
          const tdl::Dim& d = t.dims[i];
          const ir::Dim& have = ty.dims[i];
          if (d.kind == tdl::Dim::Fixed) {
            if (have.is_known()) {
              if (have.size != d.size) return false;
            } else {
              dims.equal.emplace_back(dimValue(i), b_.constant(rt::Tensor::scalar(d.size)));
            }
          } else if (d.kind == tdl::Dim::Named) {
            auto it = dims.named.find(d.name);
            if (it == dims.named.end()) {
              dims.named.emplace(d.name, have.is_known() ? std::make_pair(have.size, static_cast<ir::Value*>(nullptr))
                                                         : std::make_pair(int64_t{-1}, dimValue(i)));
            } else if (have.is_known() && it->second.first >= 0) {
              if (have.size != it->second.first) return false;
            } else {
              ir::Value* a = have.is_known() ? b_.constant(rt::Tensor::scalar(have.size)) : dimValue(i);
              ir::Value* e = it->second.first >= 0 ? b_.constant(rt::Tensor::scalar(it->second.first)) : it->second.second;
              dims.equal.emplace_back(a, e);
            }
          }
        }
        return true;
      }
      case TypeExpr::Record: {
        if (v.k != TV::Rec || !v.names || v.names->size() != t.names.size()) return false;
        for (size_t i = 0; i < t.names.size(); ++i) {
          size_t k = 0;
          while (k < v.names->size() && (*v.names)[k] != t.names[i]) ++k;
          if (k == v.names->size() || !matchTV(v.items[k], *t.elems[i], dims, loc)) return false;
        }
        return true;
      }
      case TypeExpr::Tuple: {
        if (v.k != TV::Seq || v.seqTag != Tag::Tuple || v.items.size() != t.elems.size()) return false;
        for (size_t i = 0; i < t.elems.size(); ++i)
          if (!matchTV(v.items[i], *t.elems[i], dims, loc)) return false;
        return true;
      }
    }
    return false;
  }

  // Emits the run-time dim checks of `dims`: each an assert whose message is `head` and the
  // type of `v` as it is when the code runs (its symbolic dims filled in), as eager says it.
  void checkDims(TraceDims& dims, const std::string& head, const TV& v, const Loc& loc) {
    if (dims.equal.empty()) return;
    std::string format = escapeBraces(head);
    std::vector<ir::Value*> holes;
    if (v.isDyn()) {
      const ir::TensorType& ty = v.dv->type;
      format += std::string(rt::dtype_name(ty.dtype)) + "[";
      for (size_t i = 0; i < ty.dims.size(); ++i) {
        if (i) format += ", ";
        if (ty.dims[i].is_known()) {
          format += std::to_string(ty.dims[i].size);
        } else {
          format += "{}";
          setLoc(loc);
          holes.push_back(b_.dim(v.dv, static_cast<int64_t>(i)));
        }
      }
      format += "]";
    } else {
      format += escapeBraces(annotationText(v));
    }
    for (auto& [a, e] : dims.equal) {
      setLoc(loc);
      b_.assert_true(b_.binary(rt::BinaryOp::Eq, a, e), format, holes);
    }
    dims.equal.clear();
  }

  std::string annotationText(const TV& v) {
    if (v.k == TV::Rec) return "record";
    if (v.k == TV::Seq) return v.seqTag == Tag::List ? "list" : "tuple";
    return describe(v);
  }

  // The parameters of an inlined fn against their annotations (eager's checkParams).
  void checkParamAnnotations(const FnDecl& d, Frame& f, const std::string& nm, const Loc& loc) {
    TraceDims dims;
    for (size_t i = 0; i < d.params.size(); ++i) {
      if (!d.params[i].type) continue;
      TV& v = f.st.slots[i];
      TV before = v;
      std::string head = fmt::format("argument '{}' of fn '{}' must be {}, got ", d.params[i].name, nm,
                                     d.params[i].type->str());
      if (!matchTV(v, *d.params[i].type, dims, loc)) fail(loc, head + annotationText(before));
      checkDims(dims, head, before, loc);
    }
  }

  // ---------------------------------------------------------------- autodiff (SPEC §7)

  // A tape: the ops of one block that its `with` body traced (recorded at its end).
  struct TapeRec {
    ir::Block* block = nullptr;
    ir::Op* before = nullptr;  // the op just before the body's first op (null: none)
    bool done = false;
    std::vector<ir::Op*> ops;
    // Gradients of other tapes taken while this one recorded, inside a loop this tape began
    // in, and hoisted before that loop (so out of this tape's range): their ops, values, loc.
    struct Hoisted {
      std::vector<ir::Op*> ops;
      std::vector<ir::Value*> grads;
      Loc loc;
    };
    std::vector<Hoisted> hoisted;
  };
  std::deque<TapeRec> tapes_;  // (a deque: a TapeRec stays put while others are added)
  // The tapes recording now (`with` bodies and grad(f) calls being traced), outermost first.
  std::vector<TapeRec*> recording_;

  void tapeStart(TapeRec& t) {
    t.block = &b_.block();
    t.before = b_.pos() > 0 ? &t.block->op(b_.pos() - 1) : nullptr;
  }
  std::vector<ir::Op*> tapeOps(const TapeRec& t, const Loc& loc) {
    if (&b_.block() != t.block) fail(loc, "a tape's gradient must be taken in the block of its `with` (not inside a loop or branch of it)");
    size_t from = t.before ? t.block->index_of(t.before) + 1 : 0;
    std::vector<ir::Op*> ops;
    for (size_t i = from; i < b_.pos(); ++i) ops.push_back(&t.block->op(i));
    return ops;
  }

  void withTape(const Stmt& s) {
    TV ctx = eval(*s.exprs[0]);
    if (ctx.k != TV::Tape) fail(s.exprs[0]->loc, fmt::format("`with` needs a tape(), got {}", describe(ctx)));
    if (s.global) fail(s.loc, "internal: a global tape variable inside a graph fn");
    assignSlot(s.slot, ctx, s.loc, s.str);
    size_t idx = static_cast<size_t>(ctx.tape);
    tapeStart(tapes_[idx]);
    recording_.push_back(&tapes_[idx]);
    try {
      execBody(*s.body);
    } catch (...) {
      recording_.pop_back();
      throw;
    }
    recording_.pop_back();
    TapeRec& t = tapes_[idx];
    t.ops = tapeOps(t, s.loc);
    t.done = true;
  }

  // The float leaves of a sources structure, each as an IR value (null: a static leaf).
  void sourceLeaves(const TV& src, std::vector<const TV*>& out, const Loc& loc) {
    switch (src.k) {
      case TV::Dyn:
        if (!rt::is_float(src.dv->type.dtype))
          fail(loc, fmt::format("gradient source must be a float tensor, got {}", src.dv->type.str()));
        out.push_back(&src);
        return;
      case TV::Seq:
      case TV::Rec:
        for (auto& i : src.items) sourceLeaves(i, out, loc);
        return;
      case TV::Static:
        if (src.sv.isSeq() || src.sv.tag() == Tag::Record) fail(loc, "internal: unexpanded static sources");
        if (!src.sv.isNumeric() || !rt::is_float(typeOf(src).dtype))
          fail(loc, fmt::format("gradient source must be a float tensor, got {}", describe(src)));
        out.push_back(&src);
        return;
      default: fail(loc, fmt::format("gradient source must be a float tensor, got {}", describe(src)));
    }
  }
  static TV expandDeep(const TV& t) {
    TV x = expandStatic(t);
    if (x.k == TV::Seq || x.k == TV::Rec)
      for (auto& i : x.items) i = expandDeep(i);
    return x;
  }
  TV rebuildGrads(const TV& src, const std::vector<ir::Value*>& g, size_t& k) {
    if (src.k == TV::Seq || src.k == TV::Rec) {
      TV r = src;
      for (auto& i : r.items) i = rebuildGrads(i, g, k);
      return r;
    }
    return TV::dyn(g[k++], weakOf(src));
  }

  TV gradientOf(const std::vector<ir::Op*>& ops, const TV& target, const TV& sources0, const Loc& loc) {
    TV sources = expandDeep(sources0);
    std::vector<const TV*> leaves;
    sourceLeaves(sources, leaves, loc);
    setLoc(loc);
    std::vector<ir::Value*> srcv;
    for (const TV* l : leaves) srcv.push_back(l->isDyn() ? l->dv : materialize(*l, loc));
    ir::Value* tv = nullptr;
    if (target.isDyn()) {
      tv = target.dv;
      if (!rt::is_float(tv->type.dtype)) fail(loc, fmt::format("gradient target must be a float tensor, got {}", tv->type.str()));
    } else if (!target.isStatic() || !target.sv.isNumeric()) {
      fail(loc, fmt::format("gradient target must be a float tensor, got {}", describe(target)));
    }
    std::vector<ir::Value*> grads;
    guarded(loc, [&] {
      // A non-scalar target counts as its sum (SPEC §7): autodiff seeds it with ones. (A sum
      // added here would lie outside the tape's ops, and the gradient came out zero.)
      if (tv) {
        grads = ir::autodiff::gradient(b_, ops, tv, srcv);
      } else {
        for (ir::Value* s : srcv) grads.push_back(b_.broadcast_to(b_.constant(rt::zeros({}, s->type.dtype)), s->type.dims));
      }
      return 0;
    });
    size_t k = 0;
    return rebuildGrads(sources, grads, k);
  }

  TV tapeGradient(const TapeRec& t, const TV& target, const TV& sources, const Loc& loc) {
    if (!t.block) fail(loc, "the tape was not used in a `with` block");
    checkHoisted(t, sources, loc);
    // The backward of a loop or branch replays saved values once: taken inside a loop that
    // the tape's block does not contain, it is emitted before that loop (hoisted; it only
    // reads values of the tape's scope), else it is an error.
    bool regions = false;
    for (ir::Op* op : t.ops) regions = regions || op->num_regions() > 0;
    ir::Op* hoist = nullptr;  // the op of the tape's block that holds the current position
    bool inLoop = false;
    if (regions && t.done)
      for (ir::Block* bl = &b_.block(); bl && bl != t.block;) {
        ir::Op* p = bl->parent() ? bl->parent()->parent_op() : nullptr;
        if (!p) break;
        inLoop = inLoop || p->kind() == ir::OpKind::While;
        hoist = p;
        bl = p->parent();
      }
    if (inLoop && hoist && hoist->parent() == t.block) {
      auto visible = [&](const TV& v) {
        std::vector<TV> leaves;
        leavesOf(expandDeep(v), leaves);
        for (const TV& l : leaves) {
          if (!l.isDyn()) continue;
          ir::Block* db = l.dv->is_block_arg() ? l.dv->block() : l.dv->def()->parent();
          bool ok = false;
          for (ir::Block* bl = t.block; bl && !ok;) {
            ok = bl == db;
            ir::Op* p = bl->parent() ? bl->parent()->parent_op() : nullptr;
            bl = p ? p->parent() : nullptr;
          }
          if (!ok) return false;
        }
        return true;
      };
      if (!visible(target) || !visible(sources))
        fail(loc, "the gradient of a tape with loops or branches must be taken outside any loop the tape is not in");
      ir::Block& cur = b_.block();
      ir::Op* anchor = anchorOf(cur, b_.pos());
      size_t at = t.block->index_of(hoist);
      ir::Op* prev = at > 0 ? &t.block->op(at - 1) : nullptr;
      b_.set_insertion(*t.block, at);
      TV g = gradientOf(t.ops, target, sources, loc);
      b_.set_insertion(cur, positionAfter(cur, anchor));
      // The tapes that began inside `hoist` (recording here) do not record the hoisted
      // backward: their gradients check that it does not depend on their sources.
      std::vector<TapeRec*> inside;
      for (TapeRec* r : recording_)
        if (r != &t && r->block && r->block != t.block && enclosedBy(r->block, hoist)) inside.push_back(r);
      if (!inside.empty()) {
        TapeRec::Hoisted h;
        h.loc = loc;
        for (size_t i = prev ? t.block->index_of(prev) + 1 : 0; &t.block->op(i) != hoist; ++i) h.ops.push_back(&t.block->op(i));
        std::vector<TV> leaves;
        leavesOf(expandDeep(g), leaves);
        for (const TV& l : leaves)
          if (l.isDyn()) h.grads.push_back(l.dv);
        for (TapeRec* r : inside) r->hoisted.push_back(h);
      }
      return g;
    }
    return gradientOf(t.done ? t.ops : tapeOps(t, loc), target, sources, loc);
  }

  // Whether block b lies inside op (at any depth).
  static bool enclosedBy(ir::Block* b, ir::Op* op) {
    while (b && b->parent() && b->parent()->parent_op()) {
      ir::Op* p = b->parent()->parent_op();
      if (p == op) return true;
      b = p->parent();
    }
    return false;
  }

  // A gradient hoisted out of tape t (see tapeGradient) is computed outside it: t sees it as
  // a constant, where eager mode (t recording the backward pass) differentiates it. That
  // differs only where the hoisted backward reads one of t's sources: a compile error then.
  void checkHoisted(const TapeRec& t, const TV& sources, const Loc& loc) {
    if (t.hoisted.empty()) return;
    std::vector<TV> leaves;
    leavesOf(expandDeep(sources), leaves);
    std::set<ir::Value*> src;
    for (const TV& l : leaves)
      if (l.isDyn()) src.insert(l.dv);
    for (const TapeRec::Hoisted& h : t.hoisted) {
      std::set<ir::Value*> tainted = src;
      std::function<bool(ir::Block&)> reads = [&](ir::Block& b) {
        for (size_t i = 0; i < b.size(); ++i) {
          ir::Op& o = b.op(i);
          for (ir::Value* v : o.operands())
            if (tainted.count(v)) return true;
          for (size_t r = 0; r < o.num_regions(); ++r)
            if (reads(o.region(r).block())) return true;
        }
        return false;
      };
      for (ir::Op* op : h.ops) {
        bool hit = false;
        for (ir::Value* v : op->operands()) hit = hit || tainted.count(v) > 0;
        for (size_t r = 0; r < op->num_regions() && !hit; ++r) hit = reads(op->region(r).block());
        if (hit)
          for (ir::Value* v : op->results()) tainted.insert(v);
      }
      for (ir::Value* v : h.grads)
        if (tainted.count(v))
          fail(h.loc, fmt::format("this gradient of a tape with loops or branches, taken inside a loop the tape is not "
                                  "in, is computed once before that loop, outside the tape whose gradient at line {} "
                                  "differentiates it with respect to a value it reads; take it before the loop",
                                  loc.line));
    }
  }

  // A numeric static leaf made an IR value, so that gradients can flow from it.
  TV dynamize(const TV& t, const Loc& loc) {
    TV x = expandDeep(t);
    if (x.k == TV::Seq || x.k == TV::Rec) {
      for (auto& i : x.items) i = dynamize(i, loc);
      return x;
    }
    if (x.isStatic() && x.sv.isNumeric() && rt::is_float(typeOf(x).dtype)) return TV::dyn(materialize(x, loc), weakOf(x));
    if (x.isDyn() && rt::is_float(x.dv->type.dtype)) {
      // A new value, as eager mode gives grad(f)'s differentiated arguments new nodes: a
      // tape recorded before does not see it as the value passed (cast to its own dtype,
      // an identity the pipeline removes).
      setLoc(loc);
      return TV::dyn(b_.cast(x.dv, x.dv->type.dtype), weakOf(x));
    }
    return x;
  }

  TV callGradFn(const TV& g, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc) {
    const char* nm = g.withValue ? "value_and_grad" : "grad";
    size_t npos = args.size() - kw.size();
    for (int64_t k : g.argnums)
      if (k < 0 || static_cast<size_t>(k) >= npos)
        fail(loc, fmt::format("{}(f): argnums {} is out of range for a call with {} positional arguments", nm, k, npos));
    for (int64_t k : g.argnums) args[static_cast<size_t>(k)] = dynamize(args[static_cast<size_t>(k)], loc);
    TapeRec t;
    tapeStart(t);
    recording_.push_back(&t);
    TV out;
    try {
      out = callTV(g.items[0], args, kw, loc);
    } catch (...) {
      recording_.pop_back();
      throw;
    }
    recording_.pop_back();
    std::vector<ir::Op*> ops = tapeOps(t, loc);
    bool ok = (out.isDyn() && rt::is_float(out.dv->type.dtype) && out.dv->type.is_scalar()) ||
              (out.isStatic() && out.sv.isScalar() && rt::is_float(out.sv.dtype()));
    if (!ok) fail(loc, fmt::format("{}(f): f must return a float scalar, got {}", nm, describe(out)));
    TV sources;
    if (g.tupleArgs) {
      sources.k = TV::Seq;
      sources.seqTag = Tag::Tuple;
      for (int64_t k : g.argnums) sources.items.push_back(args[static_cast<size_t>(k)]);
    } else {
      sources = args[static_cast<size_t>(g.argnums[0])];
    }
    checkHoisted(t, sources, loc);
    TV grads = gradientOf(ops, out, sources, loc);
    if (!g.withValue) return grads;
    TV r;
    r.k = TV::Seq;
    r.seqTag = Tag::Tuple;
    r.items = {out, grads};
    return r;
  }

  // ---------------------------------------------------------------- builtins

  struct BArgs {
    std::vector<TV> pos;
    std::map<std::string, TV> kw;
  };

  TV builtin(int id, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc) {
    std::string nm = builtinName(id);
    bool effect = nm == "print" || nm == "assert" || nm == "rand" || nm == "randn" || nm == "randint" ||
                  nm == "permutation" || nm == "seed" || nm == "time" || nm == "exit" || nm == "save" ||
                  nm == "save_npy" || nm == "load" || nm == "load_npy" || nm == "load_csv" || nm == "args" ||
                  nm == "progress" || nm == "plot" || nm == "tape" || nm == "grad" || nm == "value_and_grad";
    bool allStatic = true;
    for (auto& a : args) allStatic = allStatic && a.isStatic() && !tapedStatic(a);
    if (allStatic && !effect && nm != "tree_map") {
      std::vector<Value> vals;
      for (auto& a : args) vals.push_back(a.sv);
      auto names = std::make_shared<std::vector<std::string>>(kw);
      CallArgs ca{vals.data(), static_cast<int>(vals.size()), kw.empty() ? nullptr : names.get()};
      return staticCall(loc, [&] { return builtinFn(id)(vm_, ca); });
    }
    // The one binder (eager's, with the parameter lists the builtins declare): unknown or
    // repeated keywords, too many or missing arguments are eager's errors, word for word.
    if (const BuiltinParams* ps = builtinParams(vm_, id)) {
      try {
        (void)bindBuiltinArgs(ps->fn.c_str(), ps->params, ps->required, static_cast<int>(args.size() - kw.size()),
                              kw.empty() ? nullptr : &kw);
      } catch (const rt::Error& e) {
        fail(loc, e.what());
      }
    }
    // Bind by name.
    BArgs a;
    size_t npos = args.size() - kw.size();
    for (size_t i = 0; i < npos; ++i) a.pos.push_back(args[i]);
    for (size_t k = 0; k < kw.size(); ++k) a.kw[kw[k]] = args[npos + k];
    auto arg = [&](size_t i, const char* key) -> TV* {
      if (i < a.pos.size()) return &a.pos[i];
      auto it = a.kw.find(key);
      return it == a.kw.end() ? nullptr : &it->second;
    };
    auto need = [&](size_t i, const char* key) -> TV& {
      TV* p = arg(i, key);
      if (!p) fail(loc, fmt::format("{}: missing argument '{}'", nm, key));
      return *p;
    };
    auto staticInt = [&](const TV& t, const char* what) -> int64_t {
      if (!t.isStatic() || !t.sv.isScalar()) fail(loc, fmt::format("{}: '{}' must be known at trace time in a graph fn", nm, what));
      return t.sv.asInt();
    };
    auto dtypeArg = [&](size_t i, const char* key, DType dflt) -> DType {
      TV* p = arg(i, key);
      if (!p || (p->isStatic() && p->sv.isNone())) return dflt;
      if (!p->isStatic() || p->sv.tag() != Tag::DType)
        fail(loc, fmt::format("{}(): '{}' must be a dtype (bool, i32, i64, f32, f64), got {}", nm, key, describe(*p)));
      return p->sv.dtype();
    };
    if (nm == "tape") {
      if (!args.empty()) fail(loc, "tape() takes no arguments");
      TV t;
      t.k = TV::Tape;
      t.tape = static_cast<int>(tapes_.size());
      tapes_.emplace_back();
      return t;
    }
    if (nm == "grad" || nm == "value_and_grad") {
      TV f = need(0, "f");
      if (f.k != TV::Fn && f.k != TV::GradFn && !(f.isStatic() && f.sv.isCallable()))
        fail(loc, fmt::format("{}: 'f' must be a function", nm));
      TV g;
      g.k = TV::GradFn;
      g.items.push_back(f);
      g.withValue = nm == "value_and_grad";
      TV* an = arg(1, "argnums");
      if (!an || (an->isStatic() && an->sv.isNone())) {
        g.argnums = {0};
      } else {
        TV x = expandStatic(*an);
        if (x.k == TV::Seq) {
          g.tupleArgs = true;
          for (auto& it : x.items) g.argnums.push_back(staticInt(it, "argnums"));
        } else {
          g.argnums = {staticInt(*an, "argnums")};
        }
      }
      return g;
    }
    if (auto u = unaryBuiltinByName(nm)) return unop(*u, need(0, "x"), loc);
    if (auto bop = binaryBuiltinByName(nm)) {
      rt::BinaryParams p = rt::binary_params(*bop);
      TV* second = arg(1, p.b.c_str());
      return binop(*bop, need(0, p.a.c_str()), second ? *second : TV::of(Value::weakFloat(p.b_default.value_or(0))), loc);
    }
    if (nm == "clip") {
      TV lo = binop(rt::BinaryOp::Maximum, need(0, "x"), need(1, "lo"), loc);
      return binop(rt::BinaryOp::Minimum, lo, need(2, "hi"), loc);
    }
    if (nm == "where") {
      TV c = need(0, "cond"), x = need(1, "a"), y = need(2, "b");
      // promote a and b by the operator rules (weak scalars take the other's dtype)
      TV probe = binop(rt::BinaryOp::Add, x, y, loc);
      DType d = typeOf(probe).dtype;
      ir::Value* cv = materialize(c, loc, DType::Bool);
      ir::Value *xv = materialize(x, loc, d), *yv = materialize(y, loc, d);
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.select(cv, xv, yv); }), weakOf(x) && weakOf(y));
    }
    if (nm == "cast") return castTV(need(0, "x"), dtypeArg(1, "dtype", DType::F32), loc);
    if (nm == "int" || nm == "float") {  // of a number (a rank-0 tensor), as eagerly
      TV& x = need(0, "x");
      if (!x.isStatic() && !(isNumeric(x) && typeOf(x).is_scalar()))
        fail(loc, fmt::format("{}(): 'x' must be a number, got {}", nm, describe(x)));
      return castTV(x, nm == "int" ? DType::I64 : DType::F32, loc);
    }
    if (nm == "sum" || nm == "mean" || nm == "max" || nm == "min" || nm == "prod" || nm == "all" || nm == "any" ||
        nm == "logsumexp" || nm == "argmax" || nm == "argmin") {
      TV x = need(0, "x");
      ir::Value* xv = materialize(x, loc);
      int64_t rank = xv->type.rank();
      TV* ax = arg(1, "axis");
      TV* kd = arg(2, "keepdims");
      bool keep = false;
      if (kd) {
        if (!kd->isStatic()) fail(loc, fmt::format("{}: keepdims must be known at trace time", nm));
        keep = kd->sv.asBool();
      }
      ir::IntList axes;
      bool all = !ax || (ax->isStatic() && ax->sv.isNone());
      if (all) for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
      else {
        if (!ax->isStatic()) fail(loc, fmt::format("{}: axis must be known at trace time", nm));
        std::vector<Value> items = ax->sv.isSeq() ? ax->sv.as<SeqObj>()->items : std::vector<Value>{ax->sv};
        for (auto& v : items) {
          int64_t k = v.asInt();
          axes.push_back(guarded(loc, [&] { return rt::normalize_axis(k, rank); }));
        }
      }
      setLoc(loc);
      if (nm == "argmax" || nm == "argmin") {
        if (axes.size() != 1) {
          if (rank == 0) axes = {0};
          else {
            std::vector<Dim> flat{Dim::known(1)};
            bool symbolic = false;
            for (auto& d : xv->type.dims) {
              if (!d.is_known()) symbolic = true;
              else flat[0].size *= d.size;
            }
            // flattened (its size known at run time when dims are symbolic)
            xv = symbolic ? dynShaped(ir::OpKind::ReshapeDyn, xv, {Dim::known(-1)}, {}, loc) : b_.reshape(xv, flat);
            axes = {0};
          }
        }
        if (rank == 0) return TV::of(Value::i64(0));
        return TV::dyn(guarded(loc, [&] { return nm == "argmax" ? b_.argmax(xv, axes[0], keep) : b_.argmin(xv, axes[0], keep); }));
      }
      rt::ReduceOp op = *ir::reduce_kind_from_name(nm);
      return TV::dyn(guarded(loc, [&] { return b_.reduce(op, xv, axes, keep); }));
    }
    if (nm == "matmul" || nm == "dot") {
      ir::Value *x = materialize(need(0, "a"), loc), *y = materialize(need(1, "b"), loc);
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.matmul(x, y); }));
    }
    if (nm == "transpose") {
      ir::Value* x = materialize(need(0, "x"), loc);
      ir::IntList perm;
      TV* p = arg(1, "perm");
      if (p && !(p->isStatic() && p->sv.isNone())) {
        if (!p->isStatic()) fail(loc, "transpose: perm must be known at trace time");
        perm = staticCall(loc, [&] { return p->sv; }).sv.isSeq() ? ints(p->sv, loc) : ints(p->sv, loc);
      } else {
        for (int64_t i = x->type.rank(); i-- > 0;) perm.push_back(i);
      }
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.transpose(x, perm); }));
    }
    if (nm == "zeros" || nm == "ones" || nm == "full") {
      std::vector<ir::Value*> sizes;
      std::vector<Dim> dims = shapeDims(need(0, "shape"), loc, false, &sizes);
      DType d = dtypeArg(nm == "full" ? 2 : 1, "dtype", DType::F32);
      TV fill = nm == "full" ? need(1, "value") : TV::of(Value::weakFloat(nm == "ones" ? 1.0 : 0.0));
      if (nm == "full" && !arg(2, "dtype")) d = weakOf(fill) ? (fill.isStatic() ? fill.sv.dtype() : typeOf(fill).dtype) : typeOf(fill).dtype;
      ir::Value* v = materialize(fill, loc, d);
      if (anyComputed(dims)) return TV::dyn(dynShaped(ir::OpKind::BroadcastDyn, v, dims, sizes, loc));
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.broadcast_to(v, dims); }));
    }
    if (nm == "zeros_like" || nm == "ones_like") {
      ir::Value* x = materialize(need(0, "x"), loc);
      DType d = dtypeArg(1, "dtype", x->type.dtype);
      ir::Value* v = b_.constant(rt::Tensor::scalar_of(d, nm == "ones_like" ? 1 : 0));
      setLoc(loc);
      return TV::dyn(x->type.is_scalar() ? v : b_.broadcast_to(v, x->type.dims));
    }
    if (nm == "arange") {  // some bound known only at run time (static calls ran eagerly)
      TV start = TV::of(Value::i64(0, true)), stop = need(0, "start"), step = TV::of(Value::i64(1, true));
      if (TV* hi = arg(1, "stop"); hi && !(hi->isStatic() && hi->sv.isNone())) {
        start = stop;
        stop = *hi;
      }
      if (TV* st = arg(2, "step")) step = *st;
      bool ints = true;
      for (const TV* v : {&start, &stop, &step}) {
        if (!isNumeric(*v) || !typeOf(*v).is_scalar())
          fail(loc, fmt::format("arange(): bounds must be numbers, got {}", describe(*v)));
        ints = ints && !rt::is_float(typeOf(*v).dtype);
      }
      DType dt = dtypeArg(3, "dtype", ints ? DType::I64 : DType::F32);
      // arange(x.shape[i]) has the size of that dim; otherwise the run time knows it.
      Dim size = Dim::symbolic(f_.fresh_sym());
      if (start.isStatic() && start.sv.asInt() == 0 && step.isStatic() && step.sv.asInt() == 1 && stop.isDyn() &&
          stop.dv->def() && stop.dv->def()->kind() == ir::OpKind::Dim) {
        const ir::Op* d = stop.dv->def();
        size = d->operand(0)->type.dims.at(static_cast<size_t>(d->int_attr("axis")));
      }
      DType bt = ints ? DType::I64 : DType::F64;  // the runtime's arange computes in int64 or double
      std::vector<ir::Value*> ops{materialize(start, loc, bt), materialize(stop, loc, bt), materialize(step, loc, bt)};
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.create(ir::OpKind::Arange, ops, {TensorType(dt, {size})}, {}).result(); }));
    }
    if (nm == "broadcast_to") {
      ir::Value* x = materialize(need(0, "x"), loc);
      std::vector<ir::Value*> sizes;
      std::vector<Dim> dims = shapeDims(need(1, "shape"), loc, false, &sizes);
      if (anyComputed(dims)) return TV::dyn(dynShaped(ir::OpKind::BroadcastDyn, x, dims, sizes, loc));
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.broadcast_to(x, dims); }));
    }
    if (nm == "reshape" || nm == "flatten") {
      ir::Value* x = materialize(need(0, "x"), loc);
      std::vector<ir::Value*> sizes;
      std::vector<Dim> dims =
          nm == "flatten" ? std::vector<Dim>{Dim::known(-1)} : shapeDims(need(1, "shape"), loc, true, &sizes);
      // Sizes known only at run time, or a -1 over symbolic dims: the run time reshapes.
      if (anyComputed(dims) || !resolveMinusOne(x->type.dims, dims, loc))
        return TV::dyn(dynShaped(ir::OpKind::ReshapeDyn, x, dims, sizes, loc));
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.reshape(x, dims); }));
    }
    if (nm == "expand_dims") {
      ir::Value* x = materialize(need(0, "x"), loc);
      int64_t axis = staticInt(need(1, "axis"), "axis");
      std::vector<Dim> dims = x->type.dims;
      int64_t r = static_cast<int64_t>(dims.size()) + 1;
      axis = guarded(loc, [&] { return rt::normalize_axis(axis, r); });
      dims.insert(dims.begin() + axis, Dim::known(1));
      setLoc(loc);
      return TV::dyn(b_.reshape(x, dims));
    }
    if (nm == "squeeze") {
      ir::Value* x = materialize(need(0, "x"), loc);
      TV* ax = arg(1, "axis");
      std::vector<Dim> dims;
      int64_t r = x->type.rank();
      int64_t only = -1;
      if (ax && !(ax->isStatic() && ax->sv.isNone())) {
        int64_t given = staticInt(*ax, "axis");
        // The runtime's own rule decides when the shape is known (same checks, same words).
        bool known = true;
        rt::Shape shape;
        for (const Dim& d : x->type.dims) known = known && d.is_known(), shape.push_back(d.is_known() ? d.size : 1);
        if (known) guarded(loc, [&] { return rt::squeeze_shape(shape, rt::Axes(std::vector<int64_t>{given})); });
        only = guarded(loc, [&] { return rt::normalize_axis(given, r); });
        const Dim& d = x->type.dims[static_cast<size_t>(only)];
        if (d.is_known() && d.size != 1)
          fail(loc, fmt::format("cannot squeeze axis {} of size {} (shape {})", given, d.size, x->type.str()));
      }
      for (int64_t i = 0; i < r; ++i) {
        const Dim& d = x->type.dims[static_cast<size_t>(i)];
        bool one = d.is_known() && d.size == 1;
        if (one && (only < 0 || only == i)) continue;
        dims.push_back(d);
      }
      setLoc(loc);
      return TV::dyn(b_.reshape(x, dims));
    }
    if (nm == "concat" || nm == "stack") {
      TV xs = expandStatic(need(0, "xs"));
      if (xs.k != TV::Seq) fail(loc, fmt::format("{}: expected a list of tensors", nm));
      int64_t axis = arg(1, "axis") ? staticInt(*arg(1, "axis"), "axis") : 0;
      TV probe = xs.items.at(0);
      for (size_t i = 1; i < xs.items.size(); ++i) probe = binop(rt::BinaryOp::Add, probe, xs.items[i], loc);
      (void)probe;
      std::vector<ir::Value*> parts;
      for (auto& it : xs.items) {
        ir::Value* v = materialize(it, loc);
        if (nm == "stack") {
          std::vector<Dim> dims = v->type.dims;
          int64_t r = static_cast<int64_t>(dims.size()) + 1;
          int64_t ax2 = guarded(loc, [&] { return rt::normalize_axis(axis, r); });
          dims.insert(dims.begin() + ax2, Dim::known(1));
          setLoc(loc);
          v = b_.reshape(v, dims);
        }
        parts.push_back(v);
      }
      int64_t r = parts[0]->type.rank();
      if (axis < 0) axis += r;
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.concat(parts, axis); }));
    }
    if (nm == "outer") {
      // a.flat[i] * b.flat[j]: a column times a row (broadcasting), so it differentiates.
      auto flatTo = [&](const TV& v, bool column) {
        ir::Value* x = materialize(v, loc);
        Dim n = Dim::known(1);
        if (x->type.rank() == 1) n = x->type.dims[0];
        else if (auto s = x->type.static_shape()) n = Dim::known(rt::numel_of(*s));
        else if (x->type.rank() != 0) fail(loc, "outer: an operand of rank >= 2 with a dim of unknown size");
        std::vector<Dim> d = column ? std::vector<Dim>{n, Dim::known(1)} : std::vector<Dim>{Dim::known(1), n};
        setLoc(loc);
        return TV::dyn(guarded(loc, [&] { return b_.reshape(x, d); }));
      };
      return binop(rt::BinaryOp::Mul, flatTo(need(0, "a"), true), flatTo(need(1, "b"), false), loc);
    }
    if (nm == "tile") {
      // NumPy tile: reshape to [1, s0, 1, s1, ...], broadcast to [r0, s0, r1, s1, ...], merge pairs.
      ir::Value* x = materialize(need(0, "x"), loc);
      TV rv = need(1, "reps");
      if (!rv.isStatic()) fail(loc, "tile: 'reps' must be known at trace time in a graph fn");
      ir::IntList reps = ints(rv.sv, loc);
      for (int64_t r : reps)
        if (r < 0) fail(loc, fmt::format("tile: negative repetition {}", r));
      size_t rank = std::max(static_cast<size_t>(x->type.rank()), reps.size());
      std::vector<Dim> dims(rank - static_cast<size_t>(x->type.rank()), Dim::known(1));
      dims.insert(dims.end(), x->type.dims.begin(), x->type.dims.end());
      reps.insert(reps.begin(), rank - reps.size(), 1);
      std::vector<Dim> spread, wide, out;
      for (size_t i = 0; i < rank; ++i) {
        spread.push_back(Dim::known(1));
        spread.push_back(dims[i]);
        wide.push_back(Dim::known(reps[i]));
        wide.push_back(dims[i]);
        if (reps[i] == 1) out.push_back(dims[i]);
        else if (dims[i].is_known()) out.push_back(Dim::known(dims[i].size * reps[i]));
        else fail(loc, "tile: repeating a dim of unknown size is not supported in graph fns yet");
      }
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] { return b_.reshape(b_.broadcast_to(b_.reshape(x, spread), wide), out); }));
    }
    if (nm == "pad") {
      // Constant blocks concatenated before and after along each axis.
      ir::Value* x = materialize(need(0, "x"), loc);
      TV wv = need(1, "widths");
      if (!wv.isStatic()) fail(loc, "pad: 'widths' must be known at trace time in a graph fn");
      ir::IntList w = ints(wv.sv, loc);
      size_t rank = static_cast<size_t>(x->type.rank());
      if (w.size() == 2 && rank != 1) {
        ir::IntList all;
        for (size_t i = 0; i < rank; ++i) all.push_back(w[0]), all.push_back(w[1]);
        w = all;
      }
      if (w.size() != 2 * rank) fail(loc, "pad: 'widths' must be (before, after) pairs, one per axis or one for all");
      double value = 0;
      if (TV* v = arg(2, "value")) {
        if (!v->isStatic() || !v->sv.isScalar()) fail(loc, "pad: 'value' must be a number known at trace time in a graph fn");
        value = v->sv.asDouble();
      }
      for (int64_t k : w)
        if (k < 0) fail(loc, fmt::format("pad: negative width {}", k));
      setLoc(loc);
      return TV::dyn(guarded(loc, [&] {
        ir::Value* y = x;
        for (size_t ax = 0; ax < rank; ++ax) {
          if (w[2 * ax] == 0 && w[2 * ax + 1] == 0) continue;
          if (!y->type.dims[ax].is_known()) throw rt::Error("pad: padding an axis of unknown size is not supported in graph fns yet");
          std::vector<ir::Value*> parts;
          auto block = [&](int64_t n) {
            std::vector<Dim> d = y->type.dims;
            d[ax] = Dim::known(n);
            return b_.broadcast_to(b_.constant(rt::full({}, value, y->type.dtype)), d);
          };
          if (w[2 * ax] > 0) parts.push_back(block(w[2 * ax]));
          parts.push_back(y);
          if (w[2 * ax + 1] > 0) parts.push_back(block(w[2 * ax + 1]));
          y = b_.concat(parts, static_cast<int64_t>(ax));
        }
        return y;
      }));
    }
    if (nm == "take") {
      TV* ax = arg(2, "axis");
      int64_t axis = ax ? staticInt(*ax, "axis") : 0;
      TV& idx = need(1, "idx");
      if (!isNumeric(idx)) fail(loc, fmt::format("take(): 'idx' must be a tensor, got {}", annotationText(idx)));
      return gatherTV(need(0, "x"), idx, axis, loc);
    }
    if (nm == "one_hot") {
      ir::Value* idx = materialize(need(0, "idx"), loc, DType::I64);
      // n: known at trace time, or the size of a tensor's axis (maybe symbolic: x.shape[k]).
      TV nv = need(1, "n");
      Dim nd;
      if (nv.isDyn() && nv.dv->def() && nv.dv->def()->kind() == ir::OpKind::Dim) {
        const ir::Op* op = nv.dv->def();
        nd = op->operand(0)->type.dims.at(static_cast<size_t>(op->int_attr("axis")));
      } else {
        int64_t n = staticInt(nv, "n");
        if (n < 0) fail(loc, fmt::format("one_hot: 'n' must not be negative, got {}", n));
        nd = Dim::known(n);
      }
      DType d = dtypeArg(2, "dtype", DType::F32);
      setLoc(loc);
      ir::Value* io = b_.iota(TensorType(DType::I64, {nd}), 0);
      std::vector<Dim> ed = idx->type.dims;
      ed.push_back(Dim::known(1));
      ir::Value* e = b_.reshape(idx, ed);
      return TV::dyn(b_.cast(guarded(loc, [&] { return b_.binary(rt::BinaryOp::Eq, e, io); }), d));
    }
    if (nm == "len") {
      TV x = expandStatic(need(0, "x"));
      if (x.k == TV::Seq || x.k == TV::Rec) return TV::of(Value::i64(static_cast<int64_t>(x.items.size())));
      if (isNumeric(x)) return dimTV(x, 0, loc);
      fail(loc, fmt::format("len of a {}", describe(x)));
    }
    if (nm == "range") {
      TV r; r.k = TV::Range;
      TV one = TV::of(Value::i64(1, true)), zero = TV::of(Value::i64(0, true));
      if (a.pos.size() == 1) r.items = {zero, a.pos[0], one};
      else if (a.pos.size() == 2) r.items = {a.pos[0], a.pos[1], one};
      else if (a.pos.size() == 3) r.items = {a.pos[0], a.pos[1], a.pos[2]};
      else fail(loc, "range takes 1 to 3 arguments");
      for (auto& i : r.items)
        if (!isNumeric(i) || typeOf(i).rank() != 0) fail(loc, "range: bounds must be integer scalars");
      if (r.items[2].isStatic() && r.items[2].sv.asInt() == 0) fail(loc, "range(): 'step' must not be zero");
      if (!r.items[2].isStatic()) {  // checked when it runs, as eagerly
        TV nz = binop(rt::BinaryOp::Ne, r.items[2], zero, loc);
        ir::Value* c = materialize(nz, loc, DType::Bool);
        setLoc(loc);
        b_.assert_true(c, "range(): 'step' must not be zero");
      }
      return r;
    }
    if (nm == "print") {
      std::string sep = " ", end = "\n";
      if (auto it = a.kw.find("sep"); it != a.kw.end()) sep = staticString(it->second, "sep", loc);
      if (auto it = a.kw.find("end"); it != a.kw.end()) end = staticString(it->second, "end", loc);
      std::string format;
      std::vector<ir::Value*> holes;
      for (size_t i = 0; i < a.pos.size(); ++i) {
        if (i) format += escapeBraces(sep);
        format += formatOf(a.pos[i], holes, loc, true);
      }
      format += escapeBraces(end);
      setLoc(loc);
      b_.print(holes, format);
      return TV::of(Value());
    }
    if (nm == "assert") {
      TV c = need(0, "cond");
      std::string msg = "assertion failed";
      if (TV* m = arg(1, "message")) msg = "assertion failed: " + staticString(*m, "message", loc);
      // As eagerly: a bool, or a bool tensor whose elements must all hold.
      if (!isNumeric(c) || typeOf(c).dtype != DType::Bool)
        fail(loc, fmt::format("assert(): 'cond' must be a bool, got {}", describe(c)));
      ir::Value* cv = materialize(c, loc, DType::Bool);
      setLoc(loc);
      if (!cv->type.is_scalar()) {
        ir::IntList axes;
        for (int64_t i = 0; i < cv->type.rank(); ++i) axes.push_back(i);
        cv = b_.reduce(rt::ReduceOp::All, cv, axes, false);
      }
      b_.assert_true(cv, msg);
      return TV::of(Value());
    }
    if (nm == "rand" || nm == "randn") {
      std::vector<Dim> dims = shapeDims(need(0, "shape"), loc);
      DType d = dtypeArg(1, "dtype", DType::F32);
      setLoc(loc);
      return TV::dyn(b_.random(nm == "rand" ? "uniform" : "normal", TensorType(d, dims)));
    }
    if (nm == "randint") {
      ir::Value* lo = integerArg(need(0, "lo"), "randint", "lo", loc);
      ir::Value* hi = integerArg(need(1, "hi"), "randint", "hi", loc);
      std::vector<Dim> dims = shapeDims(need(2, "shape"), loc);
      setLoc(loc);
      return TV::dyn(b_.random("int", TensorType(DType::I64, dims), {lo, hi}));
    }
    if (nm == "tree_leaves") {
      // Every leaf, as eager's collectLeaves: tensors and scalars, and also none, strings and
      // functions (only records, lists and tuples are taken apart).
      std::vector<TV> ls;
      std::function<void(const TV&)> all = [&](const TV& t) {
        TV x = expandStatic(t);
        if (x.k == TV::Seq || x.k == TV::Rec) {
          for (auto& i : x.items) all(i);
        } else {
          ls.push_back(x);
        }
      };
      all(need(0, "tree"));
      return makeSeq(Tag::List, ls);
    }
    if (nm == "tree_map") {
      TV f = need(0, "f");
      std::vector<TV> trees(args.begin() + 1, args.end() - static_cast<long>(kw.size()));
      if (trees.empty()) fail(loc, "tree_map needs a tree");
      std::function<TV(std::vector<TV>)> rec = [&](std::vector<TV> ts) -> TV {
        TV x = expandStatic(ts[0]);
        if (x.k == TV::Seq || x.k == TV::Rec) {
          TV r = x;
          for (size_t i = 0; i < x.items.size(); ++i) {
            std::vector<TV> sub;
            for (auto& t : ts) {
              TV y = expandStatic(t);
              if (y.items.size() != x.items.size()) fail(loc, "tree_map: trees of different structure");
              sub.push_back(y.items[i]);
            }
            r.items[i] = rec(sub);
          }
          return normalize(r);
        }
        std::vector<std::string> nokw;
        return callTV(f, ts, nokw, loc);
      };
      return rec(trees);
    }
    fail(loc, fmt::format("'{}' is not supported inside graph fns yet", nm));
  }

  static std::string escapeBraces(const std::string& s) {
    std::string r;
    for (char c : s) {
      if (c == '{' || c == '}') r += c;
      r += c;
    }
    return r;
  }

  std::string staticString(const TV& t, const char* what, const Loc& loc) {
    if (!t.isStatic() || !t.sv.isStr()) fail(loc, fmt::format("'{}' must be a string known at trace time", what));
    return t.sv.as<StrObj>()->s;
  }

  // The print format of a trace value: static text with `{}` holes for dynamic leaves.
  std::string formatOf(const TV& t, std::vector<ir::Value*>& holes, const Loc& loc, bool top) {
    if (t.isStatic()) {
      try {
        return escapeBraces(top ? str(t.sv) : repr(t.sv));
      } catch (const rt::Error& e) {
        fail(loc, e.what());
      }
    }
    if (t.isDyn()) {
      holes.push_back(t.dv);
      return "{}";
    }
    if (t.k == TV::Fmt) {
      for (const TV& h : t.items) holes.push_back(h.dv);
      const std::string& f = t.sv.as<StrObj>()->s;
      return top ? f : "\"" + f + "\"";
    }
    if (t.k == TV::Seq) {
      std::string s = t.seqTag == Tag::List ? "[" : "(";
      for (size_t i = 0; i < t.items.size(); ++i) {
        if (i) s += ", ";
        s += formatOf(t.items[i], holes, loc, false);
      }
      if (t.seqTag == Tag::Tuple && t.items.size() == 1) s += ",";
      return s + (t.seqTag == Tag::List ? "]" : ")");
    }
    if (t.k == TV::Rec) {
      std::string s = "{{";
      for (size_t i = 0; i < t.items.size(); ++i) {
        if (i) s += ", ";
        s += (*t.names)[i] + ": " + formatOf(t.items[i], holes, loc, false);
      }
      return s + "}}";
    }
    fail(loc, fmt::format("cannot print a {} in a graph fn", describe(t)));
  }

  ir::IntList ints(const Value& v, const Loc& loc) {
    ir::IntList r;
    try {
      if (v.isSeq()) for (auto& x : v.as<SeqObj>()->items) r.push_back(x.asInt());
      else if (v.isTensor()) {
        const rt::Tensor& t = v.as<TensorObj>()->t;
        for (int64_t i = 0; i < t.numel(); ++i) r.push_back(t.item_int64(i));
      } else r.push_back(v.asInt());
    } catch (const rt::Error& e) {
      fail(loc, e.what());
    }
    return r;
  }

  // A shape argument: static sizes, or dims of tensors (x.shape[0] of a symbolic axis).
  // The dims of shape `s`: known sizes, the (symbolic) dims of tensors, and with `sizes`,
  // sizes known only at run time (an integer scalar: a kAnyDim here, its value in *sizes;
  // *sizes has one entry per dim, null for the known ones).
  std::vector<Dim> shapeDims(const TV& s, const Loc& loc, bool allowMinusOne = false,
                             std::vector<ir::Value*>* sizes = nullptr) {
    std::vector<Dim> dims;
    TV x = expandStatic(s);
    auto one = [&](const TV& d) {
      if (d.isStatic()) {
        int64_t n = d.sv.asInt();
        if (n < 0 && !(allowMinusOne && n == -1)) fail(loc, fmt::format("negative dimension {}", n));
        dims.push_back(Dim::known(n));
        if (sizes) sizes->push_back(nullptr);
        return;
      }
      if (d.isDyn() && d.dv->def() && d.dv->def()->kind() == ir::OpKind::Dim) {
        const ir::Op* op = d.dv->def();
        dims.push_back(op->operand(0)->type.dims.at(static_cast<size_t>(op->int_attr("axis"))));
        if (sizes) sizes->push_back(dims.back().is_known() ? nullptr : d.dv);
        return;
      }
      if (sizes && isNumeric(d) && typeOf(d).is_scalar()) {
        sizes->push_back(integerIndex(d, loc));
        dims.push_back(Dim::symbolic(ir::kAnyDim));
        return;
      }
      fail(loc, "a shape inside a graph fn must be known at trace time or made of the dims of tensors");
    };
    if (x.k == TV::Seq) {
      for (auto& i : x.items) one(i);
      return dims;
    }
    if (x.isStatic()) {
      for (int64_t n : ints(x.sv, loc)) one(TV::of(Value::i64(n)));
      return dims;
    }
    if (x.isDyn() && x.dv->type.rank() == 1 && x.dv->type.dims[0].is_known()) {
      // x.shape of a symbolic tensor: a concat of dims
      const ir::Op* op = x.dv->def();
      if (op && op->kind() == ir::OpKind::Concat) {
        for (ir::Value* part : op->operands()) {
          const ir::Op* rs = part->def();
          if (rs && rs->kind() == ir::OpKind::Reshape) one(TV::dyn(rs->operand(0)));
          else if (rs && rs->kind() == ir::OpKind::Constant) one(TV::of(Value::i64(rs->tensor_attr("value").item_int64(0))));
          else fail(loc, "a shape inside a graph fn must be known at trace time");
        }
        return dims;
      }
    }
    fail(loc, "a shape inside a graph fn must be known at trace time or made of the dims of tensors");
  }

  // x broadcast (BroadcastDyn) or reshaped (ReshapeDyn) to `dims`, some of whose sizes are
  // only known at run time (`sizes`, from shapeDims; a -1 of a reshape is inferred then):
  // those dims are operands, the result type names them (a tensor's symbol, or a fresh one).
  ir::Value* dynShaped(ir::OpKind kind, ir::Value* x, std::vector<Dim> dims, const std::vector<ir::Value*>& sizes,
                       const Loc& loc) {
    ir::IntList shape;
    std::vector<ir::Value*> ops{x};
    for (size_t i = 0; i < dims.size(); ++i) {
      if (i < sizes.size() && sizes[i]) {
        shape.push_back(-2);
        ops.push_back(sizes[i]);
      } else if (dims[i].is_known() && dims[i].size == -1) {
        shape.push_back(-1);
        dims[i] = Dim::symbolic(ir::kAnyDim);
      } else if (dims[i].is_known()) {
        shape.push_back(dims[i].size);
      } else {
        fail(loc, "internal: a symbolic dim without its size");
      }
    }
    setLoc(loc);
    for (Dim& d : dims)
      if (ir::is_any_dim(d)) d = Dim::symbolic(f_.fresh_sym());
    TensorType t(x->type.dtype, dims);
    return guarded(loc, [&] { return b_.create(kind, ops, {t}, {{"shape", shape}}).result(); });
  }
  static bool anySize(const std::vector<ir::Value*>& sizes) {
    for (ir::Value* v : sizes)
      if (v) return true;
    return false;
  }
  // Some size known only at run time: not a tensor's symbol.
  static bool anyComputed(const std::vector<Dim>& dims) {
    for (const Dim& d : dims)
      if (ir::is_any_dim(d)) return true;
    return false;
  }

  // Resolves a -1 in `to` at trace time; false when only the run time can (symbolic dims).
  bool resolveMinusOne(const std::vector<Dim>& from, std::vector<Dim>& to, const Loc& loc) {
    int minus = -1;
    int64_t known = 1;
    for (size_t i = 0; i < to.size(); ++i) {
      if (to[i].is_known() && to[i].size == -1) {
        if (minus >= 0) fail(loc, "reshape: only one -1 is allowed");
        minus = static_cast<int>(i);
      } else if (to[i].is_known()) known *= to[i].size;
    }
    if (minus < 0) return true;
    int64_t total = 1;
    for (auto& d : from) {
      if (!d.is_known()) {
        // x of shape [N, 4] to [-1] etc.: only when the symbolic dims match one to one
        std::vector<Dim> rest;
        for (auto& e : to) if (!(e.is_known() && e.size == -1)) rest.push_back(e);
        std::vector<Dim> fsym;
        int64_t fk = 1;
        for (auto& e : from) if (e.is_known()) fk *= e.size; else fsym.push_back(e);
        bool tosym = false;
        for (auto& e : rest) tosym = tosym || !e.is_known();
        if (fsym.size() == 1 && !tosym && known != 0 && fk % known == 0 && fk / known == 1) {
          to[static_cast<size_t>(minus)] = fsym[0];
          return true;
        }
        return false;
      }
      total *= d.size;
    }
    if (known == 0 || total % known != 0) fail(loc, fmt::format("cannot reshape {} into the requested shape", ir::dims_str(from)));
    to[static_cast<size_t>(minus)] = Dim::known(total / known);
    return true;
  }
};

}  // namespace

// ------------------------------------------------------------------ signatures

namespace {

void flattenOne(const Value& v, std::vector<rt::Tensor>& leaves, std::vector<bool>& weak, std::string& key) {
  switch (v.tag()) {
    case Tag::Scalar:
      leaves.push_back(toTensor(v));
      weak.push_back(v.weak());
      key += v.weak() ? "w," : "t,";
      return;
    case Tag::Tensor:
      leaves.push_back(v.as<TensorObj>()->t);
      weak.push_back(false);
      key += "t,";
      return;
    case Tag::Tuple:
    case Tag::List:
      key += v.tag() == Tag::List ? "[" : "(";
      for (auto& i : v.as<SeqObj>()->items) flattenOne(i, leaves, weak, key);
      key += v.tag() == Tag::List ? "]," : "),";
      return;
    case Tag::Record: {
      auto* r = v.as<RecordObj>();
      key += "{";
      for (size_t i = 0; i < r->vals.size(); ++i) {
        key += (*r->names)[i] + ":";
        flattenOne(r->vals[i], leaves, weak, key);
      }
      key += "},";
      return;
    }
    case Tag::Str: key += fmt::format("s{}:{},", v.as<StrObj>()->s.size(), v.as<StrObj>()->s); return;
    case Tag::Closure: key += fmt::format("f{},", static_cast<const void*>(v.obj())); return;
    case Tag::Builtin: key += fmt::format("b{},", v.builtinId()); return;
    case Tag::DType: key += fmt::format("d{},", rt::dtype_name(v.dtype())); return;
    case Tag::None: key += "n,"; return;
    default: key += fmt::format("o{}:{},", tagName(v.tag()), static_cast<const void*>(v.isHeap() ? v.obj() : nullptr)); return;
  }
}

// Rebuilds an argument as a trace value whose tensor leaves are the function's params.
TV argTV(const Value& v, const std::vector<ir::Value*>& params, const std::vector<ParamLeaf>& leaves, size_t& k) {
  switch (v.tag()) {
    case Tag::Scalar:
    case Tag::Tensor: {
      size_t i = k++;
      return TV::dyn(params[i], leaves[i].weak);
    }
    case Tag::Tuple:
    case Tag::List: {
      TV r; r.k = TV::Seq; r.seqTag = v.tag();
      for (auto& i : v.as<SeqObj>()->items) r.items.push_back(argTV(i, params, leaves, k));
      return r;
    }
    case Tag::Record: {
      TV r; r.k = TV::Rec;
      auto* rec = v.as<RecordObj>();
      r.names = rec->names;
      for (auto& i : rec->vals) r.items.push_back(argTV(i, params, leaves, k));
      return r;
    }
    default: return TV::of(v);
  }
}

ResultTemplate toTemplate(const TV& t, std::vector<ir::Value*>& results, std::vector<bool>& weak, const Loc& loc) {
  ResultTemplate r;
  switch (t.k) {
    case TV::Static: r.kind = ResultTemplate::Static; r.value = t.sv; return r;
    case TV::Dyn:
      r.kind = ResultTemplate::Leaf;
      r.leaf = static_cast<int>(results.size());
      results.push_back(t.dv);
      weak.push_back(t.weak);
      return r;
    case TV::Seq:
    case TV::Rec:
      r.kind = t.k == TV::Seq ? ResultTemplate::Seq : ResultTemplate::Rec;
      r.seqTag = t.seqTag;
      r.names = t.names;
      for (auto& i : t.items) r.items.push_back(toTemplate(i, results, weak, loc));
      return r;
    default: throw TraceError(loc, "a graph fn can only return tensors, numbers, strings and containers of them");
  }
}

}  // namespace

void flattenArgs(const std::vector<Value>& args, std::vector<rt::Tensor>& leaves, std::vector<bool>& weak, std::string& key) {
  for (auto& a : args) flattenOne(a, leaves, weak, key);
}

Trace traceGraphFn(Interpreter& vm, const ClosureObj& fn, const std::vector<Value>& args,
                   const std::vector<ParamLeaf>& leaves, const std::vector<std::string>& syms) {
  std::set<const Stmt*> forced;
  const FnDecl* d = fn.proto->decl;
  Loc loc = d ? d->loc : Loc();
  for (int restart = 0;; ++restart) {
    Trace t;
    t.module = std::make_unique<ir::Module>();
    ir::Function& f = t.module->add_function(fn.proto->name);
    f.syms = syms;
    std::vector<ir::Value*> params;
    for (auto& l : leaves) params.push_back(f.add_param(l.type));
    std::vector<TV> targs;
    size_t k = 0;
    for (auto& a : args) targs.push_back(argTV(a, params, leaves, k));
    try {
      Tracer tr(vm, f, forced, t);
      TV result = tr.run(fn, std::move(targs), loc);
      std::vector<ir::Value*> results;
      std::vector<bool> weak;
      t.result = toTemplate(result, results, weak, loc);
      for (auto* r : results) f.result_types.push_back(r->type);
      ir::Builder b(f);
      b.set_loc(loc);
      b.ret(results);
      t.fn = &f;
      return t;
    } catch (const Restart&) {
      if (restart >= kMaxRestarts) throw TraceError(loc, "this graph fn has too many long loops to trace");
    }
  }
}

}  // namespace tdl::vm
