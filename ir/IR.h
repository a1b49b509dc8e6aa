// The dataflow IR of graph fns: SSA values, ops with attributes and nested regions,
// blocks, functions and modules.
//
// Ownership: Module → Function → Region (exactly one Block) → Block → Ops → Regions ...
// An Op owns its result Values, a Block its argument Values. Every Value keeps its list of
// uses, so replace_all_uses_with and "is it dead?" are cheap. Ops sit in a Block's vector
// in program order; passes edit through Block::insert/take/erase.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <unordered_set>
#include <vector>

#include "frontend/Source.h"
#include "ir/Type.h"
#include "runtime/Elementwise.h"
#include "runtime/Tensor.h"

namespace tdl::ir {

// ---- op kinds and traits (from ops.def) ----------------------------------------------

enum OpTrait : unsigned {
  kPure = 1u << 0,         // no effect, cannot fail: CSE-able, removable when unused
  kElementwise = 1u << 1,  // one result element per (broadcast) operand element: fusable
  kTerminator = 1u << 2,   // ends a block (yield, return)
  kCommutative = 1u << 3,  // op(a, b) == op(b, a) bit for bit
  kHasEffect = 1u << 4,    // observable effect: kept, never reordered across effects
  kMayFail = 1u << 5,      // may raise a run-time error: kept, ordered like an effect
};

// Commutative elementwise ops (bit-exact, so maximum/minimum are out: -0.0 vs 0.0).
constexpr unsigned commutative_trait(rt::BinaryOp op) {
  switch (op) {
    case rt::BinaryOp::Add: case rt::BinaryOp::Mul: case rt::BinaryOp::Eq:
    case rt::BinaryOp::Ne: case rt::BinaryOp::BitAnd: case rt::BinaryOp::BitOr:
    case rt::BinaryOp::BitXor: case rt::BinaryOp::LogicalAnd: case rt::BinaryOp::LogicalOr:
      return kCommutative;
    default: return 0;
  }
}

inline constexpr int kVariadic = -1;

enum class OpKind : uint16_t {
#define TDL_IR_OP(e, n, o, r, g, l, t, d) e,
#include "ir/ops.def"
};

struct OpInfo {
  std::string_view name;
  int operands;  // or kVariadic
  int results;   // or kVariadic
  int regions;
  std::string_view region_labels;  // space-separated, one per region
  unsigned traits;
  std::string_view semantics;
};

const OpInfo& op_info(OpKind k);
std::optional<OpKind> op_kind_from_name(std::string_view name);
// The runtime elementwise op behind an IR kind, if it is one.
std::optional<rt::BinaryOp> as_binary(OpKind k);
std::optional<rt::UnaryOp> as_unary(OpKind k);
OpKind kind_of(rt::BinaryOp op);
OpKind kind_of(rt::UnaryOp op);

// ---- attributes ----------------------------------------------------------------------

using IntList = std::vector<int64_t>;
using Attribute = std::variant<int64_t, double, std::string, bool, IntList, DType, rt::Tensor>;
// Sorted by name, so printing is deterministic.
using AttrMap = std::map<std::string, Attribute, std::less<>>;

bool attr_equal(const Attribute& a, const Attribute& b);
// Bit-exact equality of two tensors (dtype, shape and bytes).
bool tensor_equal(const rt::Tensor& a, const rt::Tensor& b);

class Op;
class Block;
class Region;
class Function;

// ---- values --------------------------------------------------------------------------

struct Use {
  Op* op;
  unsigned index;  // operand number
};

class Value {
 public:
  TensorType type;

  Value(TensorType t, Op* def, Block* block, unsigned index)
      : type(std::move(t)), def_(def), block_(block), index_(index) {}
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;

  // The defining op, or nullptr for a block argument.
  Op* def() const { return def_; }
  bool is_block_arg() const { return def_ == nullptr; }
  // The block holding the definition (the defining op's block, or the arg's block).
  Block* block() const;
  unsigned index() const { return index_; }
  const std::vector<Use>& uses() const { return uses_; }
  bool has_uses() const { return !uses_.empty(); }
  void replace_all_uses_with(Value* v);

 private:
  friend class Op;
  friend class Block;
  void remove_use(Op* op, unsigned index);
  Op* def_;
  Block* block_;  // for block args
  unsigned index_;
  std::vector<Use> uses_;
};

// ---- ops -----------------------------------------------------------------------------

class Op {
 public:
  Op(OpKind kind, Loc loc) : loc(loc), kind_(kind) {}
  ~Op();
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

  OpKind kind() const { return kind_; }
  const OpInfo& info() const { return op_info(kind_); }
  std::string_view name() const { return info().name; }
  bool has_trait(unsigned t) const { return (info().traits & t) != 0; }

  // Operands.
  const std::vector<Value*>& operands() const { return operands_; }
  size_t num_operands() const { return operands_.size(); }
  Value* operand(size_t i) const { return operands_.at(i); }
  void add_operand(Value* v);
  void set_operand(size_t i, Value* v);
  void erase_operand(size_t i);
  void drop_operands();

  // Results.
  size_t num_results() const { return results_.size(); }
  Value* result(size_t i = 0) const { return results_.at(i).get(); }
  std::vector<Value*> results() const;
  Value* add_result(TensorType t);
  // Removes result i (it must have no uses); later results shift down.
  void erase_result(size_t i);

  // Regions.
  size_t num_regions() const { return regions_.size(); }
  Region& region(size_t i) const { return *regions_.at(i); }
  Region& add_region();

  // Attributes.
  AttrMap attrs;
  const Attribute* attr(std::string_view name) const;
  template <class T> const T* attr_as(std::string_view name) const {
    const Attribute* a = attr(name);
    return a ? std::get_if<T>(a) : nullptr;
  }
  // The attribute or an InternalError (for code after the verifier).
  int64_t int_attr(std::string_view name) const;
  const IntList& ints_attr(std::string_view name) const;
  const std::string& str_attr(std::string_view name) const;
  bool bool_attr(std::string_view name) const;
  const rt::Tensor& tensor_attr(std::string_view name) const;

  Loc loc;
  Block* parent() const { return parent_; }
  // The op whose region holds this op's block (nullptr at function level).
  Op* parent_op() const;

 private:
  friend class Block;
  friend class Value;
  OpKind kind_;
  std::vector<Value*> operands_;
  std::vector<std::unique_ptr<Value>> results_;
  std::vector<std::unique_ptr<Region>> regions_;
  Block* parent_ = nullptr;
};

// ---- blocks, regions, functions, modules ---------------------------------------------

class Block {
 public:
  explicit Block(Region* parent) : parent_(parent) {}
  ~Block();
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  Value* add_arg(TensorType t);
  void erase_arg(size_t i);  // it must have no uses
  size_t num_args() const { return args_.size(); }
  Value* arg(size_t i) const { return args_.at(i).get(); }
  std::vector<Value*> args() const;

  size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }
  Op& op(size_t i) const { return *ops_.at(i); }
  Op* terminator() const;  // the last op if it is a terminator
  Op& append(std::unique_ptr<Op> op);
  Op& insert(size_t pos, std::unique_ptr<Op> op);
  // Removes op i from the block and hands it over (its uses stay).
  std::unique_ptr<Op> take(size_t i);
  // Moves the first `count` ops of `from` to position `pos` of this block, in one step
  // (linear in the sizes of both blocks, not quadratic as op-by-op take/insert is).
  void splice(size_t pos, Block& from, size_t count);
  // Erases every op of `dead` (none of whose results may be used) in one pass over the
  // block, instead of one erase (a shift of the rest) per op.
  void erase_all(const std::unordered_set<const Op*>& dead);
  // Destroys op i; its results must have no uses.
  void erase(size_t i);
  // Puts `op` at position i in place of the op there (destroyed; its results must have no
  // uses), without shifting the others.
  void replace(size_t i, std::unique_ptr<Op> op);
  // The position of `op` in this block.
  size_t index_of(const Op* op) const;

  Region* parent() const { return parent_; }
  // Drops every operand reference of every op, recursively (before destruction).
  void drop_all_references();

 private:
  Region* parent_;
  std::vector<std::unique_ptr<Value>> args_;
  std::vector<std::unique_ptr<Op>> ops_;
};

class Region {
 public:
  explicit Region(Op* parent) : parent_(parent), block_(this) {}
  Block& block() { return block_; }
  const Block& block() const { return block_; }
  Op* parent_op() const { return parent_; }  // nullptr for a function body

 private:
  Op* parent_;
  Block block_;
};

class Function {
 public:
  explicit Function(std::string name) : name(std::move(name)), body(nullptr) {}
  ~Function() { body.block().drop_all_references(); }

  std::string name;
  // Every symbolic dim the function's types may use, in declaration order.
  std::vector<std::string> syms;
  std::vector<TensorType> result_types;
  Region body;

  Block& entry() { return body.block(); }
  const Block& entry() const { return body.block(); }
  Value* add_param(TensorType t) { return entry().add_arg(std::move(t)); }
  std::vector<Value*> params() const { return entry().args(); }
  bool has_sym(std::string_view s) const;
  // Declares a new anonymous symbolic dim `?k` and returns its name.
  std::string fresh_sym();
};

class Module {
 public:
  std::vector<std::unique_ptr<Function>> functions;
  Function& add_function(std::string name);
  Function* find(std::string_view name) const;
};

// Whether v is defined inside one of op's regions, at any depth (a block argument of a
// region or the result of an op nested in one).
bool defined_inside(const Value* v, const Op* op);

// Calls f(op) for every op in the block and its nested regions, in program order (an op
// before the ops of its regions).
template <class F> void walk(Block& b, F&& f);

// The innermost op holding `block` in one of its regions (nullptr for a function body).
inline Op* Op::parent_op() const { return parent_ && parent_->parent() ? parent_->parent()->parent_op() : nullptr; }

template <class F> void walk(Block& b, F&& f) {
  for (size_t i = 0; i < b.size(); ++i) {
    Op& op = b.op(i);
    f(op);
    for (size_t r = 0; r < op.num_regions(); ++r) walk(op.region(r).block(), f);
  }
}

}  // namespace tdl::ir
