/* The GPU's own limits, for bench/gpu.py: cuMemcpyDtoD bandwidth on N f32 (read + write
 * bytes per second) and cublasSgemm on M x M f32 alone (seconds per product). The driver
 * and cuBLAS are loaded with dlopen, as tdl does, so no CUDA header or toolkit is needed:
 *   cc -O2 -o peer peer.c -ldl && ./peer copy 67108864 && ./peer sgemm 4096
 * Prints "SECONDS s" (the median of 10 timed runs after a warm-up) or "ERROR why". */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*fn_i_u)(unsigned);
typedef int (*fn_dev_get)(int*, int);
typedef int (*fn_ctx_retain)(void**, int);
typedef int (*fn_ctx_set)(void*);
typedef int (*fn_alloc)(unsigned long long*, size_t);
typedef int (*fn_dtod)(unsigned long long, unsigned long long, size_t);
typedef int (*fn_sync)(void);
typedef int (*fn_create)(void**);
typedef int (*fn_sgemm)(void*, int, int, int, int, int, const float*, const float*, int, const float*, int,
                        const float*, float*, int);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

#define NEED(p, lib, name)                                  \
  do {                                                      \
    *(void**)&p = dlsym(lib, name);                         \
    if (!p) return printf("ERROR %s lacks %s\n", #lib, name), 1; \
  } while (0)

int main(int argc, char** argv) {
  if (argc != 3) return fprintf(stderr, "usage: peer copy N | peer sgemm M\n"), 2;
  long n = atol(argv[2]);
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW);
  if (!cuda) return printf("ERROR no CUDA driver (%s)\n", dlerror()), 1;
  fn_i_u cuInit;
  fn_dev_get cuDeviceGet;
  fn_ctx_retain cuDevicePrimaryCtxRetain;
  fn_ctx_set cuCtxSetCurrent;
  fn_alloc cuMemAlloc;
  fn_dtod cuMemcpyDtoD;
  fn_sync cuCtxSynchronize;
  NEED(cuInit, cuda, "cuInit");
  NEED(cuDeviceGet, cuda, "cuDeviceGet");
  NEED(cuDevicePrimaryCtxRetain, cuda, "cuDevicePrimaryCtxRetain");
  NEED(cuCtxSetCurrent, cuda, "cuCtxSetCurrent");
  NEED(cuMemAlloc, cuda, "cuMemAlloc_v2");
  NEED(cuMemcpyDtoD, cuda, "cuMemcpyDtoD_v2");
  NEED(cuCtxSynchronize, cuda, "cuCtxSynchronize");
  int dev = 0;
  void* ctx = NULL;
  if (cuInit(0) || cuDeviceGet(&dev, 0) || cuDevicePrimaryCtxRetain(&ctx, dev) || cuCtxSetCurrent(ctx))
    return printf("ERROR no CUDA device\n"), 1;
  double times[10];
  if (strcmp(argv[1], "copy") == 0) {
    unsigned long long a = 0, b = 0;
    size_t bytes = (size_t)n * 4;
    if (cuMemAlloc(&a, bytes) || cuMemAlloc(&b, bytes)) return printf("ERROR cuMemAlloc\n"), 1;
    cuMemcpyDtoD(b, a, bytes);
    cuCtxSynchronize();
    for (int r = 0; r < 10; ++r) {
      double t0 = now();
      cuMemcpyDtoD(b, a, bytes);
      cuCtxSynchronize();
      times[r] = now() - t0;
    }
  } else {
    void* blas = NULL;
    const char* names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"};
    for (int i = 0; i < 4 && !blas; ++i) blas = dlopen(names[i], RTLD_NOW);
    if (!blas) return printf("ERROR no cuBLAS\n"), 1;
    fn_create cublasCreate;
    fn_sgemm cublasSgemm;
    NEED(cublasCreate, blas, "cublasCreate_v2");
    NEED(cublasSgemm, blas, "cublasSgemm_v2");
    void* h = NULL;
    if (cublasCreate(&h)) return printf("ERROR cublasCreate\n"), 1;
    unsigned long long a = 0, b = 0, c = 0;
    size_t bytes = (size_t)n * n * 4;
    if (cuMemAlloc(&a, bytes) || cuMemAlloc(&b, bytes) || cuMemAlloc(&c, bytes)) return printf("ERROR cuMemAlloc\n"), 1;
    const float one = 1, zero = 0;
    cublasSgemm(h, 0, 0, n, n, n, &one, (const float*)a, n, (const float*)b, n, &zero, (float*)c, n);
    cuCtxSynchronize();
    for (int r = 0; r < 10; ++r) {
      double t0 = now();
      cublasSgemm(h, 0, 0, n, n, n, &one, (const float*)a, n, (const float*)b, n, &zero, (float*)c, n);
      cuCtxSynchronize();
      times[r] = now() - t0;
    }
  }
  qsort(times, 10, sizeof times[0], cmp);
  printf("SECONDS %.9f\n", (times[4] + times[5]) / 2);
  return 0;
}
