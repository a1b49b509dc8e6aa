#include "Storage.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <new>

#include "Error.h"

namespace tdl::rt {

size_t physical_memory_bytes() {
  static const size_t bytes = [] {
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0) return static_cast<size_t>(1) << 40;
    return static_cast<size_t>(pages) * static_cast<size_t>(page);
  }();
  return bytes;
}

Storage* storage_alloc(size_t nbytes, const std::string& shape_text) {
  auto fail = [&] {
    return Error(fmt::format("cannot allocate {} bytes for a tensor of shape {}", nbytes, shape_text));
  };
  if (nbytes > physical_memory_bytes()) throw fail();
  // Round up to the alignment (aligned_alloc needs a multiple); never 0 bytes.
  size_t padded = (nbytes + kStorageAlignment - 1) / kStorageAlignment * kStorageAlignment;
  if (padded == 0) padded = kStorageAlignment;
  void* p = std::aligned_alloc(kStorageAlignment, padded);
  if (!p) throw fail();
  Storage* s = new (std::nothrow) Storage;
  if (!s) {
    std::free(p);
    throw fail();
  }
  s->nbytes = nbytes;
  s->data = p;
  return s;
}

void storage_retain(Storage* s) {
  if (s) s->refs.fetch_add(1, std::memory_order_relaxed);
}

void storage_release(Storage* s) {
  if (s && s->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::free(s->data);
    delete s;
  }
}

}  // namespace tdl::rt
