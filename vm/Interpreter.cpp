#include "vm/Interpreter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "frontend/Diagnostics.h"
#include "runtime/Error.h"
#include "runtime/Interrupt.h"
#include "runtime/Print.h"
#include "vm/Annotations.h"
#include "vm/Disassembler.h"
#include "vm/Format.h"
#include "vm/NumericOps.h"
#include "vm/ValueOps.h"
#include "runtime/Profile.h"
#include "vm/autodiff/Tape.h"

namespace tdl::vm {

namespace {
// The name `--profile` gives an operator on tensors: the runtime's op names (add, matmul, ...).
const char* profileName(Op op) {
  switch (op) {
    case Op::FloorDiv: return "floordiv";
    case Op::Mod: return "mod";
    case Op::Pow: return "pow";
    case Op::MatMul: return "matmul";
    case Op::Eq: return "eq";
    case Op::Ne: return "ne";
    case Op::Lt: return "lt";
    case Op::Le: return "le";
    case Op::Gt: return "gt";
    case Op::Ge: return "ge";
    case Op::BitAnd: return "bitand";
    case Op::BitOr: return "bitor";
    default: return opName(op);
  }
}
}  // namespace

namespace {

// An error that already carries its position and call trace; outer
// dispatch loops (native calls in between) pass it on unchanged.
struct TracedError : ScriptError {
  using ScriptError::ScriptError;
};

// An error raised by the VM at a known position (not the current instruction).
struct PositionedError {
  Loc loc;
  std::string msg;
};

// A deep recursion's trace shows this many calls at each end.
constexpr size_t kTraceEdgeLines = 10;

bool isBoolScalar(const Value& v) { return v.isScalar() && v.dtype() == DType::Bool; }

}  // namespace

Interpreter::Interpreter(const SourceManager& sm, std::vector<std::unique_ptr<Module>>& modules,
                         const Program& program, VmOptions opts)
    : sm_(&sm), opts_(std::move(opts)) {
  // Zeroed memory is a run of `none` values (Tag::None == 0); pages are only
  // touched when used.
  stack_ = static_cast<Value*>(std::calloc(kStackValues, sizeof(Value)));
  if (!stack_) throw std::bad_alloc();
  stackHigh_ = stack_;
  frames_.reserve(kMaxFrames + 2);
  resetModules(modules, program);
}

Interpreter::~Interpreter() {
  // Only the registers ever used: reading the rest would fault in 64 MiB of
  // zero pages at exit.
  for (Value* v = stack_; v < stackHigh_; ++v)
    if (v->isHeap()) *v = Value();
  globals_.clear();
  std::free(stack_);
}

void Interpreter::resetModules(std::vector<std::unique_ptr<Module>>& modules, const Program& program,
                               const SourceManager* sm) {
  if (sm) sm_ = sm;
  modules_ = &modules;
  program_ = &program;
  size_t n = modules.size();
  globals_.resize(n);
  globalIndex_.resize(n);
  moduleDone_.resize(n, false);
  for (auto& m : modules) {
    auto& g = globals_[static_cast<size_t>(m->id)];
    g.resize(m->globalNames.size(), Value::undef());
    auto& idx = globalIndex_[static_cast<size_t>(m->id)];
    idx.clear();
    for (size_t i = 0; i < m->globalNames.size(); ++i) idx[m->globalNames[i]] = static_cast<int>(i);
  }
}

// ------------------------------------------------------------------ running

Value* Interpreter::stackTop() const {
  if (frames_.empty()) return stack_;
  const Frame& f = frames_.back();
  return f.R + f.proto->numRegs;
}

void Interpreter::pushFrame(const FnProto* proto, Value closure, Value* R, Value* ret) {
  rt::check_interrupt();  // a long recursion stops too (issue 23)
  if (frames_.size() >= kMaxFrames || R + proto->numRegs > stack_ + kStackValues)
    throw rt::Error("maximum recursion depth exceeded");
  touchStack(R + proto->numRegs);
  bool inGraph = proto->isGraph || (!frames_.empty() && frames_.back().inGraph);
  frames_.push_back(Frame{proto, std::move(closure), R, proto->chunk.code.data(), ret, nullptr, inGraph});
}

void Interpreter::runModule(int id) {
  if (moduleDone_[static_cast<size_t>(id)]) return;
  moduleDone_[static_cast<size_t>(id)] = true;
  for (int dep : (*modules_)[static_cast<size_t>(id)]->importedModules)
    if (dep >= 0) runModule(dep);
  runCode(program_->moduleCode[static_cast<size_t>(id)]);
}

void Interpreter::runCode(const FnProto* proto) {
  Value result;
  size_t depth = frames_.size();
  Value* R = stackTop();
  pushFrame(proto, Value(), R, &result);
  execute(depth);
}

Value Interpreter::call(const Value& fn, std::vector<Value> args, const std::vector<std::string>* kwNames) {
  Value result;
  size_t depth = frames_.size();
  Value* argv = stackTop();
  // One register below the arguments stays free, as in a Call instruction.
  if (argv + args.size() + 1 > stack_ + kStackValues) throw rt::Error("maximum recursion depth exceeded");
  touchStack(argv + args.size() + 1);
  for (size_t i = 0; i < args.size(); ++i) argv[i] = std::move(args[i]);
  try {
    if (callValue(fn, argv, static_cast<int>(args.size()), kwNames, &result)) execute(depth);
  } catch (...) {
    for (size_t i = 0; i < args.size(); ++i) argv[i] = Value();
    throw;
  }
  return result;
}

// ------------------------------------------------------------------- calls

void Interpreter::bindArguments(const ClosureObj& c, Value* argv, int argc, const std::vector<std::string>* kw) {
  const FnProto& p = *c.proto;
  int nkw = kw ? static_cast<int>(kw->size()) : 0;
  int npos = argc - nkw;
  if (nkw == 0 && argc == p.numParams) return;  // already in place
  if (npos > p.numParams)
    throw rt::Error(tooManyArgumentsText(fmt::format("fn '{}'", p.name), static_cast<size_t>(p.numParams), static_cast<size_t>(npos)));
  std::vector<Value> bound(static_cast<size_t>(p.numParams));
  std::vector<bool> given(static_cast<size_t>(p.numParams), false);
  for (int i = 0; i < npos; ++i) {
    bound[static_cast<size_t>(i)] = std::move(argv[i]);
    given[static_cast<size_t>(i)] = true;
  }
  for (int k = 0; k < nkw; ++k) {
    const std::string& name = (*kw)[static_cast<size_t>(k)];
    int j = 0;
    while (j < p.numParams && p.paramNames[static_cast<size_t>(j)] != name) ++j;
    if (j == p.numParams)
      throw rt::Error(fmt::format("fn '{}' has no parameter named '{}'{}", p.name, name, didYouMean(name, p.paramNames)));
    if (given[static_cast<size_t>(j)])
      throw rt::Error(fmt::format("fn '{}' got two values for parameter '{}'", p.name, name));
    bound[static_cast<size_t>(j)] = std::move(argv[npos + k]);
    given[static_cast<size_t>(j)] = true;
  }
  for (int j = 0; j < p.numParams; ++j) {
    if (given[static_cast<size_t>(j)]) continue;
    if (!p.hasDefault[static_cast<size_t>(j)])
      throw rt::Error(fmt::format("fn '{}' is missing its argument '{}'", p.name, p.paramNames[static_cast<size_t>(j)]));
    bound[static_cast<size_t>(j)] = c.defaults[static_cast<size_t>(j)];
    if (bound[static_cast<size_t>(j)].isUndef())
      throw rt::Error(fmt::format("the default of '{}' of fn '{}' is not defined yet (its fn statement has not run)",
                                  p.paramNames[static_cast<size_t>(j)], p.name));
  }
  for (int i = p.numParams; i < argc; ++i) argv[i] = Value();
  for (int j = 0; j < p.numParams; ++j) argv[j] = std::move(bound[static_cast<size_t>(j)]);
}

DimBindings Interpreter::checkParams(const FnProto& p, Value* R) {
  DimBindings dims;
  for (int i = 0; i < p.numParams; ++i) {
    const TypeExpr* t = p.paramTypes[static_cast<size_t>(i)];
    if (!t) continue;
    Value before = R[i];  // as it came (matching may convert it)
    if (!matchesAnnotation(R[i], *t, dims))
      throw rt::Error(fmt::format("argument '{}' of fn '{}' must be {}, got {}", p.paramNames[static_cast<size_t>(i)],
                                  p.name, t->str(), structureText(before)));
  }
  return dims;
}

bool Interpreter::callValue(const Value& fnIn, Value* argv, int argc, const std::vector<std::string>* kw, Value* ret) {
  switch (fnIn.tag()) {
    case Tag::Builtin: {
      CallArgs args{argv, argc, kw};
      rt::prof::Scope ps(rt::prof::Section::EagerOp, builtinName(fnIn.builtinId()));
      Value r = builtinFn(fnIn.builtinId())(*this, args);
      // A value made inside a tape (zeros, randn, ...) can be asked about too.
      if (ad::recording() && r.node() == 0 && ad::isFloat(r)) [[unlikely]] ad::makeLeaf(r);
      for (int i = 0; i < argc; ++i) argv[i] = Value();
      *ret = std::move(r);
      return false;
    }
    case Tag::DType: {  // f64(x) is cast(x, f64)
      if (argc != 1 || kw) throw rt::Error(fmt::format("{}(x) takes one argument", rt::dtype_name(fnIn.dtype())));
      *ret = castValue(argv[0], fnIn.dtype());
      argv[0] = Value();
      return false;
    }
    case Tag::Native: {
      Value self = fnIn;
      CallArgs args{argv, argc, kw};
      std::string pname = rt::prof::enabled() ? self.as<NativeObj>()->typeName() : std::string();
      rt::prof::Scope ps(rt::prof::Section::EagerOp, pname);
      Value r = self.as<NativeObj>()->call(*this, args);
      for (int i = 0; i < argc; ++i) argv[i] = Value();
      *ret = std::move(r);
      return false;
    }
    case Tag::Closure: break;
    default:
      throw rt::Error(fmt::format("a {} is not callable", tagName(fnIn.tag())));
  }
  Value fn = fnIn;  // fnIn may live in a register that the callee reuses
  const ClosureObj& c = *fn.as<ClosureObj>();
  const FnProto& p = *c.proto;
  if (argv + p.numRegs > stack_ + kStackValues || frames_.size() >= kMaxFrames)
    throw rt::Error("maximum recursion depth exceeded");
  touchStack(argv + p.numRegs);
  bindArguments(c, argv, argc, kw);
  for (int i = p.numParams; i < p.numRegs; ++i) argv[i] = Value();
  DimBindings bound;
  if (!p.paramTypes.empty()) {
    bool annotated = false;
    for (auto* t : p.paramTypes) annotated = annotated || t;
    if (annotated) bound = checkParams(p, argv);
  }
  // A graph fn called while an eager tape records runs in the VM, its ops recorded one by
  // one, so that gradients flow through it (compiled code is opaque to the tape). A tape
  // inside the graph fn is compiled with it.
  if (p.isGraph && !opts_.eager && !ad::recording()) {
    if (!graphCache_)
      throw rt::Error(fmt::format("graph fn '{}' cannot be compiled yet (the graph compiler is not implemented); "
                                  "run with --eager", p.name));
    std::vector<Value> args;
    args.reserve(static_cast<size_t>(p.numParams));
    for (int i = 0; i < p.numParams; ++i) args.push_back(std::move(argv[i]));
    Value out;
    rt::prof::Scope ps(rt::prof::Section::GraphFn, p.name);
    if (graphCache_->call(*this, c, args, out)) {
      *ret = std::move(out);
      return false;
    }
    ps.cancel();
    for (int i = 0; i < p.numParams; ++i) argv[i] = std::move(args[static_cast<size_t>(i)]);
  } else if (p.isGraph && !opts_.eager && graphCache_) {
    graphCache_->tapedCall(c);
  }
  pushFrame(&p, std::move(fn), argv, ret);
  if (p.retNamesDims) frames_.back().dims = std::make_shared<const DimBindings>(std::move(bound));
  return true;
}

void Interpreter::makeClosure(const Instr& in, Value* R, const Frame& fr) {
  const FnProto* proto = fr.proto->chunk.fns[in.b];
  auto* c = new ClosureObj(proto);
  Value v = Value::object(Tag::Closure, c);
  for (const Ref& ref : proto->captures) {
    switch (ref.kind) {
      case RefKind::Local: c->captures.push_back(R[ref.index]); break;
      case RefKind::Capture: c->captures.push_back(fr.closure.as<ClosureObj>()->captures[static_cast<size_t>(ref.index)]); break;
      case RefKind::Self: c->captures.push_back(fr.closure); break;
      default: throw std::logic_error("closure capture of a non-local");
    }
  }
  c->defaults.resize(static_cast<size_t>(proto->numParams));
  int k = 1;
  for (int i = 0; i < proto->numParams; ++i) {
    if (!proto->hasDefault[static_cast<size_t>(i)]) continue;
    // C = 1: a hoisted fn whose defaults are evaluated when its statement runs.
    c->defaults[static_cast<size_t>(i)] = in.c == 1 ? Value::undef() : R[in.a + k++];
  }
  R[in.a] = std::move(v);
}

Value Interpreter::lookupMethod(const std::string& name, int module) {
  auto& idx = globalIndex_[static_cast<size_t>(module)];
  auto it = idx.find(name);
  if (it != idx.end()) {
    const Value& g = globals_[static_cast<size_t>(module)][static_cast<size_t>(it->second)];
    if (!g.isUndef()) return g;
  }
  int id = builtinId(name);
  if (id >= 0) {
    DType dt;
    if (builtinIsDType(id, dt)) return Value::dtype(dt);
    return Value::builtin(id);
  }
  return Value::undef();
}

int Interpreter::prepareMethodCall(const Instr& in, Value* R) {
  const Frame& fr = frames_.back();
  const MethodSite& site = fr.proto->chunk.sites[in.c];
  Value& self = R[in.a + 1];
  int n = in.b;
  if (self.isStr()) [[unlikely]] {  // a string's own methods first (s.split(","))
    int id = strMethodId(site.name);
    if (id >= 0) {
      R[in.a] = Value::builtin(id);
      return n + 1;
    }
  }
  if (hasField(self, site.name)) {
    // A field holding a function: call it with the arguments only.
    R[in.a] = fieldValue(self, site.name);
    for (int i = 0; i < n; ++i) R[in.a + 1 + i] = std::move(R[in.a + 2 + i]);
    R[in.a + 1 + n] = Value();
    return n;
  }
  Value f = lookupMethod(site.name, fr.proto->module);
  if (f.isUndef()) {
    if (self.tag() == Tag::List && isListMutator(site.name))  // e.g. a module's list, m.xs.append(v)
      throw rt::Error(fmt::format("{}() changes a list in place: call it on a variable of this file, or an element or "
                                  "field of one",
                                  site.name));
    if (self.isStr()) throw rt::Error(strNoMethod(site.name));
    if (self.isNumeric())
      if (std::string m = tensorFieldCalled(site.name); !m.empty()) throw rt::Error(m);
    throw rt::Error(fmt::format("{} has no field or method '{}'", typeText(self), site.name));
  }
  R[in.a] = std::move(f);
  return n + 1;
}

// --------------------------------------------------------------- errors

std::vector<std::string> Interpreter::traceLines() const {
  std::vector<std::string> lines;
  size_t shown = 0, total = 0;
  for (size_t k = frames_.size(); k-- > 1;) total += frames_[k].proto->isTopLevel ? 0 : 1;
  for (size_t k = frames_.size(); k-- > 1;) {
    const Frame& f = frames_[k];
    if (f.proto->isTopLevel) continue;
    ++shown;
    if (total > 2 * kTraceEdgeLines && shown > kTraceEdgeLines && shown <= total - kTraceEdgeLines) {
      if (shown == kTraceEdgeLines + 1) lines.push_back(fmt::format("... {} more calls ...", total - 2 * kTraceEdgeLines));
      continue;
    }
    const Frame& caller = frames_[k - 1];
    size_t at = static_cast<size_t>(caller.ip - caller.proto->chunk.code.data()) - 1;
    const Loc& site = caller.proto->chunk.locs[at];
    std::string where = site.file < sm_->size() ? fmt::format("{}:{}:{}", sm_->file(site.file).path, site.line, site.col) : "?";
    lines.push_back(fmt::format("in fn {} at {}", f.proto->name, where));
  }
  return lines;
}

Loc Interpreter::currentLoc() const {
  if (frames_.empty()) return Loc();
  const Frame& f = frames_.back();
  size_t at = static_cast<size_t>(f.ip - f.proto->chunk.code.data()) - 1;
  return f.proto->chunk.locs[at];
}

Loc Interpreter::callerLoc() const {
  if (frames_.empty()) return Loc();
  int module = frames_.back().proto->module;
  for (size_t i = frames_.size(); i-- > 0;) {
    const Frame& f = frames_[i];
    if (f.proto->module == module) continue;
    size_t at = static_cast<size_t>(f.ip - f.proto->chunk.code.data()) - 1;
    return f.proto->chunk.locs[at];
  }
  return currentLoc();
}

void Interpreter::rethrowWithTrace(const std::string& msg, const Loc* loc) {
  const Frame& f = frames_.back();
  size_t at = static_cast<size_t>(f.ip - f.proto->chunk.code.data()) - 1;
  TracedError e(loc ? *loc : f.proto->chunk.locs[at], msg);
  e.trace = traceLines();
  throw e;
}

void Interpreter::traceInstruction(const Frame& fr, const Instr* ip) const {
  size_t at = static_cast<size_t>(ip - fr.proto->chunk.code.data());
  std::string line = fmt::format("[{}] {:<12} {}", frames_.size() - 1, fr.proto->name, disassembleInstr(*fr.proto, at));
  std::string regs;
  for (int i = 0; i < fr.proto->numRegs && i < 16; ++i) {
    std::string s = repr(fr.R[i]);
    if (s.size() > 24) s = s.substr(0, 21) + "...";
    std::replace(s.begin(), s.end(), '\n', ' ');
    regs += fmt::format(" r{}={}", i, s);
  }
  fmt::print(stderr, "{}\n    {}\n", line, regs);
}

// ------------------------------------------------------------ the loop

void Interpreter::execute(size_t stopDepth) {
  size_t tapes = ad::activeTapes();
  try {
    loop(stopDepth);
  } catch (...) {
    // Tapes whose `with` block an error left stop recording.
    ad::unwindTapes(tapes);
    handleError(stopDepth);
  }
}

void Interpreter::forEachRoot(const std::function<void(Value&)>& f) {
  for (Value* v = stack_; v < stackTop(); ++v) f(*v);
  for (auto& g : globals_)
    for (auto& v : g) f(v);
  for (auto& fr : frames_) f(fr.closure);
}

void Interpreter::handleError(size_t stopDepth) {
  try {
    throw;
  } catch (const TracedError&) {
    frames_.resize(stopDepth);
    throw;
  } catch (const ExitRequest&) {
    frames_.resize(stopDepth);
    throw;
  } catch (const PositionedError& e) {
    try {
      rethrowWithTrace(e.msg, &e.loc);
    } catch (...) {
      frames_.resize(stopDepth);
      throw;
    }
  } catch (const ScriptError& e) {
    try {
      rethrowWithTrace(e.what(), e.loc.valid() ? &e.loc : nullptr);
    } catch (TracedError& t) {  // lines of calls inside a compiled graph fn come first
      t.trace.insert(t.trace.begin(), e.trace.begin(), e.trace.end());
      frames_.resize(stopDepth);
      throw;
    } catch (...) {
      frames_.resize(stopDepth);
      throw;
    }
  } catch (const rt::Error& e) {
    try {
      rethrowWithTrace(e.what(), nullptr);
    } catch (...) {
      frames_.resize(stopDepth);
      throw;
    }
  } catch (const std::bad_alloc&) {
    try {
      rethrowWithTrace("out of memory", nullptr);
    } catch (...) {
      frames_.resize(stopDepth);
      throw;
    }
  } catch (const std::length_error&) {  // a container asked for more than it can ever hold
    try {
      rethrowWithTrace("out of memory", nullptr);
    } catch (...) {
      frames_.resize(stopDepth);
      throw;
    }
  } catch (...) {
    // Anything else (an internal error) propagates as it is, but the frames of the failed
    // run go, so that a session (REPL, notebook) can go on after it.
    frames_.resize(stopDepth);
    throw;
  }
}

// One dispatch loop: DISPATCH() goes back to the switch. (Not computed
// `goto *label`: jumping out of a case block that way skips the destructors
// of its locals — it leaked under LeakSanitizer.)
#define DISPATCH() continue
#define CASE(name) case Op::name:

void Interpreter::loop(size_t stopDepth) {
  Frame* fr = &frames_.back();
  Value* R = fr->R;
  const Chunk* K = &fr->proto->chunk;
  const bool trace = opts_.trace;

  // After a call or return: the running frame changed.
  auto reload = [&] {
    fr = &frames_.back();
    R = fr->R;
    K = &fr->proto->chunk;
  };

  Instr in;
  for (;;) {
    if (trace) traceInstruction(*fr, fr->ip);
    in = *fr->ip++;
    switch (in.op) {
      CASE(Move) {
        R[in.a] = R[in.b];
        DISPATCH();
      }
      CASE(LoadK) {
        R[in.a] = K->values[in.b];
        // A constant bound inside a tape is a value it can be asked about.
        if (ad::recording() && ad::isFloat(R[in.a])) [[unlikely]] ad::makeLeaf(R[in.a]);
        DISPATCH();
      }
      CASE(LoadNone) {
        int n = in.b > 0 ? in.b : 1;
        for (int i = 0; i < n; ++i) R[in.a + i] = Value();
        DISPATCH();
      }
      CASE(ClearTemps) {
        // Only references matter (they keep tensors shared, so a later in-place
        // update would copy); scalars left in dead temporaries are harmless.
        for (int i = 0; i < in.b; ++i)
          if (R[in.a + i].isHeap()) R[in.a + i] = Value();
        DISPATCH();
      }
      CASE(LoadBuiltin) {
        DType dt;
        R[in.a] = builtinIsDType(in.b, dt) ? Value::dtype(dt) : Value::builtin(in.b);
        DISPATCH();
      }
      CASE(GetGlobal) {
        const Value& g = globals_[in.c][in.b];
        if (g.isUndef())
          throw rt::Error(fmt::format("'{}' is used before its definition", (*modules_)[in.c]->globalNames[in.b]));
        R[in.a] = g;
        DISPATCH();
      }
      CASE(SetGlobal) {
        // A fn a graph fn was given (a checked program cannot name the var there): the graph
        // fn's words, as its trace gives them.
        if (fr->inGraph) [[unlikely]]
          throw rt::Error(fmt::format("cannot assign to '{}' in a graph fn",
                                      (*modules_)[static_cast<size_t>(fr->proto->module)]->globalNames[in.b]));
        globals_[static_cast<size_t>(fr->proto->module)][in.b] = R[in.a];
        DISPATCH();
      }
      CASE(GetCapture) {
        R[in.a] = fr->closure.as<ClosureObj>()->captures[in.b];
        DISPATCH();
      }
      CASE(GetSelf) {
        R[in.a] = fr->closure;
        DISPATCH();
      }
      CASE(Closure) {
        makeClosure(in, R, *fr);
        DISPATCH();
      }

#define ARITH_CASE(NAME)                                                              \
  CASE(NAME) {                                                                        \
    const Value& a = (in.flags & kConstB) ? K->values[in.b] : R[in.b];                \
    const Value& b = (in.flags & kConstC) ? K->values[in.c] : R[in.c];                \
    if (a.isScalar() && b.isScalar() && !ad::recording()) [[likely]] {                \
      Value out;                                                                      \
      if (arithSameKind<rt::BinaryOp::NAME>(a, b, out)) R[in.a] = std::move(out);     \
      else R[in.a] = binaryValues(rt::BinaryOp::NAME, a, b);                          \
    } else if ((in.flags & (kTempB | kTempC)) && a.isNumeric() && b.isNumeric()) {  \
      rt::prof::Scope ps(rt::prof::Section::EagerOp, rt::op_name(rt::BinaryOp::NAME));  \
      R[in.a] = binaryValuesReusing(rt::BinaryOp::NAME, a, b, in.flags & kTempB,       \
                                    in.flags & kTempC);                               \
    } else {                                                                          \
      rt::prof::Scope ps(rt::prof::Section::EagerOp, rt::op_name(rt::BinaryOp::NAME));  \
      R[in.a] = binaryOperator(in.op, a, b);                                          \
    }                                                                                 \
    DISPATCH();                                                                       \
  }
      ARITH_CASE(Add)
      ARITH_CASE(Sub)
      ARITH_CASE(Mul)
      ARITH_CASE(Div)
#undef ARITH_CASE
      CASE(FloorDiv) CASE(Mod) CASE(Pow) CASE(MatMul) CASE(Eq) CASE(Ne) CASE(Lt) CASE(Le) CASE(Gt) CASE(Ge)
      CASE(BitAnd) CASE(BitOr) {
        const Value& a = (in.flags & kConstB) ? K->values[in.b] : R[in.b];
        const Value& b = (in.flags & kConstC) ? K->values[in.c] : R[in.c];
        Value out;
        if (a.isScalar() && b.isScalar() && compareScalars(in.op, a, b, out)) {
          R[in.a] = std::move(out);
        } else {
          rt::prof::Scope ps(rt::prof::Section::EagerOp, profileName(in.op));
          R[in.a] = binaryOperator(in.op, a, b);
        }
        DISPATCH();
      }
      CASE(Neg) {
        rt::prof::Scope ps(rt::prof::Section::EagerOp, R[in.b].isTensor() ? "neg" : "neg (scalar)");
        R[in.a] = unaryValues(rt::UnaryOp::Neg, R[in.b]);
        DISPATCH();
      }
      CASE(BitNot) {
        R[in.a] = unaryValues(rt::UnaryOp::BitNot, R[in.b]);
        DISPATCH();
      }
      CASE(In) {
        const Value& a = (in.flags & kConstB) ? K->values[in.b] : R[in.b];
        const Value& b = (in.flags & kConstC) ? K->values[in.c] : R[in.c];
        R[in.a] = containsValue(b, a);
        DISPATCH();
      }
      CASE(Not) {
        const Value& x = R[in.b];
        if (!isBoolScalar(x)) throw rt::Error(fmt::format("operand of 'not' must be a bool scalar, got {}", typeText(x)));
        R[in.a] = Value::boolean(x.rawInt() == 0, x.weak());
        DISPATCH();
      }

      CASE(Jump) {
        if (in.jump() < 0) rt::check_interrupt();  // a loop's back-edge (issue 23)
        fr->ip += in.jump();
        DISPATCH();
      }
      CASE(JumpIfFalse) CASE(JumpIfTrue) {
        const Value& c = R[in.a];
        if (!isBoolScalar(c)) throw rt::Error(fmt::format("condition must be a bool scalar, got {}", typeText(c)));
        if ((c.rawInt() != 0) == (in.op == Op::JumpIfTrue)) fr->ip += in.jump();
        DISPATCH();
      }
      CASE(TestBool) {
        const Value& c = R[in.a];
        if (!isBoolScalar(c))
          throw rt::Error(fmt::format("{} must be a bool scalar, got {}", K->strings[in.c], typeText(c)));
        DISPATCH();
      }

      CASE(Call) {
        const std::vector<std::string>* kw = in.c ? K->names[in.c - 1u].get() : nullptr;
        if (callValue(R[in.a], R + in.a + 1, in.b, kw, R + in.a)) reload();
        DISPATCH();
      }
      CASE(CallMethod) {
        if (R[in.a + 1].tag() == Tag::Dict) [[unlikely]] {  // d.keys(), d.items(), ...
          const MethodSite& site = K->sites[in.c];
          R[in.a] = dictMethod(R[in.a + 1], site.name, R + in.a + 2, in.b, site.kwNames.get());
          DISPATCH();
        }
        int n = prepareMethodCall(in, R);
        if (callValue(R[in.a], R + in.a + 1, n, K->sites[in.c].kwNames.get(), R + in.a)) reload();
        DISPATCH();
      }
      CASE(ListMethod) {
        const MethodSite& site = K->sites[in.c];
        Value& xs = site.global ? globals_[static_cast<size_t>(site.module)][in.b] : R[in.b];
        if (xs.isUndef())
          throw rt::Error(fmt::format("'{}' is used before its definition",
                                      (*modules_)[static_cast<size_t>(site.module)]->globalNames[in.b]));
        R[in.a] = listMethod(xs, site.name, R + in.a + 1, site.argc);
        DISPATCH();
      }
      CASE(Return) CASE(ReturnNone) {
        Value result = in.op == Op::Return ? std::move(R[in.a]) : Value();
        const FnProto& p = *fr->proto;
        if (p.retType && !p.isTopLevel) {
          DimBindings dims = fr->dims ? *fr->dims : DimBindings();
          Value before = result;
          if (!matchesAnnotation(result, *p.retType, dims))
            throw rt::Error(fmt::format("fn '{}' must return {}, got {}", p.name, p.retType->str(), structureText(before)));
        }
        for (int i = 0; i < p.numRegs; ++i) R[i] = Value();
        Value* ret = fr->ret;
        frames_.pop_back();
        *ret = std::move(result);
        if (frames_.size() <= stopDepth) return;
        reload();
        DISPATCH();
      }

      CASE(Tuple) CASE(List) {
        std::vector<Value> items(R + in.b, R + in.b + in.c);
        R[in.a] = in.op == Op::Tuple ? makeTuple(std::move(items)) : makeList(std::move(items));
        DISPATCH();
      }
      CASE(Record) {
        const Names& names = K->names[in.c - 1u];
        std::vector<Value> vals(R + in.b, R + in.b + names->size());
        R[in.a] = makeRecord(names, std::move(vals));
        DISPATCH();
      }
      CASE(Dict) {
        const Names& keys = K->names[in.c - 1u];
        std::vector<Value> vals(R + in.b, R + in.b + keys->size());
        R[in.a] = makeDict(*keys, std::move(vals));
        DISPATCH();
      }
      CASE(Index) {
        rt::prof::Scope ps(rt::prof::Section::EagerOp, R[in.b].isTensor() ? "index" : "index (not a tensor)");
        R[in.a] = indexValue(R[in.b], K->indexes[in.c], R + in.b + 1);
        DISPATCH();
      }
      CASE(GetField) {
        R[in.a] = fieldValue(R[in.b], K->strings[in.c]);
        DISPATCH();
      }
      CASE(SetPath) {
        const PathDesc& path = K->paths[in.b];
        Value& target = path.global ? globals_[static_cast<size_t>(fr->proto->module)][in.a] : R[in.a];
        assignPath(target, path, R, R[in.c]);
        DISPATCH();
      }
      CASE(Unpack) {
        std::vector<Value> items = unpackValues(R[in.b], in.c);
        for (int i = 0; i < in.c; ++i) R[in.a + i] = std::move(items[static_cast<size_t>(i)]);
        DISPATCH();
      }
      CASE(CheckType) {
        DimBindings dims;
        const TypeExpr& t = *K->types[in.b];
        Value before = R[in.a];
        if (!matchesAnnotation(R[in.a], t, dims))
          throw rt::Error(fmt::format("value must be {}, got {}", t.str(), structureText(before)));
        DISPATCH();
      }

      CASE(ForPrep) {
        const Value& it = R[in.b];
        switch (it.tag()) {
          case Tag::Range: case Tag::Tuple: case Tag::List: case Tag::Str: break;
          case Tag::Tensor: break;
          default: (void)iterLength(it);  // native iterables (progress); else "cannot iterate over"
        }
        R[in.a] = it;
        R[in.a + 1] = Value::i64(0);
        DISPATCH();
      }
      CASE(ForNext) {
        rt::check_interrupt();
        const Value& it = R[in.a];
        int64_t pos = R[in.a + 1].rawInt();
        Value& item = R[in.c ? in.c - 1 : in.a + 2];
        if (it.tag() == Tag::Range) {
          const auto* r = it.as<RangeObj>();
          if (pos < r->len) {
            item = Value::i64(r->at(pos));
            R[in.a + 1] = Value::i64(pos + 1);
            fr->ip += in.jump();
          }
        } else if (pos < iterLength(it)) {
          item = iterItem(it, pos);
          R[in.a + 1] = Value::i64(pos + 1);
          fr->ip += in.jump();
        }
        DISPATCH();
      }
      CASE(ToStr) {
        Value& v = R[in.a];
        v = makeStr(in.c == 0xFFFF ? str(v) : formatWithSpec(v, K->strings[in.c]));
        DISPATCH();
      }
      CASE(Concat) {
        std::string s;
        for (int i = 0; i < in.c; ++i) {
          const Value& v = R[in.b + i];
          s += v.isStr() ? v.as<StrObj>()->s : str(v);
        }
        R[in.a] = makeStr(std::move(s));
        DISPATCH();
      }
      CASE(WithEnter) CASE(WithExit) {
        const Value& ctx = R[in.a];
        if (ctx.tag() != Tag::Native)
          throw rt::Error(fmt::format("'with' needs a tape, got {}", typeText(ctx)));
        if (in.op == Op::WithEnter) ctx.as<NativeObj>()->enter(*this);
        else ctx.as<NativeObj>()->exit();
        DISPATCH();
      }
      CASE(Print) {
        const Value& v = R[in.a];
        if (replSink) replSink(v);
        else if (!v.isNone()) rt::write_output(str(v) + "\n", out());
        DISPATCH();
      }
    }
  }
}

#undef DISPATCH
#undef CASE

}  // namespace tdl::vm
