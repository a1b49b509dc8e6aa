/* Runs an exported digits model on the held-out images through the C API (tdl_model.h):
 * the deployment side of docs/edge.md, with no VM and no compiler. On the workstation:
 *   tdl export examples/edge/export.tdl --fn logits -o cnn-arm.tdlm --target aarch64-linux-gnu \
 *       --target-cpu cortex-a72 --args cnn DATA.csv.gz cnn.safetensors out
 *   aarch64-linux-gnu-gcc -O2 -o predict_model examples/edge/predict_model.c -Itools/capi \
 *       -Lbuild/cross/aarch64-linux-gnu -ltdl_model
 * on the board (or under qemu-aarch64 -cpu cortex-a72), beside libtdl_model.so:
 *   ./predict_model cnn-arm.tdlm out/test_x.npy out/test_y.npy [LOGITS.npy]
 * prints how the model's code runs, the accuracy and the first predictions, and writes the
 * logits (f32 [N, 10]) when asked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tdl_model.h"

/* A C-order .npy file of dtype `descr` ("<f4", "<i8"): its data and shape, or NULL. */
static void* read_npy(const char* path, const char* descr, int64_t shape[2], int* rank) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char head[10];
  void* data = NULL;
  char* dict = NULL;
  if (fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6) != 0 || head[6] != 1) goto done;
  size_t len = (size_t)head[8] | ((size_t)head[9] << 8);
  dict = malloc(len + 1);
  if (!dict || fread(dict, 1, len, f) != len) goto done;
  dict[len] = 0;
  if (!strstr(dict, descr) || strstr(dict, "'fortran_order': True")) goto done;
  const char* s = strstr(dict, "'shape': (");
  if (!s) goto done;
  s += 10;
  *rank = 0;
  int64_t n = 1;
  while (*s && *s != ')' && *rank < 2) {
    char* end;
    long long v = strtoll(s, &end, 10);
    if (end == s) break;
    shape[(*rank)++] = v;
    n *= v;
    s = end;
    while (*s == ',' || *s == ' ') ++s;
  }
  if (*s != ')' || n <= 0) goto done;
  data = malloc((size_t)n * 8);
  if (data && fread(data, strcmp(descr, "<f4") == 0 ? 4 : 8, (size_t)n, f) != (size_t)n) {
    free(data);
    data = NULL;
  }
done:
  free(dict);
  fclose(f);
  return data;
}

static int write_npy(const char* path, const float* data, int64_t rows, int64_t cols) {
  char dict[128];
  int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                   (long long)rows, (long long)cols);
  int total = 10 + n + 1;
  int pad = (64 - total % 64) % 64;
  FILE* f = fopen(path, "wb");
  if (!f) return 1;
  unsigned short hlen = (unsigned short)(n + pad + 1);
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  fputc(hlen & 0xff, f);
  fputc(hlen >> 8, f);
  fwrite(dict, 1, (size_t)n, f);
  for (int i = 0; i < pad; ++i) fputc(' ', f);
  fputc('\n', f);
  size_t count = (size_t)(rows * cols);
  int bad = fwrite(data, 4, count, f) != count;
  return fclose(f) != 0 || bad;
}

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: %s MODEL.tdlm TEST_X.npy TEST_Y.npy [LOGITS.npy]\n", argv[0]);
    return 2;
  }
  tdl_model* m = tdl_model_load(argv[1]);
  if (!m) {
    fprintf(stderr, "error: %s\n", tdl_model_last_error());
    return 1;
  }
  printf("%s\n%s\n", tdl_model_signature(m, 0), tdl_model_code(m, 0));
  int64_t xs[2] = {0, 0}, ys[2] = {0, 0};
  int xr = 0, yr = 0;
  float* x = read_npy(argv[2], "<f4", xs, &xr);
  int64_t* y = read_npy(argv[3], "<i8", ys, &yr);
  if (!x || xr != 2 || xs[1] != 64 || !y || yr != 1 || ys[0] != xs[0]) {
    fprintf(stderr, "error: expected f32 [N, 64] images in %s and i64 [N] labels in %s\n", argv[2], argv[3]);
    return 1;
  }
  tdl_tensor in = {x, TDL_F32, 2, xs}, out;
  if (tdl_model_call(m, "logits", &in, 1, &out, 1) != 0) {
    fprintf(stderr, "error: %s\n", tdl_model_last_error());
    return 1;
  }
  const float* logits = out.data;
  int64_t rows = out.shape[0], cols = out.shape[1], right = 0;
  printf("%lld held-out images, accuracy ", (long long)rows);
  int64_t* pred = malloc(sizeof(int64_t) * (size_t)rows);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t best = 0;
    for (int64_t k = 1; k < cols; ++k)
      if (logits[r * cols + k] > logits[r * cols + best]) best = k;
    pred[r] = best;
    right += best == y[r];
  }
  printf("%.1f%%\nfirst predictions: [", 100.0 * (double)right / (double)rows);
  for (int64_t r = 0; r < rows && r < 16; ++r) printf("%s%lld", r ? ", " : "", (long long)pred[r]);
  printf("]\n");
  int rc = argc == 5 ? write_npy(argv[4], logits, rows, cols) : 0;
  if (rc) fprintf(stderr, "error: cannot write %s\n", argv[4]);
  tdl_model_free_tensor(&out);
  tdl_model_free(m);
  free(pred);
  free(x);
  free(y);
  return rc;
}
