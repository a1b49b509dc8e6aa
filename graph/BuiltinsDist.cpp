// The dist module's collectives inside graph fns (SPEC §12): one call_runtime op per call
// (an effect: kept in program order, never fused across or removed), over every tensor leaf
// of the tree at once; the compiled code runs the runtime's collective (runtime/Dist.h),
// the same one eager mode calls.
#include "graph/Tracer.h"
#include "runtime/Dist.h"

namespace tdl::vm::trace {

auto Tracer::bi_dist(BuiltinCall& bc) -> TV {
  [[maybe_unused]] auto& [nm, loc, args, kw, a, self] = bc;
  // The script's line that called the dist fn (outside the standard module), for messages.
  Loc at = loc;
  int module = frames_.back()->decl ? frames_.back()->decl->module : 0;
  for (size_t i = frames_.size(); i-- > 0;) {
    const Frame& f = *frames_[i];
    if (f.decl && f.decl->module == module) {
      at = f.callLoc;
      continue;
    }
    break;
  }
  std::string where = whereText(at);
  std::string kind = nm.substr(6);  // _dist_allreduce → allreduce
  ir::AttrMap attrs{{"callee", "dist_" + kind}, {"where", where}};
  if (kind == "barrier") {
    setLoc(loc);
    b_.create(ir::OpKind::CallRuntime, {}, {}, attrs);
    return TV::of(Value());
  }
  if (kind == "allgather") {
    ir::Value* x = materialize(bc.need(0, "x"), loc);
    if (x->type.is_scalar()) failEager(loc, "dist.allgather: needs a tensor with a first axis, got a scalar (gather [x])");
    TensorType t = x->type;
    t.dims[0] = Dim::symbolic(f_.fresh_sym());
    setLoc(loc);
    return TV::dyn(b_.create(ir::OpKind::CallRuntime, {x}, {t}, attrs).result());
  }
  if (kind == "allreduce") {
    std::string op = "sum";
    if (TV* o = bc.arg(1, "op")) {
      if (!o->isStatic() || !o->sv.isStr()) fail(loc, "dist.allreduce: 'op' must be a string known at trace time");
      op = o->sv.as<StrObj>()->s;
    }
    rt::dist::ReduceOp parsed;
    if (!rt::dist::parse_reduce_op(op, parsed))
      failEager(loc, fmt::format("dist.allreduce: 'op' must be \"sum\", \"mean\", \"max\" or \"min\", got \"{}\"", op));
    attrs["op"] = op;
  } else {  // broadcast
    int64_t root = 0;
    if (TV* r = bc.arg(1, "root")) root = bc.staticInt(*r, "root");
    attrs["root"] = root;
  }
  TV& tree = bc.need(0, "t");
  std::vector<TV> leaves;
  leavesOf(tree, leaves);
  std::vector<ir::Value*> in;
  std::vector<TensorType> types;
  std::vector<LeafSpec> specs;
  for (const TV& l : leaves) {
    in.push_back(materialize(l, loc));
    types.push_back(in.back()->type);
    specs.push_back(LeafSpec{in.back()->type, false});
    if (attrs.count("op") && std::get<std::string>(attrs["op"]) == "mean" && !rt::is_float(in.back()->type.dtype))
      failEager(loc, fmt::format("dist.allreduce: op \"mean\" needs float tensors, got {} (use \"sum\")", in.back()->type.str()));
  }
  setLoc(loc);
  ir::Op* op = &b_.create(ir::OpKind::CallRuntime, in, types, attrs);
  std::vector<ir::Value*> outs;
  for (ir::Value* v : op->results()) outs.push_back(v);
  size_t k = 0;
  return rebuild(tree, outs, specs, k);
}

}  // namespace tdl::vm::trace
