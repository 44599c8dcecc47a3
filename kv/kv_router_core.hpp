// kv/kv_router_core.hpp — the router's pure logic in one object: index + load + policy.
//
// Owns: the worker-name -> compact-index map, the KV index (event-fed
// kv_indexer, or approx_indexer for engines without events), the load
// tracker, the routing policy, and the per-worker event queues that keep one
// worker's event flood from starving routing or other workers' events.
// Must not touch: NATS, CAF, clocks (time comes in as now_ms), threads. The
// router actor owns one core and forwards its messages to it.
// Thread-safety: not thread-safe; one owner (an actor) calls everything. The
// kv_indexer inside is itself thread-safe, so an owner may hand index() to
// an ingest thread while it keeps routing (see kv/README.md).
//
// Event flow: on_kv_events() checks nothing and only queues (bounded per
// worker: an overflowing worker's queue is dropped and a snapshot requested);
// pump(budget) applies queued batches round-robin across workers, at most
// `budget` block events per call. The owner calls pump() between messages, so
// a route() never waits for more than one pump slice however many events
// arrive. route() itself never applies events.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.hpp"
#include "kv/approx_indexer.hpp"
#include "kv/indexer.hpp"
#include "kv/load_tracker.hpp"
#include "kv/routing_policy.hpp"
#include "kv/session_affinity.hpp"
#include "messages/types.hpp"

namespace yard::kv {

struct kv_router_options {
  std::string policy = "ttft";              // policy name (default "ttft")
  policy_config policy_cfg;
  std::uint64_t seed = 1;                   // policy RNG seed (default 1)
  std::uint32_t block_size = 16;            // tokens per block (default 16)
  bool use_kv_events = true;                // false: approximate mode, assume routed = cached (default true)
  approx_indexer_options approx;            // approximate mode's TTL and capacity
  indexer_options index;
  std::uint64_t max_queued_events_per_worker = 1u << 20;  // block events queued per worker before drop + resync (default 1Mi)
  session_affinity_options sessions;        // keeping a session_id on its worker (kv/session_affinity.hpp)
};

struct route_input {
  std::string request_id;
  std::vector<block_hash> hashes;   // kv::hash_blocks(prompt, block_size, salt)
  std::uint32_t prompt_tokens = 0;
  std::uint32_t max_tokens = 0;
  double now_ms = 0;
  std::string_view session_id;      // agent hint: keep this conversation on one worker ("" = none)
};

struct route_output {
  std::string worker_id;
  worker_index worker = 0;
  double score = 0;
  std::uint32_t overlap_blocks = 0;
  bool sticky = false;              // kept on the session's worker
};

// Ask `worker_id` for a full snapshot of its KV blocks.
struct resync_needed {
  std::string worker_id;
};

class kv_router_core {
 public:
  static result<std::unique_ptr<kv_router_core>> create(kv_router_options opts);

  // Workers: a worker is routable once added (heartbeat seen).
  worker_index add_worker(const std::string& worker_id);
  void remove_worker(const std::string& worker_id);
  bool has_worker(const std::string& worker_id) const { return ids_.count(worker_id) != 0; }
  std::size_t num_workers() const { return ids_.size(); }
  // Tokens per block: what a prompt routed here is hashed with.
  std::uint32_t block_size() const { return opts_.block_size; }

  // Picks a worker and records the dispatch (load, approximate index). The
  // caller sends the request; it reports completion via on_first_token/on_complete.
  // No workers -> errc::unavailable.
  result<route_output> route(const route_input& in);

  // Queues a worker's batch (unknown worker: added). Returns a resync request
  // when the worker's queue overflowed (its queue is dropped).
  std::optional<resync_needed> on_kv_events(msg::kv_event_batch batch);
  // Applies up to `budget` queued block events round-robin across workers;
  // returns the workers that need a snapshot (gap, malformed).
  std::vector<resync_needed> pump(std::uint64_t budget = 65536);
  std::uint64_t queued_events() const { return queued_total_; }
  // A worker's snapshot answer: replaces its queued and indexed blocks. One of
  // a stream older than the worker's newest (`stream`, 0 = unknown) changes
  // nothing and returns false.
  bool on_snapshot(const std::string& worker_id, std::uint64_t seq, const std::vector<msg::kv_event>& events,
                   std::uint64_t stream = 0);

  void on_load_report(const msg::load_report& report);
  // Another router replica dispatched `request_id` to `worker_id` (shared
  // in-flight accounting): counted like our own dispatch until the worker's
  // next load report supersedes it. Unknown workers are ignored.
  void on_remote_dispatch(const std::string& worker_id, const std::string& request_id, std::uint64_t prefill_tokens,
                          std::uint64_t total_tokens);
  void on_first_token(const std::string& request_id) { load_.on_first_token(request_id); }
  void on_complete(const std::string& request_id) { load_.on_complete(request_id); }

  const kv_indexer& index() const { return *index_; }
  kv_indexer& index() { return *index_; }
  const load_tracker& loads() const { return load_; }
  // Dispatches still tracked (bounded: see load_tracker).
  std::size_t tracked_requests() const { return load_.in_flight(); }
  routing_policy& policy() { return *policy_; }
  session_affinity_stats session_stats() const { return sessions_.stats(); }
  std::optional<worker_index> index_of(const std::string& worker_id) const;

 private:
  explicit kv_router_core(kv_router_options opts, std::unique_ptr<routing_policy> p);
  struct queued {
    std::deque<msg::kv_event_batch> batches;
    std::uint64_t events = 0;
  };

  kv_router_options opts_;
  std::unique_ptr<routing_policy> policy_;
  std::unique_ptr<kv_indexer> index_;
  approx_indexer approx_;
  session_affinity sessions_;
  load_tracker load_;
  std::unordered_map<std::string, worker_index> ids_;
  std::vector<std::string> names_;         // [worker_index] -> id ("" = free)
  std::vector<worker_index> free_;
  std::vector<queued> queues_;             // [worker_index]
  std::uint64_t queued_total_ = 0;
  std::size_t pump_cursor_ = 0;
  // Brings cands_ up to date: zeroes the overlaps the last route set, takes
  // the loads that changed since (or rebuilds after a worker joined or left).
  void refresh_candidates();

  std::vector<overlap> scratch_;
  // Every live worker in index order, its load kept current through
  // load_tracker::take_changed; overlaps are zero except at touched_, so a
  // route costs O(matches) here and the policy's own loop.
  std::vector<worker_candidate> cands_;
  std::vector<std::uint32_t> cand_pos_;  // [worker_index] -> position in cands_, or no_candidate
  std::vector<std::uint32_t> touched_;   // positions whose overlaps the last route set
  bool cands_stale_ = true;              // a worker joined or left since the last rebuild
  static constexpr std::uint32_t no_candidate = ~0u;
};

}  // namespace yard::kv
