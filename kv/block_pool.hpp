// kv/block_pool.hpp — a paged KV block pool with prefix caching (vLLM style).
//
// Owns: block ids 0..num_blocks-1, their reference counts, the prefix cache
// (block hash -> block id, hashes from kv/block_hash.hpp), the LRU order of
// unreferenced cached blocks, and the KV events (msg::kv_event, tier 1) that
// describe every change to the set of cached hashes. It does not own tensors:
// an executor maps block ids to its own storage (the mock has none).
// Must not touch: scheduling policy (who gets blocks is the scheduler's call),
// I/O, clocks.
// Thread-safety: not thread-safe; one owner (an engine's scheduler, or a
// worker's kv_block_manager actor, which serves the engine by message).
//
// Life of a block: free (never hashed) -> allocated (ref 1, no hash) ->
// committed (full, hash registered, "stored" event) -> released to ref 0: an
// unhashed block goes back to the free list; a hashed block stays cached and
// joins the tail of the LRU list, where a later prefix hit can take it back
// (ref 1 again) or allocation evicts it from the head ("removed" event).
// Memory grows with the blocks actually touched, not with num_blocks, so a
// simulator can hold thousands of mostly idle pools.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kv/block_allocator.hpp"
#include "kv/block_hash.hpp"
#include "messages/types.hpp"

namespace yard::kv {

struct block_pool_options {
  std::uint32_t num_blocks = 16384;   // pool capacity in blocks (default 16384)
  std::uint32_t block_size = 64;      // tokens per block (default 64)
  bool enable_prefix_caching = true;  // keep hashed blocks after release (default true)
  bool emit_events = true;            // record KV events for drain_events() (default true)
};

struct block_pool_stats {
  std::uint64_t lookup_blocks = 0;   // blocks asked for by acquire_cached callers (prefix lookups)
  std::uint64_t hit_blocks = 0;      // of those, served from the cache
  std::uint64_t stored_blocks = 0;   // hashes registered
  std::uint64_t evicted_blocks = 0;  // cached blocks evicted by allocation
  std::uint64_t failed_allocations = 0;
};

class block_pool final : public block_allocator {
 public:
  // The eviction callback (block_allocator::evict_fn) runs when allocation
  // reuses a cached block or evict_all_unreferenced drops one, while its
  // contents are still valid: KV tiers copy the bytes out there.
  explicit block_pool(block_pool_options opts = {});

  // Replaces the eviction callback (empty = none, the default).
  void set_evict_callback(evict_fn fn) override { on_evict_ = std::move(fn); }
  evict_fn take_evict_callback() override { return std::exchange(on_evict_, {}); }

  std::uint32_t num_blocks() const override { return opts_.num_blocks; }
  std::uint32_t block_size() const override { return opts_.block_size; }
  // Blocks an allocation can get now: never-used + free + evictable cached.
  std::uint32_t num_free() const override { return opts_.num_blocks - num_referenced_; }
  // Blocks held by at least one sequence.
  std::uint32_t num_referenced() const override { return num_referenced_; }
  // Of the free blocks, those an allocation takes without evicting a cached one.
  std::uint32_t num_clean() const {
    return opts_.num_blocks - static_cast<std::uint32_t>(meta_.size()) + static_cast<std::uint32_t>(free_.size());
  }
  // Cached (hashed) blocks, referenced or not.
  std::size_t num_cached() const { return cache_.size(); }
  const block_pool_stats& stats() const { return stats_; }

  // Number of leading hashes of `hashes` that are cached now (no side effects).
  std::size_t match_prefix(std::span<const block_hash> hashes) const override;

  // Takes a reference on the cached blocks of the first `n` hashes (all must
  // be cached: call match_prefix first) and appends their ids to `out`.
  // Counts `lookup` blocks asked / n hit in the stats (lookup >= n).
  void acquire_cached(std::span<const block_hash> hashes, std::size_t n, std::size_t lookup,
                      std::vector<block_id>& out) override;
  // Like acquire_cached without touching the lookup/hit stats: holds blocks
  // (e.g. while importing more behind them) so allocation cannot evict them.
  void pin_cached(std::span<const block_hash> hashes, std::size_t n, std::vector<block_id>& out) override;

  // Appends `n` fresh blocks (ref 1, unhashed) to `out`, evicting LRU cached
  // blocks as needed. Returns false and changes nothing when fewer than `n`
  // blocks are free.
  bool allocate(std::size_t n, std::vector<block_id>& out) override;

  // Registers a full block under `hash` (chained after `parent`, absent = the
  // chain root) and records a "stored" event. If another block already holds
  // `hash`, this block stays unhashed (it is freed on release) and nothing is
  // recorded. No-op when prefix caching is off.
  void commit(block_id b, block_hash hash, std::optional<block_hash> parent) override;

  // Drops one reference. At zero a hashed block becomes evictable (LRU tail),
  // an unhashed one returns to the free list.
  void release(block_id b) override;
  void release_all(std::span<const block_id> blocks) override;

  // Events recorded since the last drain, in order; consecutive stores of one
  // chain and consecutive removals are merged into one event each.
  std::vector<msg::kv_event> drain_events() override;

  // Every cached hash with its parent, parents before children where known
  // (for answering an indexer's resync request).
  std::vector<msg::kv_event> snapshot() const override;

  // Evicts every unreferenced cached block (records "removed" events).
  void evict_all_unreferenced();

  std::uint32_t ref_count(block_id b) const { return b < meta_.size() ? meta_[b].ref : 0; }
  std::optional<block_hash> hash_of(block_id b) const;
  // The block caching `h` now, if any (no side effects).
  std::optional<block_id> block_of(block_hash h) const override {
    auto it = cache_.find(h);
    if (it == cache_.end()) return std::nullopt;
    return it->second;
  }

 private:
  struct block_meta {
    block_hash hash = 0;
    block_hash parent = 0;
    std::uint32_t ref = 0;
    block_id prev = no_block;  // LRU links, valid while evictable
    block_id next = no_block;
    bool hashed = false;
    bool has_parent = false;
  };
  void lru_push_back(block_id b);
  void lru_remove(block_id b);
  block_id take_one();  // a free or evicted block, or no_block
  void record_stored(block_hash h, std::optional<block_hash> parent);
  void record_removed(block_hash h);
  void evict(block_id b);  // cached, unreferenced, already off the LRU list

  block_pool_options opts_;
  std::vector<block_meta> meta_;          // grows lazily up to num_blocks
  std::vector<block_id> free_;            // touched, unhashed, ref 0
  std::unordered_map<block_hash, block_id> cache_;
  block_id lru_head_ = no_block, lru_tail_ = no_block;  // evictable cached blocks, oldest first
  std::uint32_t num_referenced_ = 0;
  std::vector<msg::kv_event> events_;
  block_pool_stats stats_;
  evict_fn on_evict_;
};

}  // namespace yard::kv
