// Types and shape inference with symbolic dims.
#include <catch2/catch.hpp>

#include "Helpers.h"
#include "ir/ShapeInference.h"

using namespace tdl::ir;
using namespace tdl::ir::test;
using tdl::rt::DType;

TEST_CASE("type text", "[ir][types]") {
  CHECK(ty(DType::F32, {S("B"), K(4)}).str() == "f32[B, 4]");
  CHECK(TensorType::scalar(DType::I64).str() == "i64[]");
  CHECK(ty(DType::Bool, {S("?0")}).str() == "bool[?0]");
  CHECK(ty(DType::F32, {K(2), K(3)}).static_shape() == tdl::rt::Shape{2, 3});
  CHECK_FALSE(ty(DType::F32, {S("N")}).static_shape());
}

TEST_CASE("broadcast with symbolic dims", "[ir][shapes]") {
  using D = std::vector<Dim>;
  CHECK(broadcast_dims(D{S("N"), K(3)}, D{S("N"), K(3)}) == D{S("N"), K(3)});  // N with N
  CHECK(broadcast_dims(D{S("N"), K(1)}, D{K(1), K(3)}) == D{S("N"), K(3)});    // N with 1
  CHECK(broadcast_dims(D{K(3)}, D{S("N"), K(1)}) == D{S("N"), K(3)});          // ranks differ
  CHECK(broadcast_dims(D{S("N")}, D{K(3)}) == D{K(3)});                        // run-time check N == 3
  CHECK(is_any_dim(broadcast_dims(D{S("N")}, D{S("M")})[0]));                  // either may be 1: a new symbol
  CHECK(broadcast_dims(D{K(2), K(3)}, D{K(3)}) == D{K(2), K(3)});              // the runtime's rule
  CHECK_THROWS_WITH(broadcast_dims(D{K(2), K(3)}, D{K(4)}), "cannot broadcast shapes [2, 3] and [4]");
  CHECK_THROWS_WITH(broadcast_dims(D{S("N"), K(3)}, D{K(4)}), "cannot broadcast shapes [N, 3] and [4]");
}

TEST_CASE("matmul with symbolic dims", "[ir][shapes]") {
  using D = std::vector<Dim>;
  CHECK(matmul_dims(D{S("B"), K(4)}, D{K(4), K(3)}) == D{S("B"), K(3)});
  CHECK(matmul_dims(D{S("B"), S("K")}, D{K(4), K(3)}) == D{S("B"), K(3)});   // K == 4 checked at run time
  CHECK(matmul_dims(D{K(4)}, D{K(4), S("M")}) == D{S("M")});                 // 1-D lhs
  CHECK(matmul_dims(D{S("B"), K(2), K(4)}, D{K(4)}) == D{S("B"), K(2)});      // 1-D rhs, batch
  CHECK(matmul_dims(D{K(2), K(3)}, D{K(3), K(5)}) == D{K(2), K(5)});
  CHECK_THROWS_WITH(matmul_dims(D{S("B"), K(3)}, D{K(4), K(5)}), Catch::Contains("cannot multiply shapes [B, 3] and [4, 5]"));
  CHECK_THROWS_WITH(matmul_dims(D{K(2), K(3)}, D{K(4), K(5)}), Catch::Contains("cannot multiply shapes [2, 3] and [4, 5]"));
}

TEST_CASE("inferred result types of ops", "[ir][shapes]") {
  auto infer = [](OpKind k, std::vector<TensorType> in, AttrMap a = {}) { return infer_result_types(k, in, a).value().at(0); };
  TensorType x = ty(DType::I32, {S("N"), K(4)});
  // dtype rules are the runtime's: int / int gives f32, sum of i32 gives i64
  CHECK(infer(OpKind::Div, {x, x}) == ty(DType::F32, {S("N"), K(4)}));
  CHECK(infer(OpKind::Reduce, {x}, {{"kind", std::string("sum")}, {"axes", IntList{1}}, {"keepdims", false}}) ==
        ty(DType::I64, {S("N")}));
  CHECK(infer(OpKind::Reduce, {x}, {{"kind", std::string("max")}, {"axes", IntList{0}}, {"keepdims", true}}) ==
        ty(DType::I32, {K(1), K(4)}));
  CHECK(infer(OpKind::ArgMax, {x}, {{"axis", int64_t{1}}, {"keepdims", false}}) == ty(DType::I64, {S("N")}));
  CHECK(infer(OpKind::Transpose, {x}, {{"perm", IntList{1, 0}}}) == ty(DType::I32, {K(4), S("N")}));
  CHECK(infer(OpKind::Dim, {x}, {{"axis", int64_t{0}}}) == TensorType::scalar(DType::I64));
  CHECK(infer(OpKind::Concat, {x, x}, {{"axis", int64_t{1}}}) == ty(DType::I32, {S("N"), K(8)}));
  TensorType c = infer(OpKind::Concat, {x, x}, {{"axis", int64_t{0}}});
  CHECK(is_any_dim(c.dims[0]));  // N + N has no name: a fresh symbol
  AttrMap sl{{"start", IntList{0, 1}}, {"stop", IntList{kSliceEnd, 3}}, {"step", IntList{1, 1}}};
  CHECK(infer(OpKind::Slice, {x}, sl) == ty(DType::I32, {S("N"), K(2)}));
  TensorType i = TensorType::scalar(DType::I64);
  CHECK(infer(OpKind::Index, {x, i}) == ty(DType::I32, {K(4)}));
  CHECK_THROWS_WITH(infer(OpKind::Index, {x, ty(DType::F32, {})}), Catch::Contains("integer scalar"));
  CHECK_THROWS_WITH(infer(OpKind::Transpose, {x}, {{"perm", IntList{0, 0}}}), Catch::Contains("perm"));
  CHECK_THROWS_WITH(infer(OpKind::Reduce, {x}, {{"kind", std::string("sum")}}), Catch::Contains("missing attribute"));
  CHECK_THROWS_WITH(infer(OpKind::BitAnd, {ty(DType::F32, {}), ty(DType::F32, {})}), Catch::Contains("bitwise"));
}

TEST_CASE("declared result types are checked", "[ir][shapes]") {
  TensorType x = ty(DType::F32, {S("N"), K(4)});
  auto check = [](OpKind k, std::vector<TensorType> in, TensorType out, AttrMap a = {}) {
    check_declared_types(k, in, a, {out});
  };
  CHECK_NOTHROW(check(OpKind::Reshape, {x}, ty(DType::F32, {S("N"), K(2), K(2)})));
  CHECK_THROWS_WITH(check(OpKind::Reshape, {x}, ty(DType::F32, {S("N"), K(3)})), "cannot reshape [N, 4] into [N, 3]");
  CHECK_NOTHROW(check(OpKind::Reshape, {x}, ty(DType::F32, {S("M")})));  // run-time check
  CHECK_THROWS_WITH(check(OpKind::Reshape, {ty(DType::F32, {K(6)})}, ty(DType::F32, {K(4)})), "cannot reshape [6] into [4]");
  CHECK_NOTHROW(check(OpKind::BroadcastTo, {ty(DType::F32, {K(1), K(4)})}, ty(DType::F32, {S("B"), K(4)})));
  CHECK_THROWS_WITH(check(OpKind::BroadcastTo, {ty(DType::F32, {K(3)})}, ty(DType::F32, {K(4)})),
                    "cannot broadcast shape [3] to [4]");
  CHECK_THROWS_WITH(check(OpKind::Cast, {x}, ty(DType::I64, {K(4)})), Catch::Contains("cast keeps the shape"));
  CHECK_THROWS_WITH(check(OpKind::Random, {}, ty(DType::I64, {K(4)}), {{"dist", std::string("uniform")}}),
                    Catch::Contains("float"));
}
