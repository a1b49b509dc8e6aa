#include "frontend/Source.h"

#include <pthread.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <new>
#include <system_error>

namespace tdl {

SourceFile::SourceFile(std::string p, std::string t) : path(std::move(p)), text(std::move(t)) {
  // A UTF-8 byte order mark (some Windows editors write one) is not part of the program, as
  // in Python: dropped, so columns count from the first character an editor shows.
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
  // A lone carriage return (old Mac line ends) ends a line, as in Python and for editors
  // (LSP): written as '\n' (the same length, so offsets hold), the lexer and every position
  // see the same lines. "\r\n" stays.
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')) text[i] = '\n';
  lineStarts.push_back(0);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') lineStarts.push_back(i + 1);
  }
}

std::string_view SourceFile::lineText(uint32_t line) const {
  if (line == 0 || line > lineStarts.size()) return {};
  size_t b = lineStarts[line - 1];
  size_t e = line < lineStarts.size() ? lineStarts[line] : text.size();
  while (e > b && (text[e - 1] == '\n' || text[e - 1] == '\r')) --e;
  return std::string_view(text).substr(b, e - b);
}

// Returns the byte offset of the first invalid UTF-8 sequence, or npos.
size_t findInvalidUtf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > n) return i;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string::npos;
}


std::u32string decodeUtf8(const std::string& s) {
  std::u32string out;
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  out.reserve(n);
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len && i + static_cast<size_t>(k) < s.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3F);
    out.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return out;
}

uint32_t SourceManager::add(std::string path, std::string text) {
  files_.push_back(std::make_unique<SourceFile>(std::move(path), std::move(text)));
  return static_cast<uint32_t>(files_.size() - 1);
}

namespace {
struct ThreadArgs {
  const std::function<void()>* fn;
  std::exception_ptr error;
};
void* threadMain(void* p) {
  auto* a = static_cast<ThreadArgs*>(p);
  try {
    (*a->fn)();
  } catch (...) {
    a->error = std::current_exception();
  }
  return nullptr;
}
}  // namespace

void runWithLargeStack(const std::function<void()>& fn) {
  constexpr size_t kStackBytes = size_t(512) << 20;  // deep legal input parses
  ThreadArgs args{&fn, nullptr};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kStackBytes);
  pthread_t th;
  if (pthread_create(&th, &attr, threadMain, &args) != 0) {
    pthread_attr_destroy(&attr);
    fn();  // fall back to this thread
    return;
  }
  pthread_attr_destroy(&attr);
  pthread_join(th, nullptr);
  if (args.error) std::rethrow_exception(args.error);
}

int runMainGuarded(const std::function<int()>& body) {
  int rc = 3;
  try {
    runWithLargeStack([&] {
      try {
        rc = body();
      } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "internal error: out of memory\n");
        rc = 3;
      } catch (const std::exception& e) {
        if (dynamic_cast<const std::system_error*>(&e) && std::ferror(stdout)) {  // fmt::print's write failure: below
          rc = 1;
          return;
        }
        std::fprintf(stderr, "internal error: %s\n", e.what());
        rc = 3;
      }
    });
  } catch (...) {
    std::fprintf(stderr, "internal error: unexpected exception\n");
    rc = 3;
  }
  // Output that could not be written (a full disk, a closed pipe) is an error, not a
  // success (as Python's): exit status 1 at least.
  errno = 0;
  bool flushed = std::fflush(stdout) == 0;
  if (!flushed || std::ferror(stdout)) {
    int err = errno;
    std::fprintf(stderr, "error: cannot write to standard output%s%s\n", err ? ": " : "", err ? std::strerror(err) : "");
    if (rc == 0) rc = 1;
  }
  return rc;
}

}  // namespace tdl
