// Text of values (SPEC §8): print, str(), f-strings and format(x, spec).
#pragma once
#include <string>

#include "vm/Value.h"

namespace tdl::vm {

// What print shows: strings raw at top level, quoted inside containers.
std::string str(const Value& v);
// As inside a container: strings quoted.
std::string repr(const Value& v);
// format(x, spec) with a Python/fmt format spec (`.3f`, `>3`, `05d`); numbers
// format as numbers, everything else as its str() text. Throws rt::Error for
// an invalid spec.
std::string formatWithSpec(const Value& v, const std::string& spec);
// Text made safe inside XML/HTML markup and attribute values (plot's SVG, the notebook's
// HTML tables): < > & " as entities.
std::string xmlEscape(const std::string& s);

}  // namespace tdl::vm
