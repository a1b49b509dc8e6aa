// Keyword names SPEC §5 writes where a builtin's own parameter is NumPy's name
// (`linspace(a, b, n)` is NumPy's `linspace(start, stop, num)`): both bind, in Sema's check
// and in the one binder of builtin calls (vm/Builtins.cpp bindBuiltinArgs).
#pragma once

#include <string_view>

namespace tdl {

inline const char* builtinKeywordAlias(std::string_view fn, std::string_view kw) {
  struct Alias {
    const char* fn;
    const char* kw;
    const char* param;
  };
  static constexpr Alias kAliases[] = {{"linspace", "a", "start"}, {"linspace", "b", "stop"}, {"linspace", "n", "num"},
                                       {"where", "c", "cond"},     {"assert", "c", "cond"},    {"tree_leaves", "t", "tree"}};
  for (const Alias& a : kAliases)
    if (fn == a.fn && kw == a.kw) return a.param;
  return nullptr;
}

}  // namespace tdl
