// backends/native/native_engine.hpp — the engine interface over a real Llama-family model.
//
// Owns: the model folder (weights, tokenizer, chat family), the shared
// continuous-batching scheduler (backends/scheduler, with its kv::block_pool)
// driving a native_executor, and per-request output state: streaming
// detokenization that never splits UTF-8, stop strings (held back while they
// may still match), EOS/turn-end stop ids, usage counts.
// KV tiers (options.tiers, off by default; backends/kv_tiering.hpp): evicted
// blocks' KV is copied to G2/G3 and a new request's prefix found there is
// imported into the cache when the scheduler admits the request, before its
// prefill, when predicted faster than recompute (inside step(): the import's
// wall time is part of the step's model time).
// Must not touch: NATS, actors, sleeping.
// Thread-safety: not thread-safe (see engine).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "backends/engine.hpp"
#include "backends/kv_tiering.hpp"
#include "backends/native/chat_template.hpp"
#include "backends/native/native_executor.hpp"
#include "backends/native/tokenizer.hpp"
#include "backends/scheduler/scheduler.hpp"

namespace yard::backends {

struct native_engine_options {
  std::uint32_t block_size = 16;               // KV block size in tokens (default 16)
  std::uint32_t num_blocks = 0;                // pool capacity; 0 = from kv_cache_mb (default 0)
  std::uint32_t kv_cache_mb = 256;             // KV memory when num_blocks is 0 (default 256 MiB)
  std::uint32_t max_num_seqs = 64;             // running sequences (default 64)
  std::uint32_t max_num_batched_tokens = 512;  // tokens per step (default 512)
  bool enable_prefix_caching = true;           // (default true)
  bool enable_chunked_prefill = true;          // (default true)
  int threads = 0;                             // attention threads; 0 = all cores (default 0)
  bool add_bos = true;                         // tokenize() prepends the tokenizer's BOS (default true)
  std::string device = "cpu";                  // "cpu" | "cuda" (CUDA executor, native/cuda; default cpu)
  kv_tier_options tiers;                       // G2/G3 KV tiers (default off)
};

class native_engine final : public engine {
 public:
  static result<std::unique_ptr<native_engine>> open(const std::string& model_dir, native_engine_options opts = {});

  std::string name() const override { return "native:" + model_name_; }
  result<std::vector<token_id>> tokenize(std::string_view text) const override;
  std::string detokenize(const std::vector<token_id>& tokens) const override;
  result<std::vector<token_id>> apply_chat_template(const std::vector<msg::chat_message>& messages) const override;
  status add_request(engine_request req) override;
  void cancel(const std::string& request_id) override;
  bool has_work() const override { return sched_->has_work(); }
  step_result step() override;
  msg::load_report load() const override;
  std::vector<msg::kv_event> drain_kv_events() override;
  std::vector<msg::kv_event> kv_snapshot() const override;
  std::uint32_t block_size() const override { return opts_.block_size; }
  std::uint32_t max_context() const override { return sched_->config().max_model_len; }
  std::size_t kv_block_bytes() const override { return exec_->kv_block_bytes(); }
  std::size_t cached_blocks(std::span<const kv::block_hash> hashes) const override;
  std::size_t export_kv(std::span<const kv::block_hash> hashes, std::span<std::byte> out) const override;
  result<std::size_t> import_kv(std::span<const kv::block_hash> hashes, std::optional<kv::block_hash> parent,
                                std::span<const std::byte> data) override;

  const native::tokenizer& get_tokenizer() const { return tok_; }
  const native::model_config& config() const { return weights_->config; }
  const native::model_weights& weights() const { return *weights_; }
  native::chat_family family() const { return family_; }
  const scheduler& get_scheduler() const { return *sched_; }
  const kv_tiering* tiering() const { return tiering_.get(); }

 private:
  native_engine() = default;
  struct request_state {
    std::vector<std::string> stop;
    native::utf8_stream utf8;
    std::string text;          // decoded output so far
    std::size_t emitted = 0;   // bytes of text already sent
    std::uint32_t prompt_tokens = 0;
    std::uint32_t completion_tokens = 0;  // resume tokens included
    std::uint32_t min_tokens = 0;         // stop strings count only from this many completion tokens on
    bool finished = false;     // finished by a stop string (scheduler reports it a step later)
  };

  native_engine_options opts_;
  std::string model_name_;
  std::shared_ptr<const native::model_weights> weights_;
  native::tokenizer tok_;
  native::chat_family family_ = native::chat_family::plain;
  std::vector<token_id> eos_ids_;
  std::unique_ptr<executor> exec_;  // native_executor (cpu) or the CUDA executor
  std::unique_ptr<scheduler> sched_;
  std::unique_ptr<kv_tiering> tiering_;  // after exec_ and sched_: unhooks the pool first
  std::map<std::string, request_state> states_;
  std::uint64_t seed_counter_ = 0x9e3779b97f4a7c15ULL;
};

// Factory used by `yard up --engine native --model DIR`.
result<std::unique_ptr<engine>> make_native_engine(const std::string& model_dir, const native_engine_options& opts = {});

}  // namespace yard::backends
