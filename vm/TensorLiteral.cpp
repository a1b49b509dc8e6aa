#include "vm/TensorLiteral.h"

namespace tdl::vm {

namespace {

struct Leaves {
  std::vector<double> floats;
  std::vector<int64_t> ints;
  bool anyFloat = false, allBool = true;
};

void collect(const Expr& e, Leaves& out) {
  switch (e.kind) {
    case ExprKind::List:
      for (auto& k : e.kids) collect(*k, out);
      return;
    case ExprKind::Int:
      out.allBool = false;
      out.ints.push_back(e.ival);
      out.floats.push_back(static_cast<double>(e.ival));
      return;
    case ExprKind::Float:
      out.allBool = false;
      out.anyFloat = true;
      out.ints.push_back(0);
      out.floats.push_back(e.fval);
      return;
    case ExprKind::Bool:
      out.ints.push_back(e.bval ? 1 : 0);
      out.floats.push_back(e.bval ? 1.0 : 0.0);
      return;
    case ExprKind::Unary: {  // -literal
      Leaves inner;
      collect(*e.kids[0], inner);
      out.allBool = false;
      out.anyFloat = out.anyFloat || inner.anyFloat;
      out.ints.push_back(static_cast<int64_t>(0ull - static_cast<uint64_t>(inner.ints.at(0))));
      out.floats.push_back(-inner.floats.at(0));
      return;
    }
    default: return;
  }
}

rt::Shape shapeOf(const Expr& e) {
  rt::Shape s;
  const Expr* x = &e;
  while (x->kind == ExprKind::List) {
    s.push_back(static_cast<int64_t>(x->kids.size()));
    if (x->kids.empty()) break;
    x = x->kids[0].get();
  }
  return s;
}

}  // namespace

Value tensorLiteral(const Expr& e) {
  Leaves l;
  collect(e, l);
  rt::Shape shape = shapeOf(e);
  if (l.anyFloat) {
    std::vector<float> v(l.floats.begin(), l.floats.end());
    return fromTensor(rt::Tensor::from_vector(v, shape));
  }
  if (l.allBool && !l.ints.empty()) {
    std::vector<bool> bits(l.ints.begin(), l.ints.end());
    rt::Tensor t = rt::Tensor::empty(DType::Bool, shape);
    bool* p = t.mutable_data<bool>();
    for (size_t i = 0; i < bits.size(); ++i) p[i] = bits[i];
    return fromTensor(t);
  }
  return fromTensor(rt::Tensor::from_vector(l.ints, shape));
}

}  // namespace tdl::vm
