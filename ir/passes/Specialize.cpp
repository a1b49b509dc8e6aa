// Specialization of symbolic dims.
//   Rewrites: every type in the function (parameters, results, block arguments, the
//     declared result types) with each symbolic dim of the given map replaced by its
//     size; then, to a fixed point, every symbol whose size an op's shape rule now
//     determines (a result dim that is `?0` where the rule infers a known size, e.g.
//     slice(x: f32[N]) {start = [1], ...} : f32[?0] once N is known). Replaced symbols
//     leave the function's symbol list.
//   Preconditions: the function verifies; sizes are >= 0.
//   Guarantees: the function verifies again unless the sizes contradict it (then the
//     pipeline's verifier names this pass and the mismatch: such a call would fail at
//     run time anyway). Unknown names in the map are ignored.
#include <algorithm>

#include "ir/Pass.h"
#include "ir/ShapeInference.h"

namespace tdl::ir {

namespace {

class Specialize : public Pass {
 public:
  explicit Specialize(std::map<std::string, int64_t> sizes) : sizes_(std::move(sizes)) {}
  std::string_view name() const override { return "specialize"; }

  bool run(Function& f) override {
    std::map<std::string, int64_t> map;
    for (auto& [k, v] : sizes_)
      if (f.has_sym(k)) map[k] = v;
    if (map.empty()) return false;
    for (bool grew = true; grew;) {
      substitute(f, map);
      grew = refine(f.entry(), map);
    }
    f.syms.erase(std::remove_if(f.syms.begin(), f.syms.end(), [&](const std::string& s) { return map.count(s) > 0; }),
                 f.syms.end());
    return true;
  }

 private:
  static void apply(TensorType& t, const std::map<std::string, int64_t>& map) {
    for (Dim& d : t.dims) {
      if (!d.is_symbolic()) continue;
      auto it = map.find(d.sym);
      if (it != map.end()) d = Dim::known(it->second);
    }
  }

  static void substitute_block(Block& b, const std::map<std::string, int64_t>& map) {
    for (Value* a : b.args()) apply(a->type, map);
    for (size_t i = 0; i < b.size(); ++i) {
      Op& op = b.op(i);
      for (Value* r : op.results()) apply(r->type, map);
      for (size_t k = 0; k < op.num_regions(); ++k) substitute_block(op.region(k).block(), map);
    }
  }

  static void substitute(Function& f, const std::map<std::string, int64_t>& map) {
    for (TensorType& t : f.result_types) apply(t, map);
    substitute_block(f.entry(), map);
  }

  // Adds sym → size for result dims an op's rule now knows. Returns whether it added any.
  static bool refine(Block& b, std::map<std::string, int64_t>& map) {
    bool grew = false;
    for (size_t i = 0; i < b.size(); ++i) {
      Op& op = b.op(i);
      for (size_t k = 0; k < op.num_regions(); ++k) grew |= refine(op.region(k).block(), map);
      std::vector<TensorType> in;
      for (Value* v : op.operands()) in.push_back(v->type);
      std::optional<std::vector<TensorType>> inferred;
      try {
        inferred = infer_result_types(op.kind(), in, op.attrs);
      } catch (const ShapeError&) {
        continue;  // the verifier reports it
      }
      if (!inferred || inferred->size() != op.num_results()) continue;
      for (size_t r = 0; r < inferred->size(); ++r) {
        const TensorType& want = (*inferred)[r];
        const TensorType& have = op.result(r)->type;
        if (want.rank() != have.rank()) continue;
        for (size_t d = 0; d < want.dims.size(); ++d)
          if (have.dims[d].is_symbolic() && want.dims[d].is_known() && !map.count(have.dims[d].sym)) {
            map[have.dims[d].sym] = want.dims[d].size;
            grew = true;
          }
      }
    }
    return grew;
  }

  std::map<std::string, int64_t> sizes_;
};

}  // namespace

std::unique_ptr<Pass> create_specialize_pass(std::map<std::string, int64_t> sizes) {
  return std::make_unique<Specialize>(std::move(sizes));
}

}  // namespace tdl::ir
