// backends/engine_shell.hpp — what every scheduler-driven engine shares.
//
// Owns: the scheduler (and through it the G1 block pool, until a worker hands
// it to its kv_block_manager actor: hand_over_g1), the KV tiers and
// their admission hook, request admission (ids, empty prompts, duplicates,
// optional precomputed block hashes), and the step loop that turns scheduler
// updates into sequence_outputs: streamed text that never splits a UTF-8
// character, stop strings (backends/stop_strings.hpp: truncate at the match,
// hold back a partial one), tool calls parsed out of the text
// (backends/chat/tool_calls), the end of a constrained value (finish reason
// stop), usage, and the rule that a stop token adds no
// text. KV events, snapshots, cached-prefix lookups and block export/import
// are answered here too. mock_engine and native_engine are this shell with
// their own executor: they differ only in the hooks below (what a token's
// bytes are, per-request admission checks, what a step cost).
// Must not touch: NATS, actors, clocks other than the step's wall time that
// subclasses may measure and the hold after an executor fault.
// Thread-safety: not thread-safe (see engine).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "backends/engine.hpp"
#include "backends/kv_tiering.hpp"
#include "backends/scheduler/scheduler.hpp"
#include "backends/chat/tool_calls/tool_call_stream_parser.hpp"
#include "backends/stop_strings.hpp"
#include "backends/utf8.hpp"

namespace yard::backends {

class engine_shell : public engine {
 public:
  ~engine_shell() override;

  status add_request(engine_request req) override { return add_request_prehashed(std::move(req), {}); }
  // Like add_request, with the prompt's full-block hashes already computed
  // (same block size and cache salt: a router or the simulator hashed it once).
  // Empty: the scheduler hashes the prompt itself.
  status add_request_prehashed(engine_request req, std::vector<kv::block_hash> prompt_hashes) override;
  void cancel(const std::string& request_id) override;
  bool has_work() const override;
  step_result step() override;
  // Set for fault_hold after the executor failed a step (see end_faulted), and until a step runs clean: the
  // worker drains meanwhile. After the hold new requests are taken again, so a transient fault heals by itself
  // and a lasting one (a sticky CUDA error) costs one failed step per hold, whose requests resume elsewhere.
  std::optional<std::string> unavailable_reason() const override;
  static constexpr std::chrono::milliseconds fault_hold{5000};
  msg::load_report load() const override;
  std::vector<msg::kv_event> drain_kv_events() override;
  std::vector<msg::kv_event> kv_snapshot() const override;
  std::uint32_t block_size() const override;
  std::uint32_t max_context() const override;
  std::size_t kv_block_bytes() const override;
  std::size_t cached_blocks(std::span<const kv::block_hash> hashes) const override;
  std::size_t export_kv(std::span<const kv::block_hash> hashes, std::span<std::byte> out) const override;
  result<std::size_t> import_kv(std::span<const kv::block_hash> hashes, std::optional<kv::block_hash> parent,
                                std::span<const std::byte> data) override;
  std::unique_ptr<kv_tier_store> release_tiers(evicted_block_sink evicted) override;
  bool hand_over_g1(const g1_owner& owner) override;
  onboard_ask onboard_question(std::span<const kv::block_hash> hashes, std::size_t prompt_tokens) const override;
  result<std::size_t> onboard_kv(const onboard_ask& ask, const onboard_fetch& f) override;

  // Built from token_bytes() over vocab_size() ids on first use.
  std::shared_ptr<const structured::token_vocabulary> vocabulary() const override;

  const scheduler& get_scheduler() const { return *sched_; }
  // The tiers, when configured, set up and not released (nullptr otherwise).
  const kv_tiering* tiering() const { return tiering_.get(); }

 protected:
  engine_shell();
  // Set once by the subclass (constructor or factory), before any request.
  void set_core(std::unique_ptr<scheduler> sched, std::unique_ptr<executor> exec);
  // Tiers below the pool. `recompute_ms(prompt, uncached)` prices the
  // onboarding decision; `overlapped`: onboarding runs under the prefill.
  // Each admission's modelled copy time adds to pending_onboard_ms().
  status attach_tiers(const kv_tier_options& opts, std::function<double(std::size_t, std::size_t)> recompute_ms,
                      bool overlapped);
  executor& exec() const { return *exec_; }
  // Modelled onboarding time since the last call (resets it).
  double take_onboard_ms() { return std::exchange(pending_onboard_ms_, 0.0); }

  // ---- hooks ----
  // Engine-specific admission: check the request (e.g. token ids in the
  // vocabulary) and finish its sequence_spec (executor tag, seed, end-of-text
  // ids). The shell has filled the common fields already.
  virtual status prepare(const engine_request& req, sequence_spec& spec) = 0;
  // A token's raw output bytes (possibly part of a UTF-8 character).
  virtual std::string token_bytes(token_id t) const = 0;
  // A token's text for logprobs (may be the tokenizer's printable form).
  virtual std::string token_label(token_id t) const { return token_bytes(t); }
  // What the step cost in model time; `wall_ms` is what it took here.
  virtual double step_time_ms(const step_outcome& o, double wall_ms) = 0;
  // Token ids the vocabulary has (0: no constrained output) and which of them
  // end the text; special tokens' token_bytes() are "" (never text).
  virtual std::size_t vocab_size() const { return 0; }
  virtual std::vector<token_id> end_of_text_ids() const { return {}; }

 private:
  struct request_state {
    stop_strings stops;
    std::shared_ptr<output_constraint> constraint;           // structured output (may be null)
    std::unique_ptr<chat::id_source> call_ids;               // tool-call ids, seeded by the request id
    std::unique_ptr<chat::tool_call_stream_parser> tool_calls;  // requests with tools (may be null)
    utf8_stream utf8;
    std::uint32_t prompt_tokens = 0;
    std::uint32_t completion_tokens = 0;  // resume tokens included
    std::uint32_t min_tokens = 0;         // stop strings count only from this many completion tokens on
    bool finished = false;                // ended by a stop string: the scheduler reports it a step later
  };
  std::optional<sequence_output> output_of(sequence_update& u);
  void end_faulted(const step_outcome& o, step_result& r);

  std::unique_ptr<executor> exec_;
  std::unique_ptr<scheduler> sched_;
  std::unique_ptr<kv_tiering> tiering_;  // after exec_ and sched_: unhooks the pool first
  double pending_onboard_ms_ = 0;
  std::optional<std::string> fault_;  // the executor's last step failed (cleared by a clean one)
  std::chrono::steady_clock::time_point fault_at_{};
  mutable std::shared_ptr<const structured::token_vocabulary> vocab_;  // built on first use
  std::unordered_map<std::string, request_state> requests_;
};

}  // namespace yard::backends
