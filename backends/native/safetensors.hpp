// backends/native/safetensors.hpp — read and write .safetensors files.
//
// Owns: mmap'ed safetensors files (single or sharded via
// model.safetensors.index.json), their header parsing and validation, dtype
// conversion to f32, and a writer used by `yard mkmodel`.
// Must not touch: model semantics (which tensors a model needs: model_weights).
// Thread-safety: a loaded tensor_set is immutable and safe to read from many
// threads; loading and writing are single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace yard::backends::native {

enum class dtype { f32, f16, bf16 };

std::string_view dtype_name(dtype d);           // "F32", "F16", "BF16"
result<dtype> parse_dtype(std::string_view s);  // accepts F32/F16/BF16 (and f32/f16/bf16)
std::size_t dtype_size(dtype d);

float f16_to_f32(std::uint16_t h);
std::uint16_t f32_to_f16(float f);   // round to nearest even
float bf16_to_f32(std::uint16_t h);
std::uint16_t f32_to_bf16(float f);  // round to nearest even

struct tensor_view {
  std::string name;
  dtype type = dtype::f32;
  std::vector<std::int64_t> shape;
  const std::byte* data = nullptr;  // into an mmap'ed file
  std::size_t nbytes = 0;
  std::string file;                 // which file holds it (for errors)

  std::int64_t numel() const;
  // Converts to f32 into `out` (numel() floats).
  void to_f32(float* out) const;
};

class mapped_file;  // one mmap'ed file

// All tensors of a model folder (one file or several shards).
class tensor_set {
 public:
  // Opens `dir`/model.safetensors, or the shards named by
  // `dir`/model.safetensors.index.json. Errors name the file and the field or
  // tensor that is wrong; nothing stays mapped on failure.
  static result<std::unique_ptr<tensor_set>> open_dir(const std::string& dir);
  // Opens a single file.
  static result<std::unique_ptr<tensor_set>> open_file(const std::string& path);

  ~tensor_set();
  const tensor_view* find(const std::string& name) const;
  const std::map<std::string, tensor_view>& tensors() const { return tensors_; }

 private:
  status add_file(const std::string& path, const std::vector<std::string>* expected);
  std::vector<std::unique_ptr<mapped_file>> files_;
  std::map<std::string, tensor_view> tensors_;
};

// A tensor to write: f32 values stored as `type`.
struct tensor_to_write {
  std::string name;
  std::vector<std::int64_t> shape;
  const float* values = nullptr;  // numel floats
};

// Writes one safetensors file (data offsets 8-byte aligned, header padded).
status write_safetensors(const std::string& path, const std::vector<tensor_to_write>& tensors, dtype type);

// Writes `tensors` as `n_shards` files model-0000i-of-0000n.safetensors plus
// model.safetensors.index.json in `dir` (n_shards == 1: model.safetensors).
status write_safetensors_dir(const std::string& dir, const std::vector<tensor_to_write>& tensors, dtype type,
                             int n_shards);

}  // namespace yard::backends::native
