#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "Helpers.h"

using namespace tdl::rt;
using namespace tdl::rt::test;
namespace fs = std::filesystem;

namespace {

#ifdef TDL_CONFORMANCE_DATA
const std::string kData = TDL_CONFORMANCE_DATA;
#else
const std::string kData;
#endif

std::string tmp(const std::string& name) {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("tdl_rt_tests_" + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  return (dir / name).string();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A .npy v1 file with the given header dict (padded to 64) and data bytes.
std::string npy_bytes(const std::string& dict, const std::string& data, int version = 1) {
  std::string h = dict;
  size_t pre = version == 1 ? 10 : 12;
  size_t total = pre + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(version));
  out.push_back(0);
  for (size_t i = 0; i < pre - 8; ++i) out.push_back(static_cast<char>((h.size() >> (8 * i)) & 0xff));
  return out + h + data;
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

std::string safetensors_bytes(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

template <class T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

}  // namespace

TEST_CASE("reference .npy files written by NumPy", "[io][npy]") {
  if (kData.empty()) {
    WARN("conformance data not found; skipped");
    return;
  }
  Tensor a = load_npy(kData + "/ref_f64.npy");
  CHECK(a.dtype() == DType::F64);
  CHECK(a.shape() == Shape{3, 2});
  CHECK(str(a) == "[[0.5, -1.25],\n [3.0, 0.001],\n [2.0, 7.0]]");
  Tensor b = load_npy(kData + "/ref_i32.npy");
  CHECK(b.dtype() == DType::I32);
  CHECK(str(b) == "[4, -2, 9, 0]");
  Tensor c = load_npy(kData + "/ref_f32_3d.npy");
  CHECK(c.shape() == Shape{2, 3, 4});
  CHECK(str(get_index(c, {IndexItem::at(1), IndexItem::at(2), IndexItem::at(3)})) == "5.75");
  Tensor f = load_npy(kData + "/ref_fortran.npy");
  CHECK(str(f) == "[[0.0, 1.0, 2.0],\n [3.0, 4.0, 5.0]]");
}

TEST_CASE("reference safetensors and csv files", "[io]") {
  if (kData.empty()) {
    WARN("conformance data not found; skipped");
    return;
  }
  auto t = load_safetensors(kData + "/ref.safetensors");
  REQUIRE(t.size() == 2);
  CHECK(t[0].first == "b");
  CHECK(t[1].first == "w");
  CHECK(str(t[1].second) == "[[1.5, -2.0],\n [0.25, 4.0]]");
  CHECK(str(t[0].second) == "[7, 8, 9]");
  CHECK(t[0].second.dtype() == DType::I64);
  Tensor d = load_csv(kData + "/ref.csv", DType::F32, true);
  CHECK(d.shape() == Shape{3, 3});
  CHECK(str(get_index(d, {IndexItem::all(), IndexItem::at(2)})) == "[0.0, 1.0, 1.0]");
}

TEST_CASE("npy round trips", "[io][npy]") {
  std::vector<Tensor> xs = {
      div(reshape(cast(arange_int(0, 6), DType::F32), {2, 3}), Tensor::scalar(2.0f)),
      f64({0.1, -2.5}),
      i32({1, -2, 3}),
      reshape(arange_int(-5, 7), {2, 2, 3}),
      b8({true, false, true}),
      Tensor::scalar(3.5f),
      zeros({2, 0, 3}),
      zeros({0}, DType::I64),
  };
  for (size_t i = 0; i < xs.size(); ++i) {
    std::string p = tmp("rt" + std::to_string(i) + ".npy");
    save_npy(p, xs[i]);
    Tensor y = load_npy(p);
    CHECK(y.dtype() == xs[i].dtype());
    CHECK(y.shape() == xs[i].shape());
    CHECK(str(y) == str(xs[i]));
    CHECK(fs::file_size(p) % 64 == (xs[i].nbytes() % 64));  // data starts on a 64-byte boundary
  }
}

TEST_CASE("npy header variants", "[io][npy]") {
  // key order, v2, double quotes, 16-byte padding, rank 0, big-endian, widening.
  std::string p = tmp("v.npy");
  write_file(p, npy_bytes("{'shape': (2,), 'fortran_order': False, 'descr': '<i8'}", raw<int64_t>({7, -1}), 2));
  CHECK(str(load_npy(p)) == "[7, -1]");
  write_file(p, npy_bytes("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": ()}", raw<float>({2.5f}), 3));
  CHECK(str(load_npy(p)) == "2.5");
  {
    std::string h = "{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }";
    size_t total = 10 + h.size() + 1;
    h.append((16 - total % 16) % 16, ' ');
    h.push_back('\n');
    std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
    bytes.push_back(static_cast<char>(h.size()));
    bytes.push_back(0);
    write_file(p, bytes + h + raw<int32_t>({42}));
    CHECK(str(load_npy(p)) == "[42]");
  }
  write_file(p, npy_bytes("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", std::string("\0\0\1\2\xff\xff\xff\xfe", 8)));
  CHECK(str(load_npy(p)) == "[258, -2]");
  write_file(p, npy_bytes("{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", std::string("\x3f\xf8\0\0\0\0\0\0", 8)));
  CHECK(str(load_npy(p)) == "[1.5]");
  write_file(p, npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", "\x01\xff"));
  Tensor u = load_npy(p);
  CHECK(u.dtype() == DType::I32);
  CHECK(str(u) == "[1, 255]");
  write_file(p, npy_bytes("{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", std::string("\xff\xff\x02\x00", 4)));
  CHECK(str(load_npy(p)) == "[-1, 2]");
  write_file(p, npy_bytes("{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", std::string("\x00\x3c\x00\xc0\x00\x7c", 6)));
  CHECK(str(load_npy(p)) == "[1.0, -2.0, inf]");
  write_file(p, npy_bytes("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", std::string("\x02\x00", 2)));
  CHECK(str(load_npy(p)) == "[true, false]");
  write_file(p, npy_bytes("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2, 2), }",
                          raw<double>({0, 4, 2, 6, 1, 5, 3, 7})));
  CHECK(str(flatten(load_npy(p))) == "[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]");
  write_file(p, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }", ""));
  CHECK(load_npy(p).numel() == 0);
}

TEST_CASE("malformed npy files are clean errors", "[io][npy][bad]") {
  std::string p = tmp("bad.npy");
  auto err = [&](const std::string& bytes) {
    write_file(p, bytes);
    return error_of([&] { load_npy(p); });
  };
  auto hdr = [](const std::string& shape, const std::string& descr = "<f4") {
    return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  };
  CHECK(err("").find("too short") != std::string::npos);
  CHECK(err("\x93NUM").find("too short") != std::string::npos);
  CHECK(err("GARBAGE-FILE-XYZ").find("magic") != std::string::npos);
  CHECK(err(std::string("\x93NUMPY\x01\x00\xff\x7f{", 11)).find("past the end") != std::string::npos);
  CHECK(err(std::string("\x93NUMPY\x02\x00\xff\xff\xff\xff{", 13)).find("too large") != std::string::npos);
  CHECK(err(std::string("\x93NUMPY\x09\x00\x10\x00", 10)).find("version") != std::string::npos);
  CHECK(err(npy_bytes(hdr("(-1,)"), "")).find("negative") != std::string::npos);
  CHECK(err(npy_bytes(hdr("(4294967296, 4294967296, 4294967296)"), "abcd")).find("truncated") != std::string::npos);
  CHECK(err(npy_bytes(hdr("(99999999999999999999,)"), "")).find("too large") != std::string::npos);
  CHECK(err(npy_bytes(hdr("(3,)"), "abcd")).find("truncated") != std::string::npos);
  CHECK(err(npy_bytes(hdr("(1,)"), "abcdefgh")).find("unexpected data") != std::string::npos);
  CHECK(err(npy_bytes(hdr("(1,)", "|O"), "abcdefgh")).find("unsupported .npy dtype '|O'") != std::string::npos);
  CHECK(err(npy_bytes(hdr("(1,)", "<u8"), "abcdefgh")).find("unsupported") != std::string::npos);
  CHECK(err(npy_bytes(hdr("(1,)", "<c8"), "abcdefgh")).find("unsupported") != std::string::npos);
  CHECK(err(npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "abcd"))
            .find("structured") != std::string::npos);
  CHECK(err(npy_bytes("{'descr': '<f4', 'shape': (1,), }", "abcd")).find("keys") != std::string::npos);
  CHECK(err(npy_bytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "abcd"))
            .find("duplicate") != std::string::npos);
  CHECK(err(npy_bytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}", "abcd")).find("True or False") !=
        std::string::npos);
  CHECK(err(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "abcd"))
            .find("unexpected key") != std::string::npos);
  CHECK(err(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,", "")).find("invalid .npy file") !=
        std::string::npos);
  CHECK(err(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk", "abcd")).find("after") !=
        std::string::npos);
  CHECK(err(npy_bytes(hdr("(" + std::string(40, '1').replace(1, 38, std::string(38, ',')) + ")"), ""))
            .find("invalid .npy file") != std::string::npos);
  std::string missing = tmp("does_not_exist.npy");
  CHECK(error_of([&] { load_npy(missing); }) == "cannot open '" + missing + "': No such file or directory");
  CHECK(error_of([&] { load_npy(fs::temp_directory_path().string()); }).find("Is a directory") != std::string::npos);
  CHECK(error_of([&] { save_npy("/nonexistent_dir_tdl/x.npy", ones({1})); })
            .rfind("cannot write '/nonexistent_dir_tdl/x.npy'", 0) == 0);
}

TEST_CASE("safetensors round trip", "[io][safetensors]") {
  std::string p = tmp("p.safetensors");
  std::vector<std::pair<std::string, Tensor>> in = {
      {"w", div(reshape(cast(arange_int(0, 6), DType::F32), {2, 3}), Tensor::scalar(2.0f))},
      {"b", i32({1, 2})},
      {"nested.z", f64({0.5})},
      {"flag", b8({true, false})},
      {"s", Tensor::scalar(int64_t{-9})},
      {"empty", zeros({0, 3})},
  };
  save_safetensors(p, in);
  auto out = load_safetensors(p);
  REQUIRE(out.size() == in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    CHECK(out[i].first == in[i].first);
    CHECK(out[i].second.dtype() == in[i].second.dtype());
    CHECK(out[i].second.shape() == in[i].second.shape());
    CHECK(str(out[i].second) == str(in[i].second));
  }
  // header length is a multiple of 8
  std::ifstream f(p, std::ios::binary);
  unsigned char nb[8];
  f.read(reinterpret_cast<char*>(nb), 8);
  CHECK(nb[0] % 8 == 0);
  CHECK(!error_of([&] { save_safetensors(p, {{"a", ones({1})}, {"a", ones({1})}}); }).empty());
  save_safetensors(p, {});
  CHECK(load_safetensors(p).empty());
}

TEST_CASE("safetensors dtypes that widen", "[io][safetensors]") {
  std::string p = tmp("w.safetensors");
  std::string h = R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                  R"("b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]},)"
                  R"("c":{"dtype":"U8","shape":[2],"data_offsets":[6,8]},)"
                  R"("d":{"dtype":"I16","shape":[1],"data_offsets":[8,10]},)"
                  R"("__metadata__":{"format":"pt"}})";
  write_file(p, safetensors_bytes(h, std::string("\x00\x3c\x00\x38\xc0\x3f\xff\x01\xfe\xff", 10)));
  auto t = load_safetensors(p);
  REQUIRE(t.size() == 4);
  CHECK(str(t[0].second) == "[1.0, 0.5]");
  CHECK(str(t[1].second) == "[1.5]");
  CHECK(str(t[2].second) == "[255, 1]");
  CHECK(str(t[3].second) == "[-2]");
}

TEST_CASE("malformed safetensors files are clean errors", "[io][safetensors][bad]") {
  std::string p = tmp("bad.safetensors");
  auto err = [&](const std::string& bytes) {
    write_file(p, bytes);
    return error_of([&] { load_safetensors(p); });
  };
  auto one = [](const std::string& dtype, const std::string& shape, const std::string& offs) {
    return R"({"x":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offs + "}}";
  };
  CHECK(err("abc").find("too short") != std::string::npos);
  CHECK(err(le64(1000) + "{}").find("past the end") != std::string::npos);
  CHECK(err(le64(UINT64_MAX) + "{}").find("100 MB") != std::string::npos);
  CHECK(err(safetensors_bytes("[1, 2]", "")).find("not a JSON object") != std::string::npos);
  CHECK(err(safetensors_bytes("{\"a\": ", "")).find("not valid JSON") != std::string::npos);
  CHECK(err(safetensors_bytes(std::string(200, '['), "")).find("invalid safetensors file") != std::string::npos);
  CHECK(err(safetensors_bytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                              std::string(8, '\0')))
            .find("duplicate key 'x'") != std::string::npos);
  CHECK(err(safetensors_bytes(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"dtype":"F32"}})", std::string(4, '\0')))
            .find("duplicate") != std::string::npos);
  CHECK(err(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                              std::string(8, '\0')))
            .find("overlaps") != std::string::npos);
  CHECK(err(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0')))
            .find("gap") != std::string::npos);
  CHECK(err(safetensors_bytes(one("F32", "[1]", "[0,4]"), std::string(12, '\0'))).find("cover") != std::string::npos);
  CHECK(err(safetensors_bytes(one("F32", "[1]", "[8,4]"), std::string(8, '\0'))).find("END < BEGIN") != std::string::npos);
  CHECK(err(safetensors_bytes(one("Q7", "[1]", "[0,4]"), std::string(4, '\0'))).find("unsupported dtype 'Q7'") !=
        std::string::npos);
  CHECK(err(safetensors_bytes(one("U64", "[1]", "[0,8]"), std::string(8, '\0'))).find("unsupported dtype") !=
        std::string::npos);
  CHECK(err(safetensors_bytes(one("F32", "[2]", "[0,4]"), std::string(4, '\0'))).find("does not match") !=
        std::string::npos);
  CHECK(err(safetensors_bytes(one("F32", "[-1]", "[0,4]"), std::string(4, '\0'))).find("invalid shape") !=
        std::string::npos);
  CHECK(err(safetensors_bytes(one("F32", "[4294967296,4294967296,4294967296]", "[0,4]"), std::string(4, '\0')))
            .find("does not match") != std::string::npos);
  CHECK(err(safetensors_bytes(one("F32", "[1]", "[0,18446744073709551615]"), std::string(4, '\0')))
            .find("does not match") != std::string::npos);
  CHECK(err(safetensors_bytes(one("F32", "[1]", "[0]"), std::string(4, '\0'))).find("data_offsets") !=
        std::string::npos);
  CHECK(err(safetensors_bytes(R"({"x": 3})", "")).find("not an object") != std::string::npos);
  CHECK(err(safetensors_bytes(R"({"__metadata__": {"a": 1}})", "")).find("__metadata__") != std::string::npos);
  CHECK(err(safetensors_bytes(R"({"x":{"shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0'))).find("dtype") !=
        std::string::npos);
}

TEST_CASE("csv parsing", "[io][csv]") {
  std::string p = tmp("a.csv");
  write_file(p, "\xEF\xBB\xBFx,\"y, quoted\"\r\n1, 2.5\r\n\"3\",-4e2\r\n\r\n");
  Tensor t = load_csv(p, DType::F64, true);
  CHECK(str(t) == "[[1.0, 2.5],\n [3.0, -400.0]]");
  write_file(p, "1,2\n3,4");
  CHECK(str(load_csv(p, DType::I64)) == "[[1, 2],\n [3, 4]]");
  CHECK(load_csv(p, DType::I32).dtype() == DType::I32);
  write_file(p, "true,0\nFalse,1\n");
  CHECK(str(load_csv(p, DType::Bool)) == "[[true, false],\n [false, true]]");
  write_file(p, "nan,inf,-inf,+1.5\n");
  CHECK(str(load_csv(p)) == "[[nan, inf, -inf, 1.5]]");
  // Beyond a float dtype's range: infinity; below it: zero (NumPy's loadtxt, strtod's rule).
  write_file(p, "1e-50,1e400,-1e400,-1e-400,1e5000,1e39\n");
  CHECK(str(load_csv(p)) == "[[0.0, inf, -inf, -0.0, inf, inf]]");
  CHECK(str(load_csv(p, DType::F64)) == "[[1e-50, inf, -inf, -0.0, inf, 1e+39]]");
  write_file(p, "\"a\nb\",\"c\"\"d\"\n1,2\n");
  CHECK(load_csv(p, DType::F32, true).shape() == Shape{1, 2});
  write_file(p, "");
  CHECK(load_csv(p).shape() == Shape{0, 0});
  write_file(p, "a,b,c\n");
  CHECK(load_csv(p, DType::F32, true).shape() == Shape{0, 3});
  write_file(p, "0.1\n");
  CHECK(str(load_csv(p)) == "[[0.1]]");
  // Comments, as NumPy's loadtxt: a `#` outside quotes to the end of its line; a line that is
  // only a comment is skipped (the header line, when asked for, is the first line whatever it is).
  write_file(p, "# made by a tool\n1,2 # first\n  # indented\n\"3\", 4 # quoted\r\n5,6#\n");
  CHECK(str(load_csv(p)) == "[[1.0, 2.0],\n [3.0, 4.0],\n [5.0, 6.0]]");
  write_file(p, "# a, b\n# more\n1,2\n");
  CHECK(str(load_csv(p, DType::F32, true)) == "[[1.0, 2.0]]");
  write_file(p, "\"1#2\",3\n");
  CHECK(error_of([&] { load_csv(p); }).find("cannot parse '1#2' as f32") != std::string::npos);
  // gzip
  std::string gz = tmp("a.csv.gz");
  gzFile g = gzopen(gz.c_str(), "wb");
  const char* body = "x,y\n1,2\n3,4\n";
  gzwrite(g, body, static_cast<unsigned>(std::strlen(body)));
  gzclose(g);
  CHECK(str(load_csv(gz, DType::F32, true)) == "[[1.0, 2.0],\n [3.0, 4.0]]");
}

TEST_CASE("bad csv files are clean errors", "[io][csv][bad]") {
  std::string p = tmp("bad.csv");
  auto err = [&](const std::string& bytes, DType dt = DType::F32) {
    write_file(p, bytes);
    return error_of([&] { load_csv(p, dt); });
  };
  CHECK(err("1,2,3\n4,5\n") == "'" + p + "': line 2: ragged row: 2 fields, expected 3 (column 3 is missing)");
  CHECK(err("1,2\n4,5,6\n") == "'" + p + "': line 2: ragged row: 3 fields, expected 2 (unexpected column 3)");
  CHECK(err("1,2\n3,abc\n") == "'" + p + "': line 2, column 2: cannot parse 'abc' as f32");
  CHECK(err("1,\n") == "'" + p + "': line 1, column 2: cannot parse '' as f32");
  CHECK(err("1.5\n", DType::I64).find("cannot parse '1.5' as i64") != std::string::npos);
  CHECK(err("99999999999\n", DType::I32).find("cannot parse") != std::string::npos);
  CHECK(err("\"abc\n").find("unterminated quoted field") != std::string::npos);
  CHECK(err("\"a\"b,1\n").find("unexpected text after a quoted field") != std::string::npos);
  CHECK(err(std::string("\x1f\x8b\x08\x00garbage", 11)).find("gzip") != std::string::npos);
  std::string missing = tmp("nope.csv");
  CHECK(error_of([&] { load_csv(missing); }) == "cannot open '" + missing + "': No such file or directory");
}
