// backends/mock/mock_engine.hpp — an engine without a model, for tests, live mock clusters and the simulator.
//
// Owns: a mock executor whose "forward pass" only computes deterministic
// tokens and a step time. Everything else (scheduler, block pool, tiers,
// admission, stop strings, output text) is the engine_shell the native engine
// uses too (backends/engine_shell.hpp).
// Tokenization is byte-level (token = byte). Output token i of a request
// depends only on the prompt tokens, the sampling seed and i (with penalties,
// logit_bias or min_tokens also on the tokens before it: the mock then picks
// greedily from synthetic logits reshaped by backends/sampling, so those
// knobs are observable; temperature/top_p/top_k are ignored), so a migrated
// request (prompt plus resume_tokens) continues with exactly the tokens an
// undisturbed run gives — also after a preemption (recompute).
// Timing: per_token_delay_ms > 0 is the fixed-delay mode (every step reports
// per_token_delay_ms / speedup; the batch limits are effectively unlimited, so
// every request advances one token per step); per_token_delay_ms == 0 is the
// profile mode (backends/timing_model.hpp, limits from the profile).
// KV events are real: every block the pool stores or evicts. Blocks have
// synthetic bytes (a function of the block hash, kv_block_bytes long), so
// disaggregated transfers and tiers move and verify real data.
// KV tiers (options.tiers, off by default): G1 evictions go down to G2/G3
// (backends/kv_tiering.hpp) and a request's prefix found there is onboarded
// when the scheduler admits it, before its prefill, when predicted faster than
// recompute; the modelled copy time
// (block bytes / tier bandwidth, backends/timing_model.hpp onboard_ms) is
// charged to that step: step = max(compute, copy) with
// tiers.overlap_onboarding (layer-wise loading under the prefill, the default),
// else compute + copy, so a simulator sees what onboarding costs.
// Must not touch: clocks or sleeping (the caller paces steps).
// Thread-safety: not thread-safe (see engine).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "backends/engine_shell.hpp"
#include "backends/timing_model.hpp"

namespace yard::backends {

struct mock_engine_options {
  double per_token_delay_ms = 10.0;  // >0: fixed model time per step (default 10 ms); 0: profile timing
  double speedup = 1.0;              // divides every model time (default 1)
  std::uint32_t max_context = 4096;  // longest prompt+output accepted; a request without max_tokens runs to it (default 4096)
  std::uint32_t block_size = 16;     // KV block size in tokens (default 16)
  std::uint32_t num_blocks = 16384;  // KV pool capacity in blocks (default 16384)
  engine_profile profile;            // profile-mode timing and limits (default: default_profile())
  bool enable_prefix_caching = true; // (default true)
  std::uint32_t kv_block_bytes = 4096; // synthetic bytes per KV block for transfers/tiers; 0 = none (default 4096)
  kv_tier_options tiers;             // G2/G3 KV tiers (default off)
};

// Profile-mode options: timing, limits and block geometry from `p`.
mock_engine_options mock_options_from_profile(const engine_profile& p, double speedup = 1.0);

class mock_engine final : public engine_shell {
 public:
  // A tier set-up error (bad G3 dir or key) is logged and the engine runs
  // without tiers; use create() to get the error instead.
  explicit mock_engine(mock_engine_options opts = {});
  ~mock_engine() override;
  // Like the constructor, but a tier set-up error is returned.
  static result<std::unique_ptr<mock_engine>> create(mock_engine_options opts);

  std::string name() const override { return "mock"; }
  result<std::vector<token_id>> tokenize(std::string_view text) const override;
  std::string detokenize(const std::vector<token_id>& tokens) const override;
  // The synthetic content of the block stored under `hash` (what export_kv
  // writes and import_kv insists on), so corruption is always detected.
  static void synthetic_block(kv::block_hash hash, std::span<std::byte> out);
  static std::uint64_t synthetic_word(kv::block_hash hash, std::size_t i);  // 8-byte word i of that content

  const scheduler& sched() const { return get_scheduler(); }

  // The deterministic token at output position `i` for a prompt (exposed so
  // tests can compute the expected stream).
  static token_id expected_token(const std::vector<token_id>& prompt, std::uint64_t seed, std::size_t i);
  // expected_token split in two: the per-prompt state, then the token.
  static std::uint64_t prompt_state(const std::vector<token_id>& prompt, std::uint64_t seed);
  static token_id token_at(std::uint64_t state, std::size_t i);

 protected:
  status prepare(const engine_request& req, sequence_spec& spec) override;
  std::string token_bytes(token_id t) const override { return std::string(1, static_cast<char>(t & 0xff)); }
  std::size_t vocab_size() const override { return 256; }  // one token per byte; no end-of-text token
  double step_time_ms(const step_outcome& o, double wall_ms) override;

 private:
  class mock_executor;
  // The synthetic logits row [256] for output position `i`: expected token 8,
  // the other alphabet letters in [0, 7) (so a penalty of 2 on it can let one win), every other byte -10.
  static void mock_logits(std::uint64_t state, std::size_t i, std::vector<float>& out, bool all_printable = false);
  mock_engine_options opts_;
  status tier_status_;  // tier set-up result (create() returns it)
};

}  // namespace yard::backends
