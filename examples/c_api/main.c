/* Calls the graph fns of classifier.tdl through the C interface that
 *   tdl build --lib classifier.tdl -o libclassifier.so
 * writes (libclassifier.so and classifier.h). Build and run:
 *   cc -O2 main.c -I. -L. -lclassifier -Wl,-rpath,'$ORIGIN' -o main && ./main */
#include <stdio.h>

#include "classifier.h"

int main(int argc, char** argv) {
  if (classifier_init(argc, argv) != 0) {
    fprintf(stderr, "init: %s\n", classifier_last_error());
    return 1;
  }
  /* predict: a batch of 2 rows */
  float xs[8] = {0.0f, 0.125f, 0.25f, 0.375f, 0.5f, 0.625f, 0.75f, 0.875f};
  int64_t xshape[2] = {2, 4};
  tdl_tensor x = {xs, TDL_F32, 2, xshape};
  tdl_tensor probs;
  if (classifier_predict(&x, &probs) != 0) {
    fprintf(stderr, "predict: %s\n", classifier_last_error());
    return 1;
  }
  const float* p = (const float*)probs.data;
  printf("probs [%lld, %lld]\n", (long long)probs.shape[0], (long long)probs.shape[1]);
  for (int i = 0; i < 2; ++i) printf("%.4f %.4f %.4f\n", p[3 * i], p[3 * i + 1], p[3 * i + 2]);
  classifier_free(&probs);

  /* sgd_step: fit y = 2 x0 - x1 + 0.5 */
  float w[2] = {0.0f, 0.0f}, b = 0.0f, lr = 0.1f;
  float data[16], ys[8];
  for (int i = 0; i < 8; ++i) {
    data[2 * i] = (float)(2 * i) / 16.0f;
    data[2 * i + 1] = (float)(2 * i + 1) / 16.0f;
    ys[i] = 2.0f * data[2 * i] - data[2 * i + 1] + 0.5f;
  }
  int64_t wshape[1] = {2}, dshape[2] = {8, 2}, yshape[1] = {8};
  tdl_tensor tx = {data, TDL_F32, 2, dshape}, ty = {ys, TDL_F32, 1, yshape};
  tdl_tensor tlr = {&lr, TDL_F32, 0, NULL};
  float loss = 0.0f;
  for (int step = 0; step < 300; ++step) {
    tdl_tensor tw = {w, TDL_F32, 1, wshape}, tb = {&b, TDL_F32, 0, NULL};
    tdl_tensor out[3]; /* new w, new b, loss */
    if (classifier_sgd_step(&tw, &tb, &tx, &ty, &tlr, out) != 0) {
      fprintf(stderr, "sgd_step: %s\n", classifier_last_error());
      return 1;
    }
    w[0] = ((float*)out[0].data)[0];
    w[1] = ((float*)out[0].data)[1];
    b = *(float*)out[1].data;
    loss = *(float*)out[2].data;
    for (int k = 0; k < 3; ++k) classifier_free(&out[k]);
  }
  printf("loss < 0.01: %s\n", loss < 0.01f ? "true" : "false");
  printf("b near 0.5: %s\n", b > 0.3f && b < 0.7f ? "true" : "false");

  /* A bad call: the wrong shape is an error with a message, not a crash. */
  int64_t bad[2] = {2, 3};
  tdl_tensor xb = {xs, TDL_F32, 2, bad};
  if (classifier_predict(&xb, &probs) != 0) printf("bad shape: %s\n", classifier_last_error());
  return 0;
}
