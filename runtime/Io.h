// File formats (SPEC §5): NumPy .npy, safetensors, CSV. Every malformed, truncated or
// oversized input throws Error with a message naming the file; a missing file gives
// `cannot open 'PATH': No such file or directory`.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "Tensor.h"

namespace tdl::rt {

// .npy versions 1-3. dtypes: <f4 <f8 <i4 <i8 |b1 native; i1 i2 u1 u2 widen to i32, u4
// to i64, f2 to f32; big-endian is byte-swapped; fortran_order is converted to C order.
Tensor load_npy(const std::string& path);
// Writes version 1 (version 2 if the header would not fit), C order.
void save_npy(const std::string& path, const Tensor& t);

// Entries in header order. dtypes BOOL I32 I64 F32 F64 native; I8 I16 U8 U16 widen to
// i32, U32 to i64, F16 BF16 to f32; others are an error.
// The "__metadata__" of a safetensors file: strings to strings.
using SafetensorsMetadata = std::map<std::string, std::string>;
std::vector<std::pair<std::string, Tensor>> load_safetensors(const std::string& path,
                                                             SafetensorsMetadata* metadata = nullptr);
// Writes entries in the given order; names must be unique.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& entries,
                      const SafetensorsMetadata* metadata = nullptr);
// The same bytes, in memory (a .tdlm file holds them, docs/formats/tdlm.md).
std::string safetensors_bytes(const std::vector<std::pair<std::string, Tensor>>& entries);
namespace detail {
class InFile;
}
// The safetensors bytes at [base, base + size) of an open file; errors start with `what`.
std::vector<std::pair<std::string, Tensor>> load_safetensors_region(detail::InFile& in, uint64_t base, uint64_t size,
                                                                    const std::string& what,
                                                                    SafetensorsMetadata* metadata = nullptr);
// keep_i8: I8 entries stay i8 (int8-quantized weights of model files) instead of becoming i32.
std::vector<std::pair<std::string, Tensor>> load_safetensors_bytes(std::string_view bytes, const std::string& what,
                                                                   bool keep_i8 = false);

// A rows x columns tensor of `dtype` (bool accepts true/false/1/0). RFC 4180 quoting,
// LF or CRLF, optional UTF-8 BOM, gzip input (detected by its magic bytes); `header`
// skips the first record. Blank lines are skipped; a ragged row is an error naming the
// line and column.
Tensor load_csv(const std::string& path, DType dtype = DType::F32, bool header = false);

// Replaces `path` with `data` atomically: a temporary file in the same directory, fsync,
// rename (a crash, kill or full disk leaves the old file whole). Throws `cannot write ...`.
// `executable`: with the execute bits the umask allows.
void write_file_atomic(const std::string& path, const std::string& data, bool executable = false);

}  // namespace tdl::rt
