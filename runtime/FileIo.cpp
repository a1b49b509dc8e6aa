#include "FileIo.h"

#include <fmt/format.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "Error.h"
#include "Storage.h"

namespace tdl::rt::detail {

// Opened without blocking (a FIFO without a writer would block open() forever), then read as
// a file when it is a regular file with a size, or else streamed into memory to its end: a
// pipe, `/dev/stdin`, a character device, or a `/proc` file (which reports size 0). A FIFO
// with no writer reads as empty.
// A path with a NUL byte would name a different file (the C string ends there).
static void checkPath(const std::string& path, const char* verb) {
  if (path.find('\0') != std::string::npos)
    throw Error(fmt::format("cannot {} '{}': the path contains a NUL byte", verb, path.substr(0, path.find('\0'))));
  if (path.empty()) throw Error(fmt::format("cannot {} '': the path is empty", verb));
}

InFile::InFile(const std::string& path) : path_(path) {
  checkPath(path, "open");
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) throw Error(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error(fmt::format("cannot open '{}': {}", path, std::strerror(e)));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw Error(fmt::format("cannot open '{}': {}", path, std::strerror(EISDIR)));
  }
  // A FIFO that no process has open for writing reads as end-of-file at once; reading it
  // would only make sense once a writer comes, which a script cannot wait for: an error.
  std::string first;
  if (S_ISFIFO(st.st_mode)) {
    char c;
    ssize_t n;
    do n = ::read(fd, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n == 0) {
      ::close(fd);
      throw Error(fmt::format("cannot open '{}': it is a pipe or FIFO with no data and no writer", path));
    }
    if (n == 1) first.assign(1, c);
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  if (S_ISREG(st.st_mode) && st.st_size > 0) {
    f_ = fdopen(fd, "rb");
    if (!f_) {
      int e = errno;
      ::close(fd);
      throw Error(fmt::format("cannot open '{}': {}", path, std::strerror(e)));
    }
    size_ = static_cast<uint64_t>(st.st_size);
    return;
  }
  // Streamed: the size is what the stream holds, bounded by the machine's memory.
  streamed_ = true;
  mem_ = std::move(first);
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      throw Error(fmt::format("'{}': read error: {}", path, std::strerror(e)));
    }
    if (n == 0) break;
    mem_.append(buf, static_cast<size_t>(n));
    if (mem_.size() > physical_memory_bytes()) {
      ::close(fd);
      throw Error(fmt::format("'{}': the file is too large", path));
    }
  }
  ::close(fd);
  size_ = mem_.size();
}

InFile::~InFile() {
  if (f_) std::fclose(f_);
}

void InFile::read_at(uint64_t offset, void* buf, size_t n, const char* what) {
  if (offset > size_ || n > size_ - offset)
    throw Error(fmt::format("'{}': {} ({})", path_, what,
                            size_ == 0 ? "the file is empty" : "the file is truncated"));
  if (n == 0) return;
  if (streamed_) {
    std::memcpy(buf, mem_.data() + offset, n);
    return;
  }
  if (fseeko(f_, static_cast<off_t>(offset), SEEK_SET) != 0 || std::fread(buf, 1, n, f_) != n)
    throw Error(fmt::format("'{}': read error: {}", path_, std::strerror(errno)));
}

std::string InFile::read_all(bool gunzip) {
  std::string data;
  if (streamed_) {
    data = std::move(mem_);
    mem_.clear();
    size_ = 0;
    streamed_ = false;
  } else {
    if (size_ > physical_memory_bytes()) throw Error(fmt::format("'{}': the file is too large", path_));
    data.resize(size_);
    read_at(0, data.data(), size_, "cannot read the file");
  }
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

// Writing replaces the file atomically: the bytes go to a temporary file in the target's
// directory, which is flushed to disk (fsync) and renamed over the target only when
// everything was written. A crash, a kill or a full disk leaves the old file whole (and at
// worst a stray `.NAME.tdl-*` temporary). The new file keeps an existing file's permission
// bits (else 0666 less the umask). A target that exists and is not a regular file (a
// terminal, a pipe, /dev/null) cannot be replaced: it is written in place. A symbolic link
// is followed, so that the file it names is replaced, not the link.
OutFile::OutFile(const std::string& path, bool executable) : path_(path) {
  checkPath(path, "write");
  std::string target = path;
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    if (char* real = realpath(path.c_str(), nullptr)) {
      target = real;
      std::free(real);
    }
  }
  bool exists = stat(target.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) throw Error(fmt::format("cannot write '{}': {}", path, std::strerror(EISDIR)));
  if (exists && !S_ISREG(st.st_mode)) {
    f_ = std::fopen(path.c_str(), "wb");
    if (!f_) throw Error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
    return;
  }
  if (exists && access(target.c_str(), W_OK) != 0)
    throw Error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  size_t slash = target.rfind('/');
  dir_ = slash == std::string::npos ? "." : slash == 0 ? "/" : target.substr(0, slash);
  std::string tmp = dir_ + "/." + target.substr(slash == std::string::npos ? 0 : slash + 1) + ".tdl-XXXXXX";
  std::vector<char> name(tmp.begin(), tmp.end());
  name.push_back('\0');
  int fd = mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0 && exists && (errno == EACCES || errno == EPERM || errno == EROFS)) {
    // A file the user may write in a folder the user may not: it can only be rewritten in
    // place (not atomically), as before.
    f_ = std::fopen(path.c_str(), "wb");
    if (!f_) throw Error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
    return;
  }
  if (fd < 0) throw Error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  mode_t mask = umask(0);
  umask(mask);
  mode_t mode = exists ? st.st_mode & 07777 : 0666 & ~mask;
  if (executable) mode |= 0111 & ~mask;
  fchmod(fd, mode);
  f_ = fdopen(fd, "wb");
  if (!f_) {
    int e = errno;
    ::close(fd);
    unlink(name.data());
    throw Error(fmt::format("cannot write '{}': {}", path, std::strerror(e)));
  }
  tmp_ = name.data();
  target_ = target;
}

OutFile::~OutFile() {
  if (f_) std::fclose(f_);
  if (!tmp_.empty()) unlink(tmp_.c_str());  // not closed: the target is left as it was
}

void OutFile::write(const void* data, size_t n) {
  if (n && std::fwrite(data, 1, n, f_) != n)
    throw Error(fmt::format("cannot write '{}': {}", path_, std::strerror(errno)));
}

void OutFile::close() {
  FILE* f = f_;
  f_ = nullptr;
  bool ok = std::fflush(f) == 0 && (tmp_.empty() || fsync(fileno(f)) == 0);
  int e = errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (ok && !tmp_.empty() && rename(tmp_.c_str(), target_.c_str()) != 0) {
    ok = false;
    e = errno;
  }
  if (!ok) throw Error(fmt::format("cannot write '{}': {}", path_, std::strerror(e)));
  if (!tmp_.empty()) {
    tmp_.clear();
    // The rename itself is durable once the directory is flushed.
    int dfd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      ::close(dfd);
    }
  }
}

}  // namespace tdl::rt::detail

namespace tdl::rt {

void write_file_atomic(const std::string& path, const std::string& data, bool executable) {
  detail::OutFile out(path, executable);
  out.write(data.data(), data.size());
  out.close();
}

}  // namespace tdl::rt
