#include "vm/Annotations.h"

#include "runtime/DType.h"
#include "vm/NumericOps.h"

namespace tdl::vm {

namespace {

bool shapeMatches(const rt::Shape& shape, const TypeExpr& t, DimBindings& dims) {
  if (t.anyShape) return true;
  if (shape.size() != t.dims.size()) return false;
  for (size_t i = 0; i < shape.size(); ++i) {
    const Dim& d = t.dims[i];
    switch (d.kind) {
      case Dim::Fixed:
        if (shape[i] != d.size) return false;
        break;
      case Dim::Named: {
        auto [it, fresh] = dims.emplace(d.name, shape[i]);
        if (!fresh && it->second != shape[i]) return false;
        break;
      }
      case Dim::Any: break;
    }
  }
  return true;
}

}  // namespace

bool matchesAnnotation(Value& v, const TypeExpr& t, DimBindings& dims) {
  switch (t.kind) {
    case TypeExpr::Alias: throw std::logic_error("internal: a type alias Sema did not resolve");
    case TypeExpr::Tensor: {
      auto dt = rt::dtype_from_name(t.dtype);
      if (!dt || !v.isNumeric()) return false;
      if (v.isScalar()) {
        if (!shapeMatches({}, t, dims)) return false;
        if (v.weak()) {
          if (weakTarget(v, *dt) != *dt) return false;
          v = castValue(v, *dt);
          return true;
        }
        return v.dtype() == *dt;
      }
      const rt::Tensor& x = v.as<TensorObj>()->t;
      return x.dtype() == *dt && shapeMatches(x.shape(), t, dims);
    }
    case TypeExpr::Record: {
      if (v.tag() != Tag::Record) return false;
      if (v.as<RecordObj>()->names->size() != t.names.size()) return false;
      for (size_t i = 0; i < t.names.size(); ++i) {
        int k = v.as<RecordObj>()->find(t.names[i]);
        if (k < 0) return false;
        Value field = v.as<RecordObj>()->vals[static_cast<size_t>(k)];
        if (!matchesAnnotation(field, *t.elems[i], dims)) return false;
        if (field.isScalar()) uniqueRecord(v)->vals[static_cast<size_t>(k)] = field;
      }
      return true;
    }
    case TypeExpr::Tuple: {
      if (v.tag() != Tag::Tuple) return false;
      if (v.as<SeqObj>()->items.size() != t.elems.size()) return false;
      for (size_t i = 0; i < t.elems.size(); ++i) {
        Value e = v.as<SeqObj>()->items[i];
        if (!matchesAnnotation(e, *t.elems[i], dims)) return false;
        if (e.isScalar()) uniqueSeq(v)->items[i] = e;
      }
      return true;
    }
  }
  return false;
}

bool namesDims(const TypeExpr& t) {
  for (const Dim& d : t.dims)
    if (d.kind == Dim::Named) return true;
  for (const TypePtr& e : t.elems)
    if (e && namesDims(*e)) return true;
  return false;
}

}  // namespace tdl::vm
