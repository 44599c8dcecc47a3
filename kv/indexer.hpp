// kv/indexer.hpp — the router's global KV index: block hash -> (worker, tier) holders.
//
// Owns: which worker holds which block in which tier, as told by KV events;
// the per-worker event sequence check (gap, duplicate, malformed -> resync);
// prefix matching for a request's hash chain.
// Must not touch: routing decisions, load, I/O, clocks (callers log/time).
// Thread-safety: single owner by default (the router actor, the simulator):
// nothing is locked, so a match never waits. With `shared_readers`, any number
// of threads may call find_matches while one or more writers apply events:
// the index is split into `shards` shards by hash, each behind a
// std::shared_mutex; a match holds every shard shared for its few µs, a writer
// holds one shard exclusive for at most `max_events_per_lock` block events.
// Sequence state per worker is always guarded by its own mutex. worker ids are
// compact indexes (< max_workers); the caller maps names to indexes
// (kv/kv_router_core.hpp).
//
// Matching semantics: for a hash chain h[0..n), a worker's tier-1 overlap is
// the largest k such that it holds h[0..k) in tier 1; its any-tier overlap the
// largest k such that it holds each of h[0..k) in some tier; of those k
// blocks, blocks_g2/blocks_g3 are held at best (lowest tier) in tier 2/3.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <optional>
#include <span>
#include <vector>

#include "kv/block_hash.hpp"
#include "kv/routing_policy.hpp"
#include "messages/types.hpp"

namespace yard::kv {

struct indexer_options {
  std::uint32_t shards = 4;                 // power of two (default 4: each match locks every shard shared, so fewer is cheaper)
  std::uint32_t max_workers = 4096;         // worker indexes must be below this (default 4096, max 1<<22)
  std::size_t initial_capacity = 1u << 16;  // slots per shard to start with (default 65536, grows)
  std::uint32_t max_events_per_lock = 128;  // block events applied per exclusive lock hold (default 128, ~10 µs)
  bool shared_readers = false;              // other threads match while one applies: lock the shards (default off: one owner)
};

struct overlap {
  worker_index worker = 0;
  std::uint32_t blocks = 0;      // tier-1 consecutive prefix
  std::uint32_t blocks_any = 0;  // any-tier consecutive prefix
  std::uint32_t blocks_g2 = 0;   // of the any-tier prefix, blocks whose best tier is 2 (host)
  std::uint32_t blocks_g3 = 0;   // ... whose best tier is 3 (disk)
};

// What the caller must do after a batch.
enum class batch_action : std::uint8_t {
  none,             // applied in order
  request_snapshot, // sequence gap, first batch not at 0, or malformed event: ask the worker for a snapshot
  ignored_stale,    // seq older than already applied (duplicate / reordered): dropped
};

struct indexer_stats {
  std::uint64_t block_events = 0;    // stored + removed block hashes applied
  std::uint64_t batches = 0;
  std::uint64_t gaps = 0;
  std::uint64_t stale = 0;
  std::uint64_t malformed = 0;
  std::uint64_t snapshots = 0;
  std::uint64_t new_streams = 0;     // a known worker's stream started over (batch 0 opening with cleared)
};

class kv_indexer {
 public:
  explicit kv_indexer(indexer_options opts = {});
  ~kv_indexer();
  kv_indexer(const kv_indexer&) = delete;
  kv_indexer& operator=(const kv_indexer&) = delete;

  // Applies a worker's batch after checking its sequence number. The first
  // batch of an unknown worker must have seq 0, else a snapshot is requested
  // (the batch is still applied). A gap applies the batch and requests a
  // snapshot; a stale seq drops the batch. Malformed events (unknown kind,
  // tier outside 1..3) are skipped, counted, and request a snapshot.
  // `stream` (msg::kv_event_batch::stream, 0 = not sent): a batch of a stream
  // older than the worker's newest is dropped as stale, unless it opens a
  // stream (seq 0, [cleared] first), which is always taken as the newest (a
  // stepped-back sender clock must not lock a worker out); a batch of a newer
  // stream whose opening was not seen starts over (gap: snapshot requested).
  batch_action apply_batch(worker_index worker, std::uint64_t seq, std::span<const msg::kv_event> events,
                           std::uint64_t stream = 0);

  // Applies events with no sequence check (simulator, approximate feeds).
  // Returns false when some event was malformed (and skipped).
  bool apply_events(worker_index worker, std::span<const msg::kv_event> events);

  // Replaces the worker's whole block set with `events` (stored events) and
  // sets its sequence so that the next expected batch is seq + 1.
  // A snapshot of a stream older than the worker's newest is not applied
  // (returns false): it would bring back a dead incarnation's blocks.
  bool apply_snapshot(worker_index worker, std::uint64_t seq, std::span<const msg::kv_event> events,
                      std::uint64_t stream = 0);
  // True when `stream` is older than the newest stream seen for `worker` (0: never).
  bool stale_stream(worker_index worker, std::uint64_t stream) const;

  // Drops every block of `worker` and forgets its sequence.
  void remove_worker(worker_index worker);

  // Per-worker overlaps for `hashes`: only workers with blocks_any > 0, in
  // the order first seen (deterministic for a given index). Clears `out` first.
  void find_matches(std::span<const block_hash> hashes, std::vector<overlap>& out) const;
  std::vector<overlap> find_matches(std::span<const block_hash> hashes) const;

  // True while a snapshot was requested for `worker` and not yet applied.
  bool needs_resync(worker_index worker) const;

  std::size_t num_blocks() const;                      // distinct hashes indexed
  std::uint64_t worker_blocks(worker_index w) const;   // (hash, tier) entries of one worker
  indexer_stats stats() const;

 private:
  struct shard;
  struct seq_state {
    std::uint64_t next = 0;
    bool known = false;
    bool resync = false;
    std::uint64_t stream = 0;  // newest stream seen (0 = none sent)
  };
  void apply_unlocked_range(worker_index worker, std::span<const msg::kv_event> events, bool& malformed);
  void clear_worker_blocks(worker_index worker);
  shard& shard_for(block_hash h) const;
  // A shard's lock, taken only with shared_readers (one owner needs none).
  std::unique_lock<std::shared_mutex> exclusive(shard& s) const;
  std::shared_lock<std::shared_mutex> shared(const shard& s) const;

  indexer_options opts_;
  std::uint32_t shard_shift_ = 0;
  std::vector<std::unique_ptr<shard>> shards_;
  mutable std::mutex seq_mu_;
  std::vector<seq_state> seq_;  // [max_workers]
  std::unique_ptr<std::atomic<std::int64_t>[]> worker_blocks_;  // [max_workers]
  std::atomic<std::uint64_t> block_events_{0}, batches_{0}, gaps_{0}, stale_{0}, malformed_{0}, snapshots_{0}, streams_{0};
};

}  // namespace yard::kv
