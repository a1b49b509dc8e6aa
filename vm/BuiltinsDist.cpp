// The builtins under the `dist` standard module (stdlib/dist.tdl, SPEC §12): data
// parallelism over MPI through runtime/Dist.h. Internal names (a leading underscore: not
// listed by `tdl builtins`, the reference or editors); scripts call dist.allreduce etc.
// A collective takes a tensor or a tree (records, tuples, lists, dicts) of them: the whole
// tree goes as one call, packed into large messages.
#include <fmt/format.h>

#include <functional>

#include "runtime/Dist.h"
#include "vm/Builtins.h"
#include "vm/autodiff/Tape.h"
#include "vm/Interpreter.h"

namespace tdl::vm {

namespace {

std::string where(Interpreter& vm) {
  Loc l = vm.callerLoc();
  if (!l.valid() || l.file >= vm.sources().size()) return "?";
  return fmt::format("{}:{}:{}", vm.sources().file(l.file).path, l.line, l.col);
}

// The tensor leaves of a tree (numbers become tensors of their dtype) and how to put
// results back in their places.
void leaves(const Value& v, std::vector<rt::Tensor>& out, const char* fn, std::vector<Value>* values = nullptr) {
  switch (v.tag()) {
    case Tag::Record:
      for (auto& x : v.as<RecordObj>()->vals) leaves(x, out, fn, values);
      return;
    case Tag::Dict:
      for (auto& x : v.as<DictObj>()->vals) leaves(x, out, fn, values);
      return;
    case Tag::Tuple:
    case Tag::List:
      for (auto& x : v.as<SeqObj>()->items) leaves(x, out, fn, values);
      return;
    case Tag::Tensor:
    case Tag::Scalar:
      out.push_back(toTensor(strong(v)));
      if (values) values->push_back(v);
      return;
    default:
      throw rt::Error(fmt::format("dist.{}: takes tensors or trees of them, found {}", fn, typeText(v)));
  }
}

// `record`: called with each new leaf and its index (the tapes' hook).
Value rebuild(const Value& v, const std::vector<rt::Tensor>& xs, size_t& k,
              const std::function<void(Value&, size_t)>& record = nullptr) {
  switch (v.tag()) {
    case Tag::Record: {
      std::vector<Value> vals;
      for (auto& x : v.as<RecordObj>()->vals) vals.push_back(rebuild(x, xs, k, record));
      return makeRecord(v.as<RecordObj>()->names, std::move(vals));
    }
    case Tag::Dict: {
      std::vector<Value> vals;
      for (auto& x : v.as<DictObj>()->vals) vals.push_back(rebuild(x, xs, k, record));
      return makeDict(v.as<DictObj>()->keys, std::move(vals));
    }
    case Tag::Tuple:
    case Tag::List: {
      std::vector<Value> items;
      for (auto& x : v.as<SeqObj>()->items) items.push_back(rebuild(x, xs, k, record));
      return Value::object(v.tag(), new SeqObj(std::move(items)));
    }
    default: {
      Value r = fromTensor(xs[k]);
      if (record) record(r, k);
      ++k;
      return r;
    }
  }
}

// A collective's errors (a mismatch, a timeout) are reported at the script's line that
// called the dist fn, not inside the standard module.
template <class F>
auto atCaller(Interpreter& vm, F f) {
  try {
    return f();
  } catch (const rt::Error& e) {
    throw ScriptError(vm.callerLoc(), e.what());
  }
}

Value rank(Interpreter&, CallArgs& call) {
  Args a("dist.rank", call, {}, 0);
  return fromTensor(rt::Tensor::scalar(static_cast<int64_t>(rt::dist::rank())));
}

Value size(Interpreter&, CallArgs& call) {
  Args a("dist.size", call, {}, 0);
  return fromTensor(rt::Tensor::scalar(static_cast<int64_t>(rt::dist::size())));
}

// Records result i of a collective (if a tape wants it) as `op` of input i, with `arg`
// (allreduce's op, broadcast's root) for the rule.
auto onTape(const std::vector<Value>& inputs, ad::GradOp op, int64_t arg) {
  return [&inputs, op, arg](Value& r, size_t i) {
    if (!ad::wants(r, {&inputs[i]})) return;
    ad::Node n;
    n.op = op;
    n.in = {inputs[i]};
    n.ints = {arg};
    ad::record(r, std::move(n));
  };
}

Value allreduce(Interpreter& vm, CallArgs& call) {
  Args a("dist.allreduce", call, {"t", "op"}, 1);
  std::string op = a.has(1) ? a.string(1) : "sum";
  rt::dist::ReduceOp o = rt::dist::ReduceOp::Sum;
  if (!rt::dist::parse_reduce_op(op, o)) a.fail(fmt::format("'op' must be \"sum\", \"mean\", \"max\" or \"min\", got \"{}\"", op));
  std::vector<rt::Tensor> xs;
  std::vector<Value> inputs;
  leaves(a[0], xs, "allreduce", &inputs);
  atCaller(vm, [&] { rt::dist::allreduce(xs, o, where(vm)); return 0; });
  size_t k = 0;
  // On a tape, each result's gradient flows back through an allreduce of the same op.
  return rebuild(a[0], xs, k, onTape(inputs, ad::GradOp::AllReduce, static_cast<int64_t>(o)));
}

Value broadcast(Interpreter& vm, CallArgs& call) {
  Args a("dist.broadcast", call, {"t", "root"}, 1);
  int64_t root = a.integerOr(1, 0);
  std::vector<rt::Tensor> xs;
  std::vector<Value> inputs;
  leaves(a[0], xs, "broadcast", &inputs);
  atCaller(vm, [&] { rt::dist::broadcast(xs, static_cast<int>(root), where(vm)); return 0; });
  size_t k = 0;
  // On a tape: the root's input gets the sum of every rank's gradient.
  return rebuild(a[0], xs, k, onTape(inputs, ad::GradOp::DistBroadcast, root));
}

Value allgather(Interpreter& vm, CallArgs& call) {
  Args a("dist.allgather", call, {"x"}, 1);
  rt::Tensor x = a.tensor(0);
  Value r = fromTensor(atCaller(vm, [&] { return rt::dist::allgather(x, where(vm)); }));
  // On a tape: each rank's input gets its rows of the sum of every rank's gradient.
  if (ad::wants(r, {&a[0]})) {
    ad::Node n;
    n.op = ad::GradOp::AllGather;
    n.in = {a[0]};
    ad::record(r, std::move(n));
  }
  return r;
}

Value barrier(Interpreter& vm, CallArgs& call) {
  Args a("dist.barrier", call, {}, 0);
  atCaller(vm, [&] { rt::dist::barrier(where(vm)); return 0; });
  return Value();
}

}  // namespace

void registerDistBuiltins(BuiltinTable& t) {
  t.add("_dist_rank", rank);
  t.add("_dist_size", size);
  t.add("_dist_allreduce", allreduce);
  t.add("_dist_broadcast", broadcast);
  t.add("_dist_allgather", allgather);
  t.add("_dist_barrier", barrier);
}

}  // namespace tdl::vm
