// Result types of IR ops, with symbolic dims (DESIGN habit 7: the known-size rules are the
// runtime's, runtime/Shape.h; this file only extends them to symbolic dims).
//
// Symbolic dims (decision, see ir/README.md):
//   - N with N gives N; N with 1 gives N (a known 1 broadcasts).
//   - N with a known K != 1 gives K, and N with another symbol M gives N; in both cases
//     the compiled code checks at run time that the sizes are equal and fails with
//     `cannot broadcast shapes A and B` at the op's location otherwise. A symbolic dim is
//     never broadcast as a 1 (as in JAX's shape polymorphism): the tracer keeps dims of
//     size 1 concrete when it generalizes a signature.
//   - The same run-time equality check covers matmul's contraction dims and concat's
//     other dims; reshape between shapes with different symbols checks the element count.
//   - A result dim no rule can name (concat along a symbolic axis, a partial slice of a
//     symbolic axis) is the wildcard `kAnyDim`: the result must have *some* symbolic dim
//     there, and the builder makes a fresh one (`?k`).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ir/IR.h"
#include "runtime/Reduce.h"

namespace tdl::ir {

// A type error in an op (its message is the SPEC phrase where one exists).
struct ShapeError : std::runtime_error {
  explicit ShapeError(const std::string& m) : std::runtime_error(m) {}
};

// The wildcard dim of inferred types: "some symbolic dim".
inline const std::string kAnyDim = "*";
bool is_any_dim(const Dim& d);
// Whether an actual type fits an inferred one (equal, with kAnyDim matching any symbol).
bool type_matches(const TensorType& inferred, const TensorType& actual);

// Open slice ends: Python's `x[a:]` is stop = kSliceEnd; `x[::-1]` starts at kSliceEnd
// and stops at kSliceBegin (both clamp like Python's slice.indices()).
inline constexpr int64_t kSliceEnd = INT64_MAX;
inline constexpr int64_t kSliceBegin = INT64_MIN;

// Broadcasting of two dim lists (rules above).
std::vector<Dim> broadcast_dims(const std::vector<Dim>& a, const std::vector<Dim>& b);
// NumPy matmul of two dim lists.
std::vector<Dim> matmul_dims(const std::vector<Dim>& a, const std::vector<Dim>& b);

// The reduction kinds of `reduce` ("sum", ...); argmax/argmin are their own ops.
std::optional<rt::ReduceOp> reduce_kind_from_name(std::string_view name);

// The result types of an op whose results follow from its operands and attributes, or
// nullopt for ops whose result types are declared (constant, cast, reshape, broadcast_to,
// iota, random, call_runtime, cond, while). Throws ShapeError.
std::optional<std::vector<TensorType>> infer_result_types(OpKind kind, const std::vector<TensorType>& operands,
                                                          const AttrMap& attrs);
// Checks the declared result types of the other ops against operands and attributes.
// Throws ShapeError.
void check_declared_types(OpKind kind, const std::vector<TensorType>& operands, const AttrMap& attrs,
                          const std::vector<TensorType>& results);

// Both of the above for an op in the IR (its required attributes are assumed present).
void check_op_types(const Op& op);
// Whether the op's sizes are compared when it runs (symbolic dims that must agree, a
// reshape of symbols, a broadcast of two symbols): it may fail then, as eagerly.
bool needs_run_time_check(const Op& op);

}  // namespace tdl::ir
