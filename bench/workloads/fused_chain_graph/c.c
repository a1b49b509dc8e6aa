#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char** argv) {
  int reps = atoi(argv[1]);
  long n = 1L << 24;
  float* x = malloc(sizeof(float) * n);
  float* y = malloc(sizeof(float) * n);
  srand(0);
  for (long i = 0; i < n; ++i) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
    for (long i = 0; i < n; ++i) { float v = x[i] * 1.5f + 0.25f; y[i] = (v > 0.f ? v : 0.f) * 0.5f + 2.0f; }
    printf("TIME %.9f\nCHECK %f\n", now() - t0, y[12345]);
  }
  return 0;
}
