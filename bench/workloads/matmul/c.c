#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char** argv) {
  int reps = atoi(argv[1]), n = argc > 2 ? atoi(argv[2]) : 1024;  /* argv[2]: bench/run's `size` file */
  float* a = malloc(sizeof(float) * n * n); float* b = malloc(sizeof(float) * n * n); float* c = malloc(sizeof(float) * n * n);
  srand(0);
  for (int i = 0; i < n * n; ++i) { a[i] = (float)rand() / RAND_MAX; b[i] = (float)rand() / RAND_MAX; }
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    printf("TIME %.9f\nCHECK %f\n", now() - t0, c[3 * n + 5]);
  }
  return 0;
}
