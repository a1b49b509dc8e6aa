// The tape of eager autodiff (SPEC §7).
//
// Every value that takes part in differentiation carries a node id in its
// header (Value::node). Ids are handed out in increasing order from one arena
// of nodes, so the ids are a topological order and a tape is simply the range
// of ids created while it was active: [begin, end). Nested tapes are nested
// ranges, and everything recorded while several tapes are active belongs to
// all of them. An id below a tape's begin is a leaf for that tape.
//
// Recording happens only while some tape is active (`recording()`, the one
// branch differentiable ops take outside tapes), and only for float results
// of which some input has a node. When a tape starts, every float value the
// program can reach that has no node yet gets a fresh leaf id (Interpreter::
// forEachRoot), so any of them can be asked for as a gradient source.
//
// The backward pass (Tape::gradient) runs the rules of GradRules.cpp through
// the same recording ops, so a tape active around `inner.gradient(...)`
// records the backward computation: higher-order derivatives.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/Index.h"
#include "vm/Value.h"

namespace tdl::vm {
class Interpreter;
}

namespace tdl::vm::ad {

enum class GradOp : uint8_t {
#define GRAD_OP(name, formula) name,
#include "vm/autodiff/GradOps.def"
};

// How many tapes are recording now (a plain global: the hot-path test).
extern int g_recording;
inline bool recording() { return g_recording != 0; }

struct Node {
  GradOp op = GradOp::Leaf;
  bool keepdims = false;      // reductions
  std::vector<Value> in;      // the inputs, as the op got them (concat/stack: one list)
  Value out;                  // the result (for rules that use it)
  std::vector<int64_t> ints;  // axes (reductions, with hasAxes), perm, reps, pad widths, axis
  bool hasAxes = false;       // reductions: `ints` are the axes (else all axes)
  rt::IndexSpec spec;         // GetIndex / SetIndex
};

// Whether `v` is a float scalar or tensor (what has gradients).
bool isFloat(const Value& v);
// Whether recording an op with these inputs and this result is needed.
bool wants(const Value& result, std::initializer_list<const Value*> inputs);
// Records `n` as the op that produced `result`, which gets the new node's id.
void record(Value& result, Node n);
// Gives `v` a fresh leaf id (a value the tape will not look behind).
void makeLeaf(Value& v);
const Node& nodeAt(uint32_t id);

// SPEC §7's check of gradient sources (each leaf a float tensor), or rt::Error in its words.
void checkSources(const Value& sources);

// One tape: a range of node ids. Registered while alive, so that nodes no
// live tape covers can be dropped.
class Tape {
 public:
  Tape();
  ~Tape();
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // Starts recording; `vm` (when given) has its reachable values tagged first.
  void start(Interpreter* vm);
  void stop();
  bool started() const { return begin_ != kNotStarted; }
  bool active() const { return active_; }

  // d target / d sources, in the structure of `sources` (SPEC §7).
  Value gradient(const Value& target, const Value& sources);

 private:
  static constexpr uint32_t kNotStarted = UINT32_MAX;
  uint32_t begin_ = kNotStarted, end_ = kNotStarted;
  bool active_ = false;
  friend void unwindTapes(size_t depth);
  friend void trimArena();
};

// Active tapes (innermost last): the interpreter stops the ones an error
// skipped past.
size_t activeTapes();
void unwindTapes(size_t depth);

}  // namespace tdl::vm::ad
