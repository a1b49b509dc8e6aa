// The device layer above the driver calls (Device.h): the caching allocator, tensor
// residency through rt::Storage's device hooks, the counters, and device selection.
#include "codegen/Device.h"

#include <fmt/format.h>

#include <chrono>
#include <map>

#include "runtime/Error.h"
#include "runtime/Profile.h"
#include "runtime/Shape.h"

namespace tdl::codegen {

namespace {

// A tensor's device copy (rt::Storage::device).
struct DeviceCopy {
  uint64_t addr = 0;
  size_t bytes = 0;  // the allocation's size class
};

// Rounds a request up to a size class: 512-byte steps up to 1 MiB, then 1/8 of the next
// power of two (so that freed buffers are reused across calls of a graph fn whose
// tensors have the same sizes, and waste stays under 12.5%).
size_t sizeClass(size_t n) {
  if (n == 0) n = 1;
  if (n <= (size_t{1} << 20)) return (n + 511) & ~size_t{511};
  size_t p = size_t{1} << (63 - __builtin_clzll(n));
  size_t step = p / 8;
  return (n + step - 1) / step * step;
}

struct State {
  std::unique_ptr<Device> device;
  std::string arch = "sm_90";
  std::mutex mu;  // the allocator cache and the counters
  std::multimap<size_t, uint64_t> cache;  // free buffers by size class
  size_t cachedBytes = 0;
  DeviceStats stats;
};

State& state() {
  static State* s = new State;  // outlives every tensor (never destroyed)
  return *s;
}

void freeCache(State& st) {
  for (auto& [bytes, p] : st.cache) st.device->rawFree(p);
  st.cache.clear();
  st.cachedBytes = 0;
}

DeviceCopy* allocCopy(size_t nbytes) {
  State& st = state();
  size_t cls = sizeClass(nbytes);
  std::lock_guard<std::mutex> lock(st.mu);
  uint64_t p = 0;
  auto it = st.cache.find(cls);
  if (it != st.cache.end()) {
    p = it->second;
    st.cache.erase(it);
    st.cachedBytes -= cls;
    ++st.stats.cacheHits;
  } else {
    p = st.device->rawAlloc(cls);
    if (!p && !st.cache.empty()) {  // give the cache back to the device and try again
      freeCache(st);
      p = st.device->rawAlloc(cls);
    }
    if (!p) throw rt::Error(fmt::format("out of memory on the device ({}): cannot allocate {} bytes", st.device->name(), nbytes));
    ++st.stats.allocs;
  }
  st.stats.liveBytes += static_cast<int64_t>(cls);
  st.stats.peakBytes = std::max(st.stats.peakBytes, st.stats.liveBytes);
  return new DeviceCopy{p, cls};
}

// Keeps the buffer for reuse (up to 1 GiB of cached buffers; more goes back to the device).
void freeCopy(DeviceCopy* c) {
  State& st = state();
  {
    std::lock_guard<std::mutex> lock(st.mu);
    st.stats.liveBytes -= static_cast<int64_t>(c->bytes);
    if (st.cachedBytes + c->bytes <= (size_t{1} << 30)) {
      st.cache.emplace(c->bytes, c->addr);
      st.cachedBytes += c->bytes;
    } else {
      st.device->rawFree(c->addr);
    }
  }
  delete c;
}

// --profile: a copy's time under "copy to the device" / "copy to the host" (the time a
// download waits for the kernels before it is in it too, as on a GPU it must).
struct CopyTimer {
  const char* name;
  std::chrono::steady_clock::time_point t0;
  bool on = rt::prof::enabled();
  explicit CopyTimer(const char* n) : name(n) {
    if (on) t0 = std::chrono::steady_clock::now();
  }
  ~CopyTimer() {
    if (on) rt::prof::record(rt::prof::Section::CompiledOp, name,
                             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
};

void hookDownload(rt::Storage* s) {
  auto* c = static_cast<DeviceCopy*>(s->device);
  State& st = state();
  CopyTimer timer("copy to the host");
  if (s->nbytes) st.device->copyOut(s->data, c->addr, s->nbytes);
  std::lock_guard<std::mutex> lock(st.mu);
  ++st.stats.downloads;
  st.stats.bytesDown += static_cast<int64_t>(s->nbytes);
}

void hookRelease(rt::Storage* s) {
  if (s->device) freeCopy(static_cast<DeviceCopy*>(s->device));
  s->device = nullptr;
}

const rt::DeviceHooks hooks{&hookDownload, &hookRelease};

}  // namespace

Device* activeDevice() { return state().device.get(); }
const std::string& deviceGpuArch() { return state().arch; }

void setActiveDevice(std::unique_ptr<Device> d, const std::string& gpuArch) {
  State& st = state();
  {
    std::lock_guard<std::mutex> lock(st.mu);
    if (st.device) freeCache(st);  // (the old device's live tensors must be gone)
  }
  st.device = std::move(d);
  st.arch = gpuArch;
  rt::set_device_hooks(&hooks);
}

std::string selectDevice(const std::string& kind, const std::string& gpuArch) {
  try {
    if (kind == "cuda") {
      std::string why;
      rt::cuda::CudaDriver d = rt::cuda::CudaDriver::load(&why);
      if (!d.available()) return why;
      if (d.deviceCount() <= 0) return d.error().empty() ? "no CUDA device" : d.error();
      setActiveDevice(makeCudaDevice(std::move(d), rt::cuda::Cublas::load(), gpuArch), gpuArch);
      return "";
    }
  } catch (const std::exception& e) {
    return e.what();
  }
  return fmt::format("unknown device '{}'", kind);
}

DeviceStats deviceStats() {
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  return st.stats;
}

void resetDeviceStats() {
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  int64_t live = st.stats.liveBytes;
  st.stats = DeviceStats{};
  st.stats.liveBytes = st.stats.peakBytes = live;
}

namespace {
std::string bytesText(int64_t b) {
  if (b < 1024) return fmt::format("{} B", b);
  if (b < (int64_t{1} << 20)) return fmt::format("{:.1f} KiB", static_cast<double>(b) / 1024);
  if (b < (int64_t{1} << 30)) return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1 << 20));
  return fmt::format("{:.2f} GiB", static_cast<double>(b) / (1 << 30));
}
}  // namespace

std::string deviceReport() {
  Device* d = activeDevice();
  if (!d) return "";
  DeviceStats s = deviceStats();
  return fmt::format(
      "device {} ({}): {} kernel launch{}, {} gemm{}; {} cop{} to the device ({}), {} to the host ({}); "
      "device memory peak {}, {} allocation{} ({} reused)\n",
      d->kind(), d->name(), s.launches, s.launches == 1 ? "" : "es", s.gemms, s.gemms == 1 ? "" : "s", s.uploads,
      s.uploads == 1 ? "y" : "ies", bytesText(s.bytesUp), s.downloads, bytesText(s.bytesDown), bytesText(s.peakBytes),
      s.allocs, s.allocs == 1 ? "" : "s", s.cacheHits);
}

void noteLaunch() {
  std::lock_guard<std::mutex> lock(state().mu);
  ++state().stats.launches;
}

void noteTransfer(bool toDevice, int64_t bytes) {
  std::lock_guard<std::mutex> lock(state().mu);
  DeviceStats& s = state().stats;
  if (toDevice) ++s.uploads, s.bytesUp += bytes;
  else ++s.downloads, s.bytesDown += bytes;
}

void noteGemm() {
  std::lock_guard<std::mutex> lock(state().mu);
  ++state().stats.gemms;
}

uint64_t deviceData(const rt::Tensor& t) {
  rt::Storage* s = t.storage();
  if (!s) throw rt::InternalError("deviceData: an undefined tensor");
  if (s->device) return static_cast<DeviceCopy*>(s->device)->addr;
  DeviceCopy* c = allocCopy(s->nbytes);
  try {
    const void* host = t.raw();
    State& st = state();
    CopyTimer timer("copy to the device");
    if (s->nbytes) st.device->copyIn(c->addr, host, s->nbytes);
    std::lock_guard<std::mutex> lock(st.mu);
    ++st.stats.uploads;
    st.stats.bytesUp += static_cast<int64_t>(s->nbytes);
  } catch (...) {
    freeCopy(c);
    throw;
  }
  s->device = c;
  return c->addr;
}

rt::Tensor deviceEmpty(rt::DType dt, const rt::Shape& shape) {
  int64_t n = rt::numel_of(shape);
  size_t bytes = static_cast<size_t>(n) * rt::itemsize(dt);
  DeviceCopy* c = allocCopy(bytes);
  rt::Storage* s = rt::storage_alloc_device_only(bytes);
  s->device = c;
  return rt::Tensor::on_storage(s, dt, shape);
}

bool onDeviceOnly(const rt::Tensor& t) {
  return t.storage() && t.storage()->host_stale.load(std::memory_order_acquire);
}

}  // namespace tdl::codegen
