#include "FileIo.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "Error.h"
#include "Storage.h"

namespace tdl::rt::detail {

InFile::InFile(const std::string& path) : path_(path) {
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) throw Error(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  struct stat st;
  if (fstat(fileno(f_), &st) != 0) {
    int e = errno;
    std::fclose(f_);
    throw Error(fmt::format("cannot open '{}': {}", path, std::strerror(e)));
  }
  if (S_ISDIR(st.st_mode)) {
    std::fclose(f_);
    throw Error(fmt::format("cannot open '{}': {}", path, std::strerror(EISDIR)));
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

InFile::~InFile() {
  if (f_) std::fclose(f_);
}

void InFile::read_at(uint64_t offset, void* buf, size_t n, const char* what) {
  if (offset > size_ || n > size_ - offset)
    throw Error(fmt::format("'{}': {} (the file is truncated)", path_, what));
  if (n == 0) return;
  if (fseeko(f_, static_cast<off_t>(offset), SEEK_SET) != 0 || std::fread(buf, 1, n, f_) != n)
    throw Error(fmt::format("'{}': read error: {}", path_, std::strerror(errno)));
}

std::string InFile::read_all(bool gunzip) {
  std::string data;
  if (size_ > physical_memory_bytes()) throw Error(fmt::format("'{}': the file is too large", path_));
  data.resize(size_);
  read_at(0, data.data(), size_, "cannot read the file");
  if (!gunzip || data.size() < 2 || static_cast<unsigned char>(data[0]) != 0x1f ||
      static_cast<unsigned char>(data[1]) != 0x8b)
    return data;
  // Inflate (gzip wrapper, concatenated members allowed).
  std::string out;
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) throw Error(fmt::format("'{}': cannot start gzip decompression", path_));
  zs.next_in = reinterpret_cast<Bytef*>(data.data());
  zs.avail_in = static_cast<uInt>(data.size());
  char buf[1 << 16];
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    int rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
    if (out.size() > physical_memory_bytes()) {
      inflateEnd(&zs);
      throw Error(fmt::format("'{}': the decompressed data is too large", path_));
    }
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      if (inflateReset(&zs) != Z_OK) break;  // another gzip member follows
      continue;
    }
    if (rc != Z_OK) {
      inflateEnd(&zs);
      throw Error(fmt::format("'{}': corrupt gzip data", path_));
    }
    if (zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      throw Error(fmt::format("'{}': truncated gzip data", path_));
    }
  }
  inflateEnd(&zs);
  return out;
}

OutFile::OutFile(const std::string& path) : path_(path) {
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) throw Error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
}

OutFile::~OutFile() {
  if (f_) std::fclose(f_);
}

void OutFile::write(const void* data, size_t n) {
  if (n && std::fwrite(data, 1, n, f_) != n)
    throw Error(fmt::format("cannot write '{}': {}", path_, std::strerror(errno)));
}

void OutFile::close() {
  FILE* f = f_;
  f_ = nullptr;
  if (std::fclose(f) != 0) throw Error(fmt::format("cannot write '{}': {}", path_, std::strerror(errno)));
}

}  // namespace tdl::rt::detail
