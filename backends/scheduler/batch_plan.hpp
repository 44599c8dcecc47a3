// backends/scheduler/batch_plan.hpp — what one scheduler step asks an executor to run.
//
// Owns: the plan handed from the continuous-batching scheduler to an executor
// (mock: a timing model; native: real forward passes) and the executor's
// answer. Must not touch: scheduling decisions (scheduler.hpp) or model state.
// Thread-safety: plain values; the spans point into the scheduler's sequences
// and stay valid only until the scheduler's next update()/schedule() call.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "kv/block_pool.hpp"
#include "messages/types.hpp"

namespace yard::backends { class output_constraint; }

namespace yard::backends {

using msg::token_id;

// One sequence's work in a step: compute KV for positions
// [start_pos, start_pos + tokens.size()) and, when `sample` is set, sample the
// next token from the logits of the last position.
struct scheduled_sequence {
  std::uint64_t seq_id = 0;              // scheduler handle, stable for the sequence's life
  std::string_view request_id;
  std::span<const token_id> tokens;      // tokens to process this step
  std::uint32_t start_pos = 0;           // position of tokens[0] (= tokens with KV already in blocks)
  std::span<const kv::block_id> block_table;  // block i holds positions [i*block_size, (i+1)*block_size)
  std::span<const token_id> all_tokens;  // the sequence so far: prompt, then outputs
  std::uint32_t num_prompt_tokens = 0;   // of all_tokens, the prompt
  std::uint32_t output_index = 0;        // index (in the output) of the token sampled this step
  bool sample = false;                   // last prompt chunk or a decode step
  bool is_prefill = false;               // tokens come from (re)prefill rather than the last sampled token
  const msg::sampling_params* sampling = nullptr;
  std::span<const token_id> stop_token_ids;  // EOS included: banned while the output is shorter than min_tokens
  std::uint64_t user_tag = 0;            // opaque value given at add time (executor bookkeeping)
  output_constraint* constraint = nullptr;  // structured output: mask the row, then advance with the sample (default none)
  std::uint32_t tokens_left = 0;         // output budget left, this token included
};

struct batch_plan {
  std::vector<scheduled_sequence> seqs;
  std::uint32_t num_prefill_tokens = 0;  // tokens of is_prefill entries
  std::uint32_t num_decode_seqs = 0;     // entries that are plain decode steps
  std::uint64_t active_kv_tokens = 0;    // context of every scheduled sequence after this step
  std::uint32_t block_size = 0;
  std::uint32_t num_blocks = 0;          // pool capacity, for utilisation-based timing
  std::uint32_t num_preempted = 0;       // sequences preempted while building this plan
  bool empty() const { return seqs.empty(); }
};

struct execution_result {
  // One entry per plan entry (ignored where !sample).
  std::vector<token_id> sampled;
  std::vector<float> logprobs;     // same indexing; may be empty when none was requested
  // Same indexing: the sampling.top_logprobs most likely (token, logprob)
  // alternatives, most likely first; may be empty when none was requested.
  std::vector<std::vector<std::pair<token_id, float>>> top_logprobs;
  double model_time_ms = 0.0;      // emulated or measured duration of the step
  // Non-empty: the step failed (a device fault, a failed kernel launch) and computed nothing; the other fields
  // mean nothing then. The scheduler applies no token and reports the failure (step_outcome::fault).
  std::string fault;
};

// Runs a plan. Implementations: backends/mock (timing model), backends/native.
class executor {
 public:
  virtual ~executor() = default;
  virtual execution_result execute(const batch_plan& plan) = 0;
  // Called when a sequence leaves the scheduler (finished, cancelled, or
  // preempted: its blocks are gone and it will be re-prefilled).
  virtual void on_sequence_freed(std::uint64_t seq_id) {}

  // KV block bytes in a portable layout (disaggregated transfer, tier offload).
  // 0 = this executor has no block bytes to move (the defaults below do nothing).
  virtual std::size_t kv_block_bytes() const { return 0; }
  // Copies block `b` (registered under `hash`) into `out` (kv_block_bytes() long). False: `out` does not hold
  // the block (a bad id or size, a failed device copy); callers then export, offload or write through nothing.
  virtual bool read_block(kv::block_id b, kv::block_hash hash, std::span<std::byte> out) const { return false; }
  // Writes `in` (kv_block_bytes() long) into block `b`, which will hold `hash`.
  // An executor that can tell the bytes are not a valid block for `hash`
  // (the mock's synthetic blocks) says so with errc::corrupt.
  virtual status write_block(kv::block_id b, kv::block_hash hash, std::span<const std::byte> in) { return status::success(); }
};

}  // namespace yard::backends
