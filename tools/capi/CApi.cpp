// The C API of exported models (tdl_model.h) over model/Model.h: the same loader and calls
// as load_model and `tdl serve`.
#include "tools/capi/tdl_model.h"
#include "tools/capi/CTensor.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "model/Model.h"
#include "runtime/Error.h"

struct tdl_model {
  std::unique_ptr<tdl::model::Model> m;
};

namespace {
thread_local std::string lastError;

int fail(const std::string& msg) {
  lastError = msg;
  return 1;
}

const tdl::model::Signature* find(const tdl_model* m, const char* fn) {
  if (!m || !fn) return nullptr;
  int i = m->m->find(fn);
  return i < 0 ? nullptr : &m->m->signatures()[static_cast<size_t>(i)];
}
}  // namespace

extern "C" {

#define TDL_API __attribute__((visibility("default")))

TDL_API tdl_model* tdl_model_load(const char* path) {
  if (!path) {
    fail("tdl_model_load: the path is NULL");
    return nullptr;
  }
  try {
    auto m = std::make_unique<tdl_model>();
    m->m = tdl::model::Model::load(path);
    return m.release();
  } catch (const std::exception& e) {
    fail(e.what());
  } catch (...) {
    fail("internal error while loading the model");
  }
  return nullptr;
}

TDL_API void tdl_model_free(tdl_model* m) { delete m; }

TDL_API const char* tdl_model_last_error(void) { return lastError.c_str(); }

TDL_API int32_t tdl_model_num_fns(const tdl_model* m) { return m ? static_cast<int32_t>(m->m->signatures().size()) : 0; }

TDL_API const char* tdl_model_fn_name(const tdl_model* m, int32_t i) {
  if (!m || i < 0 || static_cast<size_t>(i) >= m->m->signatures().size()) return nullptr;
  return m->m->signatures()[static_cast<size_t>(i)].name.c_str();
}

TDL_API const char* tdl_model_signature(const tdl_model* m, int32_t i) {
  static thread_local std::string text;
  if (!m || i < 0 || static_cast<size_t>(i) >= m->m->signatures().size()) return nullptr;
  text = m->m->signatures()[static_cast<size_t>(i)].text();
  return text.c_str();
}

TDL_API const char* tdl_model_code(const tdl_model* m, int32_t i) {
  if (!m || i < 0 || static_cast<size_t>(i) >= m->m->signatures().size()) return nullptr;
  return m->m->how(static_cast<size_t>(i)).c_str();
}

TDL_API int32_t tdl_model_num_inputs(const tdl_model* m, const char* fn) {
  const auto* s = find(m, fn);
  return s ? static_cast<int32_t>(s->inputs.size()) : -1;
}

TDL_API int32_t tdl_model_num_outputs(const tdl_model* m, const char* fn) {
  const auto* s = find(m, fn);
  return s ? static_cast<int32_t>(s->outputs.size()) : -1;
}

TDL_API const char* tdl_model_output_name(const tdl_model* m, const char* fn, int32_t k) {
  const auto* s = find(m, fn);
  if (!s || k < 0 || static_cast<size_t>(k) >= s->outputs.size()) return nullptr;
  return s->outputs[static_cast<size_t>(k)].name.c_str();
}

TDL_API int tdl_model_call(const tdl_model* m, const char* fn, const tdl_tensor* inputs, int32_t nIn, tdl_tensor* outputs,
                           int32_t nOut) {
  const auto* s = find(m, fn);
  if (!m) return fail("tdl_model_call: the model is NULL");
  if (!s) return fail(fmt::format("the model has no fn '{}'", fn ? fn : "(null)"));
  if (nIn < 0 || (nIn > 0 && !inputs)) return fail("tdl_model_call: bad inputs");
  if (nIn != static_cast<int32_t>(s->inputs.size()))  // before any input is read
    return fail(fmt::format("{} takes {} input{}, the call gives {}", s->name, s->inputs.size(),
                            s->inputs.size() == 1 ? "" : "s", nIn));
  if (nOut > 0 && !outputs) return fail("tdl_model_call: the outputs are NULL");
  if (nOut != static_cast<int32_t>(s->outputs.size()))
    return fail(fmt::format("{} has {} outputs, the call gives room for {}", s->name, s->outputs.size(), nOut));
  try {
    std::vector<tdl::rt::Tensor> xs;
    for (int32_t i = 0; i < nIn; ++i) xs.push_back(tdl::ctensor::fromC(inputs[i], fmt::format("input {}", i)));
    std::vector<tdl::rt::Tensor> out = m->m->call(static_cast<size_t>(m->m->find(fn)), xs);
    if (out.size() != static_cast<size_t>(nOut)) return fail("internal error: the model returned another number of outputs");
    tdl::ctensor::toC(out, outputs);
  } catch (const std::exception& e) {
    return fail(e.what());
  } catch (...) {
    return fail("internal error in tdl_model_call");
  }
  return 0;
}

TDL_API void tdl_model_free_tensor(tdl_tensor* t) { tdl::ctensor::freeC(t); }

}  // extern "C"
