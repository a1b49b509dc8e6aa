// SHA-256 (FIPS 180-4), for the integrity of files tdl reads back: compile cache entries are
// checked against the digest written beside them (`sha256sum` computes the same digest).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tdl::codegen {

// The digest of `data` as 64 lowercase hex digits.
std::string sha256Hex(std::string_view data);

}  // namespace tdl::codegen
