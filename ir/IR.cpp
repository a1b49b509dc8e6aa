#include "ir/IR.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "runtime/Error.h"

namespace tdl::ir {

// ---- op table ------------------------------------------------------------------------

namespace {
constexpr OpInfo kOpInfos[] = {
#define TDL_IR_OP(e, n, o, r, g, l, t, d) OpInfo{#n, o, r, g, l, t, d},
#include "ir/ops.def"
};
}  // namespace

const OpInfo& op_info(OpKind k) { return kOpInfos[static_cast<size_t>(k)]; }

std::optional<OpKind> op_kind_from_name(std::string_view name) {
  for (size_t i = 0; i < std::size(kOpInfos); ++i)
    if (kOpInfos[i].name == name) return static_cast<OpKind>(i);
  return std::nullopt;
}

std::optional<rt::BinaryOp> as_binary(OpKind k) {
  switch (k) {
#define TDL_BINARY_OP(e, ...) case OpKind::e: return rt::BinaryOp::e;
#include "runtime/ops.def"
    default: return std::nullopt;
  }
}

std::optional<rt::UnaryOp> as_unary(OpKind k) {
  switch (k) {
#define TDL_UNARY_OP(e, ...) case OpKind::e: return rt::UnaryOp::e;
#include "runtime/ops.def"
    default: return std::nullopt;
  }
}

OpKind kind_of(rt::BinaryOp op) {
  switch (op) {
#define TDL_BINARY_OP(e, ...) case rt::BinaryOp::e: return OpKind::e;
#include "runtime/ops.def"
  }
  throw rt::InternalError("kind_of: bad BinaryOp");
}

OpKind kind_of(rt::UnaryOp op) {
  switch (op) {
#define TDL_UNARY_OP(e, ...) case rt::UnaryOp::e: return OpKind::e;
#include "runtime/ops.def"
  }
  throw rt::InternalError("kind_of: bad UnaryOp");
}

// ---- attributes ----------------------------------------------------------------------

bool tensor_equal(const rt::Tensor& a, const rt::Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

bool attr_equal(const Attribute& a, const Attribute& b) {
  if (a.index() != b.index()) return false;
  if (auto* ta = std::get_if<rt::Tensor>(&a)) return tensor_equal(*ta, std::get<rt::Tensor>(b));
  if (auto* da = std::get_if<double>(&a)) {  // bitwise, so NaN == NaN and 0.0 != -0.0
    double db = std::get<double>(b);
    return std::memcmp(da, &db, sizeof db) == 0;
  }
  return std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, rt::Tensor> || std::is_same_v<T, double>) return false;  // handled above
        else return x == std::get<T>(b);
      },
      a);
}

// ---- values --------------------------------------------------------------------------

Block* Value::block() const { return def_ ? def_->parent() : block_; }

bool defined_inside(const Value* v, const Op* op) {
  const Block* b = v->block();
  for (const Op* p = b && b->parent() ? b->parent()->parent_op() : nullptr; p; p = p->parent_op())
    if (p == op) return true;
  return false;
}

void Value::replace_all_uses_with(Value* v) {
  if (v == this) return;
  std::vector<Use> uses = std::move(uses_);
  uses_.clear();
  for (const Use& u : uses) {
    u.op->operands_[u.index] = v;
    v->uses_.push_back(u);
  }
}

void Value::remove_use(Op* op, unsigned index) {
  for (size_t i = 0; i < uses_.size(); ++i) {
    if (uses_[i].op == op && uses_[i].index == index) {
      uses_[i] = uses_.back();
      uses_.pop_back();
      return;
    }
  }
}

// ---- ops -----------------------------------------------------------------------------

Op::~Op() {
  drop_operands();
  for (auto& r : regions_) r->block().drop_all_references();
}

void Op::add_operand(Value* v) {
  operands_.push_back(v);
  v->uses_.push_back(Use{this, static_cast<unsigned>(operands_.size() - 1)});
}

void Op::set_operand(size_t i, Value* v) {
  operands_.at(i)->remove_use(this, static_cast<unsigned>(i));
  operands_[i] = v;
  v->uses_.push_back(Use{this, static_cast<unsigned>(i)});
}

void Op::erase_operand(size_t i) {
  std::vector<Value*> rest(operands_.begin() + static_cast<ptrdiff_t>(i), operands_.end());
  for (size_t k = i; k < operands_.size(); ++k) operands_[k]->remove_use(this, static_cast<unsigned>(k));
  operands_.resize(i);
  for (size_t k = 1; k < rest.size(); ++k) add_operand(rest[k]);
}

void Op::drop_operands() {
  for (size_t i = 0; i < operands_.size(); ++i) operands_[i]->remove_use(this, static_cast<unsigned>(i));
  operands_.clear();
}

std::vector<Value*> Op::results() const {
  std::vector<Value*> out;
  for (auto& r : results_) out.push_back(r.get());
  return out;
}

Value* Op::add_result(TensorType t) {
  results_.push_back(std::make_unique<Value>(std::move(t), this, nullptr, results_.size()));
  return results_.back().get();
}

void Op::erase_result(size_t i) {
  if (results_.at(i)->has_uses()) throw rt::InternalError("erase_result: the result is used");
  results_.erase(results_.begin() + static_cast<ptrdiff_t>(i));
  for (size_t k = i; k < results_.size(); ++k) results_[k]->index_ = static_cast<unsigned>(k);
}

Region& Op::add_region() {
  regions_.push_back(std::make_unique<Region>(this));
  return *regions_.back();
}

const Attribute* Op::attr(std::string_view name) const {
  auto it = attrs.find(name);
  return it == attrs.end() ? nullptr : &it->second;
}

namespace {
template <class T> const T& need(const Op& op, std::string_view name) {
  if (const T* v = op.attr_as<T>(name)) return *v;
  throw rt::InternalError(std::string(op.name()) + ": missing attribute " + std::string(name));
}
}  // namespace

int64_t Op::int_attr(std::string_view n) const { return need<int64_t>(*this, n); }
const IntList& Op::ints_attr(std::string_view n) const { return need<IntList>(*this, n); }
const std::string& Op::str_attr(std::string_view n) const { return need<std::string>(*this, n); }
bool Op::bool_attr(std::string_view n) const { return need<bool>(*this, n); }
const rt::Tensor& Op::tensor_attr(std::string_view n) const { return need<rt::Tensor>(*this, n); }

// ---- blocks --------------------------------------------------------------------------

Block::~Block() { drop_all_references(); }

void Block::drop_all_references() {
  for (auto& op : ops_) {
    op->drop_operands();
    for (auto& r : op->regions_) r->block().drop_all_references();
  }
}

Value* Block::add_arg(TensorType t) {
  args_.push_back(std::make_unique<Value>(std::move(t), nullptr, this, args_.size()));
  return args_.back().get();
}

void Block::erase_arg(size_t i) {
  if (args_.at(i)->has_uses()) throw rt::InternalError("erase_arg: the argument is used");
  args_.erase(args_.begin() + static_cast<ptrdiff_t>(i));
  for (size_t k = i; k < args_.size(); ++k) args_[k]->index_ = static_cast<unsigned>(k);
}

std::vector<Value*> Block::args() const {
  std::vector<Value*> out;
  for (auto& a : args_) out.push_back(a.get());
  return out;
}

Op* Block::terminator() const {
  if (ops_.empty() || !ops_.back()->has_trait(kTerminator)) return nullptr;
  return ops_.back().get();
}

Op& Block::append(std::unique_ptr<Op> op) { return insert(ops_.size(), std::move(op)); }

Op& Block::insert(size_t pos, std::unique_ptr<Op> op) {
  op->parent_ = this;
  auto it = ops_.insert(ops_.begin() + static_cast<ptrdiff_t>(pos), std::move(op));
  return **it;
}

void Block::splice(size_t pos, Block& from, size_t count) {
  count = std::min(count, from.ops_.size());
  auto first = from.ops_.begin(), last = first + static_cast<ptrdiff_t>(count);
  for (auto it = first; it != last; ++it) (*it)->parent_ = this;
  ops_.insert(ops_.begin() + static_cast<ptrdiff_t>(pos), std::make_move_iterator(first), std::make_move_iterator(last));
  from.ops_.erase(first, last);
}

// An op may be erased only when nothing uses its results.
static void checkUnused(const Op& op) {
  for (Value* r : op.results())
    if (r->has_uses()) throw rt::InternalError("erase: a result of '" + std::string(op.name()) + "' is used");
}

void Block::erase_all(const std::unordered_set<const Op*>& dead) {
  if (dead.empty()) return;
  size_t out = 0;
  for (size_t i = 0; i < ops_.size(); ++i) {
    if (!dead.count(ops_[i].get())) {
      if (out != i) ops_[out] = std::move(ops_[i]);
      ++out;
      continue;
    }
    checkUnused(*ops_[i]);
    ops_[i]->parent_ = nullptr;
    ops_[i].reset();
  }
  ops_.resize(out);
}

std::unique_ptr<Op> Block::take(size_t i) {
  std::unique_ptr<Op> op = std::move(ops_.at(i));
  ops_.erase(ops_.begin() + static_cast<ptrdiff_t>(i));
  op->parent_ = nullptr;
  return op;
}

void Block::replace(size_t i, std::unique_ptr<Op> op) {
  checkUnused(*ops_.at(i));
  op->parent_ = this;
  ops_.at(i) = std::move(op);
}

void Block::erase(size_t i) {
  checkUnused(*ops_.at(i));
  take(i);  // destroyed here
}

size_t Block::index_of(const Op* op) const {
  for (size_t i = 0; i < ops_.size(); ++i)
    if (ops_[i].get() == op) return i;
  throw rt::InternalError("index_of: op not in block");
}

// ---- functions and modules -----------------------------------------------------------

bool Function::has_sym(std::string_view s) const {
  return std::find(syms.begin(), syms.end(), s) != syms.end();
}

std::string Function::fresh_sym() {
  for (size_t k = 0;; ++k) {
    std::string name = fmt::format("?{}", k);  // not "?" + to_string: GCC 12 -Wrestrict false positive
    if (!has_sym(name)) {
      syms.push_back(name);
      return name;
    }
  }
}

Function& Module::add_function(std::string name) {
  functions.push_back(std::make_unique<Function>(std::move(name)));
  return *functions.back();
}

Function* Module::find(std::string_view name) const {
  for (auto& f : functions)
    if (f->name == name) return f.get();
  return nullptr;
}

}  // namespace tdl::ir
