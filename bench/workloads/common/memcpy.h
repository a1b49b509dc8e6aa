/* The machine's copy bandwidth, the limit of a memory-bound workload (issue 17): memcpy of
   BYTES bytes (defined by the including memcpy.c) from one buffer to another, split over
   every online core (one contiguous slice per thread), as the workload's own code may be.
   Times each repetition itself (bench/run's kernel mode); CHECK says the copy is right and gives
   the bandwidth in GB/s (bytes read + bytes written per second). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

struct slice { char* dst; const char* src; size_t n; };
static void* copy_slice(void* p) { struct slice* s = p; memcpy(s->dst, s->src, s->n); return NULL; }

int main(int argc, char** argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 1;
  size_t bytes = (size_t)(BYTES);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  int nt = cores < 1 ? 1 : cores > 64 ? 64 : (int)cores;
  char* src = malloc(bytes);
  char* dst = malloc(bytes);
  if (!src || !dst) { fprintf(stderr, "out of memory\n"); return 1; }
  for (size_t i = 0; i < bytes; ++i) src[i] = (char)(i * 7);
  memset(dst, 1, bytes); /* touched, so the first copy does not fault pages in */
  pthread_t th[64];
  struct slice sl[64];
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
    for (int t = 0; t < nt; ++t) {
      size_t b = bytes / nt * t, e = t == nt - 1 ? bytes : bytes / nt * (t + 1);
      sl[t] = (struct slice){dst + b, src + b, e - b};
      if (t < nt - 1) pthread_create(&th[t], NULL, copy_slice, &sl[t]);
    }
    copy_slice(&sl[nt - 1]);
    for (int t = 0; t < nt - 1; ++t) pthread_join(th[t], NULL);
    double dt = now() - t0;
    printf("TIME %.9f\nCHECK %s %.1f GB/s\n", dt, memcmp(dst, src, bytes) == 0 ? "copied" : "WRONG", 2.0 * bytes / dt / 1e9);
  }
  return 0;
}
