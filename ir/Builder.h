// Builder: creates ops at an insertion point, with the current source location, and
// infers result types through ShapeInference (a wildcard dim becomes a fresh `?k`).
// Every method throws ShapeError for operands that do not fit the op.
#pragma once

#include "ir/IR.h"
#include "ir/ShapeInference.h"

namespace tdl::ir {

class Builder {
 public:
  // Inserts at the end of f's body.
  explicit Builder(Function& f) : f_(f), block_(&f.entry()), pos_(f.entry().size()) {}

  Function& function() { return f_; }
  void set_loc(Loc loc) { loc_ = loc; }
  Loc loc() const { return loc_; }
  void set_insertion_end(Block& b) { block_ = &b; pos_ = b.size(); }
  void set_insertion(Block& b, size_t pos) { block_ = &b; pos_ = pos; }
  Block& block() { return *block_; }
  size_t pos() const { return pos_; }

  // Generic creation with declared result types (no checks; the verifier checks).
  Op& create(OpKind kind, const std::vector<Value*>& operands, const std::vector<TensorType>& results,
             AttrMap attrs = {}, int regions = 0);
  // Result types inferred (only for ops infer_result_types knows).
  Op& create_inferred(OpKind kind, const std::vector<Value*>& operands, AttrMap attrs = {});

  Value* constant(const rt::Tensor& value);
  Value* binary(rt::BinaryOp op, Value* a, Value* b);
  Value* unary(rt::UnaryOp op, Value* x);
  Value* cast(Value* x, DType dtype);
  Value* select(Value* c, Value* a, Value* b);
  Value* broadcast_to(Value* x, const std::vector<Dim>& dims);
  Value* reshape(Value* x, const std::vector<Dim>& dims);
  Value* transpose(Value* x, const IntList& perm);
  Value* reduce(rt::ReduceOp kind, Value* x, const IntList& axes, bool keepdims = false);
  Value* argmax(Value* x, int64_t axis, bool keepdims = false);
  Value* argmin(Value* x, int64_t axis, bool keepdims = false);
  Value* matmul(Value* a, Value* b);
  Value* concat(const std::vector<Value*>& xs, int64_t axis);
  Value* slice(Value* x, const IntList& start, const IntList& stop, const IntList& step);
  Value* index(Value* x, const std::vector<Value*>& indices);
  Value* update(Value* x, Value* v, const std::vector<Value*>& indices);
  Value* dim(Value* x, int64_t axis);
  Value* iota(const TensorType& type, int64_t axis);
  // dist "uniform" | "normal" (no operands) or "int" (operands lo, hi).
  Value* random(const std::string& dist, const TensorType& type, const std::vector<Value*>& operands = {});
  // `allRanks`: every rank of a distributed run prints it, not rank 0 alone (SPEC §12).
  void print(const std::vector<Value*>& values, const std::string& format, bool allRanks = false);
  // With `values`, `message` is a format with one {} per value (braces doubled).
  void assert_true(Value* c, const std::string& message, const std::vector<Value*>& values = {});
  std::vector<Value*> call_runtime(const std::string& callee, const std::vector<Value*>& args,
                                   const std::vector<TensorType>& results);

  // Structured control flow: the regions are created empty (while's with block args of
  // the carried types); fill them with set_insertion_end(op.region(i).block()).
  Op& cond(Value* pred, const std::vector<TensorType>& results);
  Op& while_loop(const std::vector<Value*>& inits, const std::vector<TensorType>& carried);
  Op& while_loop(const std::vector<Value*>& inits);
  void yield(const std::vector<Value*>& values);
  void ret(const std::vector<Value*>& values);

 private:
  TensorType freshen(TensorType t);

  Function& f_;
  Block* block_;
  size_t pos_;
  Loc loc_;
};

}  // namespace tdl::ir
