#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char** argv) {
  int reps = atoi(argv[1]), n = argc > 2 ? atoi(argv[2]) : 100000;  /* argv[2]: bench/run's `size` file */
  float* x = malloc(sizeof(float) * n);
  for (int r = 0; r < reps; ++r) {
    srand(0);
    for (int i = 0; i < n; ++i) x[i] = (float)rand() / (float)RAND_MAX;
    double t0 = now();
    for (int i = 0; i < n; ++i) { if (x[i] > 0.5f) x[i] *= 2.0f; else x[i] += 1.0f; }
    double t = now() - t0;
    double s = 0; for (int i = 0; i < n; ++i) s += x[i];
    printf("TIME %.9f\nCHECK %f\n", t, s);
  }
  return 0;
}
