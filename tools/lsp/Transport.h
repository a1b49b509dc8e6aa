// JSON-RPC framing for the language server: `Content-Length: N\r\n\r\n` + N
// bytes of JSON. Lengths are in bytes and capped; JSON nesting is bounded
// before parsing (nlohmann's dump() and copies recurse).
#pragma once
#include <cstdio>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace tdl::lsp {

constexpr size_t kMaxMessageBytes = size_t(64) << 20;  // larger bodies are refused
constexpr int kMaxJsonDepth = 256;

struct ReadResult {
  enum Kind { Message, Eof, BadFrame, BadJson } kind = Eof;
  nlohmann::json json;
  std::string error;
};

class Transport {
 public:
  Transport(FILE* in, FILE* out) : in_(in), out_(out) {}
  ReadResult read();
  void write(const nlohmann::json& msg);

 private:
  FILE* in_;
  FILE* out_;
};

// Deepest bracket nesting of a JSON text (outside strings).
int jsonDepth(const std::string& text);

}  // namespace tdl::lsp
