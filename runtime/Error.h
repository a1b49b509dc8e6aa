// Error types of the runtime.
//
// `Error` is a user-facing script error: its what() is the message text only, using the
// phrases of SPEC §9 (`cannot broadcast shapes [2, 3] and [4]`, `division by zero`, ...).
// The VM (or compiled code's trampoline) adds `file:line:col` and the call chain.
// `InternalError` marks a broken precondition of the C++ API (a caller bug), never a
// consequence of script input.
#pragma once

#include <stdexcept>
#include <string>

namespace tdl::rt {

struct Error : std::runtime_error {
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

struct InternalError : std::logic_error {
  explicit InternalError(const std::string& message) : std::logic_error(message) {}
};

}  // namespace tdl::rt
