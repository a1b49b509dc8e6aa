#include "Storage.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include "Error.h"
#include "Profile.h"
#include "Shape.h"

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

namespace {

// A small cache of large freed buffers, reused by the next allocation of the
// same padded size. Large buffers come from mmap; without the cache every
// elementwise op on a big tensor pays for fresh zeroed pages (page faults
// dominated `relu(x * 1.5 + 0.25) * 0.5 + 2.0` on 2^24 elements). Like a
// caching allocator, it keeps at most kCacheEntries buffers and
// kCacheMaxBytes in all; smaller buffers go straight to malloc, which already
// reuses them.
constexpr size_t kCacheMinBytes = size_t(1) << 16;
constexpr size_t kCacheEntries = 16;

size_t cacheMaxBytes() {
  static const size_t bytes = std::min<size_t>(size_t(1) << 30, physical_memory_bytes() / 8);
  return bytes;
}

struct BufferCache {
  std::mutex mu;
  std::vector<std::pair<size_t, void*>> entries;  // oldest first
  size_t total = 0;

  void* take(size_t padded) {
    std::lock_guard<std::mutex> lk(mu);
    for (size_t i = entries.size(); i-- > 0;) {
      if (entries[i].first == padded) {
        void* p = entries[i].second;
        total -= padded;
        entries.erase(entries.begin() + static_cast<long>(i));
        return p;
      }
    }
    return nullptr;
  }

  // Keeps `p` for reuse, or frees it (and what no longer fits).
  void give(size_t padded, void* p) {
    std::vector<void*> drop;
    {
      std::lock_guard<std::mutex> lk(mu);
      if (padded > cacheMaxBytes()) {
        drop.push_back(p);
      } else {
        entries.emplace_back(padded, p);
        total += padded;
        while (entries.size() > kCacheEntries || total > cacheMaxBytes()) {
          drop.push_back(entries.front().second);
          total -= entries.front().first;
          entries.erase(entries.begin());
        }
      }
    }
    for (void* q : drop) std::free(q);
  }
};

BufferCache& cache() {
  static BufferCache* c = new BufferCache;  // never destroyed: buffers may be released at exit
  return *c;
}

// Buffers of at least kHugeMinBytes are aligned to and padded to whole 2 MiB pages and
// asked to be backed by transparent huge pages (madvise, the kernel's default THP mode):
// a 16 MiB tensor then faults 8 times instead of 4096 and takes a 512th of the TLB
// entries; PyTorch's CPU allocator does the same (THP_MEM_ALLOC_ENABLE).
constexpr size_t kHugePage = size_t(1) << 21;
constexpr size_t kHugeMinBytes = size_t(4) << 20;

size_t paddedSize(size_t nbytes) {
  if (nbytes >= kHugeMinBytes) return (nbytes + kHugePage - 1) / kHugePage * kHugePage;
  size_t padded = (nbytes + kStorageAlignment - 1) / kStorageAlignment * kStorageAlignment;
  return padded == 0 ? kStorageAlignment : padded;
}

void* allocate(size_t padded) {
  if (padded < kHugeMinBytes) return std::aligned_alloc(kStorageAlignment, padded);
  void* p = std::aligned_alloc(kHugePage, padded);
#ifdef MADV_HUGEPAGE
  if (p) madvise(p, padded, MADV_HUGEPAGE);  // advice only: failure leaves small pages
#endif
  return p;
}

}  // namespace

namespace {
const DeviceHooks* deviceHooks = nullptr;
std::mutex deviceMutex;  // downloads and drops of device copies
}  // namespace

Storage* storage_alloc(size_t nbytes, const std::vector<int64_t>& shape) {
  auto fail = [&] {
    return Error(fmt::format("cannot allocate {} bytes for a tensor of shape {}", nbytes, shape_str(shape)));
  };
  if (nbytes > physical_memory_bytes()) throw fail();
  // Round up to the alignment (aligned_alloc needs a multiple); never 0 bytes.
  size_t padded = paddedSize(nbytes);
  void* p = padded >= kCacheMinBytes ? cache().take(padded) : nullptr;
  if (!p) p = allocate(padded);
  if (!p) throw fail();
  Storage* s = new (std::nothrow) Storage;
  if (!s) {
    std::free(p);
    throw fail();
  }
  s->nbytes = nbytes;
  s->data = p;
  if (prof::enabled()) [[unlikely]] prof::note_alloc(nbytes);
  return s;
}

void storage_retain(Storage* s) {
  if (s) s->refs.fetch_add(1, std::memory_order_relaxed);
}

void storage_release(Storage* s) {
  if (s && s->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    if (s->device && deviceHooks && deviceHooks->release) deviceHooks->release(s);
    if (s->data) {
      if (prof::enabled()) [[unlikely]] prof::note_free(s->nbytes);
      size_t padded = paddedSize(s->nbytes);
      if (padded >= kCacheMinBytes) cache().give(padded, s->data);
      else std::free(s->data);
    }
    delete s;
  }
}

void set_device_hooks(const DeviceHooks* hooks) { deviceHooks = hooks; }

void storage_sync_host(Storage* s) {
  std::lock_guard<std::mutex> lock(deviceMutex);
  if (!s->host_stale.load(std::memory_order_acquire)) return;
  if (!s->data) {
    size_t padded = paddedSize(s->nbytes);
    void* p = padded >= kCacheMinBytes ? cache().take(padded) : nullptr;
    if (!p) p = allocate(padded);
    if (!p) throw Error(fmt::format("cannot allocate {} bytes to bring a tensor from the device", s->nbytes));
    s->data = p;
    if (prof::enabled()) [[unlikely]] prof::note_alloc(s->nbytes);
  }
  if (!deviceHooks || !deviceHooks->download) throw InternalError("a tensor on a device, but no device layer");
  deviceHooks->download(s);
  s->host_stale.store(false, std::memory_order_release);
}

void storage_drop_device(Storage* s) {
  if (s->host_stale.load(std::memory_order_acquire)) storage_sync_host(s);
  std::lock_guard<std::mutex> lock(deviceMutex);
  if (s->device && deviceHooks && deviceHooks->release) deviceHooks->release(s);
  s->device = nullptr;
}

Storage* storage_alloc_device_only(size_t nbytes) {
  Storage* s = new Storage;
  s->nbytes = nbytes;
  s->host_stale.store(true, std::memory_order_release);
  return s;
}

}  // namespace tdl::rt
