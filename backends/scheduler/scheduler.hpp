// backends/scheduler/scheduler.hpp — vLLM-style continuous batching over a G1 block pool.
//
// Owns: the waiting and running queues, every sequence's tokens, block table
// and block hashes, the kv::block_pool it allocates from until it hands it
// over to another owner (hand_over_pool: a worker's kv_block_manager actor;
// from then on every block call goes through the owner's client), admission (max_num_seqs, max_num_batched_tokens, watermark,
// prefix-cache hits), chunked prefill, and preemption by recompute when the
// pool runs out of blocks. One implementation drives both executors (mock and
// native): schedule() builds a batch_plan, an executor runs it, update() applies
// the sampled tokens, commits full blocks to the prefix cache and reports what
// each sequence produced. step(executor&) does all three.
// Must not touch: tokenization, stop strings, timing (the executor's job).
// Thread-safety: not thread-safe; one owner.
//
// Policy (FCFS within a priority, like vLLM v1; a higher `priority` waits ahead of lower ones, waiting
// raises a priority over time and latency class batch lowers it: see scheduler_config): running sequences are scheduled first, in
// admission order (a decode costs 1 token of budget, an unfinished prefill
// takes what the budget allows); if blocks run out the most recently admitted
// running sequence is preempted — the most recent batch-class one if any; batch-class
// prefill chunks take the token budget after decodes, interactive prefills and
// the admission of waiting interactive requests —
// (blocks released, re-queued at the front of
// waiting, recomputed later — usually mostly from the prefix cache). Waiting
// sequences are admitted in order while seats, budget and blocks (keeping
// `watermark` of the pool free) allow; no admission happens in a step that
// preempted.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/sampling/output_constraint.hpp"
#include "backends/scheduler/batch_plan.hpp"
#include "common/status.hpp"
#include "kv/block_pool.hpp"

namespace yard::backends {

struct scheduler_config {
  std::uint32_t max_num_seqs = 256;              // running sequences (default 256)
  std::uint32_t max_num_batched_tokens = 8192;   // tokens per step (default 8192)
  double watermark = 0.01;                       // pool fraction kept free at admission (default 0.01)
  bool enable_chunked_prefill = true;            // split prompts over steps (default true)
  std::uint32_t max_model_len = 1u << 20;        // prompt + output limit (default 1M)
  // Waiting order (agent hints): a waiting sequence's rank is its priority, plus
  // one per `aging_steps` steps it has waited (no starvation; 0 = no aging),
  // minus `batch_penalty` for latency class batch; ties go to interactive, then
  // to the earlier arrival. (defaults 64 steps, 2)
  std::uint32_t aging_steps = 64;
  std::int32_t batch_penalty = 2;
};

struct sequence_spec {
  std::string request_id;
  std::vector<token_id> tokens;          // prompt followed by resume tokens (already delivered output)
  std::uint32_t num_prompt_tokens = 0;   // of tokens, the prompt (0 = all)
  std::uint32_t max_output_tokens = 16;  // output budget, resume tokens included; 0 = until max_model_len
  std::vector<token_id> stop_token_ids;
  std::optional<std::string> cache_salt;
  std::int32_t priority = 0;             // waiting order: higher first, FCFS within a priority (aged: see scheduler_config)
  msg::latency_class latency = msg::latency_class::interactive;  // batch yields to interactive (default interactive)
  msg::sampling_params sampling;
  std::vector<kv::block_hash> block_hashes;  // optional: precomputed hashes of full blocks of `tokens`
  std::uint64_t user_tag = 0;            // passed through to the executor
  std::shared_ptr<output_constraint> constraint;  // structured output (default none)
};

// What a sequence did in one step.
struct sequence_update {
  std::uint64_t seq_id = 0;
  std::string request_id;
  std::vector<token_id> new_tokens;
  std::vector<float> logprobs;
  std::vector<std::vector<std::pair<token_id, float>>> top_logprobs;  // per new token, when sampling.top_logprobs > 0
  std::optional<msg::finish_kind> finish_reason;
  std::uint32_t prompt_tokens = 0;           // filled when finished
  std::uint32_t completion_tokens = 0;       // resume tokens included
  std::uint32_t cached_tokens = 0;           // prompt tokens served by the prefix cache at first admission
  std::uint64_t user_tag = 0;
};

struct step_outcome {
  std::vector<sequence_update> updates;
  double model_time_ms = 0.0;
  bool ran = false;  // false when nothing was schedulable
  // The executor failed the step (execution_result::fault): nothing was applied, and `faulted` names the
  // request ids of the plan, which stay scheduled (the engine decides: end them, retry).
  std::string fault;
  std::vector<std::string> faulted;
};

struct scheduler_stats {
  std::uint64_t steps = 0;
  std::uint64_t preemptions = 0;
  std::uint64_t prompt_tokens = 0;    // of admitted sequences (first admission)
  std::uint64_t cached_prompt_tokens = 0;
  std::uint64_t computed_tokens = 0;  // prefill + decode tokens executed
};

class scheduler {
 public:
  scheduler(scheduler_config cfg, kv::block_pool_options pool_opts);

  // Queues a sequence. Fails (queues nothing) on an empty or duplicate id, an
  // empty prompt, or one that can never fit the pool or max_model_len (a
  // max_output_tokens over what the context leaves is a bad_request naming
  // max_tokens, not clamped). max_output_tokens 0 becomes max_model_len minus
  // the prompt.
  result<std::uint64_t> add(sequence_spec spec);

  // Marks a sequence cancelled; the next step reports "cancelled" and frees it.
  void cancel(const std::string& request_id);
  // Finishes a sequence now with `reason` (e.g. a stop string matched by the
  // engine); it is reported by the next step. Unknown ids are ignored.
  void finish(const std::string& request_id, msg::finish_kind reason);

  // Called right before a waiting sequence's prefix-cache lookup at admission
  // (first admission and re-admission after preemption, again on each retry),
  // with its full-block hashes and token count, so KV tiers can bring prefix
  // blocks into the pool first (backends/kv_tiering.hpp). The hook may only
  // add cached, unreferenced blocks to the pool. Called only while the whole
  // sequence fits the free blocks (above the watermark). Default none.
  using admit_hook = std::function<void(std::span<const kv::block_hash> hashes, std::size_t tokens)>;
  void set_admit_hook(admit_hook h) { admit_hook_ = std::move(h); }

  // Builds the next plan (may preempt). An empty plan means nothing can run.
  batch_plan schedule();
  // Applies an executor's result for `plan` (which must be the last schedule()).
  std::vector<sequence_update> update(const batch_plan& plan, const execution_result& res);
  // schedule + execute + update; also reports cancelled/finished sequences.
  step_outcome step(executor& ex);

  bool has_work() const { return !seqs_.empty(); }
  std::size_t num_running() const { return running_.size(); }
  std::size_t num_waiting() const { return waiting_.size(); }
  msg::load_report load() const;
  const scheduler_stats& stats() const { return stats_; }
  kv::block_allocator& pool() { return *pool_; }
  const kv::block_allocator& pool() const { return *pool_; }
  // Gives the pool to `owner`, which returns the client to allocate through
  // from now on; the pool's eviction callback moves to the client. False (and
  // `owner` is not called) when the pool was handed over already.
  using pool_owner = std::function<std::unique_ptr<kv::block_allocator>(std::unique_ptr<kv::block_pool>)>;
  bool hand_over_pool(const pool_owner& owner);
  const scheduler_config& config() const { return cfg_; }

 private:
  struct sequence {
    std::uint64_t id = 0;
    sequence_spec spec;
    std::vector<token_id>& tokens() { return spec.tokens; }
    std::uint32_t num_prompt = 0;        // prompt tokens
    std::uint32_t produced = 0;          // outputs so far, resume included
    std::uint32_t num_computed = 0;      // tokens with KV in blocks
    std::uint32_t prefill_end = 0;       // tokens present at the last (re)admission
    std::uint32_t committed_blocks = 0;  // leading blocks registered in the cache
    std::uint32_t cached_tokens = 0;     // prefix hit at first admission
    bool admitted_once = false;
    std::vector<kv::block_id> blocks;
    std::vector<kv::block_hash> hashes;  // hashes of leading full blocks (grows lazily)
    kv::block_hash root = 0;
    std::optional<msg::finish_kind> pending_finish;  // cancelled or finished by the engine
    std::uint64_t enqueued_at = 0;       // schedule() count when it (last) started waiting
    bool requeued = false;               // preempted: waits ahead of everything not yet admitted
    std::uint64_t planned = 0;           // the schedule() that last put it in a plan
  };
  // The waiting order of the policy above; stable, so equal ranks stay FCFS.
  void order_waiting();
  bool run_pass(const std::vector<sequence*>& seqs, std::uint32_t& budget, batch_plan& plan, bool& preempted);
  std::int64_t waiting_rank(const sequence& s) const;
  std::uint32_t blocks_for(std::uint32_t tokens) const { return (tokens + block_size_ - 1) / block_size_; }
  void ensure_hashes(sequence& s, std::size_t n_blocks);
  bool try_admit(sequence& s, std::uint32_t& budget, batch_plan& plan);
  void preempt(sequence& s);
  void free_sequence(sequence& s);
  void add_to_plan(sequence& s, std::uint32_t n_new, batch_plan& plan);
  sequence_update make_finished(sequence& s, msg::finish_kind reason);

  scheduler_config cfg_;
  std::unique_ptr<kv::block_pool> local_pool_;        // the pool, until handed over
  std::unique_ptr<kv::block_allocator> remote_pool_;  // its owner's client, after
  kv::block_allocator* pool_;                         // whichever of the two is set
  std::uint32_t block_size_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<sequence>> seqs_;
  std::unordered_map<std::string, std::uint64_t> by_request_;
  std::deque<sequence*> waiting_;
  std::vector<sequence*> running_;  // admission order
  std::vector<sequence*> pending_finish_;
  executor* freed_listener_ = nullptr;
  admit_hook admit_hook_;
  scheduler_stats stats_;
  std::uint64_t schedules_ = 0;  // schedule() calls: the aging clock
  std::uint64_t plans_ = 0;      // schedule() stamp for sequence::planned
  std::vector<sequence*> pass_first_, pass_later_;  // schedule()'s running passes (kept: no allocation per step)
};

}  // namespace yard::backends
