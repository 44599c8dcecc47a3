// backends/native/weight_matrix.hpp — a linear layer's weights in the precision they are kept in.
//
// Owns: the typed view the forward pass reads weights through (f32, f16, bf16,
// or int8 with one f32 scale per output row), its byte count, widening rows
// to f32, and per-row int8 quantisation at load.
// Must not touch: the memory it points at (model_weights owns it: the mmap or
// a converted buffer), the matrix kernels (weight_kernels).
// Thread-safety: a view is an immutable value; reading it from many threads is safe.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace yard::backends::native {

// How a matrix's elements are stored. i8: value = q * scales[row].
enum class wdtype : std::uint8_t { f32, f16, bf16, i8 };

std::string_view wdtype_name(wdtype t);  // "f32", "f16", "bf16", "int8"
std::size_t wdtype_size(wdtype t);       // bytes per element: 4, 2, 2, 1

// Row-major [rows][cols]: row r is output channel r of `out = in x W^T`.
struct weight_matrix {
  wdtype type = wdtype::f32;
  const void* data = nullptr;     // [rows][cols] elements of `type`; 2-byte aligned for f16/bf16, 4 for f32
  const float* scales = nullptr;  // [rows]; int8 only
  int rows = 0, cols = 0;

  bool empty() const { return data == nullptr; }
  std::size_t numel() const { return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols); }
  // Bytes as kept in memory (elements plus int8 scales): what one pass over the matrix reads.
  std::size_t bytes() const { return numel() * wdtype_size(type) + (type == wdtype::i8 ? sizeof(float) * rows : 0); }
  // The f32 elements; only for an f32 matrix.
  const float* f32() const {
    assert(type == wdtype::f32);
    return static_cast<const float*>(data);
  }
  // Widens row r into out[cols] (int8: times its scale).
  void row_to_f32(int r, float* out) const;
  // The whole matrix widened to f32 ([rows][cols]).
  std::vector<float> to_f32() const;
};

// Per-row symmetric int8 of `w` (any type): scale = max|row| / 127 (1 for an
// all-zero row), q = round-to-nearest(w / scale). Fills q[rows*cols] and
// scales[rows]; the returned view points at them.
weight_matrix quantize_int8(const weight_matrix& w, std::int8_t* q, float* scales);

// How linear weights are kept after load: as stored, or int8 per output row.
enum class weight_quant { none, int8 };

std::string_view weight_quant_name(weight_quant q);  // "none", "int8"
// "none" | "int8"; anything else is errc::bad_request naming the value and the choices.
result<weight_quant> parse_weight_quant(std::string_view s);

}  // namespace yard::backends::native
