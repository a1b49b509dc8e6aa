// Common subexpression elimination.
//   Rewrites: a pure op without regions that repeats an earlier one (same kind, operands,
//     attributes and result types; operands of commutative ops in either order) whose
//     definition is in scope — earlier in the same block or in an enclosing block — uses
//     the earlier results instead and is erased.
//   Preconditions: the function verifies.
//   Guarantees: effectful and may-fail ops are never merged; a value found inside a
//     region is never used outside it (each region has its own scope).
#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "ir/Pass.h"
#include "ir/Printer.h"
#include "ir/Rewrite.h"

namespace tdl::ir {

namespace {

std::string key_of(const Op& op) {
  std::vector<const Value*> operands(op.operands().begin(), op.operands().end());
  if (op.has_trait(kCommutative)) std::sort(operands.begin(), operands.end());
  std::string key = std::string(op.name()) + "(";
  for (const Value* v : operands) key += fmt::format("{},", static_cast<const void*>(v));
  key += ")";
  for (const auto& [k, a] : op.attrs) key += fmt::format("{}={};", k, attr_to_string(a));
  for (Value* r : op.results()) key += fmt::format(":{}", r->type.str());
  return key;
}

class Cse {
 public:
  bool block(Block& b) {
    scopes_.emplace_back();
    bool changed = false;
    std::unordered_set<const Op*> dead;  // replaced: erased together at the end (linear)
    for (size_t i = 0; i < b.size(); ++i) {
      Op& op = b.op(i);
      for (size_t r = 0; r < op.num_regions(); ++r) changed |= block(op.region(r).block());
      if (!op.has_trait(kPure) || op.num_regions()) continue;
      std::string key = key_of(op);
      if (Op* earlier = find(key)) {
        for (size_t r = 0; r < op.num_results(); ++r) op.result(r)->replace_all_uses_with(earlier->result(r));
        dead.insert(&op);
        changed = true;
        continue;
      }
      scopes_.back().emplace(std::move(key), &op);
    }
    b.erase_all(dead);
    scopes_.pop_back();
    return changed;
  }

 private:
  Op* find(const std::string& key) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = it->find(key);
      if (f != it->end()) return f->second;
    }
    return nullptr;
  }

  std::vector<std::unordered_map<std::string, Op*>> scopes_;
};

class CsePass : public Pass {
 public:
  std::string_view name() const override { return "cse"; }
  bool run(Function& f) override { return Cse().block(f.entry()); }
};

}  // namespace

std::unique_ptr<Pass> create_cse_pass() { return std::make_unique<CsePass>(); }

}  // namespace tdl::ir
