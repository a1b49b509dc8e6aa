// The graph-fn tracer's internals (graph/GraphTracer.h is its interface): trace values,
// frames and the Tracer class. Its methods live in files named for their concept:
//   Values.cpp      conversions, arithmetic, conditions    Merge.cpp     state and merging
//   Statements.cpp  statements, errors                      Loops.cpp     while / for loops
//   Expressions.cpp expressions                             Indexing.cpp  indexing and slices
//   Calls.cpp       calls and inlining, annotations         Tapes.cpp     tapes and grad (SPEC §7)
//   Builtins.cpp    the builtins' dispatch by id            Shapes.cpp    builtin helpers, shapes
//   BuiltinsCore.cpp, BuiltinsMath.cpp, BuiltinsShape.cpp   one handler per builtin (or family)
//   TraceValue.cpp  trace values                            Signatures.cpp  signatures, traceGraphFn
#pragma once

#include <fmt/format.h>

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "frontend/Ast.h"
#include "graph/GraphTracer.h"
#include "ir/Builder.h"
#include "ir/ShapeInference.h"
#include "ir/autodiff/Grad.h"
#include "runtime/Create.h"
#include "vm/Annotations.h"
#include "vm/Builtins.h"
#include "vm/Compiler.h"
#include "vm/Format.h"
#include "vm/Interpreter.h"
#include "vm/NumericOps.h"
#include "vm/OpaqueFn.h"
#include "vm/TensorLiteral.h"
#include "vm/ValueOps.h"

namespace tdl::vm::trace {

using ir::Dim;
using ir::TensorType;

// A static loop (known trip count) runs at most this many iterations at trace time;
// longer loops are traced as `while` (the trace restarts with that loop dynamic).
constexpr int kMaxUnroll = 64;
// A loop made dynamic for its length whose body then needs values known at trace time (a list
// index, a string that changes) is unrolled after all, up to this many iterations, as eager
// runs it (traceGraphFn).
constexpr int kMaxFullUnroll = 1024;
// Inlined calls nest at most this deep (deeper means runaway static recursion).
constexpr size_t kMaxInlineDepth = 200;
// A trace restarts at most this often (each restart makes one more loop dynamic).
constexpr int kMaxRestarts = 64;
// A data-dependent loop is retraced at most this often while its carried types settle.
constexpr int kMaxLoopAttempts = 6;

struct Restart {};

// Thrown where every path of the code being traced fails at run time (both branches of a
// run-time `if` hold an error raised there, Tracer::traceMaybe): what follows is not
// reached, up to the code that may not run around it.
struct Diverged {};

// A cond or while op being built: if an error leaves before it is complete (one raised
// where the op may not run is caught around it, Tracer::traceMaybe), the op is taken out
// of its block, so the trace stays valid. done() once it is complete.
struct UnfinishedOp {
  ir::Block& block;
  ir::Op* op;
  UnfinishedOp(ir::Block& b, ir::Op& o) : block(b), op(&o) {}
  UnfinishedOp(const UnfinishedOp&) = delete;
  UnfinishedOp& operator=(const UnfinishedOp&) = delete;
  void done() { op = nullptr; }
  ~UnfinishedOp() {
    if (!op) return;
    for (size_t r = 0; r < op->num_regions(); ++r) op->region(r).block().drop_all_references();
    block.erase(block.index_of(op));
  }
};

// ------------------------------------------------------------------ trace values

struct TV {
  enum K : uint8_t { Undef, Static, Dyn, Seq, Rec, Fn, Range, Tape, GradFn, Fmt } k = Undef;
  Value sv;                 // Static; Fmt: the print format (`{}`/`{:spec}` holes, braces doubled)
  ir::Value* dv = nullptr;  // Dyn
  bool weak = false;        // Dyn: a weak scalar (its IR dtype the default, f64 for a weak float argument: weakWide)
  Tag seqTag = Tag::Tuple;  // Seq
  std::vector<TV> items;    // Seq / Rec fields / Fn captures / Range start, stop, step / Fmt holes
  Names names;              // Rec (a dict: seqTag Tag::Dict, its keys in names)
  const FnDecl* fn = nullptr;      // Fn
  std::vector<Value> defaults;     // Fn (from a VM closure)
  std::vector<TV> traceDefaults;   // Fn declared in the graph fn: defaults evaluated at the declaration
  int tape = -1;                   // Tape: index into the tracer's tapes
  std::vector<int64_t> argnums;    // GradFn: items[0] is the function
  bool tupleArgs = false, withValue = false;  // GradFn

  static TV of(Value v) { TV t; t.k = Static; t.sv = std::move(v); return t; }
  static TV dyn(ir::Value* v, bool weak = false) { TV t; t.k = Dyn; t.dv = v; t.weak = weak; return t; }
  // A string of run-time values: a print format with `{}`/`{:spec}` holes and their values.
  static TV fmtOf(Value format, std::vector<TV> holes) { TV t; t.k = Fmt; t.sv = std::move(format); t.items = std::move(holes); return t; }
  bool isStatic() const { return k == Static; }
  bool isDyn() const { return k == Dyn; }
  bool defined() const { return k != Undef; }
};

inline TV staticBool(bool b) { return TV::of(Value::boolean(b)); }
// The name of a fn's return value in merge and loop messages.
inline const std::string kReturnValue = "the return value";
inline bool isStaticNone(const TV& t) { return t.isStatic() && t.sv.isNone(); }
inline bool isStaticFalse(const TV& t) { return t.isStatic() && t.sv.isScalar() && !t.sv.asBool(); }
inline bool isStaticTrue(const TV& t) { return t.isStatic() && t.sv.isScalar() && t.sv.asBool(); }

bool sameTV(const TV& a, const TV& b);

// The kind of number a weak value holds (bool < integer < float): what a carried or merged
// weak value may widen to without losing its value.
inline int numberKind(DType d) { return d == DType::Bool ? 0 : rt::is_float(d) ? 2 : 1; }

// A static container as a Seq/Rec of static items (so it can be merged leaf by leaf).
TV expandStatic(const TV& t);
// What a `for` or a pattern goes over, as eagerly: a string's characters (and, with
// `ranges`, a static range's numbers) and a dict's keys as a Seq; else expandStatic.
TV expandIterable(const TV& t, bool ranges);

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
  uint32_t inst = 0;  // this inlined call (Loc::inst of its ops)
  // The parameters as the call bound them, where the return annotation names dims: its
  // named dims are checked against theirs (checkReturn).
  std::vector<TV> entryArgs;
};

rt::BinaryOp rtBinary(BinOp op);

// Slots assigned (not declared) anywhere inside a statement; and slots declared there.
void scanAssigned(const Stmt& s, std::set<int>& assigned, std::set<int>& declared, bool& hasBreak, bool& hasReturn, int loopDepth);

// ------------------------------------------------------------------ the tracer

class Tracer {
 public:
  Tracer(Interpreter& vm, ir::Function& f, std::set<const Stmt*>& forced, const std::set<const Stmt*>& unrolled,
         Trace& out)
      : vm_(vm), f_(f), b_(f), forced_(forced), unrolled_(unrolled), out_(out) {}

  TV run(const ClosureObj& c, std::vector<TV> args, Loc loc);

 private:
  Interpreter& vm_;
  ir::Function& f_;
  ir::Builder b_;
  std::set<const Stmt*>& forced_;          // loops traced as while loops (too long to unroll)
  const std::set<const Stmt*>& unrolled_;  // loops unrolled up to kMaxFullUnroll instead of kMaxUnroll
  Trace& out_;
  int64_t unrollLimit(const Stmt& s) const { return unrolled_.count(&s) ? kMaxFullUnroll : kMaxUnroll; }
  std::vector<Frame*> frames_;
  uint32_t instances_ = 0;  // inlined calls so far (Frame::inst)

  Frame& fr() { return *frames_.back(); }

  // A trace-time error at `loc`, with the chain of fns inlined into the graph fn (innermost
  // first), as eager mode's error would show them; the graph fn's own call site is added
  // by the caller of the trace.
  // deferrable: eager mode's own error for these values (TraceError::deferrable).
  [[noreturn]] void fail(const Loc& loc, const std::string& msg, bool deferrable = false);
  // Eager mode's own error (a rule of the language on values known when tracing): in code
  // that may not run, it fails at run time when that code runs.
  [[noreturn]] void failEager(const Loc& loc, const std::string& msg) { fail(loc, msg, true); }

  // Traces `f`, code that may not run at run time (a branch of a run-time `if`, the body of
  // a run-time loop). A deferrable error there, or a Diverged, ends its trace: an assert
  // that fails with the error's message at its place when the code runs is its last op
  // (eager mode raises it only there). Returns whether that happened (the code diverged).
  bool traceMaybe(const std::function<void()>& f);
  // The last error traceMaybe made a run-time one, with its place (where the graph fn's body
  // fails, the one that ended it).
  std::string lastDeferred_;
  // An error message as an assert's format: a parameter's symbolic dim in it (`?0`, a dim
  // generalized over calls, or a name, `N`, in a shape's brackets) becomes a hole that the
  // run fills with the call's size (its `dim` op in `holes`), as eager mode names sizes.
  std::string sizedFormat(const std::string& message, std::vector<ir::Value*>& holes);

  void setLoc(const Loc& l);

  // Runs `f`, turning IR shape errors and runtime errors into trace errors at `loc`.
  template <class F> auto guarded(const Loc& loc, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const ir::ShapeError& e) {
      failEager(loc, e.what());
    } catch (const rt::Error& e) {
      failEager(loc, e.what());
    }
  }

  // ---------------------------------------------------------------- conversions

  static DType defaultDType(const Value& v) { return v.dtype(); }

  bool isNumeric(const TV& t) const { return t.isDyn() || (t.isStatic() && t.sv.isNumeric()); }

  // The type a numeric trace value has in the IR, and whether it is weak.
  TensorType typeOf(const TV& t);
  bool weakOf(const TV& t) const { return t.isDyn() ? t.weak : (t.sv.isScalar() && t.sv.weak()); }
  // A weak float argument, carried as f64 (its exact value, graph/Signatures.cpp).
  // The type a weak value is carried in through a loop or a merge: a weak float number in
  // f64 (weakWide), its value exact as eagerly; anything else its own.
  static TensorType carriedType(TensorType t, bool weak) {
    if (weak && t.rank() == 0 && rt::is_float(t.dtype)) t.dtype = DType::F64;
    return t;
  }
  static bool weakWide(const TV& t) { return t.isDyn() && t.weak && t.dv->type.rank() == 0 && t.dv->type.dtype == DType::F64; }
  // The dtype t has where it is used as a tensor: a weak float's default f32, as eagerly.
  DType usedDtype(const TV& t) { return weakWide(t) ? DType::F32 : typeOf(t).dtype; }
  // A builtin's argument: a weak float argument (weakWide) as its default f32, as eagerly.
  TV asArg(const TV& t, const Loc& loc) { return weakWide(t) ? TV::dyn(materialize(t, loc)) : t; }

  // A numeric trace value as an IR value (of dtype `dt` when given: weak scalars convert
  // exactly, strong values are cast).
  ir::Value* materialize(const TV& t, const Loc& loc, std::optional<DType> dt = std::nullopt);
  ir::Value* weakOperand(const TV& t, DType d, const Loc& loc);
  TV randomShaped(const std::string& dist, DType d, const std::vector<Dim>& dims, const std::vector<ir::Value*>& sizes,
                  const std::vector<ir::Value*>& bounds, const Loc& loc);

  // A static tensor as an IR value: one constant per tensor object, placed at the top of the
  // function (so it dominates every use), so that the tensor keeps its identity in the IR as
  // it has in eager mode: a tape's gradient with respect to a captured `let W` or to a
  // `ones(...)` made while tracing flows to the same value the ops used.
  std::map<const Obj*, std::pair<Value, ir::Value*>> constants_;  // the Value pins the object
  size_t hoistedConstants_ = 0;                                  // at the top of the entry block
  // A float scalar a tape may differentiate with respect to (a global's or a local's, read
  // while a tape records): one IR constant for the variable, so that its uses and the
  // gradient's source are the same value, as eager mode's tape follows the variable's value.
  std::map<std::pair<int, int>, TV> tapedScalars_;  // (module, global slot) -> its constant
  TV scalarConstant(const Value& v);  // v as a hoisted IR constant (a weak float's exact f64), weak as v
  ir::Value* tensorConstant(const Value& v);
  // The insertion point `pos` of `block` as an op to re-find after ops were inserted above
  // it (hoisted constants): the op before it, or null for the block's start.
  ir::Op* anchorOf(ir::Block& block, size_t pos) { return pos > 0 ? &block.op(pos - 1) : nullptr; }
  size_t positionAfter(ir::Block& block, ir::Op* anchor);

  // An integer argument as an i64 scalar, accepted as eager mode's Args::integer accepts it
  // (an integer scalar or a one-element integer tensor), else eager's error.
  ir::Value* integerArg(const TV& t, const char* builtin, const char* param, const Loc& loc);

  std::string describe(const TV& t);
  // "unsupported operand types for OP: A and B" (+ the list/tensor hint), eager's words.
  std::string operandTypesError(std::string_view op, const TV& a, const TV& b, bool add);
  TV listMethodTV(TV& xs, const std::string& name, const std::vector<TV>& args, const Loc& loc);
  TV dictMethodTV(const TV& d, const std::string& name, const Expr& e);

  // ---------------------------------------------------------------- arithmetic

  // Under a tape, an op on a float tensor fixed at trace time is traced, not computed while
  // tracing: the tape records it, as eager's does, so that gradients with respect to that
  // tensor flow through it.
  bool tapedStatic(const TV& t) const;

  TV binop(rt::BinaryOp op, const TV& a, const TV& b, const Loc& loc, std::optional<Op> vop = std::nullopt);
  TV equalTV(const TV& a, const TV& b, const Loc& loc);

  static Value proxy(DType d);

  // keepWeak: an operator (-x, ~x), whose result on a weak scalar stays weak; a builtin's
  // (exp(x), abs(x)) takes the weak value's default dtype, as eagerly.
  TV unop(rt::UnaryOp op, const TV& x, const Loc& loc, bool keepWeak = false);

  TV castTV(const TV& x, DType d, const Loc& loc);

  // A strong dynamic value (weak ones take their default dtype).
  ir::Value* dynStrong(const TV& t, const Loc& loc) { return materialize(t, loc); }

  // ---------------------------------------------------------------- conditions

  // A condition: static bool, or a dynamic bool[]; else the SPEC error.
  TV condition(const TV& c, const Loc& loc, const std::string& subject = "condition");

  TV notTV(const TV& c, const Loc& loc) { return unop(rt::UnaryOp::LogicalNot, c, loc); }
  TV orTV(const TV& a, const TV& b, const Loc& loc);
  TV orderTV(rt::BinaryOp op, const TV& a, const TV& b, const Loc& loc);

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
  TV mergeTV(const TV& a, const TV& b, const std::string& name, const Loc& loc, std::vector<MergeLeaf>& leaves, bool undefOk);

  // Replaces placeholders in a merged skeleton by the values in `vals`.
  static void fill(TV& t, const std::vector<ir::Value*>& vals);

  // A value of type t whose contents never matter (the other side of a merge was undefined).
  ir::Value* placeholder(const TensorType& t);

  ir::Value* leafValue(const TV& side, const MergeLeaf& m, const Loc& loc);

  // Merges the states after the two regions of a cond op; yields and results.
  // dead: the side (0 then, 1 else) that diverged (traceMaybe), or -1: the other side's state
  // goes on alone.
  void mergeCond(ir::Op& op, const FrameState& s0, const FrameState& st, const FrameState& se, const Loc& loc,
                 int dead = -1);
  // A value of the live side `side` of a cond whose other side diverged, with leaves for its
  // run-time values made on that side (`before`: its value before the cond).
  TV liveTV(const TV& live, const TV& before, int side, std::vector<MergeLeaf>& leaves);

  // if p { thenFn() } else { elseFn() } with p dynamic.
  void emitCond(const TV& p, const std::function<void()>& thenFn, const std::function<void()>& elseFn, const Loc& loc);

  // The value of `thenFn()` if p else of `elseFn()` (p dynamic), as one trace value.
  TV condValue(const TV& p, const std::function<TV()>& thenFn, const std::function<TV()>& elseFn, const Loc& loc);

  // ---------------------------------------------------------------- statements

  bool stops();
  bool flagsDynamic();
  TV anyFlag(const Loc& loc);

  void execBlock(const std::vector<StmtPtr>& stmts, size_t from);

  void execBody(const Stmt& s);

  void assignSlot(int slot, TV v, const Loc& loc, const std::string& name);

  std::vector<TV> unpack(const TV& v, size_t n, const Loc& loc);

  void bindPattern(const Pattern& p, const TV& v, const Loc& loc);

  void exec(const Stmt& s);

  void assign(const Stmt& s);
  TV replacedPart(const TV& whole, const Expr& e, const std::function<TV(const TV&)>& f, bool needOld, const Loc& loc);

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
  void leavesOf(const TV& t, std::vector<TV>& out);
  // Whether a and b are the same but for their numeric leaves (a loop may change those).
  bool sameSkeleton(const TV& a, const TV& b);
  // A value known when tracing, for errors about it changing at run time: "the string
  // \"x\"", "a list of 2 items", else "a " and its kind.
  std::string valueText(const TV& t);
  std::string itemSuffix(const TV& container, size_t i);
  DType commonDtype(const std::vector<TV>& xs, const Loc& loc);
  void differingPart(const TV& a, const TV& b, std::string& path, TV& da, TV& db);
  // The skeleton of t with its numeric leaves replaced by vals[k++].
  TV rebuild(const TV& t, const std::vector<ir::Value*>& vals, const std::vector<LeafSpec>& specs, size_t& k);

  // The rest of a loop as an IR while. `cond` gives the loop condition (inside the cond
  // region), `body` runs one iteration; `counter` (Counter carried) is the hidden index of a
  // for loop (Undef for a while).
  void dynamicLoop(const Stmt& s, const std::function<TV(TV&)>& cond, const std::function<void(TV&)>& body, TV counter);

  std::string carriedName(const Carried& c);
  Loc carriedLoc(const Carried& c, const Stmt& s);

  // After one statically unrolled iteration: whether to go on statically.
  enum class After { Next, Stop, Dynamic };
  After afterIteration();

  void whileLoop(const Stmt& s);

  void forLoop(const Stmt& s);

  // ---------------------------------------------------------------- expressions

  TV eval(const Expr& e);

  TV makeSeq(Tag tag, std::vector<TV> items);
  // A container of static items becomes one static value.
  TV normalize(TV r);
  // t as one known value where it is a list, tuple, record or dict whose items all are (at
  // any depth); else t.
  TV knownTV(const TV& t);

  TV globalValue(int module, int slot, const std::string& nm, const Loc& loc);

  TV name(const Expr& e);

  TV moduleMember(int module, const std::string& member, const Loc& loc);

  TV binary(const Expr& e);
  TV containsTV(const TV& xs, const TV& v, const Loc& loc);

  template <class F> TV staticCall(const Loc& loc, F&& f) {
    try {
      return TV::of(f());
    } catch (const rt::Error& err) {
      failEager(loc, err.what());
    } catch (const ScriptError& err) {
      failEager(loc, err.what());
    }
  }

  TV field(const Expr& e);

  TV fieldOf(const TV& b, const std::string& nm, const Loc& loc);

  ir::Value* dimOf(const TV& x, int64_t axis, const Loc& loc);
  TV dimTV(const TV& x, int64_t axis, const Loc& loc);

  TV stackScalars(const std::vector<TV>& xs, const Loc& loc);

  // ---------------------------------------------------------------- indexing

  // An index as an i64 value: an integer (i32/i64), as eager mode requires; a float or bool
  // index is eager's error, never truncated.
  ir::Value* integerIndex(const TV& i, const Loc& loc);

  TV indexInt(const TV& x, const TV& i, const Loc& loc);

  TV indexTV(const TV& base, const Expr& e, const Loc& loc, const TV* sub0 = nullptr);  // sub0: as updateTV's

  // The start, stop and step of slice `s` (open ends: kSliceEnd and kSliceBegin as the
  // step's direction needs). The step must be known at trace time; a start or stop known
  // only at run time is left in lo / hi (an integer scalar) and its static value is open.
  // r[a:b:c] of a range whose bounds are known only at run time: the range of the items it
  // selects, with the bounds of Python's slice.indices (eager's sliceRange).
  TV sliceRange(const TV& r, const Subscript& s, const Loc& loc);
  // len(r) of such a range (its step known at trace time).
  TV rangeLength(const TV& r, const Loc& loc);
  // A range's bounds as i64 (its numbers are, whatever the bounds' integer dtypes) and its
  // step, which must be known at trace time.
  void rangeParts(const TV& r, const Loc& loc, TV& start, TV& stop, int64_t& step);
  // A slice's bounds; those known only at run time go to lo / hi / dynStep where given (else
  // the error that they must be known at trace time).
  void sliceBounds(const Subscript& s, const Loc& at, int64_t& start, int64_t& stop, int64_t& step, TV* lo = nullptr,
                   TV* hi = nullptr, TV* dynStep = nullptr);
  // The i64 indices a slice with a step known only at run time selects from an axis of n:
  // Python's slice.indices (lo / hi undefined where not given), then arange.
  TV dynStepIndices(const TV& n, const TV& lo, const TV& hi, const TV& step, const Loc& loc);

  // The operands of a dyn_slice / dyn_slice_update for the axes in `dyn`: start and stop as
  // i64 scalars (run-time values, or the static bound as a constant).
  std::vector<ir::Value*> dynBounds(const ir::IntList& dyn, const ir::IntList& st, const ir::IntList& sp, const std::vector<TV>& los, const std::vector<TV>& his, const Loc& loc);

  // x[idx] and take(x, idx, axis) for an integer tensor idx: a `take` op (its gradient is
  // index_add). A boolean mask selects a data-dependent number of elements: not traceable.
  TV gatherTV(const TV& base, const TV& index, int64_t axis, const Loc& loc);

  // x[i, ..., a:b:c, ...] = v: the sub-tensor at the leading integer indices (an index op,
  // bounds-checked), the value broadcast to the slice and scattered into zeros of the
  // sub-tensor's shape, a mask scattered the same way, a select, and an update at the
  // integer indices — ops that all have gradients, so a tape sees through it.
  TV sliceUpdateTV(const TV& base, const Expr& target, const TV& v, const Loc& loc);

  // sub0: the first subscript's value when the caller evaluated it (replacedPart).
  TV updateTV(const TV& base, const Expr& target, const TV& v, const Loc& loc, const TV* sub0 = nullptr);
  TV newAxesUpdate(const TV& b, const Expr& e, const std::function<TV(const TV&)>& f, bool needOld, const Loc& loc);
  // An index expression's subscripts changed while this lives: its own ones are lent to the
  // new list (lend) for a plain index or update, and given back also when that fails.
  struct LentSubscripts {
    std::vector<Subscript>& subs;
    std::vector<Subscript> all;
    std::vector<std::pair<size_t, size_t>> lent;  // (place in all, place in subs)
    explicit LentSubscripts(const Expr& e);
    void lend(size_t i);
    ~LentSubscripts();
    LentSubscripts(const LentSubscripts&) = delete;
    LentSubscripts& operator=(const LentSubscripts&) = delete;
  };
  // Without the `none` subscripts, and the result axes at which the new axes go (SPEC §12,
  // eager's rule: the count of result axes before them).
  struct WithoutNewAxes : LentSubscripts {
    std::vector<int64_t> at;
    explicit WithoutNewAxes(const Expr& e);
  };
  // With `...` replaced by `fill` whole slices, or dropped as the last subscript (eager's
  // rule, vm/ValueOps.cpp withoutEllipsis); ellipsisFill says how many for a rank.
  struct WithoutEllipsis : LentSubscripts {
    WithoutEllipsis(const Expr& e, int64_t fill);
  };
  static bool hasEllipsis(const Expr& e);
  int64_t ellipsisFill(const Expr& e, int64_t rank, const Loc& loc);
  ir::Value* storedValue(const TV& v, DType dt, const Loc& loc);
  // x[mask] = rhs (value: rhs) or x[mask] op= rhs (value: x op rhs), a bool mask over x's
  // leading axes: where(mask, value, x).
  TV maskedUpdateTV(const TV& x, const TV& mask, const TV& rhs, const TV& value, const Loc& loc);
  const TV* assignRhs_ = nullptr;  // the right side of the assignment being traced (assign())
  const Expr* assignTarget_ = nullptr;  // its whole target (a mask assigns only there)
  // A compound assignment's subscripts (x[i] op= v), each traced once for the read and the
  // store (assign(); eval looks them up).
  std::map<const Expr*, std::optional<TV>>* subMemo_ = nullptr;

  // ---------------------------------------------------------------- calls

  TV call(const Expr& e);

  TV lookupMethod(const std::string& nm, int module, const Loc& loc, const TV& self);

  TV callTV(const TV& callee, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc);
  // A loaded model's fn (vm/OpaqueFn.h): one call_runtime "extern" op over the arguments'
  // tensor leaves, its results rebuilt in the signature's structure.
  TV opaqueCall(const OpaqueFnObj& fo, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc);
  struct OpaqueLeaves;  // the walk of its arguments (graph/Calls.cpp)

  TV inlineCall(const TV& fnv, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc, const std::string& nm);

  // The result against the return annotation (eager checks it at `return`).
  TV checkReturn(const FnDecl& d, TV r, const std::string& nm, const Loc& loc);

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
  bool matchTV(TV& v, const TypeExpr& t, TraceDims& dims, const Loc& loc);

  // Emits the run-time dim checks of `dims`: each an assert whose message is `head` and the
  // type of `v` as it is when the code runs (its symbolic dims filled in), as eager says it.
  void checkDims(TraceDims& dims, const std::string& head, const TV& v, const Loc& loc);

  std::string annotationText(const TV& v);
  std::string structureTextTV(const TV& v, int depth = 0);

  // The parameters of an inlined fn against their annotations (eager's checkParams).
  void checkParamAnnotations(const FnDecl& d, Frame& f, const std::string& nm, const Loc& loc);

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

  void tapeStart(TapeRec& t);
  std::vector<ir::Op*> tapeOps(const TapeRec& t, const Loc& loc);

  void withTape(const Stmt& s);

  // The float leaves of a sources structure, each as an IR value (null: a static leaf).
  void sourceLeaves(const TV& src, std::vector<const TV*>& out, const Loc& loc);
  static TV expandDeep(const TV& t);
  TV rebuildGrads(const TV& src, const std::vector<ir::Value*>& g, size_t& k);

  TV gradientOf(const std::vector<ir::Op*>& ops, const TV& target, const TV& sources0, const Loc& loc);

  TV tapeGradient(const TapeRec& t, const TV& target, const TV& sources, const Loc& loc);

  // Whether block b lies inside op (at any depth).
  static bool enclosedBy(ir::Block* b, ir::Op* op);

  // A gradient hoisted out of tape t (see tapeGradient) is computed outside it: t sees it as
  // a constant, where eager mode (t recording the backward pass) differentiates it. That
  // differs only where the hoisted backward reads one of t's sources: a compile error then.
  void checkHoisted(const TapeRec& t, const TV& sources, const Loc& loc);

  // A numeric static leaf made an IR value, so that gradients can flow from it.
  TV dynamize(const TV& t, const Loc& loc);

  TV callGradFn(const TV& g, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc);

  // ---------------------------------------------------------------- builtins

  struct BArgs {
    std::vector<TV> pos;
    std::map<std::string, TV> kw;
  };

  TV builtin(int id, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc);

  // A builtin call being traced, bound by name (graph/Builtins.cpp); each builtin (or
  // family) has one handler, found by builtin id in builtinTable().
  struct BuiltinCall {
    std::string nm;
    const Loc& loc;
    std::vector<TV>& args;
    const std::vector<std::string>& kw;
    BArgs a;
    Tracer* tracer;
    TV* arg(size_t i, const char* key);    // by position, else by keyword; null if absent
    TV& need(size_t i, const char* key);   // eager's missing-argument error if absent
    TV& numeric(TV& t, const char* key, const char* expected = "a tensor");  // eager's error unless a number or tensor
    void requireStatic(const TV& t, const char* what);  // fails unless known at trace time
    int64_t staticInt(const TV& t, const char* what);  // known at trace time; eager's rule
    ir::IntList staticInts(const TV& t, const char* what);  // a list of ints known at trace time
    std::vector<int64_t> staticAxes(const TV& t, const char* what);  // an int or a list of ints
    DType dtypeArg(size_t i, const char* key, DType dflt);
  };
  using Handler = TV (Tracer::*)(BuiltinCall&);
  static std::vector<Handler> builtinTable();
  TV bi_tape(BuiltinCall& bc);
  TV bi_dist(BuiltinCall& bc);  // BuiltinsDist.cpp: _dist_allreduce, _broadcast, _allgather, _barrier
  TV bi_grad(BuiltinCall& bc);
  TV bi_unaryOp(BuiltinCall& bc);
  TV bi_binaryOp(BuiltinCall& bc);
  TV bi_clip(BuiltinCall& bc);
  TV bi_where(BuiltinCall& bc);
  TV bi_cast(BuiltinCall& bc);
  TV bi_int(BuiltinCall& bc);
  TV bi_sum(BuiltinCall& bc);
  TV bi_matmul(BuiltinCall& bc);
  TV bi_transpose(BuiltinCall& bc);
  TV bi_zeros(BuiltinCall& bc);
  TV bi_zeros_like(BuiltinCall& c);
  TV bi_arange(BuiltinCall& bc);
  TV bi_broadcast_to(BuiltinCall& c);
  TV bi_reshape(BuiltinCall& bc);
  TV bi_expand_dims(BuiltinCall& c);
  TV bi_squeeze(BuiltinCall& bc);
  TV bi_concat(BuiltinCall& bc);
  TV bi_outer(BuiltinCall& bc);
  TV bi_tile(BuiltinCall& bc);
  TV bi_pad(BuiltinCall& bc);
  TV bi_take(BuiltinCall& bc);
  TV bi_one_hot(BuiltinCall& c);
  TV bi_eye(BuiltinCall& c);
  TV bi_linspace(BuiltinCall& c);
  TV bi_seed(BuiltinCall& c);
  std::string whereText(const Loc& loc);
  TV bi_permutation(BuiltinCall& c);
  std::optional<Dim> countDim(const TV& n);
  ir::Value* iotaOf(const TV& n, const char* negative, const char* fn, const char* param, const Loc& loc);
  TV bi_len(BuiltinCall& bc);
  TV bi_strMethod(BuiltinCall& bc);
  TV bi_sorted(BuiltinCall& bc);
  TV bi_range(BuiltinCall& bc);
  TV bi_print(BuiltinCall& bc);
  TV bi_assert(BuiltinCall& bc);
  TV bi_assertHolds(BuiltinCall& bc);
  TV assertHolds(const TV& c, const Loc& loc);
  TV bi_str(BuiltinCall& bc);
  TV argOverAxes(const std::string& nm, ir::Value* xv, ir::IntList axes, bool keep, const Loc& loc);
  TV bi_format(BuiltinCall& bc);
  TV bi_rand(BuiltinCall& bc);
  TV bi_randint(BuiltinCall& bc);
  TV bi_tree_leaves(BuiltinCall& c);
  TV bi_composite(BuiltinCall& bc);  // vm/Composite.h's builtins (graph/BuiltinsComposite.cpp)
  TV bi_einsum(BuiltinCall& bc);
  TV bi_sequence(BuiltinCall& bc);   // enumerate, zip, reversed
  std::vector<TV> itemsOf(const TV& x, const std::string& nm, const Loc& loc);
  friend struct CompositeTrace;
  TV bi_tree_map(BuiltinCall& c);

  static std::string escapeBraces(const std::string& s);

  std::string staticString(const TV& t, const char* what, const Loc& loc);

  // The print format of a trace value: static text with `{}` holes for dynamic leaves.
  std::string formatOf(const TV& t, std::vector<ir::Value*>& holes, const Loc& loc, bool top);

  ir::IntList ints(const Value& v, const Loc& loc);

  // A shape argument: static sizes, or dims of tensors (x.shape[0] of a symbolic axis).
  // The dims of shape `s`: known sizes, the (symbolic) dims of tensors, and with `sizes`,
  // sizes known only at run time (an integer scalar: a kAnyDim here, its value in *sizes;
  // *sizes has one entry per dim, null for the known ones).
  // `fn`: the builtin, whose static shape argument is checked with eager's rule and words.
  std::vector<Dim> shapeDims(const TV& s, const Loc& loc, bool allowMinusOne = false,
                             std::vector<ir::Value*>* sizes = nullptr, const char* fn = nullptr);

  // x broadcast (BroadcastDyn) or reshaped (ReshapeDyn) to `dims`, some of whose sizes are
  // only known at run time (`sizes`, from shapeDims; a -1 of a reshape is inferred then):
  // those dims are operands, the result type names them (a tensor's symbol, or a fresh one).
  ir::Value* dynShaped(ir::OpKind kind, ir::Value* x, std::vector<Dim> dims, const std::vector<ir::Value*>& sizes, const Loc& loc);
  // x broadcast to dims from shapeDims (a broadcast_dyn when some size is known only at
  // run time).
  ir::Value* broadcastShaped(ir::Value* x, const std::vector<Dim>& dims, const std::vector<ir::Value*>& sizes,
                             const Loc& loc);
  // Some size known only at run time: not a tensor's symbol.
  static bool anyComputed(const std::vector<Dim>& dims);

  // Resolves a -1 in `to` at trace time; false when only the run time can (symbolic dims).
  bool resolveMinusOne(const std::vector<Dim>& from, std::vector<Dim>& to, const Loc& loc);
};

}  // namespace tdl::vm::trace
