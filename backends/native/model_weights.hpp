// backends/native/model_weights.hpp — a Llama-family model's tensors, kept in their own precision.
//
// Owns: mapping HF tensor names to the forward pass's weights, shape checks,
// and what each weight is kept as. Matrices (q/k/v/o, gate/up/down, embedding,
// LM head) stay as stored: f32, f16 or bf16 used in place from the mmap when
// aligned (copied into owned buffers otherwise). load_options can widen them
// to f32 (the old path) or quantise the linear weights and the LM head to int8
// per output row. Norm weights and biases are always f32 (converted if stored
// as halves: they are small).
// Must not touch: the forward pass (model), tokenization.
// Thread-safety: immutable after load; safe to read from many threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/native/model_config.hpp"
#include "backends/native/safetensors.hpp"
#include "backends/native/weight_matrix.hpp"

namespace yard::backends::native {

struct layer_weights {
  const float* attn_norm = nullptr;  // [hidden]
  weight_matrix wq;                  // [n_heads*head_dim][hidden]
  weight_matrix wk;                  // [n_kv_heads*head_dim][hidden]
  weight_matrix wv;                  // [n_kv_heads*head_dim][hidden]
  const float* bq = nullptr;         // [n_heads*head_dim] or null (Qwen2 has q/k/v biases)
  const float* bk = nullptr;         // [n_kv_heads*head_dim] or null
  const float* bv = nullptr;         // [n_kv_heads*head_dim] or null
  weight_matrix wo;                  // [hidden][n_heads*head_dim]
  const float* ffn_norm = nullptr;   // [hidden]
  weight_matrix w_gate;              // [intermediate][hidden]
  weight_matrix w_up;                // [intermediate][hidden]
  weight_matrix w_down;              // [hidden][intermediate]
};

struct load_options {
  bool widen_to_f32 = false;                   // f16/bf16 matrices converted to f32 at load (the old path) (default false)
  weight_quant quantize = weight_quant::none;  // int8: linear weights and LM head per output row (default none)
};

struct model_weights {
  model_config config;
  weight_matrix embed;                // [vocab][hidden] as stored (or widened); never quantised
  const float* final_norm = nullptr;  // [hidden]
  weight_matrix lm_head;              // [vocab][hidden]; the same view as embed when tied and not quantised
  std::vector<layer_weights> layers;
  std::size_t weight_bytes_f32 = 0;   // bytes the weights one decode step reads would take as f32 (all but the embedding table)
  std::size_t weight_bytes = 0;       // bytes one decode step reads as the weights are kept (same set)
  std::size_t num_params = 0;
  load_options options;               // how it was loaded

  std::unique_ptr<tensor_set> files;                 // keeps the mmap alive
  std::vector<std::unique_ptr<std::byte[]>> owned;   // converted or quantised tensors (and int8 scales)
};

// Loads config.json and the safetensors of `dir`. Errors name the missing or
// mis-shaped tensor or the bad config field.
result<std::unique_ptr<model_weights>> load_model_weights(const std::string& dir, const load_options& opts = {});

// Loads from an already parsed config and opened tensors (for tests).
result<std::unique_ptr<model_weights>> load_model_weights(const model_config& cfg, std::unique_ptr<tensor_set> files,
                                                          const load_options& opts = {});

}  // namespace yard::backends::native
