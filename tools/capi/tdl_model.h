/* The C API of TDL's exported models (`tdl export`, docs/serving.md): load a .tdlm file,
 * call its functions, free the results. Link with -ltdl_model (build/libtdl_model.so).
 *
 * Tensors are passed as struct tdl_tensor (the struct of `tdl build --lib` headers): the
 * caller keeps its inputs' memory; results are written to outputs[0..n) with memory that
 * tdl_model_free_tensor releases. A function's inputs are the tensor leaves of its
 * parameters in order (records and tuples flattened), its outputs the leaves of its result
 * (`tdl inspect M.tdlm` lists both). Functions return 0, or 1 (NULL for tdl_model_load)
 * with a message from tdl_model_last_error() (per thread). A model may be called from
 * several threads at once. */
#ifndef TDL_MODEL_H
#define TDL_MODEL_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

#ifndef TDL_DTYPES_DEFINED
#define TDL_DTYPES_DEFINED
enum { TDL_BOOL = 0, TDL_I32 = 1, TDL_I64 = 2, TDL_F32 = 3, TDL_F64 = 4 };
#endif
#ifndef TDL_TENSOR_DEFINED
#define TDL_TENSOR_DEFINED
struct tdl_tensor {
  void* data;      /* elements in C order */
  int32_t dtype;   /* TDL_BOOL (1-byte), TDL_I32, TDL_I64, TDL_F32, TDL_F64 */
  int32_t rank;
  int64_t* shape;  /* rank sizes */
};
#endif
typedef struct tdl_tensor tdl_tensor;

typedef struct tdl_model tdl_model;

/* Reads and checks the file, and links (or, on another CPU, recompiles) its code. */
tdl_model* tdl_model_load(const char* path);
void tdl_model_free(tdl_model* m);
const char* tdl_model_last_error(void);

int32_t tdl_model_num_fns(const tdl_model* m);
const char* tdl_model_fn_name(const tdl_model* m, int32_t i);
/* "predict(x: f32[B, 64]) -> (probs: f32[B, 10], classes: i64[B])" */
const char* tdl_model_signature(const tdl_model* m, int32_t i);
/* How fn i runs: "object code for CPU", "shared object for CPU" (a model exported with
 * --target) or "recompiled from its IR (why)". */
const char* tdl_model_code(const tdl_model* m, int32_t i);
/* -1 when the model has no fn `fn`. */
int32_t tdl_model_num_inputs(const tdl_model* m, const char* fn);
int32_t tdl_model_num_outputs(const tdl_model* m, const char* fn);
const char* tdl_model_output_name(const tdl_model* m, const char* fn, int32_t k);

/* Runs `fn` on n_inputs tensors; writes n_outputs (exactly the fn's count) results. */
int tdl_model_call(const tdl_model* m, const char* fn, const tdl_tensor* inputs, int32_t n_inputs, tdl_tensor* outputs,
                   int32_t n_outputs);
void tdl_model_free_tensor(tdl_tensor* t);

#ifdef __cplusplus
}
#endif
#endif
