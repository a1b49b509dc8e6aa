// Signatures: flattening arguments, trace values of parameters, result templates, and
// traceGraphFn (graph/GraphTracer.h), which runs the Tracer (graph/Tracer.h).
#include "graph/Tracer.h"

namespace tdl::vm {

using namespace trace;

// ------------------------------------------------------------------ signatures

namespace {

void flattenOne(const Value& v, std::vector<rt::Tensor>& leaves, std::vector<bool>& weak, std::string& key) {
  switch (v.tag()) {
    case Tag::Scalar:
      // A weak float travels as f64 (its exact value: a literal 0.1 with an f64 tensor is
      // 0.1, as eagerly); being weak, it still takes an f32 operand's dtype in the fn.
      leaves.push_back(v.weak() && v.isFloatScalar() ? scalarTensor(v, DType::F64) : toTensor(v));
      weak.push_back(v.weak());
      key += v.weak() ? "w," : "t,";
      return;
    case Tag::Tensor:
      leaves.push_back(v.as<TensorObj>()->t);
      weak.push_back(false);
      key += "t,";
      return;
    case Tag::Tuple:
    case Tag::List:
      key += v.tag() == Tag::List ? "[" : "(";
      for (auto& i : v.as<SeqObj>()->items) flattenOne(i, leaves, weak, key);
      key += v.tag() == Tag::List ? "]," : "),";
      return;
    case Tag::Record: {
      auto* r = v.as<RecordObj>();
      key += "{";
      for (size_t i = 0; i < r->vals.size(); ++i) {
        key += (*r->names)[i] + ":";
        flattenOne(r->vals[i], leaves, weak, key);
      }
      key += "},";
      return;
    }
    case Tag::Dict: {
      auto* d = v.as<DictObj>();
      key += "D{";
      for (size_t i = 0; i < d->vals.size(); ++i) {
        key += fmt::format("{}:{}:", d->keys[i].size(), d->keys[i]);
        flattenOne(d->vals[i], leaves, weak, key);
      }
      key += "},";
      return;
    }
    case Tag::Str: key += fmt::format("s{}:{},", v.as<StrObj>()->s.size(), v.as<StrObj>()->s); return;
    case Tag::Closure: key += fmt::format("f{},", static_cast<const void*>(v.obj())); return;
    case Tag::Builtin: key += fmt::format("b{},", v.builtinId()); return;
    case Tag::DType: key += fmt::format("d{},", rt::dtype_name(v.dtype())); return;
    case Tag::None: key += "n,"; return;
    default: key += fmt::format("o{}:{},", tagName(v.tag()), static_cast<const void*>(v.isHeap() ? v.obj() : nullptr)); return;
  }
}

// Rebuilds an argument as a trace value whose tensor leaves are the function's params.
TV argTV(const Value& v, const std::vector<ir::Value*>& params, const std::vector<ParamLeaf>& leaves, size_t& k) {
  switch (v.tag()) {
    case Tag::Scalar:
    case Tag::Tensor: {
      size_t i = k++;
      return TV::dyn(params[i], leaves[i].weak);
    }
    case Tag::Tuple:
    case Tag::List: {
      TV r; r.k = TV::Seq; r.seqTag = v.tag();
      for (auto& i : v.as<SeqObj>()->items) r.items.push_back(argTV(i, params, leaves, k));
      return r;
    }
    case Tag::Dict: {
      TV r; r.k = TV::Rec; r.seqTag = Tag::Dict;
      auto* d = v.as<DictObj>();
      r.names = std::make_shared<const std::vector<std::string>>(d->keys);
      for (auto& i : d->vals) r.items.push_back(argTV(i, params, leaves, k));
      return r;
    }
    case Tag::Record: {
      TV r; r.k = TV::Rec;
      auto* rec = v.as<RecordObj>();
      r.names = rec->names;
      for (auto& i : rec->vals) r.items.push_back(argTV(i, params, leaves, k));
      return r;
    }
    default: return TV::of(v);
  }
}

ResultTemplate toTemplate(const TV& t, std::vector<ir::Value*>& results, std::vector<bool>& weak, const Loc& loc) {
  ResultTemplate r;
  switch (t.k) {
    case TV::Static: r.kind = ResultTemplate::Static; r.value = t.sv; return r;
    case TV::Dyn:
      r.kind = ResultTemplate::Leaf;
      r.leaf = static_cast<int>(results.size());
      r.weak = t.weak && t.dv->type.rank() == 0;
      results.push_back(t.dv);
      weak.push_back(t.weak);
      return r;
    case TV::Seq:
    case TV::Rec:
      r.kind = t.k == TV::Seq ? ResultTemplate::Seq : ResultTemplate::Rec;
      r.seqTag = t.seqTag;
      r.names = t.names;
      for (auto& i : t.items) r.items.push_back(toTemplate(i, results, weak, loc));
      return r;
    case TV::Fmt:
      r.kind = ResultTemplate::Fmt;
      r.value = t.sv;
      for (auto& i : t.items) r.items.push_back(toTemplate(i, results, weak, loc));
      return r;
    default: throw TraceError(loc, "a graph fn can only return tensors, numbers, strings and containers of them");
  }
}

}  // namespace

void flattenArgs(const std::vector<Value>& args, std::vector<rt::Tensor>& leaves, std::vector<bool>& weak, std::string& key) {
  for (auto& a : args) flattenOne(a, leaves, weak, key);
}

Trace traceGraphFn(Interpreter& vm, const ClosureObj& fn, const std::vector<Value>& args,
                   const std::vector<ParamLeaf>& leaves, const std::vector<std::string>& syms) {
  std::set<const Stmt*> forced, unrolled;
  const FnDecl* d = fn.proto->decl;
  Loc loc = d ? d->loc : Loc();
  for (int restart = 0;; ++restart) {
    Trace t;
    t.module = std::make_unique<ir::Module>();
    ir::Function& f = t.module->add_function(fn.proto->name);
    f.syms = syms;
    std::vector<ir::Value*> params;
    for (auto& l : leaves) params.push_back(f.add_param(l.type));
    std::vector<TV> targs;
    size_t k = 0;
    for (auto& a : args) targs.push_back(argTV(a, params, leaves, k));
    try {
      Tracer tr(vm, f, forced, unrolled, t);
      TV result = tr.run(fn, std::move(targs), loc);
      std::vector<ir::Value*> results;
      std::vector<bool> weak;
      t.result = toTemplate(result, results, weak, loc);
      for (auto* r : results) f.result_types.push_back(r->type);
      ir::Builder b(f);
      b.set_loc(loc);
      b.ret(results);
      t.fn = &f;
      return t;
    } catch (const Restart&) {
      if (restart >= kMaxRestarts) throw TraceError(loc, "this graph fn has too many long loops to trace");
    } catch (const TraceError&) {
      // A loop made a while loop for its length may need its iterations known (ws[i % 2] on a
      // list): traced again with those loops unrolled (longer), as eager runs them; when that
      // fails too (or there were none), this error stands.
      std::vector<const Stmt*> again;
      for (const Stmt* s : forced)
        if (!unrolled.count(s)) again.push_back(s);
      if (again.empty() || restart >= kMaxRestarts) throw;
      for (const Stmt* s : again) forced.erase(s), unrolled.insert(s);
    }
  }
}

}  // namespace tdl::vm

