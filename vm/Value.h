// Value: what a VM register holds. 16 bytes: a tag, and either an inline
// scalar (bool/i32/i64/f32/f64, maybe weak) or a refcounted heap object.
//
// Scalars never allocate, so scalar arithmetic in a loop costs no heap traffic.
// A rank-0 tensor is always represented as an inline scalar (see fromTensor).
//
// Weak scalars (SPEC §2): literals and expressions of literals only. A weak
// int is i64, a weak bool is bool, a weak float has dtype F32 but keeps its
// exact double value in `d` until its dtype is decided (`cast(0.1, f64)`).
// Strong f32 scalars keep a float-representable value in `d`.
//
// The header's spare bytes hold `node`: the value's identity on the autodiff
// tape (vm/autodiff/Tape.h), 0 for a value no tape knows. Copies keep it
// (`let y = x` is the same node); every newly computed value starts at 0.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <unordered_map>
#include <vector>

#include "runtime/DType.h"
#include "runtime/Tensor.h"

namespace tdl::vm {

using rt::DType;

enum class Tag : uint8_t {
  None,     // 0: zeroed memory holds none values
  Undef,    // a global whose definition has not run yet (never seen by scripts)
  Scalar,   // dtype, weak, i (bool/i32/i64) or d (f32/f64)
  DType,    // dtype
  Builtin,  // i = builtin id (BuiltinId)
  // ---- heap objects (refcounted) from here on
  Tensor,   // TensorObj, rank >= 1
  Str,      // StrObj
  Tuple,    // SeqObj
  List,     // SeqObj
  Record,   // RecordObj
  Closure,  // ClosureObj
  Range,    // RangeObj
  Native,   // NativeObj: an object implemented in C++ (a tape, a bound method)
  Dict,     // DictObj: string keys, in insertion order (SPEC §12)
};

const char* tagName(Tag t);

// Base of every heap object. Single-threaded refcount (the VM runs on one thread).
struct Obj {
  uint32_t refs = 1;
  virtual ~Obj() = default;
};

class Value {
 public:
  Value() : tag_(Tag::None), dtype_(DType::F32), weak_(false), pad_(0), node_(0), i_(0) {}
  Value(const Value& o) : i_(o.i_) {
    copyHeader(o);
    if (isHeap()) ++o_->refs;
  }
  Value(Value&& o) noexcept : i_(o.i_) {
    copyHeader(o);
    o.tag_ = Tag::None;
  }
  Value& operator=(const Value& o) {
    if (o.isHeap()) ++o.o_->refs;
    release();
    copyHeader(o);
    i_ = o.i_;
    return *this;
  }
  Value& operator=(Value&& o) noexcept {
    if (this != &o) {
      release();
      copyHeader(o);
      i_ = o.i_;
      o.tag_ = Tag::None;
    }
    return *this;
  }
  ~Value() { release(); }

  // ---- constructors
  static Value none() { return Value(); }
  static Value undef() { Value v; v.tag_ = Tag::Undef; return v; }
  static Value boolean(bool b, bool weak = false) { return intLike(DType::Bool, b ? 1 : 0, weak); }
  static Value i32(int32_t x) { return intLike(DType::I32, x, false); }
  static Value i64(int64_t x, bool weak = false) { return intLike(DType::I64, x, weak); }
  static Value f32(float x) { return floatLike(DType::F32, x, false); }
  static Value f64(double x) { return floatLike(DType::F64, x, false); }
  static Value weakFloat(double x) { return floatLike(DType::F32, x, true); }
  // A scalar of `dt` from an integer (bool/i32/i64) or a float (f32/f64) payload.
  static Value intLike(DType dt, int64_t x, bool weak) {
    Value v; v.tag_ = Tag::Scalar; v.dtype_ = dt; v.weak_ = weak; v.i_ = x; return v;
  }
  static Value floatLike(DType dt, double x, bool weak) {
    Value v; v.tag_ = Tag::Scalar; v.dtype_ = dt; v.weak_ = weak; v.d_ = x; return v;
  }
  static Value dtype(DType dt) { Value v; v.tag_ = Tag::DType; v.dtype_ = dt; return v; }
  static Value builtin(int id) { Value v; v.tag_ = Tag::Builtin; v.i_ = id; return v; }
  // Takes ownership of a new heap object (refs == 1).
  static Value object(Tag t, Obj* o) { Value v; v.tag_ = t; v.o_ = o; return v; }

  // ---- queries
  Tag tag() const { return tag_; }
  bool isHeap() const { return tag_ >= Tag::Tensor; }
  bool isNone() const { return tag_ == Tag::None; }
  bool isUndef() const { return tag_ == Tag::Undef; }
  bool isScalar() const { return tag_ == Tag::Scalar; }
  bool isTensor() const { return tag_ == Tag::Tensor; }
  bool isNumeric() const { return tag_ == Tag::Scalar || tag_ == Tag::Tensor; }
  bool isStr() const { return tag_ == Tag::Str; }
  bool isSeq() const { return tag_ == Tag::Tuple || tag_ == Tag::List; }
  bool isCallable() const { return tag_ == Tag::Closure || tag_ == Tag::Builtin || tag_ == Tag::Native; }

  // Scalar payload (valid when isScalar()).
  DType dtype() const { return dtype_; }
  bool weak() const { return weak_; }
  bool isFloatScalar() const { return rt::is_float(dtype_); }
  int64_t rawInt() const { return i_; }
  double rawFloat() const { return d_; }
  // The scalar converted to a host type (cast() semantics for float -> int).
  double asDouble() const { return rt::is_float(dtype_) ? d_ : static_cast<double>(i_); }
  int64_t asInt() const;
  bool asBool() const { return rt::is_float(dtype_) ? d_ != 0 : i_ != 0; }
  int builtinId() const { return static_cast<int>(i_); }

  Obj* obj() const { return o_; }
  template <class T> T* as() const { return static_cast<T*>(o_); }
  // Whether this value holds the only reference to its heap object.
  bool unique() const { return isHeap() && o_->refs == 1; }

  // The autodiff node id (0: none).
  uint32_t node() const { return node_; }
  void setNode(uint32_t id) { node_ = id; }

 private:
  void release() {
    if (isHeap()) dropRef(o_);
  }
  // Out of line: keeps the inline paths small (and GCC 12's -Warray-bounds
  // quiet about the delete it cannot see the object of).
  static void dropRef(Obj* o);
  // The 8 header bytes (tag, dtype, weak, node) in one move.
  void copyHeader(const Value& o) { std::memcpy(static_cast<void*>(this), static_cast<const void*>(&o), kHeaderBytes); }
  static constexpr size_t kHeaderBytes = 8;

  Tag tag_;
  DType dtype_;
  bool weak_;
  uint8_t pad_;
  uint32_t node_;
  union {
    int64_t i_;
    double d_;
    Obj* o_;
  };
};

static_assert(sizeof(Value) == 16, "a Value is 16 bytes");

// ---- heap objects

struct TensorObj : Obj {
  rt::Tensor t;
  explicit TensorObj(rt::Tensor x) : t(std::move(x)) {}
};

// A string: UTF-8 bytes, never changed once made. Its length, indices and items are code
// points, as Python's (len("héllo") is 5); for ASCII text these are its bytes.
struct StrObj : Obj {
  std::string s;
  explicit StrObj(std::string x) : s(std::move(x)) {}
  int64_t length() const;                 // code points
  std::string_view at(int64_t i) const;   // code point i (0 <= i < length()), its bytes
 private:
  // Where each code point starts (and s.size() last), made on first use for non-ASCII text:
  // a code point starts at every byte that does not continue a UTF-8 sequence (10xxxxxx), so
  // invalid bytes count one each.
  const std::vector<size_t>& starts() const;
  mutable std::once_flag once_;
  mutable std::vector<size_t> starts_;
  mutable bool ascii_ = true;
};

struct SeqObj : Obj {  // tuples and lists
  std::vector<Value> items;
  SeqObj() = default;
  explicit SeqObj(std::vector<Value> v) : items(std::move(v)) {}
};

using Names = std::shared_ptr<const std::vector<std::string>>;

struct RecordObj : Obj {
  Names names;  // shared between records of one shape
  std::vector<Value> vals;
  RecordObj(Names n, std::vector<Value> v) : names(std::move(n)), vals(std::move(v)) {}
  // Index of field `name`, or -1.
  int find(const std::string& name) const;
};

// A dict (SPEC §12): string keys in insertion order (Python's), values of any kind.
struct DictObj : Obj {
  std::vector<std::string> keys;
  std::vector<Value> vals;
  // The index of `key`, or -1: a scan of a few keys, a hash index (made as keys are
  // appended) for more, so that d[k] is O(1) as Python's.
  int find(const std::string& key) const;
  // d[key] = v: replaces, or appends a new key.
  void set(const std::string& key, Value v);
  // After `keys` changed other than by set's append (an erase): the index is made anew.
  void keysChanged() const {
    index_.clear();
    indexed_ = 0;
  }

 private:
  mutable std::unordered_map<std::string, int> index_;
  mutable size_t indexed_ = 0;  // keys[0, indexed_) are in index_
};

struct FnProto;
struct ClosureObj : Obj {
  const FnProto* proto;
  std::vector<Value> captures;
  std::vector<Value> defaults;  // one per parameter (None where it has no default)
  explicit ClosureObj(const FnProto* p) : proto(p) {}
};

struct RangeObj : Obj {
  int64_t start, stop, step;
  uint64_t ulen;  // the number of items (up to 2^64 - 1: range(-2^63, 2^63 - 1))
  int64_t len;    // the same, at most INT64_MAX (computed once: ForNext asks every iteration)
  RangeObj(int64_t a, int64_t b, int64_t s)
      : start(a), stop(b), step(s), ulen(computeLength()), len(ulen > INT64_MAX ? INT64_MAX : static_cast<int64_t>(ulen)) {}
  int64_t length() const { return len; }
  // len(r): an error where the number of items is more than an i64 holds (Python's
  // OverflowError).
  int64_t checkedLength() const;
  // Item i, a Python index (negative from the end); an error outside the range.
  int64_t item(int64_t i) const;
  uint64_t computeLength() const;
  // Wrapping arithmetic: the item itself is in range whenever i < len.
  int64_t at(uint64_t i) const {
    return static_cast<int64_t>(static_cast<uint64_t>(start) + i * static_cast<uint64_t>(step));
  }
};

class Interpreter;
struct CallArgs;
// An object implemented in C++ (a tape, a method bound to one): it may be
// called, and may answer `x.name`.
struct NativeObj : Obj {
  virtual std::string typeName() const = 0;
  virtual std::string repr() const;
  // `x.name`; returns Undef when there is no such member.
  virtual Value member(const Value& self, const std::string& name) const;
  virtual Value call(Interpreter& vm, CallArgs& args);
  // `with x { ... }`: entering and leaving the block (a tape records in between).
  virtual void enter(Interpreter& vm);
  virtual void exit();
  // `for v in x`: the number of items, or -1 when x cannot be iterated; item i.
  virtual int64_t iterLength() const { return -1; }
  virtual Value iterItem(int64_t i);
};

// ---- helpers

Value makeStr(std::string s);
Value makeTuple(std::vector<Value> items);
Value makeList(std::vector<Value> items);
Value makeRecord(Names names, std::vector<Value> vals);
Value makeDict(std::vector<std::string> keys, std::vector<Value> vals);
// The dict in v, made unshared first (copy on write).
DictObj* uniqueDict(Value& v);
Value makeRange(int64_t start, int64_t stop, int64_t step);
// A tensor value; a rank-0 tensor becomes an inline strong scalar.
Value fromTensor(rt::Tensor t);
// A weak scalar resolved to its default dtype (strong); others unchanged.
Value strong(const Value& v);
// The value as a tensor (a scalar becomes a rank-0 tensor of its dtype; a weak
// one of its default dtype). Throws rt::Error for non-numeric values.
rt::Tensor toTensor(const Value& v);
// A scalar value as a rank-0 tensor of exactly `dt` (weak floats convert from
// their exact double value).
rt::Tensor scalarTensor(const Value& v, DType dt);

// "f32[2, 3]", "f32[]", "string", "list", ... — the type text used in messages.
std::string typeText(const Value& v);
// A value's type with its structure, as an annotation writes it: `{w: f32[2], b: i64[]}`,
// `(f32[2], i64[])`, `[f32[3], f32[3]]` (at most 8 items a level, 4 levels deep). For errors.
std::string structureText(const Value& v, int depth = 0);

// Copy-on-write helpers for containers: make `v`'s heap object unshared
// (cloning it when shared) and return it.
SeqObj* uniqueSeq(Value& v);
RecordObj* uniqueRecord(Value& v);
rt::Tensor& uniqueTensor(Value& v);

}  // namespace tdl::vm
