// The builtin functions of SPEC §5, bound by the names of frontend/builtins.def.
// Each is a plain function `Value f(Interpreter&, CallArgs&)`; `Args` binds
// positional and keyword arguments to parameter names and converts them, with
// errors that name the builtin and the parameter.
#pragma once
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "runtime/Shape.h"
#include "vm/Value.h"

namespace tdl::vm {

enum BuiltinId : int {
#define BUILTIN(n) kBuiltin_##n,
#include "frontend/builtins.def"
#undef BUILTIN
  kNumBuiltins
};

int builtinId(const std::string& name);  // -1 when unknown
const char* builtinName(int id);
// Whether builtin `id` names a dtype (bool i32 i64 f32 f64): its value is the dtype.
bool builtinIsDType(int id, DType& out);

// The arguments of one call: `n` values, the last kwNames->size() of them
// passed by keyword.
struct CallArgs {
  const Value* args = nullptr;
  int n = 0;
  const std::vector<std::string>* kwNames = nullptr;
  // Set by builtinParams(): the builtin's Args throws its parameter list (BuiltinParams)
  // instead of binding, so that the parameter lists written in each builtin are the only
  // ones, and the graph tracer binds with them too.
  bool describe = false;
  int numKw() const { return kwNames ? static_cast<int>(kwNames->size()) : 0; }
  int numPos() const { return n - numKw(); }
};

using BuiltinFn = Value (*)(Interpreter& vm, CallArgs& call);
BuiltinFn builtinFn(int id);

// Registration, one function per builtins file.
struct BuiltinTable {
  std::vector<BuiltinFn> fns;
  void add(const char* name, BuiltinFn fn);
};
void registerCoreBuiltins(BuiltinTable& t);    // BuiltinsCore.cpp: print, str, len, range, trees, ...
void registerTensorBuiltins(BuiltinTable& t);  // BuiltinsTensor.cpp: creation, math, reductions, shapes
void registerIoBuiltins(BuiltinTable& t);      // BuiltinsIo.cpp: files and random numbers
void registerUiBuiltins(BuiltinTable& t);      // BuiltinsUi.cpp: progress bars and plots
void registerAutodiffBuiltins(BuiltinTable& t);  // BuiltinsAutodiff.cpp: tape, grad, value_and_grad
// What grad(f, argnums) / value_and_grad made (so graph fns trace a call of one made eagerly);
// false for any other value.
struct GradFnParts {
  Value f;
  std::vector<int64_t> argnums;
  bool tupleOfArgs = false;
  bool withValue = false;
};
bool gradFnParts(const Value& v, GradFnParts& out);
void registerCompositeBuiltins(BuiltinTable& t);
void registerStringBuiltins(BuiltinTable& t);  // BuiltinsString.cpp: a string's methods (_str_*)
// The builtin a method call on a string reaches (s.split(...): _str_split), or -1.
int strMethodId(const std::string& name);
// "a string has no method 'NAME'" with the near ones or the list (every engine's words).
std::string strNoMethod(const std::string& name);
void registerDistBuiltins(BuiltinTable& t);  // BuiltinsDist.cpp: the dist module's collectives (_dist_*)  // BuiltinsComposite.cpp: vm/Composite.h, argsort, cumsum, cumprod

// load_model(path) (SPEC §12): the model value, made by the hook that the `tdl` tool and
// executables of `tdl build` install (tools/ModelValue.cpp, with the model loader: with LLVM
// in the tool, without it in executables); without one (libraries of `tdl build --lib`)
// load_model is an error.
using ModelLoader = Value (*)(const std::string& path);
void setModelLoader(ModelLoader loader);

// A notebook front end (issue 23; tools/jupyter): plot() also hands its SVG to `svg`, and
// progress() reports its bar line to `progress` (one call per redraw, `bar` naming the
// loop's bar, `last` at its end) instead of drawing it on stderr. nullptr: none (the CLI).
struct DisplayHooks {
  std::function<void(const std::string& svg)> svg;
  std::function<void(const void* bar, const std::string& line, bool last)> progress;
};
void setDisplayHooks(const DisplayHooks* hooks);

// A builtin's parameters, as its Args declares them.
struct BuiltinParams {
  std::string fn;
  std::vector<const char*> params;
  size_t required = 0;
};

// The one binder of builtin calls (eager's Args and the graph tracer): which parameter each
// argument binds to (positional first, then keywords), or rt::Error with the words eager
// mode uses ("takes at most", "has no parameter named", "got two values for", "is missing
// its argument").
std::vector<int> bindBuiltinArgs(const char* fn, const std::vector<const char*>& params, size_t required, int numPos,
                                 const std::vector<std::string>* kwNames);

// The parameters of builtin `id` (null for builtins without a fixed list: print, tree_map,
// tape, ... and those with effects, which are never asked). Cached.
const BuiltinParams* builtinParams(Interpreter& vm, int id);

// pad's `widths` as eager mode reads it (a number n, (n,), a (before, after) pair, or one
// per axis, as lists or integer tensors), or rt::Error in eager's words; shared with the
// graph tracer. The count against the rank is rt::pad_widths's.
std::vector<std::pair<int64_t, int64_t>> padWidthsArg(const Value& w);

class Args {
 public:
  // Binds `call` to `params`; the first `required` must be given.
  Args(const char* fn, const CallArgs& call, std::initializer_list<const char*> params, size_t required);

  bool has(size_t i) const { return i < bound_.size() && bound_[i] != nullptr; }
  const Value& operator[](size_t i) const;
  size_t count() const { return bound_.size(); }

  // Conversions; each fails with `fn: 'param' must be ..., got ...`.
  rt::Tensor tensor(size_t i) const;       // any numeric value (weak → default dtype)
  int64_t integer(size_t i) const;         // an integer (or bool) scalar
  int64_t integerOr(size_t i, int64_t dflt) const { return has(i) && !(*this)[i].isNone() ? integer(i) : dflt; }
  double number(size_t i) const;           // any numeric scalar
  bool boolean(size_t i) const;            // a bool scalar
  bool booleanOr(size_t i, bool dflt) const { return has(i) ? boolean(i) : dflt; }
  DType dtype(size_t i, DType dflt) const; // a dtype value
  rt::Shape shape(size_t i) const;         // an i64 vector or a list/tuple of integers
  rt::Axes axes(size_t i) const;           // none | int | tuple/list of ints
  std::string string(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;  // like shape, without the sign check

  [[noreturn]] void fail(size_t i, const std::string& expected) const;
  [[noreturn]] void fail(const std::string& msg) const;
  const char* name() const { return fn_; }
  const char* param(size_t i) const { return params_.at(i); }

 private:
  const char* fn_;
  std::vector<const char*> params_;
  std::vector<const Value*> bound_;
};

}  // namespace tdl::vm
