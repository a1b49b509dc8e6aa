// load_model's hook for the `tdl` tool (vm/Builtins.h setModelLoader): models as VM values.
#pragma once

namespace tdl {
void installModelLoader();
}
