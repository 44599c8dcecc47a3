// sim/png_writer.hpp — a tiny RGB canvas with lines, rectangles and a 5x7 bitmap font, saved as PNG via zlib.
//
// Owns: pixels of one image and their PNG encoding (8-bit RGB, one IDAT).
// Must not touch: anything but the file it is asked to write.
// Thread-safety: one canvas per thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace yard::sim {

struct rgb {
  std::uint8_t r = 0, g = 0, b = 0;
};

class canvas {
 public:
  canvas(int width, int height, rgb background = {255, 255, 255});
  int width() const { return w_; }
  int height() const { return h_; }
  void set(int x, int y, rgb c);
  void line(double x0, double y0, double x1, double y1, rgb c, int thickness = 1);
  void rect(int x0, int y0, int x1, int y1, rgb c);  // outline
  void fill(int x0, int y0, int x1, int y1, rgb c);
  // Draws ASCII text (unknown glyphs as boxes) with its top-left at (x, y); scale multiplies the 5x7 font.
  void text(int x, int y, const std::string& s, rgb c, int scale = 1);
  static int text_width(const std::string& s, int scale = 1) { return static_cast<int>(s.size()) * 6 * scale; }
  // Encodes the canvas as PNG bytes.
  std::string encode_png() const;
  status save_png(const std::string& path) const;

 private:
  int w_, h_;
  std::vector<std::uint8_t> px_;  // [h][w][3]
};

}  // namespace yard::sim
