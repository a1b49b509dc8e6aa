#include "ir/Builder.h"

namespace tdl::ir {

TensorType Builder::freshen(TensorType t) {
  for (Dim& d : t.dims)
    if (is_any_dim(d)) d = Dim::symbolic(f_.fresh_sym());
  return t;
}

Op& Builder::create(OpKind kind, const std::vector<Value*>& operands, const std::vector<TensorType>& results,
                    AttrMap attrs, int regions) {
  auto op = std::make_unique<Op>(kind, loc_);
  for (Value* v : operands) op->add_operand(v);
  for (const TensorType& t : results) op->add_result(t);
  op->attrs = std::move(attrs);
  for (int i = 0; i < regions; ++i) op->add_region();
  return block_->insert(pos_++, std::move(op));
}

Op& Builder::create_inferred(OpKind kind, const std::vector<Value*>& operands, AttrMap attrs) {
  std::vector<TensorType> in;
  for (Value* v : operands) in.push_back(v->type);
  auto types = infer_result_types(kind, in, attrs);
  if (!types) throw ShapeError(std::string(op_info(kind).name) + " needs declared result types");
  for (TensorType& t : *types) t = freshen(std::move(t));
  return create(kind, operands, *types, std::move(attrs));
}

Value* Builder::constant(const rt::Tensor& value) {
  return create(OpKind::Constant, {}, {TensorType::of(value.dtype(), value.shape())}, {{"value", value}}).result();
}

Value* Builder::binary(rt::BinaryOp op, Value* a, Value* b) { return create_inferred(kind_of(op), {a, b}).result(); }
Value* Builder::unary(rt::UnaryOp op, Value* x) { return create_inferred(kind_of(op), {x}).result(); }

namespace {
Value* declared(Builder& b, OpKind kind, const std::vector<Value*>& operands, const TensorType& t, AttrMap attrs = {}) {
  std::vector<TensorType> in;
  for (Value* v : operands) in.push_back(v->type);
  check_declared_types(kind, in, attrs, {t});
  return b.create(kind, operands, {t}, std::move(attrs)).result();
}
}  // namespace

Value* Builder::cast(Value* x, DType dtype) { return declared(*this, OpKind::Cast, {x}, x->type.with_dtype(dtype)); }
Value* Builder::select(Value* c, Value* a, Value* b) { return create_inferred(OpKind::Select, {c, a, b}).result(); }
Value* Builder::broadcast_to(Value* x, const std::vector<Dim>& dims) {
  return declared(*this, OpKind::BroadcastTo, {x}, TensorType(x->type.dtype, dims));
}
Value* Builder::reshape(Value* x, const std::vector<Dim>& dims) {
  return declared(*this, OpKind::Reshape, {x}, TensorType(x->type.dtype, dims));
}
Value* Builder::transpose(Value* x, const IntList& perm) {
  return create_inferred(OpKind::Transpose, {x}, {{"perm", perm}}).result();
}
Value* Builder::reduce(rt::ReduceOp kind, Value* x, const IntList& axes, bool keepdims) {
  AttrMap a{{"kind", std::string(rt::reduce_op_name(kind))}, {"axes", axes}, {"keepdims", keepdims}};
  return create_inferred(OpKind::Reduce, {x}, std::move(a)).result();
}
Value* Builder::argmax(Value* x, int64_t axis, bool keepdims) {
  return create_inferred(OpKind::ArgMax, {x}, {{"axis", axis}, {"keepdims", keepdims}}).result();
}
Value* Builder::argmin(Value* x, int64_t axis, bool keepdims) {
  return create_inferred(OpKind::ArgMin, {x}, {{"axis", axis}, {"keepdims", keepdims}}).result();
}
Value* Builder::matmul(Value* a, Value* b) { return create_inferred(OpKind::MatMul, {a, b}).result(); }
Value* Builder::concat(const std::vector<Value*>& xs, int64_t axis) {
  return create_inferred(OpKind::Concat, xs, {{"axis", axis}}).result();
}
Value* Builder::slice(Value* x, const IntList& start, const IntList& stop, const IntList& step) {
  return create_inferred(OpKind::Slice, {x}, {{"start", start}, {"stop", stop}, {"step", step}}).result();
}
Value* Builder::index(Value* x, const std::vector<Value*>& indices) {
  std::vector<Value*> ops{x};
  ops.insert(ops.end(), indices.begin(), indices.end());
  return create_inferred(OpKind::Index, ops).result();
}
Value* Builder::update(Value* x, Value* v, const std::vector<Value*>& indices) {
  std::vector<Value*> ops{x, v};
  ops.insert(ops.end(), indices.begin(), indices.end());
  return create_inferred(OpKind::Update, ops).result();
}
Value* Builder::dim(Value* x, int64_t axis) { return create_inferred(OpKind::Dim, {x}, {{"axis", axis}}).result(); }
Value* Builder::iota(const TensorType& type, int64_t axis) {
  return declared(*this, OpKind::Iota, {}, type, {{"axis", axis}});
}
Value* Builder::random(const std::string& dist, const TensorType& type, const std::vector<Value*>& operands) {
  return declared(*this, OpKind::Random, operands, type, {{"dist", dist}});
}
void Builder::print(const std::vector<Value*>& values, const std::string& format, bool allRanks) {
  if (allRanks) create_inferred(OpKind::Print, values, {{"format", format}, {"all_ranks", true}});
  else create_inferred(OpKind::Print, values, {{"format", format}});
}
void Builder::assert_true(Value* c, const std::string& message, const std::vector<Value*>& values) {
  std::vector<Value*> operands{c};
  operands.insert(operands.end(), values.begin(), values.end());
  create_inferred(OpKind::Assert, operands, {{"message", message}});
}
std::vector<Value*> Builder::call_runtime(const std::string& callee, const std::vector<Value*>& args,
                                          const std::vector<TensorType>& results) {
  return create(OpKind::CallRuntime, args, results, {{"callee", callee}}).results();
}

Op& Builder::cond(Value* pred, const std::vector<TensorType>& results) {
  return create(OpKind::Cond, {pred}, results, {}, 2);
}

Op& Builder::while_loop(const std::vector<Value*>& inits, const std::vector<TensorType>& carried) {
  Op& op = create(OpKind::While, inits, carried, {}, 2);
  for (size_t r = 0; r < 2; ++r)
    for (const TensorType& t : carried) op.region(r).block().add_arg(t);
  return op;
}

Op& Builder::while_loop(const std::vector<Value*>& inits) {
  std::vector<TensorType> carried;
  for (Value* v : inits) carried.push_back(v->type);
  return while_loop(inits, carried);
}

void Builder::yield(const std::vector<Value*>& values) { create(OpKind::Yield, values, {}); }
void Builder::ret(const std::vector<Value*>& values) { create(OpKind::Return, values, {}); }

}  // namespace tdl::ir
