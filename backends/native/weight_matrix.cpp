#include "backends/native/weight_matrix.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "backends/native/safetensors.hpp"

namespace yard::backends::native {

std::string_view wdtype_name(wdtype t) {
  switch (t) {
    case wdtype::f32: return "f32";
    case wdtype::f16: return "f16";
    case wdtype::bf16: return "bf16";
    case wdtype::i8: return "int8";
  }
  return "?";
}

std::size_t wdtype_size(wdtype t) {
  switch (t) {
    case wdtype::f32: return 4;
    case wdtype::f16:
    case wdtype::bf16: return 2;
    case wdtype::i8: return 1;
  }
  return 0;
}

void weight_matrix::row_to_f32(int r, float* out) const {
  const std::size_t off = static_cast<std::size_t>(r) * cols;
  switch (type) {
    case wdtype::f32:
      std::memcpy(out, static_cast<const float*>(data) + off, sizeof(float) * cols);
      break;
    case wdtype::f16: {
      const auto* p = static_cast<const std::uint16_t*>(data) + off;
      for (int i = 0; i < cols; ++i) out[i] = f16_to_f32(p[i]);
      break;
    }
    case wdtype::bf16: {
      const auto* p = static_cast<const std::uint16_t*>(data) + off;
      for (int i = 0; i < cols; ++i) out[i] = bf16_to_f32(p[i]);
      break;
    }
    case wdtype::i8: {
      const auto* p = static_cast<const std::int8_t*>(data) + off;
      const float s = scales[r];
      for (int i = 0; i < cols; ++i) out[i] = static_cast<float>(p[i]) * s;
      break;
    }
  }
}

std::vector<float> weight_matrix::to_f32() const {
  std::vector<float> out(numel());
  for (int r = 0; r < rows; ++r) row_to_f32(r, out.data() + static_cast<std::size_t>(r) * cols);
  return out;
}

weight_matrix quantize_int8(const weight_matrix& w, std::int8_t* q, float* scales) {
  std::vector<float> row(static_cast<std::size_t>(w.cols));
  for (int r = 0; r < w.rows; ++r) {
    w.row_to_f32(r, row.data());
    float mx = 0;
    for (float v : row) mx = std::max(mx, std::fabs(v));
    const float s = mx > 0 ? mx / 127.0f : 1.0f;
    const float inv = 1.0f / s;
    std::int8_t* qr = q + static_cast<std::size_t>(r) * w.cols;
    for (int i = 0; i < w.cols; ++i)
      qr[i] = static_cast<std::int8_t>(std::clamp(std::nearbyint(row[i] * inv), -127.0f, 127.0f));
    scales[r] = s;
  }
  return weight_matrix{wdtype::i8, q, scales, w.rows, w.cols};
}

std::string_view weight_quant_name(weight_quant q) { return q == weight_quant::int8 ? "int8" : "none"; }

result<weight_quant> parse_weight_quant(std::string_view s) {
  if (s == "none" || s.empty()) return weight_quant::none;
  if (s == "int8") return weight_quant::int8;
  return make_error(errc::bad_request, "unknown --quantize value '" + std::string(s) + "' (expected none or int8)");
}

}  // namespace yard::backends::native
