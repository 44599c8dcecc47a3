// backends/native/model_config.hpp — a Llama-family config.json.
//
// Owns: parsing and validating config.json for the architectures the native
// engine runs (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM).
// Must not touch: weights, tokenizer.
// Thread-safety: plain value.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace yard::backends::native {

struct model_config {
  std::string architecture;        // "LlamaForCausalLM", "Qwen2ForCausalLM", ...
  std::string model_type;          // "llama", "qwen2", "mistral"
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;     // default num_attention_heads
  int head_dim = 0;                // default hidden_size / num_attention_heads
  int max_position_embeddings = 2048;
  float rms_norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  // rope_scaling: "" (none), "linear" or "llama3".
  std::string rope_scaling_type;
  float rope_factor = 1.0f;
  float rope_low_freq_factor = 1.0f;
  float rope_high_freq_factor = 4.0f;
  int rope_original_max_position = 8192;
  bool tie_word_embeddings = false;  // default false
  int bos_token_id = -1;
  std::vector<int> eos_token_ids;
  std::string torch_dtype;           // as written, informational

  int q_dim() const { return num_attention_heads * head_dim; }
  int kv_dim() const { return num_key_value_heads * head_dim; }
};

// Parses config.json text. Errors name the missing or invalid field.
result<model_config> parse_model_config(std::string_view json_text);
// Reads `dir`/config.json.
result<model_config> load_model_config(const std::string& dir);
// Serialises (for mkmodel).
std::string model_config_json(const model_config& c);

// RoPE inverse frequencies (head_dim/2 values) with the config's theta and scaling.
std::vector<float> rope_inv_freq(const model_config& c);

}  // namespace yard::backends::native
