#include "vm/ValueOps.h"

#include <fmt/format.h>

#include "frontend/Diagnostics.h"
#include "runtime/Convert.h"
#include "runtime/Error.h"
#include "runtime/Index.h"
#include "runtime/Reduce.h"
#include "runtime/Storage.h"
#include "vm/Builtins.h"
#include "vm/NumericOps.h"
#include "vm/autodiff/Ops.h"
#include "vm/autodiff/Tape.h"

namespace tdl::vm {

std::string missingKeyText(const std::vector<std::string>& keys, const std::string& key) {
  return fmt::format("key \"{}\" is not in the dict{}", key, didYouMean(key, keys));
}

namespace {

int64_t indexInt(const Value& v, const char* what) {
  if (v.isScalar() && !v.isFloatScalar() && v.dtype() != DType::Bool) return v.rawInt();
  bool intTensor = v.isTensor() && rt::is_integer(v.as<TensorObj>()->t.dtype()) && v.as<TensorObj>()->t.rank() > 0;
  throw rt::Error(indexTypeError(what, typeText(v), intTensor));
}

std::optional<int64_t> optInt(const Value* regs, int& r, bool present) {
  if (!present) return std::nullopt;
  const Value& v = regs[r++];
  if (v.isNone()) return std::nullopt;
  return indexInt(v, "a slice bound");
}

// The subscripts as runtime index items.
rt::IndexSpec indexSpec(const std::vector<uint8_t>& flags, const Value* regs) {
  rt::IndexSpec spec;
  int r = 0;
  for (uint8_t f : flags) {
    if (!(f & kSubSlice)) {
      spec.push_back(rt::IndexItem::at(indexInt(regs[r++], "an index")));
      continue;
    }
    auto lo = optInt(regs, r, f & kSubLo);
    auto hi = optInt(regs, r, f & kSubHi);
    auto step = optInt(regs, r, f & kSubStep);
    spec.push_back(rt::IndexItem::slice(lo, hi, step));
  }
  return spec;
}

// Fast path for `x[i, j, ...]` with one integer scalar per axis: the flat
// offset of the element (bounds checked with the runtime's error), computed
// without allocating. False when the subscripts are of another kind.
bool elementOffset(const rt::Tensor& t, const std::vector<uint8_t>& flags, const Value* regs, int64_t& off) {
  if (static_cast<int64_t>(flags.size()) != t.rank()) return false;
  for (size_t k = 0; k < flags.size(); ++k) {
    const Value& v = regs[k];
    if ((flags[k] & kSubSlice) || !v.isScalar() || v.isFloatScalar() || v.dtype() == DType::Bool) return false;
  }
  off = 0;
  for (size_t k = 0; k < flags.size(); ++k) {
    int64_t size = t.dim(static_cast<int64_t>(k));
    int64_t i = regs[k].rawInt();
    if (i < 0) i += size;
    if (i < 0 || i >= size) rt::resolve_index(rt::IndexItem::at(regs[k].rawInt()), static_cast<int64_t>(k), size);
    off = off * size + i;
  }
  return true;
}

Value elementValue(const rt::Tensor& t, int64_t off) {
  switch (t.dtype()) {
    case DType::Bool: return Value::boolean(t.data<bool>()[off]);
    case DType::I32: return Value::i32(t.data<int32_t>()[off]);
    case DType::I64: return Value::i64(t.data<int64_t>()[off]);
    case DType::F32: return Value::f32(t.data<float>()[off]);
    case DType::F64: return Value::f64(t.data<double>()[off]);
    case DType::I8: return Value::i32(t.data<int8_t>()[off]);
  }
  return Value();
}

// Stores scalar `v` at `off`, converted to t's dtype as cast() does.
void storeElement(rt::Tensor& t, int64_t off, const Value& v) {
  rt::dispatch(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = t.mutable_data<T>();
    p[off] = v.isFloatScalar() ? rt::convert<T>(v.rawFloat())
                               : (v.dtype() == DType::Bool ? rt::convert<T>(v.rawInt() != 0)
                                                           : rt::convert<T>(v.rawInt()));
  });
}

// A single integer-tensor subscript gathers along axis 0.
bool isGather(const std::vector<uint8_t>& flags, const Value* regs) {
  return flags.size() == 1 && !(flags[0] & kSubSlice) && regs[0].isTensor();
}

// A bool tensor subscript (a single one): NumPy's mask, the elements (or rows) where it holds.
bool isMask(const std::vector<uint8_t>& flags, const Value* regs) {
  return isGather(flags, regs) && regs[0].as<TensorObj>()->t.dtype() == DType::Bool;
}

// x[mask] through the gather of its positions: x seen as [numel(mask), the rest] (a reshape
// a tape records) and the i64 positions of the mask's true elements.
struct MaskRows {
  Value rows, idx;
  rt::Shape shape;  // x's own
};
MaskRows maskRows(const Value& x, const Value& mask) {
  const rt::Tensor& m = mask.as<TensorObj>()->t;
  const rt::Tensor& t = x.as<TensorObj>()->t;
  rt::Shape rows = rt::mask_rows(t.shape(), m);
  MaskRows r{Value(), fromTensor(rt::mask_indices(t.shape(), m)), t.shape()};
  r.rows = ad::recording() && x.node() != 0 ? ad::reshape(x, rows) : fromTensor(t.with_shape(rows));
  return r;
}

const rt::Tensor& tensorIndex(const Value& v) {
  const rt::Tensor& t = v.as<TensorObj>()->t;
  if (rt::is_float(t.dtype()))
    throw rt::Error(fmt::format("a tensor index must hold integers, got {}", t.type_str()));
  return t;
}

// Python's range slicing: r[a:b:c] is the range of the items it selects, with the bounds of
// Python's slice.indices (range(10)[2:5] is range(2, 5), range(10)[::-1] range(9, -1, -1)).
Value sliceRange(const RangeObj& r, const rt::IndexItem& s) {
  int64_t n = r.length();
  rt::resolve_index(s, 0, n);  // the step-0 and other slice errors, in the SPEC's words
  int64_t step = s.step.value_or(1);
  int64_t lower = step > 0 ? 0 : -1, upper = step > 0 ? n : n - 1;
  auto bound = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t b = *v;
    if (b < 0) return std::max(b + n, lower);
    return std::min(b, upper);
  };
  int64_t a = bound(s.start, step > 0 ? lower : upper), b = bound(s.stop, step > 0 ? upper : lower);
  auto item = [&](int64_t i) {  // wrapping, as RangeObj::at (i may be -1)
    return static_cast<int64_t>(static_cast<uint64_t>(r.start) + static_cast<uint64_t>(i) * static_cast<uint64_t>(r.step));
  };
  return makeRange(item(a), item(b), static_cast<int64_t>(static_cast<uint64_t>(r.step) * static_cast<uint64_t>(step)));
}

Value indexSequence(const Value& base, const std::vector<uint8_t>& flags, const Value* regs) {
  if (flags.size() != 1) throw rt::Error(fmt::format("a {} takes one index, got {}", tagName(base.tag()), flags.size()));
  const auto& items = base.as<SeqObj>()->items;
  int64_t n = static_cast<int64_t>(items.size());
  rt::IndexSpec spec = indexSpec(flags, regs);
  rt::AxisRange r = rt::resolve_index(spec[0], 0, n);
  if (!r.keep) return items[static_cast<size_t>(r.start)];
  std::vector<Value> out;
  for (int64_t i = 0; i < r.count; ++i) out.push_back(items[static_cast<size_t>(r.start + i * r.step)]);
  return base.tag() == Tag::Tuple ? makeTuple(std::move(out)) : makeList(std::move(out));
}

Value indexString(const StrObj& s, const std::vector<uint8_t>& flags, const Value* regs) {
  if (flags.size() != 1) throw rt::Error("a string takes one index");
  rt::IndexSpec spec = indexSpec(flags, regs);
  rt::AxisRange r = rt::resolve_index(spec[0], 0, s.length());
  if (!r.keep) return makeStr(std::string(s.at(r.start)));
  std::string out;
  for (int64_t i = 0; i < r.count; ++i) out += s.at(r.start + i * r.step);
  return makeStr(std::move(out));
}

// The value assigned into a tensor of dtype `dt` (weak scalars take dt exactly).
rt::Tensor valueFor(const Value& v, DType dt) {
  if (v.isScalar() && v.weak()) {
    weakTarget(v, dt);  // a weak integer dt cannot hold: the error, not a wrapped number (NumPy 2's)
    return scalarTensor(v, dt);
  }
  if (!v.isNumeric()) throw rt::Error(fmt::format("cannot store a {} in a tensor", tagName(v.tag())));
  return toTensor(v);
}

// NumPy's `...` (docs/decisions.md): it stands for the whole axes the other subscripts leave
// (rt::ellipsis_axes); as the last subscript it is dropped (x[i, ...] is x[i]: a gather or a
// mask stays alone). Whole slices take no registers, so regs are the same after.
bool hasEllipsis(const std::vector<uint8_t>& flags) {
  return std::any_of(flags.begin(), flags.end(), [](uint8_t f) { return (f & kSubEllipsis) != 0; });
}

std::vector<uint8_t> withoutEllipsis(const std::vector<uint8_t>& flags, const Value* regs, int64_t rank) {
  int64_t taken = 0, ellipses = 0;
  int r = 0;
  for (uint8_t f : flags) {
    if (f & kSubEllipsis) ++ellipses;
    else if (f & kSubSlice) ++taken;
    else if (regs[r].isTensor() && regs[r].as<TensorObj>()->t.dtype() == DType::Bool) taken += regs[r].as<TensorObj>()->t.rank();
    else if (!regs[r].isNone()) ++taken;
    r += subRegs(f);
  }
  const int64_t fill = rt::ellipsis_axes(rank, taken, ellipses);
  std::vector<uint8_t> out;
  for (size_t i = 0; i < flags.size(); ++i) {
    if (!(flags[i] & kSubEllipsis)) out.push_back(flags[i]);
    else if (i + 1 < flags.size()) out.insert(out.end(), static_cast<size_t>(fill), uint8_t{kSubSlice});
  }
  return out;
}

// The key of d[k]: one string subscript.
std::string dictKey(const std::vector<uint8_t>& flags, const Value* regs) {
  if (flags.size() != 1 || (flags[0] & kSubSlice) || !regs[0].isStr())
    throw rt::Error(fmt::format("a dict is indexed by one string key, got {}{}",
                                flags.size() == 1 && !(flags[0] & kSubSlice) ? typeText(regs[0]) : std::string("a slice"),
                                flags.size() == 1 && !(flags[0] & kSubSlice) ? " (f\"{k}\" is a string key of any k)" : ""));
  return regs[0].as<StrObj>()->s;
}

std::string missingKey(const DictObj& d, const std::string& key) { return missingKeyText(d.keys, key); }

void assignStep(Value& target, const PathDesc& path, size_t k, const Value* R, const Value& v);
bool hasNewAxis(const std::vector<uint8_t>& flags, const Value* regs);
void assignWithNewAxes(Value& target, const PathStep& s, bool last, const Value* regs, const Value& v);

// x[subs] = v on a tensor while a tape records: a functional update (a new
// node) instead of an in-place one.
void assignRecorded(Value& target, const PathDesc& path, size_t k, const Value* R, const Value& v) {
  const PathStep& s = path.steps[k];
  bool last = k + 1 == path.steps.size();
  const Value* regs = R + s.firstReg;
  if (isMask(s.subs, regs)) {
    MaskRows m = maskRows(target, regs[0]);
    Value part = last ? v : ad::gather(m.rows, m.idx);
    if (!last) assignStep(part, path, k + 1, R, v);
    target = ad::reshape(ad::scatter(m.rows, m.idx, part), m.shape);
    return;
  }
  if (isGather(s.subs, regs)) {
    tensorIndex(regs[0]);
    Value part = last ? v : ad::gather(target, regs[0]);
    if (!last) assignStep(part, path, k + 1, R, v);
    target = ad::scatter(target, regs[0], part);
    return;
  }
  rt::IndexSpec spec = indexSpec(s.subs, regs);
  Value part = last ? v : ad::getIndex(target, spec);
  if (!last) assignStep(part, path, k + 1, R, v);
  if (!part.isNumeric()) throw rt::Error(fmt::format("cannot store a {} in a tensor", tagName(part.tag())));
  target = ad::setIndex(target, spec, part);
}

void assignStep(Value& target, const PathDesc& path, size_t k, const Value* R, const Value& v) {
  const PathStep& s = path.steps[k];
  bool last = k + 1 == path.steps.size();
  if (s.isField) {
    if (target.tag() != Tag::Record)
      throw rt::Error(fmt::format("cannot set field '{}' of a {}", s.name, tagName(target.tag())));
    RecordObj* r = uniqueRecord(target);
    int i = r->find(s.name);
    if (i < 0) throw rt::Error(fmt::format("record has no field '{}'{}", s.name, didYouMean(s.name, *r->names)));
    if (last) r->vals[static_cast<size_t>(i)] = v;
    else assignStep(r->vals[static_cast<size_t>(i)], path, k + 1, R, v);
    return;
  }
  const Value* regs = R + s.firstReg;
  if (hasEllipsis(s.subs)) [[unlikely]] {
    if (!target.isNumeric()) throw rt::Error(ellipsisTypeError(typeText(target)));
    if (target.isTensor()) {
      PathDesc expanded = path;
      expanded.steps[k].subs = withoutEllipsis(s.subs, regs, target.as<TensorObj>()->t.rank());
      assignStep(target, expanded, k, R, v);
      return;
    }
  }
  switch (target.tag()) {
    case Tag::List: {
      if (s.subs.size() != 1 || (s.subs[0] & kSubSlice))
        throw rt::Error("list elements are assigned one at a time: xs[i] = v");
      SeqObj* seq = uniqueSeq(target);
      int64_t n = static_cast<int64_t>(seq->items.size());
      rt::AxisRange r = rt::resolve_index(rt::IndexItem::at(indexInt(regs[0], "an index")), 0, n);
      Value& elem = seq->items[static_cast<size_t>(r.start)];
      if (last) elem = v;
      else assignStep(elem, path, k + 1, R, v);
      return;
    }
    case Tag::Tuple: throw rt::Error("tuples are immutable: cannot assign to an element");
    case Tag::Dict: {
      std::string key = dictKey(s.subs, regs);
      DictObj* d = uniqueDict(target);
      if (last) {
        d->set(key, v);
        return;
      }
      int i = d->find(key);
      if (i < 0) throw rt::Error(missingKey(*d, key));
      assignStep(d->vals[static_cast<size_t>(i)], path, k + 1, R, v);
      return;
    }
    case Tag::Tensor: {
      if (hasNewAxis(s.subs, regs)) [[unlikely]] {
        assignWithNewAxes(target, s, last, regs, v);
        return;
      }
      if (ad::recording() && (target.node() != 0 || v.node() != 0)) [[unlikely]] {
        assignRecorded(target, path, k, R, v);
        return;
      }
      target.setNode(0);  // changed in place: no longer the value a tape knows
      rt::Tensor& t = uniqueTensor(target);
      auto scatterInto = [&](rt::Tensor& dst, const rt::Tensor& idx) {  // dst[idx] = v, or its part below
        if (last) {
          rt::scatter(dst, idx, valueFor(v, dst.dtype()));
          return;
        }
        Value part = fromTensor(rt::gather(dst, idx));
        assignStep(part, path, k + 1, R, v);
        rt::scatter(dst, idx, toTensor(part));
      };
      if (isMask(s.subs, regs)) {
        const rt::Tensor& mask = regs[0].as<TensorObj>()->t;
        const rt::Shape shape = t.shape();
        rt::Tensor rows = t.with_shape(rt::mask_rows(shape, mask));
        t = rt::Tensor();  // rows holds the storage alone: scattered in place
        scatterInto(rows, rt::mask_indices(shape, mask));
        t = rows.with_shape(shape);
        return;
      }
      if (isGather(s.subs, regs)) {
        scatterInto(t, tensorIndex(regs[0]));
        return;
      }
      int64_t off;
      if (last && v.isScalar() && elementOffset(t, s.subs, regs, off)) {
        if (v.weak()) weakTarget(v, t.dtype());  // as valueFor
        storeElement(t, off, v);
        return;
      }
      rt::IndexSpec spec = indexSpec(s.subs, regs);
      if (last) {
        rt::set_index(t, spec, valueFor(v, t.dtype()));
      } else {
        Value part = fromTensor(rt::get_index(t, spec));
        assignStep(part, path, k + 1, R, v);
        rt::set_index(t, spec, toTensor(part));
      }
      return;
    }
    case Tag::Scalar:
      if (last && std::all_of(s.subs.begin(), s.subs.end(), [&, r = 0](uint8_t f) mutable {
            bool whole = (f & kSubEllipsis) || (!(f & kSubSlice) && regs[r].isNone());
            r += subRegs(f);
            return whole;
          })) {
        // s[...] = v, s[none] = v on a number (NumPy's 0-d array): v (broadcast to the new axes
        // of size 1 it may have, as x[none] = v) cast to the number's dtype.
        if (!v.isNumeric()) throw rt::Error(fmt::format("cannot store a {} in a tensor", tagName(v.tag())));
        rt::Shape wide(static_cast<size_t>(std::count_if(s.subs.begin(), s.subs.end(),
                                                         [](uint8_t f) { return !(f & kSubEllipsis); })),
                       1);
        const DType dt = target.dtype();
        if (v.weak()) weakTarget(v, dt);
        target = ad::reshape(ad::broadcastTo(ad::cast(v, dt), wide), {});  // cast first: a weak v exactly
        return;
      }
      throw rt::Error(fmt::format("cannot assign to an element of {}", typeText(target)));
    default:
      throw rt::Error(fmt::format("cannot assign to an element of {}", typeText(target)));
  }
}

Value concat(const Value& a, const Value& b) {
  if (a.isStr() && b.isStr()) return makeStr(a.as<StrObj>()->s + b.as<StrObj>()->s);
  std::vector<Value> items = a.as<SeqObj>()->items;
  const auto& more = b.as<SeqObj>()->items;
  items.insert(items.end(), more.begin(), more.end());
  return Value::object(a.tag(), new SeqObj(std::move(items)));
}


rt::BinaryOp runtimeOp(Op op) {
  switch (op) {
    case Op::Add: return rt::BinaryOp::Add;
    case Op::Sub: return rt::BinaryOp::Sub;
    case Op::Mul: return rt::BinaryOp::Mul;
    case Op::Div: return rt::BinaryOp::Div;
    case Op::FloorDiv: return rt::BinaryOp::FloorDiv;
    case Op::Mod: return rt::BinaryOp::Mod;
    case Op::Pow: return rt::BinaryOp::Pow;
    case Op::Eq: return rt::BinaryOp::Eq;
    case Op::Ne: return rt::BinaryOp::Ne;
    case Op::Lt: return rt::BinaryOp::Lt;
    case Op::Le: return rt::BinaryOp::Le;
    case Op::Gt: return rt::BinaryOp::Gt;
    case Op::Ge: return rt::BinaryOp::Ge;
    case Op::BitAnd: return rt::BinaryOp::BitAnd;
    case Op::BitOr: return rt::BinaryOp::BitOr;
    default: break;
  }
  throw std::logic_error("runtimeOp: not an elementwise operator");
}

}  // namespace

const char* opText(Op op) {
  switch (op) {
    case Op::Add: return "+";
    case Op::Sub: return "-";
    case Op::Mul: return "*";
    case Op::Div: return "/";
    case Op::FloorDiv: return "//";
    case Op::Mod: return "%";
    case Op::Pow: return "**";
    case Op::MatMul: return "@";
    case Op::Eq: return "==";
    case Op::Ne: return "!=";
    case Op::Lt: return "<";
    case Op::Le: return "<=";
    case Op::Gt: return ">";
    case Op::Ge: return ">=";
    case Op::BitAnd: return "&";
    case Op::BitOr: return "|";
    default: return "?";
  }
}

namespace {
// x[..., none, ...] (SPEC §12): `none` as a subscript inserts a new axis of size 1 at its
// place in the result (NumPy's newaxis). The other subscripts index x as usual, then the
// new axes are put in: at the count of result axes made by the subscripts before it.
bool hasNewAxis(const std::vector<uint8_t>& flags, const Value* regs) {
  int r = 0;
  for (uint8_t f : flags) {
    if (!(f & kSubSlice) && regs[r].isNone()) return true;
    r += subRegs(f);
  }
  return false;
}

// Subscripts with `none` taken apart: the others (their flags and registers), and the result
// axes at which the new axes go (the count of result axes the subscripts before them make).
struct NewAxes {
  std::vector<uint8_t> rest;
  std::vector<Value> restRegs;
  std::vector<int64_t> at;
};
NewAxes splitNewAxes(const std::vector<uint8_t>& flags, const Value* regs) {
  NewAxes na;
  int64_t out = 0;
  int r = 0;
  for (uint8_t f : flags) {
    int n = subRegs(f);
    if (!(f & kSubSlice) && regs[r].isNone()) {
      na.at.push_back(out++);
    } else {
      na.rest.push_back(f);
      for (int k = 0; k < n; ++k) na.restRegs.push_back(regs[r + k]);
      if (f & kSubSlice) ++out;
      else if (!regs[r].isScalar()) throw rt::Error("a tensor index cannot be combined with `none` (a new axis)");
    }
    r += n;
  }
  return na;
}

Value indexWithNewAxes(const Value& base, const std::vector<uint8_t>& flags, const Value* regs) {
  NewAxes na = splitNewAxes(flags, regs);
  Value v = na.rest.empty() ? base : indexValue(base, na.rest, na.restRegs.data());
  for (int64_t a : na.at) v = ad::expandDims(v, a);
  return v;
}
}  // namespace

namespace {
// NumPy's x[..., none, ...] = v: the subscripts without the new axes select the part; v must
// broadcast to the part's shape with the new axes (size 1) put in, and is stored as that.
void assignWithNewAxes(Value& target, const PathStep& s, bool last, const Value* regs, const Value& v) {
  if (!last)
    throw rt::Error("assigning into a part of an indexing with `none` (x[:, none][0] = v) is not supported: index "
                    "without `none`");
  NewAxes na = splitNewAxes(s.subs, regs);
  std::vector<uint8_t>& rest = na.rest;
  std::vector<Value>& restRegs = na.restRegs;
  const rt::Shape shape = ad::shapeOf(rest.empty() ? target : indexValue(target, rest, restRegs.data()));
  rt::Shape wide = shape;
  for (int64_t a : na.at) wide.insert(wide.begin() + a, 1);
  if (!v.isNumeric()) throw rt::Error(fmt::format("cannot store a {} in a tensor", tagName(v.tag())));
  Value val = ad::reshape(ad::broadcastTo(v, wide), shape);
  if (rest.empty()) {  // x[none] = v: all of x
    rest.push_back(kSubSlice);
  }
  PathDesc one;
  PathStep step;
  step.subs = rest;
  step.firstReg = 0;
  step.loc = s.loc;
  one.steps.push_back(std::move(step));
  assignStep(target, one, 0, restRegs.data(), val);
}
}  // namespace

Value indexValue(const Value& base, const std::vector<uint8_t>& flags, const Value* regs) {
  if (hasEllipsis(flags)) [[unlikely]] {
    if (!base.isNumeric()) throw rt::Error(ellipsisTypeError(typeText(base)));
    const int64_t rank = base.isTensor() ? base.as<TensorObj>()->t.rank() : 0;
    std::vector<uint8_t> rest = withoutEllipsis(flags, regs, rank);
    if (rest.empty() && !base.isTensor()) return strong(base);  // s[...]: the number
    return indexValue(base, rest, regs);
  }
  switch (base.tag()) {
    case Tag::Tensor: {
      if (hasNewAxis(flags, regs)) [[unlikely]] return indexWithNewAxes(base, flags, regs);
      if (isMask(flags, regs)) {  // a gather of the mask's rows (recorded when a tape follows x)
        MaskRows m = maskRows(base, regs[0]);
        return ad::gather(m.rows, m.idx);
      }
      if (ad::recording() && base.node() != 0) [[unlikely]] {
        if (isGather(flags, regs)) {
          tensorIndex(regs[0]);  // checks the index dtype
          return ad::gather(base, regs[0]);
        }
        return ad::getIndex(base, indexSpec(flags, regs));
      }
      const rt::Tensor& t = base.as<TensorObj>()->t;
      int64_t off;
      if (elementOffset(t, flags, regs, off)) return elementValue(t, off);
      if (isGather(flags, regs)) return fromTensor(rt::gather(t, tensorIndex(regs[0])));
      return fromTensor(rt::get_index(t, indexSpec(flags, regs)));
    }
    case Tag::Tuple:
    case Tag::List: return indexSequence(base, flags, regs);
    case Tag::Str: return indexString(*base.as<StrObj>(), flags, regs);
    case Tag::Range: {
      auto* r = base.as<RangeObj>();
      if (flags.size() != 1) throw rt::Error("a range takes one index");
      if (flags[0] & kSubSlice) return sliceRange(*r, indexSpec(flags, regs)[0]);
      return Value::i64(r->item(indexInt(regs[0], "an index")), true);
    }
    case Tag::Scalar:
      if (hasNewAxis(flags, regs)) {  // NumPy's s[None]: a number given axes of size 1 (as graph fns do)
        NewAxes na = splitNewAxes(flags, regs);
        if (na.rest.empty()) {
          Value v = strong(base);
          for (int64_t a : na.at) v = ad::expandDims(v, a);
          return v;
        }
      }
      throw rt::Error(fmt::format("cannot index a scalar ({})", typeText(base)));
    case Tag::Record: throw rt::Error("cannot index a record; use r.name for its fields");
    case Tag::Dict: {
      const DictObj* d = base.as<DictObj>();
      int i = d->find(dictKey(flags, regs));
      if (i < 0) throw rt::Error(missingKey(*d, dictKey(flags, regs)));
      return d->vals[static_cast<size_t>(i)];
    }
    default: throw rt::Error(fmt::format("cannot index a {}", tagName(base.tag())));
  }
}

bool hasField(const Value& base, const std::string& name) {
  if (base.tag() == Tag::Record) return base.as<RecordObj>()->find(name) >= 0;
  if (base.tag() == Tag::Native) return !base.as<NativeObj>()->member(base, name).isUndef();
  return false;
}

Value fieldValue(const Value& base, const std::string& name) {
  if (base.tag() == Tag::Record) {
    auto* r = base.as<RecordObj>();
    int i = r->find(name);
    if (i < 0) throw rt::Error(fmt::format("record has no field '{}'{}", name, didYouMean(name, *r->names)));
    return r->vals[static_cast<size_t>(i)];
  }
  if (base.isNumeric()) {
    rt::Shape shape = base.isTensor() ? base.as<TensorObj>()->t.shape() : rt::Shape{};
    DType dt = base.isTensor() ? base.as<TensorObj>()->t.dtype() : strong(base).dtype();
    if (name == "shape") return Value::object(Tag::Tensor, new TensorObj(rt::Tensor::from_vector(shape, {static_cast<int64_t>(shape.size())})));
    if (name == "rank" || name == "ndim") return Value::i64(static_cast<int64_t>(shape.size()));
    if (name == "size") return Value::i64(rt::numel_of(shape));
    if (name == "dtype") return Value::dtype(dt);
    if (name == "T") return ad::transpose(base.isTensor() ? base : strong(base), {});  // NumPy's: the axes reversed
    throw rt::Error(tensorNoField(name));
  }
  if (base.tag() == Tag::Native) {
    Value m = base.as<NativeObj>()->member(base, name);
    if (!m.isUndef()) return m;
  }
  if (base.tag() == Tag::Dict) {
    const DictObj* d = base.as<DictObj>();
    throw rt::Error(fmt::format("a dict has no field '{}'{}", name,
                                d->find(name) >= 0 ? fmt::format(" (its key: d[\"{}\"])", name)
                                                   : std::string(" (dicts have methods keys, values, items, get, pop)")));
  }
  if (base.isNone()) throw rt::Error(fmt::format("none has no field '{}'", name));
  if (base.isStr() && strMethodId(name) >= 0)
    throw rt::Error(fmt::format("a string's {0} is a method: call it, s.{0}(...)", name));
  std::string what = base.tag() == Tag::Native ? base.as<NativeObj>()->typeName() : tagName(base.tag());
  throw rt::Error(fmt::format("{} {} has no field '{}'", std::string("aeiou").find(what[0]) != std::string::npos ? "an" : "a",
                              what, name));
}

void assignPath(Value& target, const PathDesc& path, const Value* R, const Value& v) {
  assignStep(target, path, 0, R, v);
}

// Python's ==, without recursion (a list nested three million deep compares as any other):
// a worklist of the pairs still to compare.
bool valuesEqual(const Value& a0, const Value& b0) {
  std::vector<std::pair<const Value*, const Value*>> todo{{&a0, &b0}};
  while (!todo.empty()) {
    const Value& a = *todo.back().first;
    const Value& b = *todo.back().second;
    todo.pop_back();
    if (a.isNumeric() && b.isNumeric()) {
      if (a.isScalar() && b.isScalar()) {
        if (binaryValues(rt::BinaryOp::Eq, a, b).rawInt() == 0) return false;
        continue;
      }
      if (!a.isTensor() || !b.isTensor()) return false;
      const rt::Tensor& x = a.as<TensorObj>()->t;
      const rt::Tensor& y = b.as<TensorObj>()->t;
      if (x.shape() != y.shape() || x.dtype() != y.dtype() || !rt::all(rt::eq(x, y)).scalar_as_bool()) return false;
      continue;
    }
    if (a.tag() != b.tag()) return false;
    switch (a.tag()) {
      case Tag::None: break;
      case Tag::DType:
        if (a.dtype() != b.dtype()) return false;
        break;
      case Tag::Builtin:
        if (a.builtinId() != b.builtinId()) return false;
        break;
      case Tag::Str:
        if (a.as<StrObj>()->s != b.as<StrObj>()->s) return false;
        break;
      case Tag::Range: {  // the same items (Python's: range(0) == range(5, 5))
        const auto* x = a.as<RangeObj>();
        const auto* y = b.as<RangeObj>();
        if (x->ulen != y->ulen || (x->ulen > 0 && x->start != y->start) || (x->ulen > 1 && x->step != y->step)) return false;
        break;
      }
      case Tag::Tuple:
      case Tag::List: {
        const auto& x = a.as<SeqObj>()->items;
        const auto& y = b.as<SeqObj>()->items;
        if (x.size() != y.size()) return false;
        for (size_t i = x.size(); i-- > 0;) todo.emplace_back(&x[i], &y[i]);
        break;
      }
      case Tag::Dict: {  // the same keys with equal values, in any order (Python's)
        auto* x = a.as<DictObj>();
        auto* y = b.as<DictObj>();
        if (x->keys.size() != y->keys.size()) return false;
        for (size_t i = x->keys.size(); i-- > 0;) {
          int k = y->find(x->keys[i]);
          if (k < 0) return false;
          todo.emplace_back(&x->vals[i], &y->vals[static_cast<size_t>(k)]);
        }
        break;
      }
      case Tag::Record: {  // the same fields with equal values, in any order (as a dict's keys,
                          // as annotations and graph fns match them)
        auto* x = a.as<RecordObj>();
        auto* y = b.as<RecordObj>();
        if (x->vals.size() != y->vals.size()) return false;
        for (size_t i = x->vals.size(); i-- > 0;) {
          int k = y->find((*x->names)[i]);
          if (k < 0) return false;
          todo.emplace_back(&x->vals[i], &y->vals[static_cast<size_t>(k)]);
        }
        break;
      }
      default:
        if (a.obj() != b.obj()) return false;
    }
  }
  return true;
}

Value containsValue(const Value& xs, const Value& v) {
  switch (xs.tag()) {
    case Tag::List:
    case Tag::Tuple:
      for (const Value& item : xs.as<SeqObj>()->items)
        if (valuesEqual(item, v)) return Value::boolean(true);
      return Value::boolean(false);
    case Tag::Str:
      if (!v.isStr()) throw rt::Error(fmt::format("'in <string>' needs a string on the left, got {}", typeText(v)));
      return Value::boolean(xs.as<StrObj>()->s.find(v.as<StrObj>()->s) != std::string::npos);
    case Tag::Dict:
      if (!v.isStr()) throw rt::Error(fmt::format("'in <dict>' needs a key (a string) on the left, got {}", typeText(v)));
      return Value::boolean(xs.as<DictObj>()->find(v.as<StrObj>()->s) >= 0);
    case Tag::Record:
      if (!v.isStr()) throw rt::Error(fmt::format("'in <record>' needs a field name (a string) on the left, got {}", typeText(v)));
      return Value::boolean(xs.as<RecordObj>()->find(v.as<StrObj>()->s) >= 0);
    case Tag::Range: {
      if (!v.isScalar() || v.isFloatScalar() || v.dtype() == DType::Bool) return Value::boolean(false);
      const auto* r = xs.as<RangeObj>();
      int64_t k = v.asInt();
      if (r->length() == 0) return Value::boolean(false);
      // k = start + i * step for some 0 <= i < len (in 128-bit arithmetic: no overflow)
      __int128 d = static_cast<__int128>(k) - r->start;
      if (d % r->step != 0) return Value::boolean(false);
      __int128 i = d / r->step;
      return Value::boolean(i >= 0 && i < static_cast<__int128>(r->ulen));
    }
    case Tag::Tensor:
      if (!v.isNumeric() || !v.isScalar())
        throw rt::Error(fmt::format("'in <tensor>' needs a number on the left, got {}", typeText(v)));
      return Value::boolean(rt::any(rt::eq(xs.as<TensorObj>()->t, toTensor(v))).scalar_as_bool());
    default:
      throw rt::Error(fmt::format("'in' needs a list, tuple, string, record, dict, range or tensor on the right, got {}",
                                  typeText(xs)));
  }
}

std::string bitsOperandError(Op op, DType a, DType b, const std::string& ta, const std::string& tb) {
  if ((op != Op::BitAnd && op != Op::BitOr) || (!rt::is_float(a) && !rt::is_float(b))) return "";
  return fmt::format("unsupported operand types for {}: {} and {} ({} needs bool or integer operands)", opText(op), ta,
                     tb, opText(op));
}

Value repeatStr(const Value& s, int64_t n) {
  const std::string& text = s.as<StrObj>()->s;
  if (n <= 0 || text.empty()) return makeStr("");
  if (static_cast<uint64_t>(n) > rt::physical_memory_bytes() / text.size())
    throw rt::Error(fmt::format("out of memory: a string of {} copies of {} bytes", n, text.size()));
  std::string out;
  out.reserve(text.size() * static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out += text;
  return makeStr(std::move(out));
}

Value binaryOperator(Op op, const Value& a, const Value& b) {
  if (op == Op::In) return containsValue(b, a);
  if (a.isNumeric() && b.isNumeric()) {
    if (op == Op::MatMul) return matmulValues(a, b);
    auto dt = [](const Value& v) { return v.isTensor() ? v.as<TensorObj>()->t.dtype() : v.dtype(); };
    if (std::string m = bitsOperandError(op, dt(a), dt(b), typeText(a), typeText(b)); !m.empty()) throw rt::Error(m);
    return binaryValues(runtimeOp(op), a, b);
  }
  if (op == Op::Add && ((a.isStr() && b.isStr()) || (a.tag() == b.tag() && a.isSeq()))) return concat(a, b);
  auto count = [](const Value& v) { return v.isScalar() && (v.dtype() == DType::I64 || v.dtype() == DType::I32); };
  if (op == Op::Mul && ((a.isStr() && count(b)) || (count(a) && b.isStr())))  // "-" * 40, Python's
    return repeatStr(a.isStr() ? a : b, (a.isStr() ? b : a).rawInt());
  if (op == Op::Mul && ((a.isSeq() && count(b)) || (count(a) && b.isSeq()))) {  // [x] * 3, Python's
    const Value& s = a.isSeq() ? a : b;
    int64_t n = (a.isSeq() ? b : a).rawInt();
    const auto& items = s.as<SeqObj>()->items;
    std::vector<Value> out;
    if (n > 0 && !items.empty()) {
      if (static_cast<uint64_t>(n) > rt::physical_memory_bytes() / (items.size() * sizeof(Value)))
        throw rt::Error(fmt::format("out of memory: a {} of {} copies of {} items", tagName(s.tag()), n, items.size()));
      out.reserve(items.size() * static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
    }
    return Value::object(s.tag(), new SeqObj(std::move(out)));
  }
  if ((op == Op::Eq || op == Op::Ne) && ((a.tag() == Tag::List && b.isNumeric()) || (a.isNumeric() && b.tag() == Tag::List)))
    throw rt::Error(listTensorCompare(opText(op)));  // (never equal: a literal's tensor is the likely slip)
  if (op == Op::Eq) return Value::boolean(valuesEqual(a, b));
  if (op == Op::Ne) return Value::boolean(!valuesEqual(a, b));
  // Tuples and lists as Python's: the first items that differ decide (the operator applied
  // to them), else the lengths.
  if (a.isSeq() && a.tag() == b.tag() && (op == Op::Lt || op == Op::Le || op == Op::Gt || op == Op::Ge)) {
    const auto& xs = a.as<SeqObj>()->items;
    const auto& ys = b.as<SeqObj>()->items;
    for (size_t i = 0; i < xs.size() && i < ys.size(); ++i)
      if (!valuesEqual(xs[i], ys[i])) {
        Value r = binaryOperator(op, xs[i], ys[i]);
        if (!r.isScalar())
          throw rt::Error(fmt::format("cannot order {}s whose items {} are tensors (compare them with all() or any())",
                                      tagName(a.tag()), i));
        return r;
      }
    size_t m = xs.size(), n = ys.size();
    return Value::boolean(op == Op::Lt ? m < n : op == Op::Le ? m <= n : op == Op::Gt ? m > n : m >= n);
  }
  if (a.isStr() && b.isStr() && (op == Op::Lt || op == Op::Le || op == Op::Gt || op == Op::Ge)) {
    int c = orderValues(a, b);  // code point order, as Python's
    return Value::boolean(op == Op::Lt ? c < 0 : op == Op::Le ? c <= 0 : op == Op::Gt ? c > 0 : c >= 0);
  }
  throw rt::Error(fmt::format("unsupported operand types for {}: {} and {}{}", opText(op), typeText(a), typeText(b),
                              listTensorHint(op == Op::Add, a.tag() == Tag::List, b.tag() == Tag::List,
                                             a.isNumeric(), b.isNumeric())));
}

std::string extremeOfNumberError(const std::string& fn, int64_t rank, bool axisGiven) {
  if ((fn != "max" && fn != "min") || rank != 0 || !axisGiven) return "";
  return fmt::format("{0}(): its second argument is an axis, and a number has none; the {1} of two numbers "
                     "(or tensors) is {2}(a, b)",
                     fn, fn == "max" ? "larger" : "smaller", fn == "max" ? "maximum" : "minimum");
}

bool pythonExtremeOfNumbers(const std::string& fn, const std::vector<int64_t>& ranks, bool keywords) {
  if ((fn != "max" && fn != "min") || keywords || ranks.size() < 2) return false;
  for (int64_t r : ranks)
    if (r != 0) return false;
  return true;
}

int64_t numberRank(const Value& v) {
  return v.isScalar() ? 0 : v.isTensor() ? v.as<TensorObj>()->t.rank() : -1;
}

bool reducesSequence(const std::string& fn) {
  return fn == "sum" || fn == "max" || fn == "min" || fn == "any" || fn == "all";
}

std::string sequenceReduceError(const std::string& fn, size_t n, const std::string& badItem, bool badTensor) {
  if (!badItem.empty())
    return fmt::format("{0}() of a list or tuple takes numbers (Python's {0}), got an item {1}{2}", fn, badItem,
                       !badTensor       ? ""
                       : fn == "sum"    ? ": stack(xs) makes a tensor of the items, and a loop adds tensors elementwise"
                                        : ": stack(xs) makes a tensor of the items");
  if (n == 0 && (fn == "max" || fn == "min")) return fmt::format("{}() of an empty list or tuple", fn);
  return "";
}

Value emptySequenceReduce(const std::string& fn) {
  return fn == "sum" ? Value::i64(0, true) : Value::boolean(fn == "all");
}

Value rangeTensor(const RangeObj& r) {
  const int64_t n = static_cast<int64_t>(listItemsFit(r.length()));
  rt::Tensor t = rt::Tensor::empty(DType::I64, rt::Shape{n});
  int64_t* d = t.mutable_data<int64_t>();
  for (int64_t i = 0; i < n; ++i) d[i] = r.start + i * r.step;
  return fromTensor(std::move(t));
}

Value extremeOfStrings(const std::string& fn, const std::vector<Value>& items) {
  if (fn != "max" && fn != "min")
    throw rt::Error(fn == "sum" ? std::string("sum() of strings: join them with \"\".join(xs)")
                                : fmt::format("{}() of strings: compare each with \"\" (a string is no bool)", fn));
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    int c = orderValues(items[i], items[best]);
    if (fn == "max" ? c > 0 : c < 0) best = i;
  }
  return items[best];
}

int orderValues(const Value& a, const Value& b) {
  if (a.isScalar() && b.isScalar()) {
    if (!a.isFloatScalar() && !b.isFloatScalar()) return a.rawInt() < b.rawInt() ? -1 : a.rawInt() > b.rawInt();
    double x = a.asDouble(), y = b.asDouble();
    return x < y ? -1 : x > y;
  }
  if (a.isStr() && b.isStr()) {
    int c = a.as<StrObj>()->s.compare(b.as<StrObj>()->s);  // UTF-8 bytes: code point order
    return c < 0 ? -1 : c > 0;
  }
  if (a.isSeq() && a.tag() == b.tag()) {
    const auto& xs = a.as<SeqObj>()->items;
    const auto& ys = b.as<SeqObj>()->items;
    for (size_t i = 0; i < xs.size() && i < ys.size(); ++i)  // equal items first (Python's: (1, none) == (1, none))
      if (!valuesEqual(xs[i], ys[i])) return orderValues(xs[i], ys[i]);
    return xs.size() < ys.size() ? -1 : xs.size() > ys.size();
  }
  std::string hint = a.isTensor() || b.isTensor() ? " (sort(x) sorts a tensor's elements)" : "";
  throw rt::Error(fmt::format("cannot order a {} and a {}{}", typeText(a), typeText(b), hint));
}

std::vector<Value> sortedItems(const std::vector<Value>& items, const std::vector<Value>& keys, bool reverse) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) {
    return reverse ? orderValues(keys[j], keys[i]) < 0 : orderValues(keys[i], keys[j]) < 0;
  });
  std::vector<Value> out;
  for (size_t i : order) out.push_back(items[i]);
  return out;
}

std::string sortedKeywordsOnly(int positional) {
  return fmt::format("sorted() takes 1 positional argument ({} given): key and reverse are keywords, "
                     "sorted(xs, key=f, reverse=true)",
                     positional);
}

const std::vector<std::string>& tensorFields() {
  static const std::vector<std::string> names = {"shape", "rank", "ndim", "size", "dtype", "T"};
  return names;
}

std::string tensorFieldCalled(const std::string& name) {
  const auto& fields = tensorFields();
  if (std::find(fields.begin(), fields.end(), name) == fields.end()) return "";
  return fmt::format("a tensor's {0} is a field, not a method: x.{0}, without a call", name);
}

std::string tensorNoField(const std::string& name) {
  std::string near = didYouMean(name, tensorFields());
  return fmt::format("a tensor has no field '{}'{}", name,
                     near.empty() ? std::string(" (it has shape, rank or ndim, size, dtype, T)") : near);
}

std::string ellipsisTypeError(const std::string& type) {
  return fmt::format("`...` (the other axes) indexes a tensor, not a {}", type);
}

std::string indexTypeError(const std::string& what, const std::string& got, bool intTensor) {
  const bool mask = got.rfind("bool[", 0) == 0 && got != "bool[]";
  return fmt::format("{} must be an integer, got {}{}", what, got,
                     intTensor ? " (an integer tensor gathers rows only alone, x[idx]; along another axis, or "
                                 "with other subscripts, use take(x, idx, axis=k))"
                     : mask    ? " (a boolean mask selects only alone, x[mask]; with other subscripts, index in two "
                                 "steps: x[mask][:, i])"
                               : "");
}

std::string tensorParamError(const std::string& fn, const std::string& param, const std::string& got, bool sequence) {
  return fmt::format("{}(): '{}' must be a tensor, got {}{}", fn, param, got,
                     sequence ? " (stack(xs) makes a tensor of its items)" : "");
}

std::string listTensorHint(bool add, bool aList, bool bList, bool aNum, bool bNum) {
  if (!((aList && bNum) || (aNum && bList))) return "";
  return add ? " (a bracket literal of numbers is a tensor, not a list: add an item with xs.append(v), or "
               "concatenate lists with + on lists)"
             : " (a bracket literal of numbers is a tensor, not a list; make a tensor of a list with stack(xs))";
}

std::string listTensorCompare(const std::string& op) {
  return fmt::format("{} of a list and a tensor (a bracket literal of numbers is a tensor, not a list): compare "
                     "stack(xs) with the tensor, or the list with list(x)",
                     op);
}

size_t listItemsFit(int64_t n) {
  if (n < 0 || static_cast<uint64_t>(n) > rt::physical_memory_bytes() / sizeof(Value))
    throw rt::Error(fmt::format("out of memory: a list of {} items", n));
  return static_cast<size_t>(n);
}

int64_t iterLength(const Value& v) {
  switch (v.tag()) {
    case Tag::Range: return v.as<RangeObj>()->length();
    case Tag::Tuple:
    case Tag::List: return static_cast<int64_t>(v.as<SeqObj>()->items.size());
    case Tag::Tensor: return v.as<TensorObj>()->t.dim(0);
    case Tag::Str: return v.as<StrObj>()->length();
    case Tag::Dict: return static_cast<int64_t>(v.as<DictObj>()->keys.size());
    case Tag::Record: return static_cast<int64_t>(v.as<RecordObj>()->vals.size());  // its values (SPEC §6)
    case Tag::Native: {
      int64_t n = v.as<NativeObj>()->iterLength();
      if (n >= 0) return n;
      [[fallthrough]];
    }
    default: throw rt::Error(fmt::format("cannot iterate over {}", typeText(v)));
  }
}

Value iterItem(const Value& v, int64_t i) {
  switch (v.tag()) {
    case Tag::Range: return Value::i64(v.as<RangeObj>()->at(i), true);
    case Tag::Tuple:
    case Tag::List: return v.as<SeqObj>()->items[static_cast<size_t>(i)];
    case Tag::Tensor:
      if (ad::recording() && v.node() != 0) [[unlikely]] return ad::getIndex(v, {rt::IndexItem::at(i)});
      return fromTensor(rt::get_index(v.as<TensorObj>()->t, {rt::IndexItem::at(i)}));
    case Tag::Str: return makeStr(std::string(v.as<StrObj>()->at(i)));
    case Tag::Dict: return makeStr(v.as<DictObj>()->keys[static_cast<size_t>(i)]);  // its keys, as Python's
    case Tag::Record: return v.as<RecordObj>()->vals[static_cast<size_t>(i)];
    case Tag::Native: return v.as<NativeObj>()->iterItem(i);
    default: throw rt::Error(fmt::format("cannot iterate over {}", typeText(v)));
  }
}

std::vector<Value> unpackValues(const Value& v, size_t expected) {
  std::vector<Value> out;
  if (v.isSeq()) {
    out = v.as<SeqObj>()->items;
  } else if (v.isTensor() || v.isStr() || v.tag() == Tag::Range || v.tag() == Tag::Dict) {
    // A tensor's rows; as Python's, a string's characters, a range's numbers, a dict's keys.
    int64_t n = iterLength(v);
    for (int64_t i = 0; i < n; ++i) out.push_back(iterItem(v, i));
  } else {
    throw rt::Error(fmt::format("cannot destructure {} into {} names", typeText(v), expected));
  }
  if (out.size() != expected)
    throw rt::Error(fmt::format("cannot destructure a {} of {} elements into {} names", tagName(v.tag()), out.size(), expected));
  return out;
}

void checkListMethod(const std::string& name, int n) {
  auto arity = [&](int lo, int hi) {
    if (n >= lo && n <= hi) return;
    std::string want = lo == hi ? fmt::format("{} argument{}", lo, lo == 1 ? "" : "s")
                                : fmt::format("{} to {} arguments", lo, hi);
    throw rt::Error(fmt::format("{}() takes {} ({} given)", name, want, n));
  };
  if (name == "append" || name == "extend") arity(1, 1);
  else if (name == "pop") arity(0, 1);
  else if (name == "insert") arity(2, 2);
  else throw rt::Error(fmt::format("a list has no method '{}'", name));
}

std::string notAList(const std::string& name, const std::string& type, bool numeric) {
  if (numeric)
    return fmt::format("{}() needs a list, got {}: a bracket literal of numbers is a tensor, not a list "
                       "(start from `var xs = []`, or use concat/stack on tensors)",
                       name, type);
  return fmt::format("{}() needs a list, got {}", name, type);
}

int64_t listPosition(const std::string& name, int64_t i, int64_t size) {
  if (name == "insert") {
    if (i < 0) i = std::max<int64_t>(0, i + size);
    return std::min(i, size);
  }
  if (size == 0) throw rt::Error("pop from an empty list");
  if (i < -size || i >= size) throw rt::Error(fmt::format("pop index {} out of range for a list of {} items", i, size));
  return i < 0 ? i + size : i;
}

void checkDictMethod(const std::string& name, int n, const std::vector<std::string>* kw) {
  int nkw = kw ? static_cast<int>(kw->size()) : 0;
  int lo = 0, hi = 0;
  if (name == "get") lo = 1, hi = 2;
  else if (name != "keys" && name != "values" && name != "items") {
    std::vector<std::string> methods = {"keys", "values", "items", "get", "pop"};
    throw rt::Error(fmt::format("a dict has no method '{}'{}", name, didYouMean(name, methods)));
  }
  if (n - nkw < lo || n > hi || (nkw > 0 && name != "get"))
    throw rt::Error(fmt::format("{}() takes {} argument{} ({} given)", name, lo == hi ? fmt::format("{}", lo)
                                : fmt::format("{} to {}", lo, hi), hi == 1 ? "" : "s", n));
  if (nkw > 0 && (nkw > 1 || (*kw)[0] != "default"))
    throw rt::Error(fmt::format("get() has no parameter named '{}'", (*kw)[nkw > 1 && (*kw)[0] == "default" ? 1 : 0]));
}

Value dictMethod(const Value& dv, const std::string& name, const Value* args, int n, const std::vector<std::string>* kw) {
  const DictObj* d = dv.as<DictObj>();
  checkDictMethod(name, n, kw);
  if (name != "get") {  // keys, values, items
    std::vector<Value> out;
    for (size_t i = 0; i < d->keys.size(); ++i) {
      if (name == "keys") out.push_back(makeStr(d->keys[i]));
      else if (name == "values") out.push_back(d->vals[i]);
      else out.push_back(Value::object(Tag::Tuple, new SeqObj({makeStr(d->keys[i]), d->vals[i]})));
    }
    return makeList(std::move(out));
  }
  if (!args[0].isStr()) throw rt::Error(fmt::format("a dict's keys are strings, got {}", typeText(args[0])));
  int i = d->find(args[0].as<StrObj>()->s);
  if (i >= 0) return d->vals[static_cast<size_t>(i)];
  return n > 1 ? args[1] : Value();
}

Value listMethod(Value& xs, const std::string& name, const Value* args, int n) {
  if (xs.tag() == Tag::Dict && name == "pop") {  // d.pop(key), d.pop(key, default)
    if (n < 1 || n > 2) throw rt::Error(fmt::format("a dict's pop() takes 1 to 2 arguments ({} given)", n));
    if (!args[0].isStr()) throw rt::Error(fmt::format("a dict's keys are strings, got {}", typeText(args[0])));
    const std::string& key = args[0].as<StrObj>()->s;
    int i = xs.as<DictObj>()->find(key);
    if (i < 0) {
      if (n == 2) return args[1];
      throw rt::Error(missingKey(*xs.as<DictObj>(), key));
    }
    DictObj* d = uniqueDict(xs);
    Value r = std::move(d->vals[static_cast<size_t>(i)]);
    d->vals.erase(d->vals.begin() + i);
    d->keys.erase(d->keys.begin() + i);
    d->keysChanged();
    return r;
  }
  if (xs.tag() != Tag::List) throw rt::Error(notAList(name, typeText(xs), xs.isNumeric()));
  checkListMethod(name, n);
  auto position = [&](const Value& i) {
    if (!i.isScalar() || rt::is_float(i.dtype()) || i.dtype() == rt::DType::Bool)
      throw rt::Error(fmt::format("{}() index must be an integer, got {}", name, typeText(i)));
    return i.asInt();
  };
  std::vector<Value> more;
  if (name == "extend") {
    const Value& ys = args[0];
    if (ys.isSeq()) more = ys.as<SeqObj>()->items;
    else if (ys.tag() == Tag::Range || ys.isTensor()) {  // a tensor: its first axis, as a for loop
      const int64_t k = iterLength(ys);
      more.reserve(listItemsFit(k));
      listItemsFit(k + static_cast<int64_t>(xs.as<SeqObj>()->items.size()));
      for (int64_t i = 0; i < k; ++i) more.push_back(iterItem(ys, i));
    } else {
      throw rt::Error(fmt::format("extend() needs a list, tuple, range or tensor, got {}", typeText(ys)));
    }
  }
  if (!xs.unique()) xs = makeList(xs.as<SeqObj>()->items);  // copy on write
  std::vector<Value>& items = xs.as<SeqObj>()->items;
  int64_t size = static_cast<int64_t>(items.size());
  if (name == "append") {
    items.push_back(args[0]);
    return Value();
  }
  if (name == "extend") {
    for (Value& v : more) items.push_back(std::move(v));
    return Value();
  }
  if (name == "insert") {
    items.insert(items.begin() + listPosition(name, position(args[0]), size), args[1]);
    return Value();
  }
  int64_t i = listPosition(name, n == 0 ? size - 1 : position(args[0]), size);
  Value r = std::move(items[static_cast<size_t>(i)]);
  items.erase(items.begin() + i);
  return r;
}

}  // namespace tdl::vm
