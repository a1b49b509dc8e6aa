/* Calls an exported digits model from C through the C API (tools/capi/tdl_model.h):
 *   tdl export examples/serving/digits_model.tdl --fn predict -o digits.tdlm
 *   cc -o predict examples/serving/predict.c -Itools/capi -Lbuild -ltdl_model -Wl,-rpath,build
 *   ./predict digits.tdlm PIXELS...        (64 values in 0..1 per image)
 * prints one line per image: the class, then the ten probabilities. */
#include <stdio.h>
#include <stdlib.h>

#include "tdl_model.h"

int main(int argc, char** argv) {
  if (argc < 2 || (argc - 2) % 64 != 0) {
    fprintf(stderr, "usage: %s MODEL.tdlm [64 pixel values per image ...]\n", argv[0]);
    return 2;
  }
  tdl_model* m = tdl_model_load(argv[1]);
  if (!m) {
    fprintf(stderr, "error: %s\n", tdl_model_last_error());
    return 1;
  }
  printf("%s\n", tdl_model_signature(m, 0));
  int64_t rows = (argc - 2) / 64;
  float* pixels = malloc(sizeof(float) * (size_t)(rows * 64 + 1));
  for (int64_t i = 0; i < rows * 64; ++i) pixels[i] = strtof(argv[2 + i], NULL);
  int64_t shape[2] = {rows, 64};
  tdl_tensor x = {pixels, TDL_F32, 2, shape};
  /* predict returns a record {probs, classes}: two tensors, in that order. */
  tdl_tensor out[2];
  if (tdl_model_num_outputs(m, "predict") != 2 || tdl_model_call(m, "predict", &x, 1, out, 2) != 0) {
    fprintf(stderr, "error: %s\n", tdl_model_last_error());
    tdl_model_free(m);
    return 1;
  }
  const float* probs = out[0].data;
  const int64_t* classes = out[1].data;
  for (int64_t r = 0; r < rows; ++r) {
    printf("%lld", (long long)classes[r]);
    for (int k = 0; k < 10; ++k) printf(" %.9g", probs[r * 10 + k]);
    printf("\n");
  }
  tdl_model_free_tensor(&out[0]);
  tdl_model_free_tensor(&out[1]);
  free(pixels);
  tdl_model_free(m);
  return 0;
}
