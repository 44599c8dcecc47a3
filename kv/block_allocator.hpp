// kv/block_allocator.hpp — the G1 block-pool interface a scheduler allocates through.
//
// Owns: nothing; it names the calls. Two implementations: kv::block_pool (the
// pool itself, in the caller's thread: the simulator, benches, a bare engine)
// and actors::g1_pool_client (a worker's engine asking its kv_block_manager
// actor, which owns the pool, by message: kv/pool_call.hpp).
// Must not touch: scheduling policy, tensors, I/O.
// Thread-safety: an implementation has one caller at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "kv/block_hash.hpp"
#include "messages/types.hpp"

namespace yard::kv {

using block_id = std::uint32_t;
inline constexpr block_id no_block = 0xffffffffu;

class block_allocator {
 public:
  // Called right before a cached block is evicted, while its contents are
  // still valid: the block, its hash and its parent (absent = chain root).
  // The callback must not call back into the allocator.
  using evict_fn = std::function<void(block_id, block_hash, std::optional<block_hash> parent)>;

  virtual ~block_allocator() = default;

  virtual std::uint32_t num_blocks() const = 0;
  virtual std::uint32_t block_size() const = 0;
  // Blocks an allocation can get now: never-used + free + evictable cached.
  virtual std::uint32_t num_free() const = 0;
  // Blocks held by at least one sequence.
  virtual std::uint32_t num_referenced() const = 0;

  // Number of leading hashes of `hashes` that are cached now (no side effects).
  virtual std::size_t match_prefix(std::span<const block_hash> hashes) const = 0;
  // The block caching `h` now, if any (no side effects).
  virtual std::optional<block_id> block_of(block_hash h) const = 0;
  // The block caching each of `hashes` now (no_block where none), in one call.
  virtual std::vector<block_id> blocks_of(std::span<const block_hash> hashes) const {
    std::vector<block_id> out;
    out.reserve(hashes.size());
    for (auto h : hashes) out.push_back(block_of(h).value_or(no_block));
    return out;
  }

  // Takes a reference on the cached blocks of the first `n` hashes (all must be
  // cached: call match_prefix first) and appends their ids to `out`; counts
  // `lookup` blocks asked / n hit in the pool's stats.
  virtual void acquire_cached(std::span<const block_hash> hashes, std::size_t n, std::size_t lookup,
                              std::vector<block_id>& out) = 0;
  // Like acquire_cached without the stats: holds blocks so allocation cannot evict them.
  virtual void pin_cached(std::span<const block_hash> hashes, std::size_t n, std::vector<block_id>& out) = 0;
  // Appends `n` fresh blocks (ref 1, unhashed) to `out`, evicting LRU cached
  // blocks as needed (the eviction callback runs for each first). Returns
  // false and changes nothing when fewer than `n` blocks are free.
  virtual bool allocate(std::size_t n, std::vector<block_id>& out) = 0;
  // Registers a full block under `hash` (chained after `parent`); a "stored" event.
  virtual void commit(block_id b, block_hash hash, std::optional<block_hash> parent) = 0;
  // Drops one reference (see block_pool for what happens at zero).
  virtual void release(block_id b) = 0;
  virtual void release_all(std::span<const block_id> blocks) = 0;

  // Tier-1 KV events since the last drain, in order. An allocator whose owner
  // publishes the events itself (a kv_block_manager) hands them to it here and
  // returns none.
  virtual std::vector<msg::kv_event> drain_events() = 0;
  // Every cached hash with its parent (for a resync).
  virtual std::vector<msg::kv_event> snapshot() const = 0;

  // Replaces the eviction callback (empty = none).
  virtual void set_evict_callback(evict_fn fn) = 0;
  // Takes the eviction callback out (none is left), to move it to another allocator.
  virtual evict_fn take_evict_callback() = 0;
};

}  // namespace yard::kv
