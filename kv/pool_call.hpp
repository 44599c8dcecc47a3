// kv/pool_call.hpp — a block pool's calls as values, for an owner that serves them by message.
//
// Owns: the shape of one call on a G1 block pool made by another actor (a
// worker's engine asking its kv_block_manager, which owns the pool:
// actors/g1_pool_client) and serve(), which applies a call to the pool.
// Writes that need no answer (commit, release) are queued by the caller and
// ride in front of its next call, so a step costs one message per question,
// not one per block; the answer carries the counts after the call and the
// blocks the call evicted, in order, whose bytes the caller still holds.
// Must not touch: actors, threads, tensors (the caller copies evicted bytes).
// Thread-safety: plain values; serve() has the pool's one owner call it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "kv/block_pool.hpp"

namespace yard::kv {

// A call with no answer: applied before the call it rides with, in order.
struct pool_write {
  enum class kind : std::uint8_t { commit, release };
  kind what = kind::release;
  block_id block = no_block;
  block_hash hash = 0;                // commit
  std::optional<block_hash> parent;   // commit: absent = the chain root
};

// The question a call asks after its writes.
enum class pool_query : std::uint8_t {
  sync,            // nothing: apply the writes, report the counts
  match_prefix,    // count: leading `hashes` cached
  block_of,        // blocks: the block caching hashes[0], if any (0 or 1 id)
  blocks_of,       // blocks: the block caching each of `hashes` (no_block where none)
  acquire_cached,  // blocks: references on the first `n` of `hashes` (a prefix hit of `lookup` asked)
  pin_cached,      // blocks: references on the first `n` of `hashes` (no stats)
  allocate,        // ok, blocks: `n` fresh blocks, or none and ok = false; then up to `extra` more that
                   // need no eviction (a grant the caller keeps for later allocations)
  drain_events,    // the tier-1 events since the last drain go to the owner (it publishes them)
  snapshot,        // events: every cached hash with its parent
};

struct pool_call {
  std::vector<pool_write> writes;
  pool_query query = pool_query::sync;
  std::vector<block_hash> hashes;
  std::size_t n = 0;
  std::size_t lookup = 0;
  std::size_t extra = 0;
};

struct evicted_block {
  block_id block = no_block;
  block_hash hash = 0;
  std::optional<block_hash> parent;
};

struct pool_answer {
  std::size_t count = 0;              // match_prefix
  bool ok = true;                     // allocate
  std::vector<block_id> blocks;       // acquire_cached, pin_cached, allocate, block_of
  std::vector<msg::kv_event> events;  // snapshot
  std::vector<evicted_block> evicted; // cached blocks this call evicted, in order (their bytes are still valid)
  std::uint32_t num_free = 0;         // after the call
  std::uint32_t num_referenced = 0;
  std::uint32_t refused = 0;          // writes that named a block out of range or not held (skipped)
};

// Applies `call` to `pool` (which must have no eviction callback of its own:
// evictions are reported in the answer). drain_events puts the events in
// `*drained` (the owner publishes them). A pin or acquire of more hashes than
// are cached takes what is cached; a write naming a block out of range or
// with no reference is skipped and counted in `refused`, never applied.
pool_answer serve(block_pool& pool, const pool_call& call, std::vector<msg::kv_event>& drained);

}  // namespace yard::kv
