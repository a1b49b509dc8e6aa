/* The element loop of the language tour as C: copy, then the loop (what the graph fn
   computes: y = x; y[i] updated), compiled -O3 -march=native by bench/run, where GCC
   if-converts and vectorizes it (the machine's limit for this loop). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char** argv) {
  int reps = atoi(argv[1]), n = argc > 2 ? atoi(argv[2]) : 100000;  /* argv[2]: bench/run's `size` file */
  float* x = malloc(sizeof(float) * n);
  float* y = malloc(sizeof(float) * n);
  for (int r = 0; r < reps; ++r) {
    srand(0);
    for (int i = 0; i < n; ++i) x[i] = (float)rand() / (float)RAND_MAX;
    double t0 = now();
    memcpy(y, x, sizeof(float) * n);
    for (int i = 0; i < n; ++i) { if (y[i] > 0.5f) y[i] *= 2.0f; else y[i] += 1.0f; }
    double t = now() - t0;
    double s = 0; for (int i = 0; i < n; ++i) s += y[i];
    printf("TIME %.9f\nCHECK %f\n", t, s);
  }
  return 0;
}
