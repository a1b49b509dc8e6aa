// Exported models (`tdl export`, SPEC §12; the file format: docs/formats/tdlm.md): one file
// holding, per exported graph fn, its signature, its optimized IR with the top-level values
// it read frozen in as weights (a safetensors section), and object code compiled ahead of
// time for the exporting CPU (the IR is kept so that another CPU recompiles it).
//
// This library writes and reads that file and runs its functions; it needs no VM (the
// C API, tools/capi/, and `tdl serve` use it as the VM's load_model does). Reading checks
// everything before anything runs: the magic, version, section offsets and sizes, a
// SHA-256 of the whole content (a damaged byte is an error, never wrong code), the manifest's
// fields, the weights, and the IR (parsed, verified, and compared with the signature).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "codegen/Codegen.h"
#include "codegen/Selective.h"
#include "runtime/Tensor.h"

namespace tdl::model {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kHeaderSize = 128;

// One dim of a signature: a size, or a symbol (a dim named in the annotation, or `?`).
struct Dim {
  int64_t size = -1;
  std::string sym;  // non-empty: symbolic
};

// One tensor leaf of a signature.
struct TensorSpec {
  std::string name;  // the parameter (`x`), its path inside records and tuples (`p.w`, `t.0`), or the output's
  rt::DType dtype = rt::DType::F32;
  std::vector<Dim> dims;
  std::string typeText() const;  // f32[B, 784]
};

struct Signature {
  std::string name;                  // the graph fn
  std::vector<std::string> params;   // declared parameter names
  std::string inStructure;           // the parameters' shape: "t" a tensor, "(...)" a tuple, "{name:...}" a record
  std::vector<TensorSpec> inputs;    // their tensor leaves in order
  std::string outStructure;          // the result's shape, the same notation
  std::vector<TensorSpec> outputs;   // its tensor leaves in order
  // The symbol every input and output leaf has as its first dim (the batch), or "".
  std::string batchSym() const;
  std::string text() const;  // predict(x: f32[B, 784]) -> f32[B, 10]
};

struct WeightInfo {
  std::string name;    // the key in the weights section
  std::string source;  // where the exported fn first uses it (FILE:LINE:COL), when known
  rt::Tensor value;
};

// What `tdl export` writes (tools/Export.cpp fills it).
struct ExportFn {
  Signature sig;
  std::string ir;                    // the optimized IR, large constants as weight references
  std::string object, entry, table;  // codegen::compileAot's (object: linked into a shared object for a cross target)
};
struct ExportData {
  std::string tdlVersion;
  std::vector<std::string> sources;  // source files, indexed like the IR's loc(file:...)
  codegen::HostTarget target;
  // How the code section holds each fn: "object" (relocatable objects, linked at load time
  // by LLVM's JIT linker: this machine's files) or "shared-object" (linked at export time by
  // the target's toolchain and mapped by the system's dynamic loader: `tdl export --target`,
  // for a loader without LLVM).
  std::string codeFormat = "object";
  std::vector<ExportFn> fns;
  std::vector<WeightInfo> weights;
};
// The bytes of the file.
std::string serialize(const ExportData& d);

// A loaded model. `load` throws rt::Error with a message naming the file.
// Throws rt::Error unless `inputs` fit the signature's input leaves: their count, each
// dtype, rank and known size, one size per named dim across them.
void checkInputs(const Signature& sig, const std::vector<rt::Tensor>& inputs);

class Model {
 public:
  struct Options {
    bool code = true;  // false: check the file only (tdl inspect, the fuzzer); calls are refused
  };
  static std::unique_ptr<Model> load(const std::string& path, const Options& opts);
  static std::unique_ptr<Model> load(const std::string& path) { return load(path, Options{}); }
  // The same from the file's bytes (`path` names it in messages).
  static std::unique_ptr<Model> fromBytes(std::string bytes, const std::string& path, const Options& opts);
  // The SHA-256 a header records for `bytes` (the fuzzer makes mutated files consistent).
  static void sealDigest(std::string& bytes);
  ~Model();

  const std::string& path() const { return path_; }
  // The SHA-256 (hex) of the file's content after its header: which model this is.
  const std::string& digest() const { return digest_; }
  const std::vector<Signature>& signatures() const { return sigs_; }
  const std::vector<WeightInfo>& weights() const { return weights_; }
  const std::string& manifestText() const { return manifest_; }  // the JSON manifest
  // The target the code was compiled for (its LLVM triple) and how it is stored
  // ("object", "shared-object").
  const std::string& triple() const { return triple_; }
  const std::string& codeFormat() const { return codeFormat_; }
  // The runtime kernels the fns may call (a minimal runtime holds these, `tdl runtime`).
  const codegen::KernelSet& kernels() const { return kernels_; }
  // How fn i runs: "object code for CPU" or "recompiled from its IR (why)".
  const std::string& how(size_t i) const { return fns_[i].how; }
  // The index of fn `name`, or -1.
  int find(const std::string& name) const;
  // Runs fn `i` on its input leaves, checked against the signature first (dtype, rank,
  // sizes; a symbol takes one size across the leaves). Throws rt::Error naming the fn.
  std::vector<rt::Tensor> call(size_t i, const std::vector<rt::Tensor>& inputs) const;
  // call's checks alone (checkInputs with fn i's signature).
  void check(size_t i, const std::vector<rt::Tensor>& inputs) const;

 private:
  struct Fn {
    std::unique_ptr<codegen::CompiledFn> code;
    std::string how;
  };
  std::string path_, digest_, manifest_, triple_, codeFormat_;
  codegen::KernelSet kernels_;
  std::vector<std::string> sources_;
  std::vector<Signature> sigs_;
  std::vector<WeightInfo> weights_;
  std::vector<Fn> fns_;
};

// Checks a structure notation (a sequence of items: "t", "(tt)", "{w:tb:t}"): `items`
// receives the number of top-level items and the result is the number of tensor leaves, or
// -1 when it is malformed (unbalanced, empty or repeated field names, nested too deeply).
int structureLeaves(const std::string& s, int& items);

}  // namespace tdl::model
