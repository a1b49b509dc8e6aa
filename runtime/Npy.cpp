// NumPy .npy files: magic "\x93NUMPY", version, header length (u16 in v1, u32 in v2/v3),
// a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), }, data.
#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "Error.h"
#include "FileIo.h"
#include "Io.h"
#include "RawFormat.h"
#include "ShapeOps.h"

namespace tdl::rt {

namespace {

// Headers larger than this are not .npy files a writer produced (NumPy caps at 10000
// bytes by default; allow generously more).
constexpr uint64_t kMaxNpyHeader = 1 << 20;

struct NpyHeader {
  std::string descr;
  bool fortran = false;
  Shape shape;
};

// A parser for the small Python literal subset .npy headers use.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  NpyHeader parse() {
    NpyHeader h;
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    ws();
    expect('{');
    for (;;) {
      ws();
      if (peek() == '}') {
        ++i_;
        break;
      }
      std::string key = string_lit();
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        if (seen_descr) fail("duplicate key 'descr'");
        seen_descr = true;
        if (peek() != '\'' && peek() != '"') fail("unsupported descr (structured dtypes are not supported)");
        h.descr = string_lit();
      } else if (key == "fortran_order") {
        if (seen_fortran) fail("duplicate key 'fortran_order'");
        seen_fortran = true;
        h.fortran = bool_lit();
      } else if (key == "shape") {
        if (seen_shape) fail("duplicate key 'shape'");
        seen_shape = true;
        h.shape = tuple_lit();
      } else {
        fail(fmt::format("unexpected key '{}' in the header", key));
      }
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      ws();
      expect('}');
      break;
    }
    ws();
    if (i_ != s_.size()) fail("unexpected text after the header dict");
    if (!seen_descr || !seen_fortran || !seen_shape)
      fail("the header must have the keys 'descr', 'fortran_order' and 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw Error(fmt::format("invalid .npy file '{}': {}", path_, msg));
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    if (peek() != c) fail(fmt::format("malformed header (expected '{}' at offset {})", c, i_));
    ++i_;
  }
  std::string string_lit() {
    char q = peek();
    if (q != '\'' && q != '"') fail(fmt::format("malformed header (expected a string at offset {})", i_));
    ++i_;
    std::string out;
    while (i_ < s_.size() && s_[i_] != q) out.push_back(s_[i_++]);
    expect(q);
    return out;
  }
  bool bool_lit() {
    if (s_.compare(i_, 4, "True") == 0) {
      i_ += 4;
      return true;
    }
    if (s_.compare(i_, 5, "False") == 0) {
      i_ += 5;
      return false;
    }
    fail("fortran_order must be True or False");
  }
  Shape tuple_lit() {
    Shape shape;
    expect('(');
    for (;;) {
      ws();
      if (peek() == ')') {
        ++i_;
        break;
      }
      if (peek() == '-') fail("negative dimension in shape");
      if (peek() < '0' || peek() > '9') fail("malformed shape");
      int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, peek() - '0', &v))
          fail("shape dimension too large");
        ++i_;
      }
      if (peek() == 'L') ++i_;  // Python 2 long
      shape.push_back(v);
      if (shape.size() > static_cast<size_t>(kMaxRank)) fail("too many dimensions");
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      ws();
      expect(')');
      break;
    }
    return shape;
  }

  const std::string& s_;
  const std::string& path_;
  size_t i_ = 0;
};

detail::RawFormat parse_descr(const std::string& d, const std::string& path) {
  auto fail = [&] {
    return Error(fmt::format("unsupported .npy dtype '{}' in '{}' (supported: bool, int8-64, uint8-32, float16-64)",
                             d, path));
  };
  if (d.size() < 3) throw fail();
  char order = d[0], kind = d[1];
  if (order != '<' && order != '>' && order != '|' && order != '=') throw fail();
  int size = 0;
  for (size_t i = 2; i < d.size(); ++i) {
    if (d[i] < '0' || d[i] > '9' || size > 100) throw fail();
    size = size * 10 + (d[i] - '0');
  }
  detail::RawFormat f{detail::RawKind::Int, size, order == '>'};
  switch (kind) {
    case 'b': f.kind = detail::RawKind::Bool; break;
    case 'i': f.kind = detail::RawKind::Int; break;
    case 'u': f.kind = detail::RawKind::UInt; break;
    case 'f': f.kind = detail::RawKind::Float; break;
    default: throw fail();
  }
  if (!detail::load_dtype(f)) throw fail();
  return f;
}

std::string descr_of(DType d) {
  switch (d) {
    case DType::Bool: return "|b1";
    case DType::I32: return "<i4";
    case DType::I64: return "<i8";
    case DType::F32: return "<f4";
    case DType::F64: return "<f8";
    case DType::I8: return "|i1";
  }
  return "";
}

}  // namespace

Tensor load_npy(const std::string& path) {
  detail::InFile in(path);
  auto bad = [&](const std::string& msg) { return Error(fmt::format("invalid .npy file '{}': {}", path, msg)); };
  unsigned char pre[12];
  if (in.size() < 10) throw bad("the file is too short for the magic string and version");
  in.read_at(0, pre, 10, "cannot read the .npy preamble");
  if (std::memcmp(pre, "\x93NUMPY", 6) != 0) throw bad("missing the \\x93NUMPY magic string");
  const int major = pre[6];
  uint64_t hlen, hstart;
  if (major == 1) {
    hlen = pre[8] | static_cast<uint64_t>(pre[9]) << 8;
    hstart = 10;
  } else if (major == 2 || major == 3) {
    in.read_at(0, pre, 12, "the header length is truncated");
    hlen = pre[8] | static_cast<uint64_t>(pre[9]) << 8 | static_cast<uint64_t>(pre[10]) << 16 |
           static_cast<uint64_t>(pre[11]) << 24;
    hstart = 12;
  } else {
    throw bad(fmt::format("unsupported format version {}.{}", major, pre[7]));
  }
  if (hlen > kMaxNpyHeader) throw bad(fmt::format("header length {} is too large", hlen));
  if (hstart + hlen > in.size())
    throw bad(fmt::format("header length {} runs past the end of the file ({} bytes)", hlen, in.size()));
  std::string text(hlen, '\0');
  in.read_at(hstart, text.data(), hlen, "cannot read the header");
  NpyHeader h = HeaderParser(text, path).parse();
  detail::RawFormat fmt_ = parse_descr(h.descr, path);
  DType dt = *detail::load_dtype(fmt_);

  std::optional<int64_t> n = checked_numel(h.shape);
  const uint64_t data_start = hstart + hlen;
  const uint64_t avail = in.size() - data_start;
  unsigned __int128 need = n ? static_cast<unsigned __int128>(*n) * fmt_.size : ~static_cast<unsigned __int128>(0);
  if (need > avail)
    throw bad(fmt::format("the data is truncated: shape {} needs more than the {} bytes present", shape_str(h.shape),
                          avail));
  if (need < avail)
    throw bad(fmt::format("{} bytes of unexpected data after the array", static_cast<uint64_t>(avail - need)));

  Shape file_shape = h.shape;
  if (h.fortran) file_shape.assign(h.shape.rbegin(), h.shape.rend());
  Tensor t = Tensor::empty(dt, file_shape);
  if (detail::is_native(fmt_)) {
    in.read_at(data_start, t.mutable_raw(), static_cast<size_t>(need), "cannot read the array data");
  } else {
    std::vector<unsigned char> buf(static_cast<size_t>(need));
    in.read_at(data_start, buf.data(), buf.size(), "cannot read the array data");
    detail::convert_raw(buf.data(), fmt_, t.numel(), t);
  }
  if (h.fortran && t.rank() > 1) t = transpose(t);
  return t.with_shape(h.shape);
}

void save_npy(const std::string& path, const Tensor& t) {
  std::string shape;
  if (t.rank() == 1) shape = fmt::format("({},)", t.dim(0));
  else shape = fmt::format("({})", fmt::join(t.shape(), ", "));
  std::string dict =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr_of(t.dtype()), shape);
  // Pad with spaces so that the data starts on a 64-byte boundary; end with '\n'.
  bool v2 = dict.size() + 1 + 10 > 65535;
  size_t pre = v2 ? 12 : 10;
  size_t total = pre + dict.size() + 1;
  size_t padded = (total + 63) / 64 * 64;
  dict.append(padded - total, ' ');
  dict.push_back('\n');
  unsigned char head[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(v2 ? 2 : 1), 0};
  size_t hl = dict.size();
  head[8] = static_cast<unsigned char>(hl);
  head[9] = static_cast<unsigned char>(hl >> 8);
  head[10] = static_cast<unsigned char>(hl >> 16);
  head[11] = static_cast<unsigned char>(hl >> 24);
  detail::OutFile out(path);
  out.write(head, pre);
  out.write(dict.data(), dict.size());
  out.write(t.raw(), t.nbytes());
  out.close();
}

}  // namespace tdl::rt
