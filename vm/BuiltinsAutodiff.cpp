// The autodiff builtins of SPEC §7: tape() (a context whose `gradient`
// method differentiates what it recorded), grad(f, argnums) and
// value_and_grad(f, argnums). The machinery is in vm/autodiff/.
#include <fmt/format.h>

#include "runtime/Error.h"
#include "vm/Builtins.h"
#include "vm/Interpreter.h"
#include "vm/autodiff/Ops.h"
#include "vm/autodiff/Tape.h"

namespace tdl::vm {

namespace {

struct TapeObj : NativeObj {
  ad::Tape tape;
  std::string typeName() const override { return "tape"; }
  Value member(const Value& self, const std::string& name) const override;
  void enter(Interpreter& vm) override { tape.start(&vm); }
  void exit() override { tape.stop(); }
};

// `t.gradient`, bound to its tape.
struct GradientMethod : NativeObj {
  Value tape;
  explicit GradientMethod(Value t) : tape(std::move(t)) {}
  std::string typeName() const override { return "method gradient of a tape"; }
  Value call(Interpreter&, CallArgs& call) override {
    Args a("gradient", call, {"target", "sources"}, 2);
    return tape.as<TapeObj>()->tape.gradient(a[0], a[1]);
  }
};

Value TapeObj::member(const Value& self, const std::string& name) const {
  if (name == "gradient") return Value::object(Tag::Native, new GradientMethod(self));
  return Value::undef();
}

// A copy of `v` whose float leaves are new nodes (the values grad differentiates by).
Value watch(const Value& v) {
  switch (v.tag()) {
    case Tag::Tuple:
    case Tag::List: {
      std::vector<Value> items;
      for (auto& x : v.as<SeqObj>()->items) items.push_back(watch(x));
      return Value::object(v.tag(), new SeqObj(std::move(items)));
    }
    case Tag::Record: {
      std::vector<Value> vals;
      for (auto& x : v.as<RecordObj>()->vals) vals.push_back(watch(x));
      return makeRecord(v.as<RecordObj>()->names, std::move(vals));
    }
    case Tag::Dict: {
      std::vector<Value> vals;
      for (auto& x : v.as<DictObj>()->vals) vals.push_back(watch(x));
      return makeDict(v.as<DictObj>()->keys, std::move(vals));
    }
    default: return ad::isFloat(v) ? ad::identity(v) : v;
  }
}

// grad(f, argnums) / value_and_grad(f, argnums) as a callable.
struct GradFn : NativeObj {
  Value f;
  std::vector<int64_t> argnums;
  bool tupleOfArgs = false;  // argnums was a tuple: the gradient is a tuple
  bool withValue = false;
  std::string typeName() const override { return withValue ? "value_and_grad function" : "grad function"; }

  Value call(Interpreter& vm, CallArgs& call) override {
    const char* name = withValue ? "value_and_grad" : "grad";
    std::vector<Value> args(call.args, call.args + call.n);
    int npos = call.numPos();
    for (int64_t k : argnums)
      if (k < 0 || k >= npos)
        throw rt::Error(fmt::format("{}(f): argnums {} is out of range for a call with {} positional arguments", name, k, npos));
    for (int64_t k : argnums) ad::checkSources(args[static_cast<size_t>(k)]);  // before f runs, as SPEC §7 words it
    ad::Tape tape;
    for (int64_t k : argnums) args[static_cast<size_t>(k)] = watch(args[static_cast<size_t>(k)]);
    tape.start(nullptr);
    Value out = vm.call(f, args, call.kwNames);
    tape.stop();
    if (!ad::isFloat(out) || !out.isScalar())
      throw rt::Error(fmt::format("{}(f): f must return a float scalar, got {}", name, typeText(out)));
    Value sources;
    if (tupleOfArgs) {
      std::vector<Value> xs;
      for (int64_t k : argnums) xs.push_back(args[static_cast<size_t>(k)]);
      sources = makeTuple(std::move(xs));
    } else {
      sources = args[static_cast<size_t>(argnums[0])];
    }
    Value g = tape.gradient(out, sources);
    if (!withValue) return g;
    return makeTuple({out, g});
  }
};

Value makeGradFn(const char* name, CallArgs& call, bool withValue) {
  Args a(name, call, {"f", "argnums"}, 1);
  if (!a[0].isCallable()) a.fail(0, "a function");
  auto* g = new GradFn();
  Value r = Value::object(Tag::Native, g);
  g->f = a[0];
  g->withValue = withValue;
  if (!a.has(1)) {
    g->argnums = {0};
  } else if (a[1].tag() == Tag::Tuple || a[1].tag() == Tag::List) {
    g->argnums = a.ints(1);
    g->tupleOfArgs = true;
  } else {
    g->argnums = {a.integer(1)};
  }
  return r;
}

Value tapeFn(Interpreter&, CallArgs& call) {
  Args a("tape", call, {}, 0);
  return Value::object(Tag::Native, new TapeObj());
}

Value gradFn(Interpreter&, CallArgs& call) { return makeGradFn("grad", call, false); }
Value valueAndGradFn(Interpreter&, CallArgs& call) { return makeGradFn("value_and_grad", call, true); }

}  // namespace

bool gradFnParts(const Value& v, GradFnParts& out) {
  if (v.tag() != Tag::Native) return false;
  auto* g = dynamic_cast<GradFn*>(v.as<NativeObj>());
  if (!g) return false;
  out = GradFnParts{g->f, g->argnums, g->tupleOfArgs, g->withValue};
  return true;
}

void registerAutodiffBuiltins(BuiltinTable& t) {
  t.add("tape", tapeFn);
  t.add("grad", gradFn);
  t.add("value_and_grad", valueAndGradFn);
}

}  // namespace tdl::vm
