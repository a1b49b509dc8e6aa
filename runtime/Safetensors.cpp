// safetensors: u64 LE header size N, N bytes of JSON, then the data buffer. Each entry
// {"dtype", "shape", "data_offsets": [BEGIN, END]} is relative to the buffer start; an
// optional "__metadata__" maps strings to strings. Validity rules (as the reference
// implementation): no duplicate keys, END - BEGIN = numel * itemsize, the entries cover
// the buffer exactly with no holes or overlaps, header <= 100 MB.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>
#include <vector>

#include "Error.h"
#include "FileIo.h"
#include "Io.h"
#include "RawFormat.h"
#include "JsonText.h"

namespace tdl::rt {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr int kMaxJsonDepth = 64;

using json = nlohmann::ordered_json;
using detail::RawFormat;
using detail::RawKind;

std::optional<RawFormat> parse_dtype(const std::string& s) {
  static const std::pair<const char*, RawFormat> table[] = {
      {"BOOL", {RawKind::Bool, 1}}, {"I8", {RawKind::Int, 1}},     {"I16", {RawKind::Int, 2}},
      {"I32", {RawKind::Int, 4}},   {"I64", {RawKind::Int, 8}},    {"U8", {RawKind::UInt, 1}},
      {"U16", {RawKind::UInt, 2}},  {"U32", {RawKind::UInt, 4}},   {"F16", {RawKind::Float, 2}},
      {"BF16", {RawKind::BFloat, 2}}, {"F32", {RawKind::Float, 4}}, {"F64", {RawKind::Float, 8}},
  };
  for (const auto& [name, f] : table)
    if (s == name) return f;
  return std::nullopt;
}

const char* dtype_tag(DType d) {
  switch (d) {
    case DType::Bool: return "BOOL";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I8: return "I8";
  }
  return "";
}

struct Entry {
  std::string name;
  RawFormat format;
  Shape shape;
  uint64_t begin, end;
};

}  // namespace

namespace {
// Reads n bytes at an offset of the safetensors bytes (a file or memory) or throws.
using ReadAt = std::function<void(uint64_t offset, void* buf, size_t n, const char* what)>;

std::vector<std::pair<std::string, Tensor>> parse_safetensors(uint64_t size, const ReadAt& read, const std::string& what,
                                                              bool keep_i8 = false,
                                                              SafetensorsMetadata* metadata = nullptr);
}  // namespace

std::vector<std::pair<std::string, Tensor>> load_safetensors(const std::string& path, SafetensorsMetadata* metadata) {
  detail::InFile in(path);
  return load_safetensors_region(in, 0, in.size(), fmt::format("invalid safetensors file '{}'", path), metadata);
}

std::vector<std::pair<std::string, Tensor>> load_safetensors_region(detail::InFile& in, uint64_t base, uint64_t size,
                                                                    const std::string& what, SafetensorsMetadata* metadata) {
  if (base > in.size() || size > in.size() - base) throw Error(fmt::format("{}: the region runs past the end of the file", what));
  return parse_safetensors(size, [&](uint64_t off, void* buf, size_t n, const char* w) { in.read_at(base + off, buf, n, w); },
                           what, false, metadata);
}

std::vector<std::pair<std::string, Tensor>> load_safetensors_bytes(std::string_view bytes, const std::string& what,
                                                                   bool keep_i8) {
  return parse_safetensors(bytes.size(), [&](uint64_t off, void* buf, size_t n, const char* w) {
    if (off > bytes.size() || n > bytes.size() - off) throw Error(fmt::format("{}: {}", what, w));
    std::memcpy(buf, bytes.data() + off, n);
  }, what, keep_i8);
}

namespace {
std::vector<std::pair<std::string, Tensor>> parse_safetensors(uint64_t size, const ReadAt& read, const std::string& what,
                                                              bool keep_i8, SafetensorsMetadata* metadata) {
  auto bad = [&](const std::string& msg) { return Error(fmt::format("{}: {}", what, msg)); };
  if (size < 8) throw bad("the file is too short for the 8-byte header size");
  unsigned char nb[8];
  read(0, nb, 8, "cannot read the header size");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | nb[i];
  if (n > kMaxHeaderBytes) throw bad(fmt::format("header size {} exceeds the 100 MB limit", n));
  if (n > size - 8) throw bad(fmt::format("header size {} runs past the end of the file ({} bytes)", n, size));
  std::string text(n, '\0');
  read(8, text.data(), n, "cannot read the header");

  // Parse, rejecting duplicate keys and deep nesting.
  std::vector<std::unordered_set<std::string>> keys;
  json header;
  try {
    header = json::parse(text, [&](int depth, json::parse_event_t ev, json& parsed) {
      if (depth > kMaxJsonDepth) throw bad("the header JSON is nested too deeply");
      if (ev == json::parse_event_t::object_start) keys.emplace_back();
      else if (ev == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
      else if (ev == json::parse_event_t::key && !keys.empty()) {
        std::string k = parsed.get<std::string>();
        if (!keys.back().insert(k).second) throw bad(fmt::format("duplicate key '{}' in the header", k));
      }
      return true;
    });
  } catch (const json::exception& e) {
    throw bad(fmt::format("the header is not valid JSON ({})", json_error_text(e.what())));
  }
  if (!header.is_object()) throw bad("the header is not a JSON object");

  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw bad("__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw bad("__metadata__ must be an object of strings");
        if (metadata) (*metadata)[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) throw bad(fmt::format("entry '{}' is not an object", name));
    if (!v.contains("dtype") || !v["dtype"].is_string()) throw bad(fmt::format("entry '{}' has no dtype string", name));
    std::string dts = v["dtype"].get<std::string>();
    std::optional<RawFormat> f = parse_dtype(dts);
    if (!f) throw bad(fmt::format("entry '{}' has an unsupported dtype '{}'", name, dts));
    if (!v.contains("shape") || !v["shape"].is_array())
      throw bad(fmt::format("entry '{}' has no shape array", name));
    Shape shape;
    for (const json& d : v["shape"]) {
      if (!d.is_number_integer() || (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0))
        throw bad(fmt::format("entry '{}' has an invalid shape", name));
      uint64_t u = d.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) throw bad(fmt::format("entry '{}' has an invalid shape", name));
      shape.push_back(static_cast<int64_t>(u));
    }
    if (shape.size() > static_cast<size_t>(kMaxRank)) throw bad(fmt::format("entry '{}' has too many dimensions", name));
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2 ||
        !v["data_offsets"][0].is_number_unsigned() || !v["data_offsets"][1].is_number_unsigned())
      throw bad(fmt::format("entry '{}' needs data_offsets [BEGIN, END] of non-negative integers", name));
    uint64_t b = v["data_offsets"][0].get<uint64_t>(), e = v["data_offsets"][1].get<uint64_t>();
    if (e < b) throw bad(fmt::format("entry '{}' has END < BEGIN in data_offsets [{}, {}]", name, b, e));
    std::optional<int64_t> numel = checked_numel(shape);
    unsigned __int128 bytes = numel ? static_cast<unsigned __int128>(*numel) * f->size : ~static_cast<unsigned __int128>(0);
    if (bytes != e - b)
      throw bad(fmt::format("entry '{}' of shape {} and dtype {} does not match its {} data bytes", name,
                            shape_str(shape), dts, e - b));
    entries.push_back(Entry{name, *f, shape, b, e});
  }

  // The entries must tile the data buffer exactly.
  const uint64_t data_start = 8 + n, data_size = size - 8 - n;
  std::vector<const Entry*> sorted;
  for (const Entry& e : entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t pos = 0;
  for (const Entry* e : sorted) {
    if (e->begin < pos) throw bad(fmt::format("entry '{}' overlaps another entry", e->name));
    if (e->begin > pos) throw bad(fmt::format("the data has a gap before entry '{}'", e->name));
    pos = e->end;
  }
  if (pos != data_size)
    throw bad(fmt::format("the entries cover {} bytes but the data buffer holds {}", pos, data_size));

  std::vector<std::pair<std::string, Tensor>> out;
  for (const Entry& e : entries) {
    bool i8 = keep_i8 && e.format.kind == RawKind::Int && e.format.size == 1;
    Tensor t = Tensor::empty(i8 ? DType::I8 : *detail::load_dtype(e.format), e.shape);
    size_t nbytes = static_cast<size_t>(e.end - e.begin);
    if (i8 || detail::is_native(e.format)) {
      read(data_start + e.begin, t.mutable_raw(), nbytes, "cannot read tensor data");
    } else {
      std::vector<unsigned char> buf(nbytes);
      read(data_start + e.begin, buf.data(), nbytes, "cannot read tensor data");
      detail::convert_raw(buf.data(), e.format, t.numel(), t);
    }
    out.emplace_back(e.name, std::move(t));
  }
  return out;
}
}  // namespace

namespace {
// The 8-byte size and the JSON header (padded with spaces to a multiple of 8) of `entries`.
std::string safetensors_head(const std::vector<std::pair<std::string, Tensor>>& entries,
                             const SafetensorsMetadata* metadata = nullptr) {
  json header = json::object();
  if (metadata && !metadata->empty()) header["__metadata__"] = *metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : entries) {
    if (name == "__metadata__") throw Error("a tensor cannot be named '__metadata__' in a safetensors file");
    if (!names.insert(name).second) throw Error(fmt::format("duplicate tensor name '{}' for a safetensors file", name));
    header[name] = json{{"dtype", dtype_tag(t.dtype())},
                        {"shape", t.shape()},
                        {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.empty() ? "{}" : header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string head(8, '\0');
  for (int i = 0; i < 8; ++i) head[static_cast<size_t>(i)] = static_cast<char>(static_cast<uint64_t>(text.size()) >> (8 * i));
  return head + text;
}
}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& entries,
                      const SafetensorsMetadata* metadata) {
  std::string head = safetensors_head(entries, metadata);
  detail::OutFile out(path);
  out.write(head.data(), head.size());
  for (const auto& [name, t] : entries) out.write(t.raw(), t.nbytes());
  out.close();
}

std::string safetensors_bytes(const std::vector<std::pair<std::string, Tensor>>& entries) {
  std::string out = safetensors_head(entries);
  for (const auto& [name, t] : entries) out.append(static_cast<const char*>(t.raw()), t.nbytes());
  return out;
}

}  // namespace tdl::rt
