/* The kmeans workload in plain C (-O2 -march=native): the same data, algorithm and
   convergence test, with one pass over the points per step (no [N, K] temporaries). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define K 8
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char** argv) {
  int reps = atoi(argv[1]);
  long n = 100000;
  float* x = malloc(sizeof(float) * 2 * n);
  for (long i = 0; i < n; ++i) {
    long h1 = (i * i * 7919 + i * 104729 + 12345) % 1000003;
    long h2 = (i * i * 6151 + i * 15485863 + 777) % 1000033;
    long h3 = (i * 2654435761L % 4294967296L) / 536870912L;
    float cx = (float)(h3 % 4) * 4.0f, cy = (float)(h3 / 4) * 4.0f;
    float dx = (float)h1 / 1000003.0f * 3.0f - 1.5f, dy = (float)h2 / 1000033.0f * 3.0f - 1.5f;
    x[2 * i] = cx + dx; x[2 * i + 1] = cy + dy;
  }
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
    float c[K][2], sum[K][2], tol = 1e-4f, moved = tol + 1.0f;
    float cnt[K];
    int steps = 0;
    memcpy(c, x + 2 * 16, sizeof c);
    while (moved > tol && steps < 500) {
      memset(sum, 0, sizeof sum); memset(cnt, 0, sizeof cnt);
      for (long i = 0; i < n; ++i) {
        float px = x[2 * i], py = x[2 * i + 1], best = INFINITY;
        int bk = 0;
        for (int k = 0; k < K; ++k) {
          float ex = px - c[k][0], ey = py - c[k][1], d = ex * ex + ey * ey;
          if (d < best) { best = d; bk = k; }
        }
        sum[bk][0] += px; sum[bk][1] += py; cnt[bk] += 1.0f;
      }
      moved = 0;
      for (int k = 0; k < K; ++k)
        for (int j = 0; j < 2; ++j) {
          float v = sum[k][j] / (cnt[k] > 1.0f ? cnt[k] : 1.0f);
          moved = fmaxf(moved, fabsf(v - c[k][j]));
          c[k][j] = v;
        }
      ++steps;
    }
    double t = now() - t0;
    float s0 = 0, s1 = 0;
    for (int k = 0; k < K; ++k) { s0 += c[k][0]; s1 += c[k][1]; }
    printf("TIME %.9f\nCHECK %d %f %f\n", t, steps, s0, s1);
  }
  return 0;
}
