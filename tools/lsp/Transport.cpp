#include "tools/lsp/Transport.h"

#include <cctype>
#include <charconv>

namespace tdl::lsp {

int jsonDepth(const std::string& text) {
  int depth = 0, maxDepth = 0;
  bool inStr = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inStr) {
      if (c == '\\') ++i;
      else if (c == '"') inStr = false;
      continue;
    }
    if (c == '"') inStr = true;
    else if (c == '[' || c == '{') maxDepth = std::max(maxDepth, ++depth);
    else if (c == ']' || c == '}') --depth;
  }
  return maxDepth;
}

ReadResult Transport::read() {
  ReadResult r;
  size_t length = 0;
  bool haveLength = false;
  std::string line;
  // Headers, each ending in \r\n; an empty line ends them.
  for (;;) {
    line.clear();
    int c;
    while ((c = std::fgetc(in_)) != EOF && c != '\n') {
      if (line.size() > 4096) {
        r.kind = ReadResult::BadFrame;
        r.error = "header line too long";
        return r;
      }
      line += static_cast<char>(c);
    }
    if (c == EOF && line.empty()) {
      r.kind = ReadResult::Eof;
      return r;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) break;
    const std::string key = "content-length:";
    std::string lower;
    for (char ch : line.substr(0, key.size())) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lower == key) {
      std::string v = line.substr(key.size());
      size_t b = v.find_first_not_of(' ');
      if (b == std::string::npos) b = v.size();
      auto [p, ec] = std::from_chars(v.data() + b, v.data() + v.size(), length);
      if (ec != std::errc() || p != v.data() + v.size()) {
        r.kind = ReadResult::BadFrame;
        r.error = "bad Content-Length";
        return r;
      }
      haveLength = true;
    }
  }
  if (!haveLength) {
    r.kind = ReadResult::BadFrame;
    r.error = "missing Content-Length";
    return r;
  }
  if (length > kMaxMessageBytes) {
    // Skip the body so the stream stays in sync.
    for (size_t i = 0; i < length && std::fgetc(in_) != EOF; ++i) {
    }
    r.kind = ReadResult::BadFrame;
    r.error = "message too large";
    return r;
  }
  std::string body(length, '\0');
  size_t got = std::fread(body.data(), 1, length, in_);
  if (got != length) {
    r.kind = ReadResult::Eof;
    return r;
  }
  if (jsonDepth(body) > kMaxJsonDepth) {
    r.kind = ReadResult::BadJson;
    r.error = "JSON nested too deeply";
    return r;
  }
  r.json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (r.json.is_discarded()) {
    r.kind = ReadResult::BadJson;
    r.error = "invalid JSON";
    return r;
  }
  r.kind = ReadResult::Message;
  return r;
}

void Transport::write(const nlohmann::json& msg) {
  std::string body = msg.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fprintf(out_, "Content-Length: %zu\r\n\r\n", body.size());
  std::fwrite(body.data(), 1, body.size(), out_);
  std::fflush(out_);
}

}  // namespace tdl::lsp
