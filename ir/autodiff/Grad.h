// Reverse-mode autodiff on the IR (tapes, grad and value_and_grad inside graph fns).
// The rules are listed once in GradRules.def. Through `cond` the adjoints flow through a
// backward cond on the same predicate; through `while` a reverse while replays the
// iterations with the forward values it needs saved on stacks (stack_new/push/pop).
#pragma once
#include <vector>

#include "ir/Builder.h"

namespace tdl::ir::autodiff {

// Emits, at b's insertion point, the gradient of `target` (a float scalar) with respect to
// each of `sources` through the ops `tape` (ops of b's current block, in program order;
// their regions included). Returns one value per source, of its type (zeros where the
// target does not depend on it). The forward loops/branches of the tape get stack pushes
// for the values the backward reads. Throws ShapeError for an op it cannot differentiate.
std::vector<Value*> gradient(Builder& b, const std::vector<Op*>& tape, Value* target,
                             const std::vector<Value*>& sources);

// g, a slice x[start:stop:step, ...] (the attributes of a `slice` op) of a tensor with
// dims `xdims`, placed into zeros of those dims (concat/reshape only, so differentiable).
// Needs known sizes along the sliced axes; throws ShapeError otherwise.
Value* scatter_slice(Builder& b, Value* g, const std::vector<Dim>& xdims, const IntList& start, const IntList& stop,
                     const IntList& step);

// Whether GradRules.def lists `kind`.
bool has_grad_rule(OpKind kind);

}  // namespace tdl::ir::autodiff
