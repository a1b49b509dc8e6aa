/* conv2d forward + backward at the limit of im2col + OpenBLAS: x [64, 28, 28, 32] NHWC,
   w [3, 3, 32, 64], "same" (pad 1): cols = im2col(x) [N*H*W, 288]; y = cols @ w;
   gw = cols^T @ g; gcols = g @ w^T; gx = col2im(gcols). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
enum { N = 64, H = 28, W = 28, C = 32, K = 3, O = 64, KK = K * K * C };
int main(int argc, char** argv) {
  int reps = atoi(argv[1]);
  long nx = (long)N * H * W * C, ny = (long)N * H * W * O, rows = (long)N * H * W;
  float* x = malloc(sizeof(float) * nx); float* w = malloc(sizeof(float) * KK * O);
  float* g = malloc(sizeof(float) * ny); float* y = malloc(sizeof(float) * ny);
  float* cols = malloc(sizeof(float) * rows * KK); float* gcols = malloc(sizeof(float) * rows * KK);
  float* gx = malloc(sizeof(float) * nx); float* gw = malloc(sizeof(float) * KK * O);
  for (long i = 0; i < nx; ++i) x[i] = (float)(i % 7) * 0.25f - 0.75f;
  for (long i = 0; i < KK * O; ++i) w[i] = (float)(i % 5) * 0.1f - 0.2f;
  for (long i = 0; i < ny; ++i) g[i] = (float)(i % 3) - 1.0f;
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
    for (int n = 0; n < N; ++n)
      for (int h = 0; h < H; ++h)
        for (int v = 0; v < W; ++v) {
          float* row = cols + (((long)n * H + h) * W + v) * KK;
          for (int i = 0; i < K; ++i)
            for (int j = 0; j < K; ++j) {
              int hh = h + i - 1, vv = v + j - 1;
              float* dst = row + (i * K + j) * C;
              if (hh < 0 || hh >= H || vv < 0 || vv >= W) memset(dst, 0, sizeof(float) * C);
              else memcpy(dst, x + (((long)n * H + hh) * W + vv) * C, sizeof(float) * C);
            }
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, O, KK, 1.0f, cols, KK, w, O, 0.0f, y, O);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, KK, O, rows, 1.0f, cols, KK, g, O, 0.0f, gw, O);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, KK, O, 1.0f, g, O, w, O, 0.0f, gcols, KK);
    memset(gx, 0, sizeof(float) * nx);
    for (int n = 0; n < N; ++n)
      for (int h = 0; h < H; ++h)
        for (int v = 0; v < W; ++v) {
          const float* row = gcols + (((long)n * H + h) * W + v) * KK;
          for (int i = 0; i < K; ++i)
            for (int j = 0; j < K; ++j) {
              int hh = h + i - 1, vv = v + j - 1;
              if (hh < 0 || hh >= H || vv < 0 || vv >= W) continue;
              float* dst = gx + (((long)n * H + hh) * W + vv) * C;
              const float* src = row + (i * K + j) * C;
              for (int c = 0; c < C; ++c) dst[c] += src[c];
            }
        }
    printf("TIME %.9f\nCHECK %f %f %f\n", now() - t0, y[(((long)1 * H + 2) * W + 3) * O + 4],
           gx[(((long)5 * H + 6) * W + 7) * C + 8], gw[((1 * K + 1) * C + 9) * O + 10]);
  }
  return 0;
}
