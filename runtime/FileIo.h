// Internal: checked file access for the readers and writers. Every failure is an Error
// naming the file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace tdl::rt::detail {

class InFile {
 public:
  // Throws `cannot open 'PATH': REASON` (strerror text).
  explicit InFile(const std::string& path);
  ~InFile();
  InFile(const InFile&) = delete;
  InFile& operator=(const InFile&) = delete;

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Reads exactly n bytes at `offset`; a short read throws `what` (prefixed by the path).
  void read_at(uint64_t offset, void* buf, size_t n, const char* what);
  // The whole file (gunzipped when it starts with the gzip magic bytes).
  std::string read_all(bool gunzip);

 private:
  std::string path_;
  FILE* f_ = nullptr;
  uint64_t size_ = 0;
  bool streamed_ = false;  // a pipe, device or /proc file: read whole into mem_
  std::string mem_;
};

// Replaces a file atomically (a temporary in the same directory, fsync, rename on close();
// destroyed without close(), the old file stays): FileIo.cpp.
class OutFile {
 public:
  // Throws `cannot write 'PATH': REASON`.
  // `executable`: the new file gets the execute bits the umask allows.
  explicit OutFile(const std::string& path, bool executable = false);
  ~OutFile();
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;
  void write(const void* data, size_t n);
  void close();  // flushes, syncs and renames into place; throws on failure

 private:
  std::string path_, tmp_, target_, dir_;  // dir_: the target's folder (synced after the rename)
  FILE* f_ = nullptr;
};

}  // namespace tdl::rt::detail
