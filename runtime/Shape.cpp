#include "Shape.h"

#include <algorithm>
#include <fmt/format.h>

#include "Error.h"

namespace tdl::rt {

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

void validate_shape(const Shape& s) {
  if (s.size() > static_cast<size_t>(kMaxRank))
    throw Error(fmt::format("a tensor has at most {} axes, got {}", kMaxRank, s.size()));
  for (int64_t d : s)
    if (d < 0) throw Error(fmt::format("invalid shape {}: dimensions must be >= 0", shape_str(s)));
}

std::optional<int64_t> checked_numel(const Shape& s) {
  for (int64_t d : s)
    if (d == 0) return 0;
  int64_t n = 1;
  for (int64_t d : s)
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return std::nullopt;
  return n;
}

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      throw Error(fmt::format("cannot broadcast shapes {} and {}", shape_str(a), shape_str(b)));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  size_t off = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != to[off + i] && from[i] != 1) return false;
  return true;
}

void check_broadcast_to(const Shape& from, const Shape& to) {
  if (!broadcasts_to(from, to))
    throw Error(fmt::format("cannot broadcast shape {} to {}", shape_str(from), shape_str(to)));
}

int64_t normalize_axis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    throw Error(fmt::format("axis {} is out of range for a tensor of rank {}", axis, rank));
  return axis < 0 ? axis + rank : axis;
}

std::vector<bool> reduction_mask(const Axes& axes, int64_t rank) {
  std::vector<bool> mask(rank, !axes.has_value());
  if (!axes) return mask;
  for (int64_t a : *axes) {
    int64_t n = normalize_axis(a, rank);
    if (mask[n]) throw Error(fmt::format("axis {} appears twice in a reduction", a));
    mask[n] = true;
  }
  return mask;
}

Shape reduced_shape(const Shape& s, const std::vector<bool>& mask, bool keepdims) {
  Shape out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!mask[i]) out.push_back(s[i]);
    else if (keepdims) out.push_back(1);
  }
  return out;
}

Shape matmul_shape(const Shape& a, const Shape& b) {
  if (a.empty() || b.empty())
    throw Error(fmt::format("matmul operands must have rank >= 1, got shapes {} and {}",
                            shape_str(a), shape_str(b)));
  Shape a2 = a.size() == 1 ? Shape{1, a[0]} : a;
  Shape b2 = b.size() == 1 ? Shape{b[0], 1} : b;
  int64_t k1 = a2.back(), k2 = b2[b2.size() - 2];
  if (k1 != k2)
    throw Error(fmt::format("cannot multiply shapes {} and {} ({} != {})", shape_str(a),
                            shape_str(b), k1, k2));
  Shape out = broadcast_shapes(Shape(a2.begin(), a2.end() - 2), Shape(b2.begin(), b2.end() - 2));
  if (a.size() > 1) out.push_back(a2[a2.size() - 2]);
  if (b.size() > 1) out.push_back(b2.back());
  return out;
}

Shape reshape_shape(const Shape& from, const Shape& spec) {
  auto fail = [&] {
    return Error(fmt::format("cannot reshape {} into {}", shape_str(from), shape_str(spec)));
  };
  int64_t n = numel_of(from);
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < spec.size(); ++i) {
    if (spec[i] == -1) {
      if (infer >= 0) throw fail();
      infer = static_cast<int>(i);
    } else if (spec[i] < 0) {
      throw fail();
    } else if (__builtin_mul_overflow(known, spec[i], &known)) {
      throw fail();
    }
  }
  if (spec.size() > static_cast<size_t>(kMaxRank)) throw fail();
  Shape out = spec;
  if (infer >= 0) {
    if (known == 0 || n % known != 0) throw fail();
    out[infer] = n / known;
  } else if (known != n) {
    throw fail();
  }
  return out;
}

std::vector<int64_t> normalize_perm(const std::vector<int64_t>& perm, int64_t rank) {
  std::vector<int64_t> p;
  if (perm.empty()) {
    for (int64_t i = rank; i-- > 0;) p.push_back(i);
    return p;
  }
  auto fail = [&] {
    return Error(fmt::format("invalid permutation [{}] for a tensor of rank {}", fmt::join(perm, ", "), rank));
  };
  if (static_cast<int64_t>(perm.size()) != rank) throw fail();
  std::vector<bool> seen(rank, false);
  for (int64_t a : perm) {
    if (a < -rank || a >= rank) throw fail();
    int64_t n = a < 0 ? a + rank : a;
    if (seen[n]) throw fail();
    seen[n] = true;
    p.push_back(n);
  }
  return p;
}

Shape transpose_shape(const Shape& s, const std::vector<int64_t>& perm) {
  std::vector<int64_t> p = normalize_perm(perm, static_cast<int64_t>(s.size()));
  Shape out(s.size());
  for (size_t i = 0; i < s.size(); ++i) out[i] = s[p[i]];
  return out;
}

Shape concat_shape(const std::vector<Shape>& shapes, int64_t axis) {
  if (shapes.empty()) throw Error("cannot concatenate an empty list of tensors");
  Shape out = shapes[0];
  if (out.empty()) throw Error("cannot concatenate scalars (rank 0 tensors)");
  for (size_t i = 1; i < shapes.size(); ++i) {
    const Shape& s = shapes[i];
    bool ok = s.size() == out.size();
    for (size_t d = 0; ok && d < s.size(); ++d)
      if (static_cast<int64_t>(d) != axis && s[d] != out[d]) ok = false;
    if (!ok)
      throw Error(fmt::format("cannot concatenate shapes {} and {} along axis {}",
                              shape_str(shapes[0]), shape_str(s), axis));
    if (__builtin_add_overflow(out[axis], s[axis], &out[axis]))
      throw Error("concatenated dimension is too large");
  }
  return out;
}

Shape expand_dims_shape(const Shape& s, int64_t axis) { return expand_dims_shape(s, std::vector<int64_t>{axis}); }

std::vector<int64_t> expand_dims_positions(int64_t rank, const std::vector<int64_t>& axes) {
  const int64_t r = rank + static_cast<int64_t>(axes.size());
  std::vector<int64_t> at;
  for (int64_t axis : axes) {
    int64_t a = normalize_axis(axis, r);
    if (std::find(at.begin(), at.end(), a) != at.end())
      throw Error(fmt::format("axis {} appears twice in expand_dims", axis));  // NumPy's "repeated axis"
    at.push_back(a);
  }
  std::sort(at.begin(), at.end());
  return at;
}

Shape expand_dims_shape(const Shape& s, const std::vector<int64_t>& axes) {
  Shape out = s;
  for (int64_t a : expand_dims_positions(static_cast<int64_t>(s.size()), axes)) out.insert(out.begin() + a, 1);
  validate_shape(out);
  return out;
}

Shape squeeze_shape(const Shape& s, const Axes& axes) {
  int64_t rank = static_cast<int64_t>(s.size());
  std::vector<bool> drop(rank, false);
  if (!axes) {
    for (int64_t i = 0; i < rank; ++i) drop[i] = s[i] == 1;
  } else {
    for (int64_t a : *axes) {
      int64_t n = normalize_axis(a, rank);
      if (s[n] != 1)
        throw Error(fmt::format("cannot squeeze axis {} of size {} (shape {})", a, s[n], shape_str(s)));
      if (drop[n]) throw Error(fmt::format("axis {} appears twice in squeeze", a));  // NumPy's "repeated axis"
      drop[n] = true;
    }
  }
  Shape out;
  for (int64_t i = 0; i < rank; ++i)
    if (!drop[i]) out.push_back(s[i]);
  return out;
}

}  // namespace tdl::rt
