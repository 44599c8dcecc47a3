// backends/native/model_weights.hpp — a Llama-family model's tensors as f32.
//
// Owns: mapping HF tensor names to the forward pass's weights, shape checks,
// and f16/bf16 -> f32 conversion. f32 tensors whose data is 4-byte aligned are
// used in place from the mmap (no copy); others are converted into owned
// buffers at load time.
// Must not touch: the forward pass (model), tokenization.
// Thread-safety: immutable after load; safe to read from many threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/native/model_config.hpp"
#include "backends/native/safetensors.hpp"

namespace yard::backends::native {

struct layer_weights {
  const float* attn_norm = nullptr;  // [hidden]
  const float* wq = nullptr;         // [n_heads*head_dim][hidden]
  const float* wk = nullptr;         // [n_kv_heads*head_dim][hidden]
  const float* wv = nullptr;         // [n_kv_heads*head_dim][hidden]
  const float* bq = nullptr;         // [n_heads*head_dim] or null (Qwen2 has q/k/v biases)
  const float* bk = nullptr;         // [n_kv_heads*head_dim] or null
  const float* bv = nullptr;         // [n_kv_heads*head_dim] or null
  const float* wo = nullptr;         // [hidden][n_heads*head_dim]
  const float* ffn_norm = nullptr;   // [hidden]
  const float* w_gate = nullptr;     // [intermediate][hidden]
  const float* w_up = nullptr;       // [intermediate][hidden]
  const float* w_down = nullptr;     // [hidden][intermediate]
};

struct model_weights {
  model_config config;
  const float* embed = nullptr;       // [vocab][hidden]
  const float* final_norm = nullptr;  // [hidden]
  const float* lm_head = nullptr;     // [vocab][hidden]; == embed when tied
  std::vector<layer_weights> layers;
  std::size_t weight_bytes_f32 = 0;   // bytes of f32 weights one decode step reads (all but the embedding table)
  std::size_t num_params = 0;

  std::unique_ptr<tensor_set> files;               // keeps the mmap alive
  std::vector<std::unique_ptr<float[]>> owned;     // converted tensors
};

// Loads config.json and the safetensors of `dir`. Errors name the missing or
// mis-shaped tensor or the bad config field.
result<std::unique_ptr<model_weights>> load_model_weights(const std::string& dir);

// Loads from an already parsed config and opened tensors (for tests).
result<std::unique_ptr<model_weights>> load_model_weights(const model_config& cfg, std::unique_ptr<tensor_set> files);

}  // namespace yard::backends::native
