// sim/png_writer.cpp — see png_writer.hpp. PNG: signature, IHDR, one zlib IDAT, IEND.
#include "sim/png_writer.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>

#include <zlib.h>

namespace yard::sim {

namespace {

// 5x7 glyphs, 7 rows, bit 4 = leftmost column. Letters are drawn upper-case.
struct glyph {
  char c;
  std::uint8_t rows[7];
};
constexpr glyph font[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {' ', {0, 0, 0, 0, 0, 0, 0}},                       {'.', {0, 0, 0, 0, 0, 0x0C, 0x0C}},
    {',', {0, 0, 0, 0, 0x0C, 0x04, 0x08}},              {'-', {0, 0, 0, 0x1F, 0, 0, 0}},
    {'_', {0, 0, 0, 0, 0, 0, 0x1F}},                    {':', {0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},  {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},  {'/', {0, 0x01, 0x02, 0x04, 0x08, 0x10, 0}},
    {'=', {0, 0, 0x1F, 0, 0x1F, 0, 0}},                 {'x', {0, 0, 0x11, 0x0A, 0x04, 0x0A, 0x11}},
};

const glyph* find_glyph(char c) {
  if (c != 'x') c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& g : font)
    if (g.c == c) return &g;
  return nullptr;
}

void put_u32(std::string& s, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void chunk(std::string& out, const char* type, const std::string& data) {
  put_u32(out, static_cast<std::uint32_t>(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  put_u32(out, static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

}  // namespace

canvas::canvas(int width, int height, rgb bg) : w_(std::max(1, width)), h_(std::max(1, height)), px_(std::size_t(w_) * h_ * 3) {
  for (std::size_t i = 0; i < px_.size(); i += 3) {
    px_[i] = bg.r;
    px_[i + 1] = bg.g;
    px_[i + 2] = bg.b;
  }
}

void canvas::set(int x, int y, rgb c) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
  auto i = (std::size_t(y) * w_ + x) * 3;
  px_[i] = c.r;
  px_[i + 1] = c.g;
  px_[i + 2] = c.b;
}

void canvas::line(double x0, double y0, double x1, double y1, rgb c, int thickness) {
  double dx = x1 - x0, dy = y1 - y0;
  int n = static_cast<int>(std::ceil(std::max(std::fabs(dx), std::fabs(dy)))) + 1;
  n = std::min(n, 100000);
  for (int i = 0; i <= n; ++i) {
    double t = n ? double(i) / n : 0;
    int x = static_cast<int>(std::lround(x0 + t * dx)), y = static_cast<int>(std::lround(y0 + t * dy));
    for (int a = 0; a < thickness; ++a)
      for (int b = 0; b < thickness; ++b) set(x + a - thickness / 2, y + b - thickness / 2, c);
  }
}

void canvas::rect(int x0, int y0, int x1, int y1, rgb c) {
  line(x0, y0, x1, y0, c);
  line(x1, y0, x1, y1, c);
  line(x1, y1, x0, y1, c);
  line(x0, y1, x0, y0, c);
}

void canvas::fill(int x0, int y0, int x1, int y1, rgb c) {
  for (int y = std::min(y0, y1); y <= std::max(y0, y1); ++y)
    for (int x = std::min(x0, x1); x <= std::max(x0, x1); ++x) set(x, y, c);
}

void canvas::text(int x, int y, const std::string& s, rgb c, int scale) {
  for (std::size_t k = 0; k < s.size(); ++k) {
    const glyph* g = find_glyph(s[k]);
    int gx = x + static_cast<int>(k) * 6 * scale;
    for (int row = 0; row < 7; ++row)
      for (int col = 0; col < 5; ++col) {
        bool on = g ? (g->rows[row] >> (4 - col)) & 1 : (row == 0 || row == 6 || col == 0 || col == 4);
        if (on) fill(gx + col * scale, y + row * scale, gx + col * scale + scale - 1, y + row * scale + scale - 1, c);
      }
  }
}

std::string canvas::encode_png() const {
  std::string raw;
  raw.reserve(std::size_t(h_) * (w_ * 3 + 1));
  for (int y = 0; y < h_; ++y) {
    raw.push_back(0);  // filter: none
    raw.append(reinterpret_cast<const char*>(px_.data()) + std::size_t(y) * w_ * 3, std::size_t(w_) * 3);
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::string z(zlen, '\0');
  compress2(reinterpret_cast<Bytef*>(z.data()), &zlen, reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 6);
  z.resize(zlen);
  std::string out("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_u32(ihdr, static_cast<std::uint32_t>(w_));
  put_u32(ihdr, static_cast<std::uint32_t>(h_));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit, RGB, deflate, no filter, no interlace
  chunk(out, "IHDR", ihdr);
  chunk(out, "IDAT", z);
  chunk(out, "IEND", "");
  return out;
}

status canvas::save_png(const std::string& path) const {
  std::ofstream f(path, std::ios::binary);
  if (!f) return make_error(errc::io_error, "cannot write '" + path + "'");
  auto bytes = encode_png();
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) return make_error(errc::io_error, "short write to '" + path + "'");
  return status::success();
}

}  // namespace yard::sim
