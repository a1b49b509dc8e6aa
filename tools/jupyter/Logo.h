// The kernelspec's logo (tdl jupyter install): drawn here, as PNG at a given size and as
// SVG, so that no binary file is kept in the repository.
#pragma once
#include <string>

namespace tdl::jupyter {
std::string logoPng(int size);
std::string logoSvg();
}  // namespace tdl::jupyter
