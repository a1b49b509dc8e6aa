#include "vm/Value.h"

#include <fmt/format.h>

#include "runtime/Convert.h"
#include "runtime/Error.h"

namespace tdl::vm {

const char* tagName(Tag t) {
  switch (t) {
    case Tag::Undef: return "undefined";
    case Tag::None: return "none";
    case Tag::Scalar: return "scalar";
    case Tag::DType: return "dtype";
    case Tag::Builtin: return "builtin function";
    case Tag::Tensor: return "tensor";
    case Tag::Str: return "string";
    case Tag::Tuple: return "tuple";
    case Tag::List: return "list";
    case Tag::Record: return "record";
    case Tag::Closure: return "function";
    case Tag::Range: return "range";
    case Tag::Native: return "object";
    case Tag::Dict: return "dict";
  }
  return "?";
}

int64_t Value::asInt() const {
  if (!rt::is_float(dtype_)) return i_;
  return rt::convert<int64_t>(d_);
}

int RecordObj::find(const std::string& name) const {
  for (size_t i = 0; i < names->size(); ++i)
    if ((*names)[i] == name) return static_cast<int>(i);
  return -1;
}

void Value::dropRef(Obj* o) {
  if (--o->refs == 0) delete o;
}

// Counted in unsigned arithmetic, so that no span overflows (range(-2**63, 2**63 - 1, 2**62)
// has 4 items); a length past i64's maximum (only range(-2**63, 2**63 - 1) and its like)
// saturates there.
uint64_t RangeObj::computeLength() const {
  if (step > 0 ? start >= stop : start <= stop) return 0;
  uint64_t span = step > 0 ? static_cast<uint64_t>(stop) - static_cast<uint64_t>(start)
                           : static_cast<uint64_t>(start) - static_cast<uint64_t>(stop);
  uint64_t by = step > 0 ? static_cast<uint64_t>(step) : uint64_t{0} - static_cast<uint64_t>(step);
  return (span - 1) / by + 1;
}

int64_t RangeObj::checkedLength() const {
  if (ulen > static_cast<uint64_t>(INT64_MAX))
    throw rt::Error(fmt::format("len(): range({}, {}, {}) has {} items, more than an i64 holds", start, stop, step, ulen));
  return len;
}

int64_t RangeObj::item(int64_t i) const {
  uint64_t k = i >= 0 ? static_cast<uint64_t>(i) : ulen - (uint64_t{0} - static_cast<uint64_t>(i));
  if (i >= 0 ? k >= ulen : uint64_t{0} - static_cast<uint64_t>(i) > ulen)
    throw rt::Error(fmt::format("index {} is out of range for axis 0 of size {}", i, ulen));
  return at(k);
}

Value NativeObj::iterItem(int64_t) { return Value(); }

std::string NativeObj::repr() const { return fmt::format("<{}>", typeName()); }

Value NativeObj::member(const Value&, const std::string&) const { return Value::undef(); }

Value NativeObj::call(Interpreter&, CallArgs&) {
  throw rt::Error(fmt::format("a {} cannot be called", typeName()));
}

void NativeObj::enter(Interpreter&) { throw rt::Error(fmt::format("'with' needs a tape, got {}", typeName())); }

void NativeObj::exit() {}

const std::vector<size_t>& StrObj::starts() const {
  std::call_once(once_, [this] {
    for (unsigned char c : s) ascii_ = ascii_ && c < 0x80;
    if (ascii_) return;
    for (size_t i = 0; i < s.size(); ++i)
      if (i == 0 || (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts_.push_back(i);
    starts_.push_back(s.size());
  });
  return starts_;
}

int64_t StrObj::length() const {
  const auto& st = starts();
  return ascii_ ? static_cast<int64_t>(s.size()) : static_cast<int64_t>(st.size()) - 1;
}

std::string_view StrObj::at(int64_t i) const {
  const auto& st = starts();
  auto k = static_cast<size_t>(i);
  if (ascii_) return std::string_view(s).substr(k, 1);
  return std::string_view(s).substr(st[k], st[k + 1] - st[k]);
}

Value makeStr(std::string s) { return Value::object(Tag::Str, new StrObj(std::move(s))); }
Value makeTuple(std::vector<Value> items) { return Value::object(Tag::Tuple, new SeqObj(std::move(items))); }
Value makeList(std::vector<Value> items) { return Value::object(Tag::List, new SeqObj(std::move(items))); }
Value makeRecord(Names names, std::vector<Value> vals) {
  return Value::object(Tag::Record, new RecordObj(std::move(names), std::move(vals)));
}
Value makeDict(std::vector<std::string> keys, std::vector<Value> vals) {
  auto* d = new DictObj;
  d->keys = std::move(keys);
  d->vals = std::move(vals);
  return Value::object(Tag::Dict, d);
}
int DictObj::find(const std::string& key) const {
  constexpr size_t kScan = 8;
  if (keys.size() <= kScan) {
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return static_cast<int>(i);
    return -1;
  }
  if (indexed_ > keys.size()) keysChanged();
  for (; indexed_ < keys.size(); ++indexed_) index_.emplace(keys[indexed_], static_cast<int>(indexed_));
  auto it = index_.find(key);
  return it == index_.end() ? -1 : it->second;
}
void DictObj::set(const std::string& key, Value v) {
  int i = find(key);
  if (i >= 0) {
    vals[static_cast<size_t>(i)] = std::move(v);
    return;
  }
  keys.push_back(key);
  vals.push_back(std::move(v));
}
DictObj* uniqueDict(Value& v) {
  if (!v.unique()) {
    auto* d = v.as<DictObj>();
    v = makeDict(d->keys, d->vals);
  }
  return v.as<DictObj>();
}
Value makeRange(int64_t start, int64_t stop, int64_t step) {
  return Value::object(Tag::Range, new RangeObj(start, stop, step));
}

Value fromTensor(rt::Tensor t) {
  if (t.rank() != 0) return Value::object(Tag::Tensor, new TensorObj(std::move(t)));
  switch (t.dtype()) {
    case DType::Bool: return Value::boolean(t.data<bool>()[0]);
    case DType::I32: return Value::i32(t.data<int32_t>()[0]);
    case DType::I64: return Value::i64(t.data<int64_t>()[0]);
    case DType::F32: return Value::f32(t.data<float>()[0]);
    case DType::F64: return Value::f64(t.data<double>()[0]);
    case DType::I8: return Value::i32(t.data<int8_t>()[0]);
  }
  return Value();
}

Value strong(const Value& v) {
  if (!v.isScalar() || !v.weak()) return v;
  // The same value with its dtype decided: it keeps its tape identity.
  Value r = v.dtype() == DType::F32 ? Value::f32(static_cast<float>(v.rawFloat()))
                                    : Value::intLike(v.dtype(), v.rawInt(), false);
  r.setNode(v.node());
  return r;
}

rt::Tensor scalarTensor(const Value& v, DType dt) {
  if (v.isFloatScalar()) return rt::Tensor::scalar_of(dt, v.rawFloat());
  return rt::Tensor::scalar_of_int(dt, v.rawInt());
}

rt::Tensor toTensor(const Value& v) {
  if (v.isTensor()) return v.as<TensorObj>()->t;
  if (v.isScalar()) return scalarTensor(v, v.dtype());
  throw rt::Error(fmt::format("expected a tensor, got a {}", tagName(v.tag())));
}

std::string typeText(const Value& v) {
  if (v.isTensor()) return v.as<TensorObj>()->t.type_str();
  if (v.isScalar()) return fmt::format("{}[]", rt::dtype_name(v.dtype()));
  if (v.tag() == Tag::Native) return v.as<NativeObj>()->typeName();  // tape, model, ...
  return tagName(v.tag());
}

std::string structureText(const Value& v, int depth) {
  auto items = [&](const std::vector<Value>& xs, const std::vector<std::string>* names, bool quoted) {
    std::string r;
    size_t n = std::min<size_t>(xs.size(), 8);
    for (size_t i = 0; i < n; ++i) {
      if (i) r += ", ";
      if (names) r += quoted ? "\"" + (*names)[i] + "\": " : (*names)[i] + ": ";
      r += depth >= 4 ? std::string("...") : structureText(xs[i], depth + 1);
    }
    if (xs.size() > n) r += ", ...";
    return r;
  };
  switch (v.tag()) {
    case Tag::Tuple: {
      const auto& xs = v.as<SeqObj>()->items;
      return "(" + items(xs, nullptr, false) + (xs.size() == 1 ? ",)" : ")");
    }
    case Tag::List: return "[" + items(v.as<SeqObj>()->items, nullptr, false) + "]";
    case Tag::Record: {
      const auto* r = v.as<RecordObj>();
      return "{" + items(r->vals, &*r->names, false) + "}";
    }
    case Tag::Dict: {
      const auto* d = v.as<DictObj>();
      return "{" + items(d->vals, &d->keys, true) + "}";
    }
    default: return typeText(v);
  }
}

SeqObj* uniqueSeq(Value& v) {
  if (!v.unique()) v = Value::object(v.tag(), new SeqObj(v.as<SeqObj>()->items));
  return v.as<SeqObj>();
}

RecordObj* uniqueRecord(Value& v) {
  if (!v.unique()) {
    auto* r = v.as<RecordObj>();
    v = makeRecord(r->names, r->vals);
  }
  return v.as<RecordObj>();
}

rt::Tensor& uniqueTensor(Value& v) {
  if (!v.unique()) v = Value::object(Tag::Tensor, new TensorObj(v.as<TensorObj>()->t));
  return v.as<TensorObj>()->t;
}

}  // namespace tdl::vm
