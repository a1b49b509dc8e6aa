// Small helpers shared by the passes: constants, removability, replacing ops.
#pragma once

#include <functional>
#include <optional>

#include "ir/IR.h"

namespace tdl::ir {

// The tensor of a value defined by `constant`, else nullptr.
const rt::Tensor* constant_value(const Value* v);
// The constant behind v (v itself, or seen through broadcast_to and reshape) when its
// elements are all equal bit for bit, else nullptr.
const rt::Tensor* splat_tensor(const Value* v);
// That constant's element, as a double.
std::optional<double> splat_value(const Value* v);

// Whether the op has no effect and cannot fail, looking into its regions (a cond or
// while of pure ops is pure). Such an op may be removed when its results are unused.
bool is_removable(const Op& op);
// Whether an elementwise op that may fail on integers (runtime/ops.def kFail: // and % by
// zero, negative integer powers) has an integer operand: it may raise, so it is kept.
bool fails_on_integers(const Op& op);
// Whether any op of the block (recursively) has an effect or may fail.
bool has_effects(const Block& b);

// The op's double attribute `name`, or dflt when it has none.
double attr_or(const Op& op, std::string_view name, double dflt);

// Replaces every use of op's results with `values` and erases the op.
void replace_op(Op& op, const std::vector<Value*>& values);

// A layer's bias and activation after a product: `fused` is fused(y, b) whose body is
// add(y, b) (either order) or that then relu, on f32; y is the result of an op `wanted`
// accepts (`producer`), or of a reshape of it that nothing else reads, and only y's use
// reads the producer's result. The caller checks b's type and rewrites the producer
// (ir/passes/Quantize.cpp's qgemm, ir/passes/Conv.cpp's conv_nhwc).
struct BiasEpilogue {
  Value* y;       // the fused op's operand: the product (or its reshape)
  Op* producer;   // the op computing the product
  Value* bias;
  bool relu;
};
std::optional<BiasEpilogue> match_bias_epilogue(const Op& fused, const std::function<bool(const Op&)>& wanted);
// Takes every such epilogue of block b whose bias is f32[channels(producer)] (and that keeps
// y's type) into its producer: the bias becomes its last operand, attr relu is set, and the
// fused op's uses read y. Returns whether it changed anything.
bool fuse_bias_epilogues(Block& b, const std::function<bool(const Op&)>& wanted,
                         const std::function<Dim(const Op&)>& channels);

// Moves the ops of `from` (except its terminator) to `to` before position `pos`;
// returns the terminator's operands.
std::vector<Value*> inline_block(Block& from, Block& to, size_t pos);

}  // namespace tdl::ir
