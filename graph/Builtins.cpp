// Calls of builtins. (graph/Tracer.h)
#include "frontend/BuiltinAliases.h"
#include "graph/Tracer.h"

namespace tdl::vm::trace {

auto Tracer::builtin(int id, std::vector<TV>& args, const std::vector<std::string>& kw, const Loc& loc) -> TV {
  std::string nm = builtinName(id);
  static const std::set<std::string> effects = {
#define BUILTIN(n)
#define BUILTIN_EFFECT(n) #n,
#include "frontend/builtins.def"
#undef BUILTIN
  };
  bool allStatic = true;
  for (auto& a : args) {
    a = knownTV(a);  // a list or record of known values (built by append, say) is one known value
    allStatic = allStatic && a.isStatic() && !tapedStatic(a);
  }
  if (allStatic && !effects.count(nm)) {
    std::vector<Value> vals;
    for (auto& a : args) vals.push_back(a.sv);
    auto names = std::make_shared<std::vector<std::string>>(kw);
    CallArgs ca{vals.data(), static_cast<int>(vals.size()), kw.empty() ? nullptr : names.get()};
    return staticCall(loc, [&] { return builtinFn(id)(vm_, ca); });
  }
  if (nm == "max" || nm == "min") {  // Python's max(a, b, ...) of numbers (vm/ValueOps.h), as eagerly
    std::vector<int64_t> ranks;
    for (size_t i = 0; i < args.size() - kw.size(); ++i) ranks.push_back(isNumeric(args[i]) ? typeOf(args[i]).rank() : -1);
    if (pythonExtremeOfNumbers(nm, ranks, !kw.empty())) {
      TV acc = args[0];
      for (size_t i = 1; i < args.size(); ++i) {
        std::vector<TV> two{acc, args[i]};
        acc = builtin(builtinId(nm == "max" ? "maximum" : "minimum"), two, {}, loc);
      }
      return acc;
    }
  }
  // The one binder (eager's, with the parameter lists the builtins declare): unknown or
  // repeated keywords, too many or missing arguments are eager's errors, word for word.
  if (const BuiltinParams* ps = builtinParams(vm_, id)) {
    try {
      (void)bindBuiltinArgs(ps->fn.c_str(), ps->params, ps->required, static_cast<int>(args.size() - kw.size()),
                            kw.empty() ? nullptr : &kw);
    } catch (const rt::Error& e) {
      failEager(loc, e.what());
    }
  }
  // Bound by name, then dispatched by id: one function per builtin (or per family).
  BuiltinCall c{builtinName(id), loc, args, kw, {}, this};
  size_t npos = args.size() - kw.size();
  for (size_t i = 0; i < npos; ++i) c.a.pos.push_back(args[i]);
  for (size_t k = 0; k < kw.size(); ++k) {
    const char* alias = builtinKeywordAlias(builtinName(id), kw[k]);  // SPEC §5's name of the parameter
    c.a.kw[alias ? std::string(alias) : kw[k]] = args[npos + k];
  }
  static const std::vector<Handler> table = builtinTable();
  if (Handler h = table[static_cast<size_t>(id)]) return (this->*h)(c);
  fail(loc, fmt::format("'{}' is not supported inside graph fns yet", nm));
}

// The handler of each builtin id that graph fns trace (the others fail, or run at trace
// time when every argument is known).
auto Tracer::builtinTable() -> std::vector<Handler> {
  std::vector<Handler> t(static_cast<size_t>(kNumBuiltins), nullptr);
  t[static_cast<size_t>(builtinId("tape"))] = &Tracer::bi_tape;
  for (const char* n : {"_dist_allreduce", "_dist_broadcast", "_dist_allgather", "_dist_barrier"})
    t[static_cast<size_t>(builtinId(n))] = &Tracer::bi_dist;
  t[static_cast<size_t>(builtinId("grad"))] = &Tracer::bi_grad;
  t[static_cast<size_t>(builtinId("value_and_grad"))] = &Tracer::bi_grad;
#define TDL_UNARY_BUILTIN(e, n, ...) t[static_cast<size_t>(builtinId(#n))] = &Tracer::bi_unaryOp;
#include "runtime/ops.def"
#define TDL_BINARY_BUILTIN(e, n, ...) t[static_cast<size_t>(builtinId(#n))] = &Tracer::bi_binaryOp;
#include "runtime/ops.def"
  t[static_cast<size_t>(builtinId("clip"))] = &Tracer::bi_clip;
  t[static_cast<size_t>(builtinId("where"))] = &Tracer::bi_where;
  t[static_cast<size_t>(builtinId("cast"))] = &Tracer::bi_cast;
  t[static_cast<size_t>(builtinId("int"))] = &Tracer::bi_int;
  t[static_cast<size_t>(builtinId("float"))] = &Tracer::bi_int;
  t[static_cast<size_t>(builtinId("sum"))] = &Tracer::bi_sum;
  t[static_cast<size_t>(builtinId("mean"))] = &Tracer::bi_sum;
  t[static_cast<size_t>(builtinId("max"))] = &Tracer::bi_sum;
  t[static_cast<size_t>(builtinId("min"))] = &Tracer::bi_sum;
  t[static_cast<size_t>(builtinId("prod"))] = &Tracer::bi_sum;
  t[static_cast<size_t>(builtinId("all"))] = &Tracer::bi_sum;
  t[static_cast<size_t>(builtinId("any"))] = &Tracer::bi_sum;
  t[static_cast<size_t>(builtinId("logsumexp"))] = &Tracer::bi_sum;
  t[static_cast<size_t>(builtinId("argmax"))] = &Tracer::bi_sum;
  t[static_cast<size_t>(builtinId("argmin"))] = &Tracer::bi_sum;
  t[static_cast<size_t>(builtinId("matmul"))] = &Tracer::bi_matmul;
  t[static_cast<size_t>(builtinId("dot"))] = &Tracer::bi_matmul;
  t[static_cast<size_t>(builtinId("transpose"))] = &Tracer::bi_transpose;
  t[static_cast<size_t>(builtinId("zeros"))] = &Tracer::bi_zeros;
  t[static_cast<size_t>(builtinId("ones"))] = &Tracer::bi_zeros;
  t[static_cast<size_t>(builtinId("full"))] = &Tracer::bi_zeros;
  t[static_cast<size_t>(builtinId("zeros_like"))] = &Tracer::bi_zeros_like;
  t[static_cast<size_t>(builtinId("ones_like"))] = &Tracer::bi_zeros_like;
  t[static_cast<size_t>(builtinId("arange"))] = &Tracer::bi_arange;
  t[static_cast<size_t>(builtinId("broadcast_to"))] = &Tracer::bi_broadcast_to;
  t[static_cast<size_t>(builtinId("reshape"))] = &Tracer::bi_reshape;
  t[static_cast<size_t>(builtinId("flatten"))] = &Tracer::bi_reshape;
  t[static_cast<size_t>(builtinId("expand_dims"))] = &Tracer::bi_expand_dims;
  t[static_cast<size_t>(builtinId("squeeze"))] = &Tracer::bi_squeeze;
  t[static_cast<size_t>(builtinId("concat"))] = &Tracer::bi_concat;
  t[static_cast<size_t>(builtinId("stack"))] = &Tracer::bi_concat;
  t[static_cast<size_t>(builtinId("outer"))] = &Tracer::bi_outer;
  t[static_cast<size_t>(builtinId("tile"))] = &Tracer::bi_tile;
  t[static_cast<size_t>(builtinId("pad"))] = &Tracer::bi_pad;
  t[static_cast<size_t>(builtinId("take"))] = &Tracer::bi_take;
  t[static_cast<size_t>(builtinId("one_hot"))] = &Tracer::bi_one_hot;
  t[static_cast<size_t>(builtinId("eye"))] = &Tracer::bi_eye;
  t[static_cast<size_t>(builtinId("linspace"))] = &Tracer::bi_linspace;
  t[static_cast<size_t>(builtinId("seed"))] = &Tracer::bi_seed;
  t[static_cast<size_t>(builtinId("permutation"))] = &Tracer::bi_permutation;
  t[static_cast<size_t>(builtinId("len"))] = &Tracer::bi_len;
#define TDL_STR_METHOD(n) t[static_cast<size_t>(builtinId("_str_" #n))] = &Tracer::bi_strMethod;
#include "vm/str_methods.def"
  t[static_cast<size_t>(builtinId("range"))] = &Tracer::bi_range;
  t[static_cast<size_t>(builtinId("print"))] = &Tracer::bi_print;
  t[static_cast<size_t>(builtinId("assert"))] = &Tracer::bi_assert;
  t[static_cast<size_t>(builtinId("_assert"))] = &Tracer::bi_assert;
  t[static_cast<size_t>(builtinId("_assert_holds"))] = &Tracer::bi_assertHolds;
  t[static_cast<size_t>(builtinId("str"))] = &Tracer::bi_str;
  t[static_cast<size_t>(builtinId("repr"))] = &Tracer::bi_str;
  t[static_cast<size_t>(builtinId("format"))] = &Tracer::bi_format;
  t[static_cast<size_t>(builtinId("rand"))] = &Tracer::bi_rand;
  t[static_cast<size_t>(builtinId("randn"))] = &Tracer::bi_rand;
  t[static_cast<size_t>(builtinId("randint"))] = &Tracer::bi_randint;
  t[static_cast<size_t>(builtinId("tree_leaves"))] = &Tracer::bi_tree_leaves;
  t[static_cast<size_t>(builtinId("tree_map"))] = &Tracer::bi_tree_map;
  t[static_cast<size_t>(builtinId("einsum"))] = &Tracer::bi_einsum;
  t[static_cast<size_t>(builtinId("enumerate"))] = &Tracer::bi_sequence;
  t[static_cast<size_t>(builtinId("zip"))] = &Tracer::bi_sequence;
  t[static_cast<size_t>(builtinId("reversed"))] = &Tracer::bi_sequence;
  t[static_cast<size_t>(builtinId("list"))] = &Tracer::bi_sequence;
  t[static_cast<size_t>(builtinId("tuple"))] = &Tracer::bi_sequence;
  t[static_cast<size_t>(builtinId("sorted"))] = &Tracer::bi_sorted;
#define TDL_COMPOSITE(n, ...) t[static_cast<size_t>(builtinId(#n))] = &Tracer::bi_composite;
#include "vm/composites.def"
  return t;
}

TV* Tracer::BuiltinCall::arg(size_t i, const char* key) {
  if (i < a.pos.size()) return &a.pos[i];
  auto it = a.kw.find(key);
  return it == a.kw.end() ? nullptr : &it->second;
}

TV& Tracer::BuiltinCall::need(size_t i, const char* key) {
  TV* p = arg(i, key);
  if (!p) tracer->failEager(loc, fmt::format("{}: missing argument '{}'", nm, key));
  return *p;
}

TV& Tracer::BuiltinCall::numeric(TV& t, const char* key, const char* expected) {
  if (!tracer->isNumeric(t))  // eager's words (Args::fail)
    tracer->failEager(loc, std::string(expected) == "a tensor"
                               ? tensorParamError(nm, key, tracer->describe(t), t.k == TV::Seq)
                               : fmt::format("{}(): '{}' must be {}, got {}", nm, key, expected, tracer->describe(t)));
  return t;
}

void Tracer::BuiltinCall::requireStatic(const TV& t, const char* what) {
  if (!t.isStatic()) tracer->fail(loc, fmt::format("{}: '{}' must be known at trace time in a graph fn", nm, what));
}

int64_t Tracer::BuiltinCall::staticInt(const TV& t, const char* what) {
  requireStatic(t, what);
  CallArgs call{&t.sv, 1, nullptr};  // eager's conversion and words
  return tracer->guarded(loc, [&] { return Args(nm.c_str(), call, {what}, 1).integer(0); });
}

std::vector<int64_t> Tracer::BuiltinCall::staticAxes(const TV& t, const char* what) {
  requireStatic(t, what);
  CallArgs call{&t.sv, 1, nullptr};
  return tracer->guarded(loc, [&] { return *Args(nm.c_str(), call, {what}, 1).axes(0); });
}

ir::IntList Tracer::BuiltinCall::staticInts(const TV& t, const char* what) {
  requireStatic(t, what);
  return tracer->ints(t.sv, loc);
}

DType Tracer::BuiltinCall::dtypeArg(size_t i, const char* key, DType dflt) {
  TV* p = arg(i, key);
  if (!p || (p->isStatic() && p->sv.isNone())) return dflt;
  if (!p->isStatic() || p->sv.tag() != Tag::DType)
    tracer->failEager(loc, fmt::format("{}(): '{}' must be a dtype (bool, i32, i64, f32, f64), got {}", nm, key,
                                  tracer->describe(*p)));
  return p->sv.dtype();
}

}  // namespace tdl::vm::trace
