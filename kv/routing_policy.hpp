// kv/routing_policy.hpp — the one routing-policy interface (live router and simulator).
//
// Owns: the inputs a policy sees (the request's block hashes and size, every
// candidate worker's cached-prefix overlap and load), its output (the chosen
// worker and a debug score), the per-deployment knobs of every policy, and the
// factory make_policy(name, config, seed). Policy names: "random",
// "round_robin", "least_loaded", "approx" (SGLang-style), "dynamo", "ttft" (ours).
// Must not touch: the KV index or load bookkeeping (callers fill the
// candidates from kv/indexer.hpp and kv/load_tracker.hpp), clocks, I/O.
// Thread-safety: a policy instance is not thread-safe (it owns an RNG and, for
// "approx", a router-side prefix index); one owner calls it.
// Determinism: the same seed and the same call sequence give the same choices.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "kv/block_hash.hpp"

namespace yard::kv {

// Compact worker id used by every kv/ router structure (index into arrays).
using worker_index = std::uint32_t;

// A worker's in-flight work as the router believes it (kv/load_tracker.hpp).
struct worker_load {
  std::uint64_t pending_prefill_tokens = 0;  // prompt tokens sent/queued but not yet prefilled
  std::uint64_t active_decode_blocks = 0;    // KV blocks held by sequences being decoded
  std::uint32_t queue_depth = 0;             // requests in flight (queued + running)
  std::uint32_t total_kv_blocks = 0;         // pool capacity, 0 = unknown
};

// One candidate worker for a request.
struct worker_candidate {
  worker_index worker = 0;
  std::uint32_t overlap_blocks = 0;        // leading blocks of the prompt cached in tier 1 (device)
  std::uint32_t overlap_blocks_any = 0;    // leading blocks cached in any tier (>= overlap_blocks)
  worker_load load;
  std::uint32_t overlap_blocks_g2 = 0;     // of overlap_blocks_any, blocks found at best in tier 2 (host)
  std::uint32_t overlap_blocks_g3 = 0;     // ... in tier 3 (disk); the rest are in tier 1
};

// What a policy is asked to place.
struct route_request {
  std::span<const block_hash> hashes;   // the prompt's full-block hashes, in order
  std::uint32_t prompt_tokens = 0;      // total prompt tokens (hashes cover the full blocks)
  std::uint32_t block_size = 16;        // tokens per block
  std::uint32_t max_tokens = 0;         // completion budget (0 = unknown)
  double now_ms = 0;                    // caller's clock (virtual in the simulator)
};

struct route_decision {
  worker_index worker = 0;
  double score = 0;                     // policy-specific: cost, predicted TTFT ms, load ...
  std::uint32_t overlap_blocks = 0;     // tier-1 overlap the policy saw for the chosen worker
};

// Knobs of every policy; one struct so a deployment config names them flatly.
struct policy_config {
  // dynamo: cost = overlap_weight * prefill_blocks + decode_blocks
  double overlap_weight = 1.0;          // default 1.0
  double temperature = 0.0;             // softmax temperature over normalised costs; 0 = argmin (default 0)

  // approx (SGLang cache-aware): route to least loaded when
  // max_load - min_load > balance_abs_threshold AND max_load > balance_rel_threshold * min_load,
  // else to the best router-side prefix match when its match ratio >= cache_threshold,
  // else to the worker with the least router-side cached blocks.
  std::uint32_t balance_abs_threshold = 32;  // requests (default 32)
  double balance_rel_threshold = 1.5;        // ratio (default 1.5)
  double cache_threshold = 0.3;              // fraction of the prompt's blocks (default 0.3)
  double approx_ttl_ms = 120000;             // router-side cache entry lifetime (default 120 s)
  std::uint64_t approx_capacity_blocks = 1u << 20;  // LRU bound on router-side entries (default 1Mi)

  // ttft (ours): predicted TTFT = queue wait + prefill of the uncached part.
  // prefill_ms(t) = prefill_a * t^2 + prefill_b * t + prefill_c   (default: profile of issue 4)
  double prefill_a = 4.209989e-7;
  double prefill_b = 1.518344e-2;
  double prefill_c = 16.50142;
  // Queue wait of pending prefill tokens: pending / rate, the rate taken from the
  // model at this chunk size (tokens per prefill step, default 2048).
  std::uint32_t prefill_chunk_tokens = 2048;
  // Decode interference: ms a worker's prefill is slowed per active decode block (default 0.002).
  double decode_ms_per_block = 0.002;
  // Lower-tier hits count as partial: a leading block found only in tier 2
  // (host) / tier 3 (disk) counts as this fraction of a tier-1 hit (used by
  // "ttft" and "dynamo"). weight = 1 - onboarding time / recompute time of a
  // block. Defaults from backends/kv_tiering.hpp's modelled bandwidths and the
  // default profile at a 4k-token context, 64-token blocks of 8 MiB (Llama-3-8B
  // fp16): recompute ~1.2 ms/block; G2 at 25 GB/s 0.34 ms -> 0.7; G3 at 8 GB/s
  // 1.05 ms -> 0.1. Set them from measured onboarding cost where known.
  double tier2_hit_weight = 0.7;  // (default 0.7)
  double tier3_hit_weight = 0.1;  // (default 0.1)
  // ttft: the fleet pays for a cache miss beyond this request's own wait (the
  // recomputed prefill occupies the worker, delaying whoever queues next, and its
  // duplicate blocks evict others' prefixes). Score = ttft + miss_penalty x the
  // prefill time of the uncached part (0 = this request's TTFT only). Default
  // 1.0: on the Mooncake traces it keeps the prefix hit rate within 5% of the
  // cache-sticky approx policy at no TTFT p90 cost (docs/sim_results.md).
  double ttft_miss_penalty = 1.0;
  // Candidates whose prediction is within this many ms (or relative fraction) of the
  // best are tied; ties go to the least loaded (default 1 ms / 2 %).
  double tie_ms = 1.0;
  double tie_rel = 0.02;
};

class routing_policy {
 public:
  virtual ~routing_policy() = default;
  virtual std::string_view name() const = 0;

  // Picks one of `candidates` (must not be empty: then an errc::unavailable
  // error). Candidates may come in any order; the choice depends only on their
  // content, order and the policy's RNG state.
  virtual result<route_decision> choose(const route_request& req, std::span<const worker_candidate> candidates) = 0;

  // The caller dispatched `req` to `worker` (after choose, or overriding it).
  // "approx" records the prefix in its router-side index; others ignore it.
  virtual void on_routed(const route_request& req, worker_index worker) {}

  // A worker left: forget anything kept about it.
  virtual void on_worker_removed(worker_index worker) {}
};

// The policy names make_policy accepts, in a stable order.
std::vector<std::string> policy_names();

// A new policy by name; unknown name -> errc::bad_request naming the valid ones.
result<std::unique_ptr<routing_policy>> make_policy(std::string_view name, const policy_config& config,
                                                    std::uint64_t seed);

// A candidate's leading cached blocks with lower-tier hits weighted:
// tier-1 blocks + tier2_hit_weight * g2 + tier3_hit_weight * g3 (<= overlap_blocks_any).
// Inline: every policy calls it once per candidate per request.
inline double weighted_overlap_blocks(const worker_candidate& c, const policy_config& config) {
  const double any = c.overlap_blocks > c.overlap_blocks_any ? c.overlap_blocks : c.overlap_blocks_any;
  const double g23 = double(c.overlap_blocks_g2) + c.overlap_blocks_g3;
  const double lower = any < g23 ? any : g23;
  // Blocks of the run not attributed to tier 2/3 are tier-1 hits.
  return any - lower + config.tier2_hit_weight * c.overlap_blocks_g2 + config.tier3_hit_weight * c.overlap_blocks_g3;
}

// prefill_ms(t) of `config`'s fitted model (shared with the simulator's reports).
double predicted_prefill_ms(const policy_config& config, double tokens);

}  // namespace yard::kv
