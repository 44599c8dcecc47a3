// backends/native/native_engine.hpp — the engine interface over a real Llama-family model.
//
// Owns: the model folder (weights, tokenizer, chat family), its executor
// (native_executor on the CPU, the CUDA executor on a GPU), the EOS/turn-end
// stop ids and engine-chosen seeds. The scheduler, block pool, tiers, stop
// strings and output text are the engine_shell shared with the mock
// (backends/engine_shell.hpp).
// KV tiers (options.tiers, off by default; backends/kv_tiering.hpp): evicted
// blocks' KV is copied to G2/G3 and a new request's prefix found there is
// imported into the cache when the scheduler admits the request, before its
// prefill, when predicted faster than recompute (inside step(): the import's
// wall time is part of the step's model time).
// Must not touch: NATS, actors, sleeping.
// Thread-safety: not thread-safe (see engine).
#pragma once

#include <memory>
#include <string>

#include "backends/engine_shell.hpp"
#include "backends/native/chat_template.hpp"
#include "backends/native/native_executor.hpp"
#include "backends/native/native_prompt_tokenizer.hpp"
#include "backends/native/tokenizer.hpp"

namespace yard::backends {

struct native_engine_options {
  std::uint32_t block_size = 16;               // KV block size in tokens (default 16)
  std::uint32_t num_blocks = 0;                // pool capacity; 0 = from kv_cache_mb (default 0)
  std::uint32_t kv_cache_mb = 256;             // KV memory when num_blocks is 0 (default 256 MiB)
  std::uint32_t max_num_seqs = 64;             // running sequences (default 64)
  std::uint32_t max_num_batched_tokens = 512;  // tokens per step (default 512)
  bool enable_prefix_caching = true;           // (default true)
  bool enable_chunked_prefill = true;          // (default true)
  int threads = 0;                             // attention and BLAS threads; 0 = all cores / BLAS default (default 0)
  bool add_bos = true;                         // tokenize() prepends the tokenizer's BOS (default true)
  std::string device = "cpu";                  // "cpu" | "cuda" (CUDA executor, native/cuda; default cpu)
  // How linear weights are kept: none = as stored (f32, f16 or bf16); int8 = quantised per output row at load
  // (CPU only: an error with device cuda) (default none).
  native::weight_quant quantize = native::weight_quant::none;
  kv_tier_options tiers;                       // G2/G3 KV tiers (default off)
};

class native_engine final : public engine_shell {
 public:
  static result<std::unique_ptr<native_engine>> open(const std::string& model_dir, native_engine_options opts = {});

  std::string name() const override { return text_.name(); }
  result<std::vector<token_id>> tokenize(std::string_view text) const override;
  std::string detokenize(const std::vector<token_id>& tokens) const override;
  result<std::vector<token_id>> apply_chat_template(const std::vector<msg::chat_message>& messages,
                                                    const msg::json_value* tools = nullptr) const override;

  const native::tokenizer& get_tokenizer() const { return text_.vocab(); }
  const native_prompt_tokenizer& prompt_tokens() const { return text_; }
  const native::model_config& config() const { return weights_->config; }
  const native::model_weights& weights() const { return *weights_; }
  native::chat_family family() const { return text_.family(); }

 protected:
  // Token ids inside the vocabulary; the model's end-of-text ids stop it; an engine-chosen seed when sampling.
  status prepare(const engine_request& req, sequence_spec& spec) override;
  std::string token_bytes(token_id t) const override;
  std::string token_label(token_id t) const override;
  double step_time_ms(const step_outcome& o, double wall_ms) override;
  std::size_t vocab_size() const override { return config().vocab_size; }
  std::vector<token_id> end_of_text_ids() const override { return eos_ids_; }

 public:
  bool kv_on_gpu() const override { return opts_.device == "cuda"; }
  chat::tool_call_format default_tool_format() const override {
    return chat::default_tool_call_format(native::chat_family_name(family()));
  }

 private:
  native_engine() = default;

  native_engine_options opts_;
  std::shared_ptr<const native::model_weights> weights_;
  native_prompt_tokenizer text_;  // tokenizer.json and chat template, shared code with routers
  std::vector<token_id> eos_ids_;
  std::uint64_t seed_counter_ = 0x9e3779b97f4a7c15ULL;
};

// Factory used by `yard up --engine native --model DIR`.
result<std::unique_ptr<engine>> make_native_engine(const std::string& model_dir, const native_engine_options& opts = {});

}  // namespace yard::backends
