// libFuzzer target: the whole frontend (UTF-8 check, lexer, nesting check,
// parser, AstBuilder, Sema) on arbitrary bytes. Any crash, sanitizer report,
// or exception escaping as an internal error is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "frontend/Frontend.h"
#include "frontend/Parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  tdl::runWithLargeStack([&] {
    tdl::Compilation c;
    c.diags.setPrint(false);
    c.load("fuzz.tdl", tdl::SemaOptions{}, &text);
    // Rendering exercises the snippet code on every diagnostic.
    for (const auto& d : c.diags.all()) (void)c.diags.render(d);
  });
  return 0;
}
