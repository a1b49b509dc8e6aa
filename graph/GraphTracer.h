// The tracer of graph fns (SPEC §6): the AST of a `graph fn` plus an argument signature
// becomes an ir::Function, AutoGraph-style.
//
// Trace values are either *static* (known while tracing: any VM Value — weak or strong
// scalars, strings, dtypes, functions, none, ranges, constant tensors) or *dynamic* (an IR
// value, possibly a weak scalar), or containers (tuple/list/record) of trace values.
// Operations on static values run at trace time through the VM's own operators and
// builtins (one semantics); anything touching a dynamic value emits IR. Conditions known at
// trace time fold; a data-dependent `if` becomes `cond`, a data-dependent loop `while`
// (with break/continue/return as carried flags). Calls inline. Anything unsupported is a
// TraceError at its source position (never a silent fallback to eager).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "frontend/Diagnostics.h"
#include "ir/IR.h"
#include "vm/Value.h"

namespace tdl::vm {

class Interpreter;

// The inline call chain of an op, innermost first: (callee name, call position).
using CallChain = std::vector<std::pair<std::string, Loc>>;

// A compile-time error of a graph fn, at a source position.
struct TraceError : ScriptError {
  using ScriptError::ScriptError;
  // Eager mode's own error for values known when tracing (a VM or runtime rule failed on
  // them), not a limit of graph fns: in code that may not run (a branch of a run-time `if`,
  // the body of a run-time loop) it is raised at run time when that code runs, as eagerly.
  bool deferrable = false;
  CallChain chain;  // the inline call chain at the error (as `trace` shows it)
};

// How a call's result is rebuilt from the compiled function's results.
struct ResultTemplate {
  enum Kind : uint8_t { Static, Leaf, Seq, Rec, Fmt } kind = Static;
  Value value;       // Static; Fmt: the format (rt::fill_format), its holes the leaf items
  int leaf = -1;     // Leaf: index of the IR function result
  bool weak = false; // Leaf: a weak scalar (a literal passed through or computed from them), as eagerly
  Tag seqTag = Tag::Tuple;
  std::vector<ResultTemplate> items;  // Seq / Rec / Fmt
  Names names;                         // Rec
  Value build(const std::vector<rt::Tensor>& results) const;
};

// One parameter leaf of a signature: a tensor type (dims known or symbolic) and whether
// it is a weak scalar.
struct ParamLeaf {
  ir::TensorType type;
  bool weak = false;
};

using LocKey = std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>;
LocKey locKey(const Loc& l);  // position and inlined call instance

struct Trace {
  std::unique_ptr<ir::Module> module;
  ir::Function* fn = nullptr;
  ResultTemplate result;
  std::map<LocKey, CallChain> chains;
  // Set when every call of the graph fn fails (each path ends in an error eager mode raises
  // there): that error, "MESSAGE (at FILE:L:C)" (the result, never seen, is none).
  std::string alwaysFails;  // locKey(op loc) → chain (only inside inlined calls)
  // The top-level values the trace read (module, slot, value): a call after one of them is
  // bound anew (a second top-level `let`) traces again, so it sees the new value as eagerly.
  std::vector<std::tuple<int, int, Value>> globals;
};

// Whether `a` is still the value `b` (the same object, or the same scalar bits and kind).
bool sameGlobal(const Value& a, const Value& b);

// Traces closure `fn` (a graph fn) for arguments `args`, whose tensor leaves (in
// flattening order) get the parameter types `leaves`. Throws TraceError.
Trace traceGraphFn(Interpreter& vm, const ClosureObj& fn, const std::vector<Value>& args,
                   const std::vector<ParamLeaf>& leaves, const std::vector<std::string>& syms);

// The tensor leaves of an argument list in flattening order (tuples, lists, records
// recursively); `key` receives the static part of the signature (structure, strings,
// functions, dtypes). Numbers become tensors (weak scalars flagged).
void flattenArgs(const std::vector<Value>& args, std::vector<rt::Tensor>& leaves, std::vector<bool>& weak,
                 std::string& key);

}  // namespace tdl::vm
