// backends/native/mkmodel.hpp — writes random-weight Hugging Face model folders.
//
// Owns: the presets (tiny, small, 100m), deterministic weights from a seed,
// and a byte-level BPE tokenizer.json whose merges are trained on a built-in
// English corpus (so text really compresses). Output: config.json,
// model.safetensors (or shards + index), tokenizer.json,
// tokenizer_config.json.
// Must not touch: loading (the loader reads what this writes like any model).
// Thread-safety: pure functions of their options.
#pragma once

#include <cstdint>
#include <string>

#include "backends/native/model_config.hpp"
#include "backends/native/safetensors.hpp"

namespace yard::backends::native {

struct mkmodel_options {
  std::string preset = "tiny";   // tiny | small | 100m (default tiny)
  std::string out;               // output folder (created)
  std::uint64_t seed = 0;        // weight and nothing-else seed (default 0)
  dtype type = dtype::f32;       // stored dtype (default f32)
  int shards = 1;                // >1 writes model-0000i-of-0000n + index (default 1)
  std::string family = "llama";  // llama (Llama 3 tokens, tied per preset) | qwen2 (ChatML, q/k/v biases)
  int tied = -1;                 // -1 preset default, 0 untied, 1 tied
  std::string rope_scaling;      // "" | "llama3" | "linear" (default "")
  int intermediate_size = 0;     // >0 replaces the preset's (tests: a width that is not a multiple of 8) (default 0)
};

// The config a preset produces (vocab_size filled from the tokenizer).
result<model_config> preset_config(const mkmodel_options& o);

// The tokenizer.json text for a family with `n_merges` merges (fewer if the
// corpus runs out).
std::string make_tokenizer_json(const std::string& family, int n_merges);

status write_random_model(const mkmodel_options& o);

}  // namespace yard::backends::native
