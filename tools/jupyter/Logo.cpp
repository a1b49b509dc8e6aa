#include "tools/jupyter/Logo.h"

#include <zlib.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace tdl::jupyter {

namespace {

// The design on a 16x16 grid: a dark-blue rounded square, a white T, and an orange 2x2
// "tensor" of cells under the T's arm.
struct Rgba {
  uint8_t r, g, b, a;
};
constexpr Rgba kBack{0x24, 0x3b, 0x55, 0xff}, kFore{0xff, 0xff, 0xff, 0xff}, kAccent{0xf2, 0x8c, 0x28, 0xff},
    kClear{0, 0, 0, 0};

Rgba pixel(double x, double y) {  // x, y in [0, 16)
  auto in = [&](double x0, double y0, double x1, double y1) { return x >= x0 && x < x1 && y >= y0 && y < y1; };
  // Rounded corners of radius 3.
  double cx = x < 3 ? 3 : x > 13 ? 13 : x, cy = y < 3 ? 3 : y > 13 ? 13 : y;
  if ((x - cx) * (x - cx) + (y - cy) * (y - cy) > 9) return kClear;
  if (in(3, 3, 13, 5.5) || in(6.75, 5.5, 9.25, 13)) return kFore;
  if (in(10.5, 7.5, 12, 9) || in(12.5, 7.5, 14, 9) || in(10.5, 9.5, 12, 11) || in(12.5, 9.5, 14, 11)) return kAccent;
  return kBack;
}

void chunk(std::string& out, const char* type, const std::string& data) {
  auto be32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((v >> s) & 0xff);
  };
  be32(static_cast<uint32_t>(data.size()));
  std::string body = std::string(type, 4) + data;
  out += body;
  be32(static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

}  // namespace

std::string logoPng(int size) {
  // RGBA rows, each with filter byte 0; each pixel the mean of 4x4 samples (antialiased).
  std::string raw;
  for (int py = 0; py < size; ++py) {
    raw += '\0';
    for (int px = 0; px < size; ++px) {
      double r = 0, g = 0, b = 0, a = 0;
      for (int sy = 0; sy < 4; ++sy)
        for (int sx = 0; sx < 4; ++sx) {
          Rgba p = pixel((px + (sx + 0.5) / 4) * 16.0 / size, (py + (sy + 0.5) / 4) * 16.0 / size);
          r += p.r * p.a, g += p.g * p.a, b += p.b * p.a, a += p.a;
        }
      auto c = [&](double v) { return static_cast<char>(a > 0 ? static_cast<int>(v / a + 0.5) : 0); };
      raw += c(r), raw += c(g), raw += c(b), raw += static_cast<char>(static_cast<int>(a / 16 + 0.5));
    }
  }
  uLongf n = compressBound(static_cast<uLong>(raw.size()));
  std::vector<Bytef> z(n);
  if (compress2(z.data(), &n, reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 9) != Z_OK)
    throw std::runtime_error("cannot compress the logo");
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  for (int v : {size, size})
    for (int s = 24; s >= 0; s -= 8) ihdr += static_cast<char>((v >> s) & 0xff);
  ihdr += std::string("\x08\x06\x00\x00\x00", 5);  // 8-bit RGBA, deflate, no filter choice, no interlace
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", std::string(reinterpret_cast<const char*>(z.data()), n));
  chunk(png, "IEND", "");
  return png;
}

std::string logoSvg() {
  return R"(<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 16 16">
<rect width="16" height="16" rx="3" fill="#243b55"/>
<rect x="3" y="3" width="10" height="2.5" fill="#ffffff"/>
<rect x="6.75" y="5.5" width="2.5" height="7.5" fill="#ffffff"/>
<g fill="#f28c28"><rect x="10.5" y="7.5" width="1.5" height="1.5"/><rect x="12.5" y="7.5" width="1.5" height="1.5"/>
<rect x="10.5" y="9.5" width="1.5" height="1.5"/><rect x="12.5" y="9.5" width="1.5" height="1.5"/></g>
</svg>
)";
}

}  // namespace tdl::jupyter
