// Trace values and the small helpers of the tracer (graph/Tracer.h).
#include "graph/Tracer.h"

#include "runtime/Print.h"

namespace tdl::vm {

LocKey locKey(const Loc& l) { return {l.file, l.line, l.col, l.inst}; }

Value ResultTemplate::build(const std::vector<rt::Tensor>& results) const {
  switch (kind) {
    case Static: return value;
    case Leaf: {
      Value v = fromTensor(results.at(static_cast<size_t>(leaf)));
      if (!weak || !v.isScalar()) return v;
      if (rt::is_float(v.dtype())) return Value::weakFloat(v.asDouble());
      if (v.dtype() == DType::Bool) return Value::boolean(v.rawInt() != 0, true);
      return Value::i64(v.asInt(), true);
    }
    case Seq: {
      std::vector<Value> v;
      for (auto& i : items) v.push_back(i.build(results));
      return seqTag == Tag::List ? makeList(std::move(v)) : makeTuple(std::move(v));
    }
    case Rec: {
      std::vector<Value> v;
      for (auto& i : items) v.push_back(i.build(results));
      if (seqTag == Tag::Dict) return makeDict(*names, std::move(v));
      return makeRecord(names, std::move(v));
    }
    case Fmt: {  // a string of run-time values, filled as print fills its format
      std::vector<rt::Tensor> holes;
      for (auto& i : items) holes.push_back(results.at(static_cast<size_t>(i.leaf)));
      return makeStr(rt::fill_format(value.as<StrObj>()->s, holes));
    }
  }
  return Value();
}

bool sameGlobal(const Value& a, const Value& b) {
  if (a.tag() != b.tag()) return false;
  if (a.isScalar()) return a.dtype() == b.dtype() && a.weak() == b.weak() && a.rawInt() == b.rawInt();
  if (a.isHeap()) return a.obj() == b.obj();
  return true;  // none, undefined
}

namespace trace {

bool sameTV(const TV& a, const TV& b) {
  if (a.k != b.k) return false;
  switch (a.k) {
    case TV::Undef: return true;
    case TV::Static:
      if (a.sv.tag() != b.sv.tag()) return false;
      if (a.sv.isScalar()) return a.sv.dtype() == b.sv.dtype() && a.sv.weak() == b.sv.weak() && a.sv.rawInt() == b.sv.rawInt();
      if (a.sv.isHeap() && a.sv.obj() == b.sv.obj()) return true;
      try {
        return valuesEqual(a.sv, b.sv);
      } catch (...) {
        return false;
      }
    case TV::Dyn: return a.dv == b.dv && a.weak == b.weak;
    case TV::Fn: return a.fn == b.fn;
    case TV::Tape: return a.tape == b.tape;
    case TV::Fmt:
      if (a.sv.as<StrObj>()->s != b.sv.as<StrObj>()->s) return false;
      [[fallthrough]];
    case TV::GradFn:
      if (a.k == TV::Fmt) goto items;

      if (a.argnums != b.argnums || a.withValue != b.withValue || a.tupleArgs != b.tupleArgs) return false;
      [[fallthrough]];
    default:
    items:
      if (a.items.size() != b.items.size() || a.seqTag != b.seqTag) return false;
      if (a.k == TV::Rec && *a.names != *b.names) return false;
      for (size_t i = 0; i < a.items.size(); ++i)
        if (!sameTV(a.items[i], b.items[i])) return false;
      return true;
  }
}

// A static container as a Seq/Rec of static items (so it can be merged leaf by leaf).
TV expandStatic(const TV& t) {
  if (!t.isStatic()) return t;
  if (t.sv.isSeq()) {
    TV r; r.k = TV::Seq; r.seqTag = t.sv.tag();
    for (auto& v : t.sv.as<SeqObj>()->items) r.items.push_back(TV::of(v));
    return r;
  }
  if (t.sv.tag() == Tag::Dict) {
    TV r; r.k = TV::Rec; r.seqTag = Tag::Dict;
    auto* d = t.sv.as<DictObj>();
    r.names = std::make_shared<const std::vector<std::string>>(d->keys);
    for (auto& v : d->vals) r.items.push_back(TV::of(v));
    return r;
  }
  if (t.sv.tag() == Tag::Record) {
    TV r; r.k = TV::Rec;
    auto* rec = t.sv.as<RecordObj>();
    r.names = rec->names;
    for (auto& v : rec->vals) r.items.push_back(TV::of(v));
    return r;
  }
  return t;
}

TV expandIterable(const TV& t, bool ranges) {
  if (t.isStatic() && (t.sv.isStr() || (ranges && t.sv.tag() == Tag::Range))) {
    TV r;
    r.k = TV::Seq;
    r.seqTag = t.sv.tag();
    for (int64_t i = 0, n = iterLength(t.sv); i < n; ++i) r.items.push_back(TV::of(iterItem(t.sv, i)));
    return r;
  }
  TV x = expandStatic(t);
  if (x.k == TV::Rec && x.seqTag == Tag::Dict) {
    x.k = TV::Seq;
    x.items.clear();
    for (const std::string& key : *x.names) x.items.push_back(TV::of(makeStr(key)));
  }
  return x;
}

rt::BinaryOp rtBinary(BinOp op) {
  switch (op) {
    case BinOp::Add: return rt::BinaryOp::Add;
    case BinOp::Sub: return rt::BinaryOp::Sub;
    case BinOp::Mul: return rt::BinaryOp::Mul;
    case BinOp::Div: return rt::BinaryOp::Div;
    case BinOp::FloorDiv: return rt::BinaryOp::FloorDiv;
    case BinOp::Mod: return rt::BinaryOp::Mod;
    case BinOp::Pow: return rt::BinaryOp::Pow;
    case BinOp::Eq: return rt::BinaryOp::Eq;
    case BinOp::Ne: return rt::BinaryOp::Ne;
    case BinOp::Lt: return rt::BinaryOp::Lt;
    case BinOp::Le: return rt::BinaryOp::Le;
    case BinOp::Gt: return rt::BinaryOp::Gt;
    case BinOp::Ge: return rt::BinaryOp::Ge;
    case BinOp::BitAnd: return rt::BinaryOp::BitAnd;
    case BinOp::BitOr: return rt::BinaryOp::BitOr;
    case BinOp::And: return rt::BinaryOp::LogicalAnd;
    case BinOp::Or: return rt::BinaryOp::LogicalOr;
    case BinOp::MatMul:
    case BinOp::In:
    case BinOp::NotIn: break;
  }
  return rt::BinaryOp::Add;
}

// Slots assigned (not declared) anywhere inside a statement; and slots declared there.
void scanAssigned(const Stmt& s, std::set<int>& assigned, std::set<int>& declared, bool& hasBreak, bool& hasReturn,
                  int loopDepth) {
  auto patSlots = [&](const Pattern& p, auto& self) -> void {
    if (p.kind == Pattern::Name) {
      if (!p.global && p.slot >= 0) declared.insert(p.slot);
    } else {
      for (auto& e : p.elems) self(e, self);
    }
  };
  switch (s.kind) {
    case StmtKind::Let: patSlots(s.pattern, patSlots); break;
    case StmtKind::Assign: {
      const Expr* t = s.exprs[0].get();
      while (t->kind == ExprKind::Index || t->kind == ExprKind::Field) t = t->kids[0].get();
      if (t->kind == ExprKind::Name && t->ref.kind == RefKind::Local) assigned.insert(t->ref.index);
      break;
    }
    case StmtKind::Return: hasReturn = true; break;
    case StmtKind::Break: if (loopDepth == 0) hasBreak = true; break;
    case StmtKind::For: patSlots(s.pattern, patSlots); [[fallthrough]];
    case StmtKind::While:
      if (s.body) scanAssigned(*s.body, assigned, declared, hasBreak, hasReturn, loopDepth + 1);
      break;
    case StmtKind::If:
      if (s.body) scanAssigned(*s.body, assigned, declared, hasBreak, hasReturn, loopDepth);
      if (s.orelse) scanAssigned(*s.orelse, assigned, declared, hasBreak, hasReturn, loopDepth);
      break;
    case StmtKind::Block:
      for (auto& k : s.stmts) scanAssigned(*k, assigned, declared, hasBreak, hasReturn, loopDepth);
      break;
    case StmtKind::With:
      if (s.slot >= 0) declared.insert(s.slot);  // `as name`
      if (s.body) scanAssigned(*s.body, assigned, declared, hasBreak, hasReturn, loopDepth);
      break;
    case StmtKind::Fn:
      if (s.fn && s.fn->globalSlot >= 0) declared.insert(s.fn->globalSlot);  // a nested fn's own slot
      break;
    default: break;
  }
}

}  // namespace trace
}  // namespace tdl::vm
