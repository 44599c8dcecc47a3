// backends/native/cuda/cuda_model.hpp — the Llama-family forward pass on a CUDA device.
//
// Owns: device copies of the weights (f16/bf16 matrices and embedding kept 2
// bytes, the rest f32), the paged K/V cache in device memory
// (same layout and block ids as the CPU kv_cache:
// [layer][block][slot][kv_head][head_dim]), device scratch, one cuBLAS handle
// and one stream. forward() mirrors model::forward (model.hpp): embedding,
// RMSNorm, q/k/v projections (cuBLAS sgemm, bias kernel), RoPE, K/V writes
// through the block table, paged attention (GQA, online softmax over tiles
// read through the block table), o projection with the residual fused into
// sgemm (beta = 1), SwiGLU, down projection (+residual), final norm, LM head.
// Must not touch: block allocation, sampling, scheduling.
// Thread-safety: not reentrant; one caller (the executor).
//
// Plain C++ header (no cuda_runtime.h); implemented in cuda_model.cu. Errors
// are returned as strings (empty = success) so nvcc never compiles spdlog.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "backends/native/kv_cache.hpp"
#include "backends/native/model.hpp"
#include "backends/native/model_weights.hpp"

namespace yard::backends::native {

class cuda_model {
 public:
  // Uploads the weights and allocates the device KV cache. `inv_freq` is
  // rope_inv_freq(w.config) (passed in so this library does not depend on
  // yard_backends). Returns null and sets `err` on failure (no device, out of
  // memory, bad shape).
  static std::unique_ptr<cuda_model> create(const model_weights& w, const kv_cache_shape& shape,
                                            const std::vector<float>& inv_freq, std::string& err);
  ~cuda_model();
  cuda_model(const cuda_model&) = delete;
  cuda_model& operator=(const cuda_model&) = delete;

  // Same contract as model::forward; logits (vocab per item with want_logits)
  // are copied back to the host. Returns "" on success, else what failed
  // (a block id outside the cache, a table too short, a CUDA error).
  std::string forward(const std::vector<batch_item>& batch, std::vector<float>& logits);

  // One KV block in the portable layout (backends/native/native_executor.hpp:
  // for each layer, K then V, [block_size][n_kv_heads][head_dim] f32), copied
  // between device and host memory (synchronous). "" on success.
  std::size_t block_bytes() const;
  std::string read_block(std::uint32_t block, void* out) const;
  std::string write_block(std::uint32_t block, const void* in);

  std::size_t weight_bytes() const;  // device bytes of weights
  std::size_t kv_bytes() const;      // device bytes of the K/V cache

 private:
  cuda_model();
  struct impl;
  std::unique_ptr<impl> p_;
};

}  // namespace yard::backends::native
