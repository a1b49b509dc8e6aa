// Weak scalar promotion (SPEC §2) and the allocation-free scalar fast path.
#include <catch2/catch.hpp>

#include "vm/NumericOps.h"

using namespace tdl::vm;
using tdl::rt::BinaryOp;
using tdl::rt::DType;

namespace {
Value tensorOf(DType dt) {
  return fromTensor(tdl::rt::cast(tdl::rt::Tensor::from_vector(std::vector<float>{1, 2}, {2}), dt));
}
DType dtypeOf(const Value& v) { return v.isTensor() ? v.as<TensorObj>()->t.dtype() : v.dtype(); }
}  // namespace

TEST_CASE("weak targets", "[weak]") {
  CHECK(weakTarget(Value::weakFloat(0.5), DType::F64) == DType::F64);
  CHECK(weakTarget(Value::weakFloat(0.5), DType::I32) == DType::F32);
  CHECK(weakTarget(Value::i64(1, true), DType::I32) == DType::I32);
  CHECK(weakTarget(Value::i64(1, true), DType::Bool) == DType::I64);
  CHECK(weakTarget(Value::boolean(true, true), DType::F32) == DType::F32);
}

TEST_CASE("weak with strong tensors", "[weak]") {
  CHECK(dtypeOf(binaryValues(BinaryOp::Mul, tensorOf(DType::I32), Value::weakFloat(0.5))) == DType::F32);
  CHECK(dtypeOf(binaryValues(BinaryOp::Add, tensorOf(DType::I32), Value::i64(1, true))) == DType::I32);
  CHECK(dtypeOf(binaryValues(BinaryOp::Mul, tensorOf(DType::F64), Value::weakFloat(2.0))) == DType::F64);
  Value r = binaryValues(BinaryOp::Mul, tensorOf(DType::F64), Value::weakFloat(0.1));
  CHECK(r.as<TensorObj>()->t.data<double>()[0] == 0.1);  // exact: the literal kept its double value
}

TEST_CASE("weak with weak stays weak and exact", "[weak]") {
  Value s = binaryValues(BinaryOp::Add, Value::weakFloat(0.1), Value::weakFloat(0.2));
  CHECK(s.weak());
  CHECK(s.rawFloat() == 0.1 + 0.2);
  Value d = binaryValues(BinaryOp::Div, Value::i64(7, true), Value::i64(2, true));
  CHECK(d.weak());
  CHECK(d.isFloatScalar());
  CHECK(d.rawFloat() == 3.5);
  Value b = binaryValues(BinaryOp::Add, Value::boolean(true, true), Value::i64(1, true));
  CHECK(b.weak());
  CHECK(b.dtype() == DType::I64);
  CHECK(b.rawInt() == 2);
  Value c = binaryValues(BinaryOp::Lt, Value::i64(1, true), Value::i64(2, true));
  CHECK(c.dtype() == DType::Bool);
  CHECK(c.rawInt() == 1);
}

TEST_CASE("strong scalars promote and wrap", "[weak]") {
  Value x = binaryValues(BinaryOp::Add, Value::i32(INT32_MAX), Value::i32(1));
  CHECK(x.dtype() == DType::I32);
  CHECK(x.rawInt() == INT32_MIN);
  CHECK(binaryValues(BinaryOp::Add, Value::i64(1), Value::weakFloat(1.0)).dtype() == DType::F32);
  CHECK(binaryValues(BinaryOp::Mul, Value::f32(0.1f), Value::f64(1.0)).dtype() == DType::F64);
  CHECK_FALSE(binaryValues(BinaryOp::Mul, Value::f32(2.0f), Value::weakFloat(0.5)).weak());
}

TEST_CASE("floor division and modulo follow Python", "[weak]") {
  CHECK(binaryValues(BinaryOp::FloorDiv, Value::i64(-7, true), Value::i64(2, true)).rawInt() == -4);
  CHECK(binaryValues(BinaryOp::Mod, Value::i64(-7, true), Value::i64(3, true)).rawInt() == 2);
  CHECK_THROWS_WITH(binaryValues(BinaryOp::FloorDiv, Value::i64(1), Value::i64(0)),
                    Catch::Contains("division by zero"));
}

TEST_CASE("cast of a weak float is exact", "[weak]") {
  CHECK(castValue(Value::weakFloat(0.1), DType::F64).rawFloat() == 0.1);
  CHECK(castValue(Value::weakFloat(-3.7), DType::I64).rawInt() == -3);
  CHECK(castValue(Value::weakFloat(2.5), DType::Bool).rawInt() == 1);
}
