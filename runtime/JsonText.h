// The message of a JSON library (nlohmann) exception for people: its text without the
// `[json.exception.parse_error.101] ` tag, which names the library's internals.
#pragma once

#include <string>

namespace tdl::rt {

inline std::string json_error_text(const char* what) {
  std::string m = what;
  if (m.rfind("[json.exception.", 0) == 0) {
    size_t end = m.find("] ");
    if (end != std::string::npos) m.erase(0, end + 2);
  }
  return m;
}

}  // namespace tdl::rt
