// backends/kv_exchange.hpp — moves KV block bytes between an engine's pool and flat buffers.
//
// Owns: the one place that turns "these block hashes" into bytes (export) and
// bytes into cached blocks of a G1 pool (kv::block_allocator: the pool or its
// owner's client) (import), through an executor's
// read_block/write_block. Used by both engines for disaggregated prefill
// (prefill worker exports, decode worker imports) and by KV tiers.
// Must not touch: scheduling, I/O, transport (callers own the buffers).
// Thread-safety: none; the engine's owner calls it between steps.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <span>

#include "backends/kv_tier_store.hpp"
#include "backends/scheduler/batch_plan.hpp"
#include "common/status.hpp"
#include "kv/block_pool.hpp"

namespace yard::backends {

// Leading blocks of `hashes` cached in `pool` now.
std::size_t cached_blocks(const kv::block_allocator& pool, std::span<const kv::block_hash> hashes);

// Copies the cached blocks of the leading `hashes` into `out` (block i at
// i * executor.kv_block_bytes()), stopping at the first hash that is not
// cached or when `out` is full. Returns how many blocks were copied (0 when the
// executor has no block bytes).
std::size_t export_blocks(const kv::block_allocator& pool, const executor& ex, std::span<const kv::block_hash> hashes,
                          std::span<std::byte> out);

// Stores `data` (hashes.size() blocks of executor.kv_block_bytes()) as cached
// blocks of the chain hashes[0..n) whose first block follows `parent` (absent =
// the chain root). Hashes already cached are kept as they are. Each block is
// allocated, written, committed (a "stored" KV event) and released, so it
// stays cached and evictable like a block computed here. Stops early (the
// count says where) when the pool has no free block. errc::corrupt when the
// executor rejects a block's bytes; errc::bad_request on a size mismatch or an
// executor without block bytes.
result<std::size_t> import_blocks(kv::block_allocator& pool, executor& ex, std::span<const kv::block_hash> hashes,
                                  std::optional<kv::block_hash> parent, std::span<const std::byte> data);

// From now on each block `pool` evicts goes to `sink` (its hash and its bytes,
// read through the executor while still valid): how the tiers below G1 get
// their blocks, in-process (kv_tiering) or by message (a worker's
// kv_block_manager). An empty sink, or an executor without block bytes,
// unhooks. Replaces the pool's eviction callback.
void forward_evictions(kv::block_allocator& pool, const executor& ex,
                       std::function<void(kv::block_hash, std::span<const std::byte>)> sink);

// The question a request's admission puts to the tiers below `pool`: its usable
// full blocks (like the scheduler, never the block holding the last prompt
// token: that token is always computed), how many lead in the pool, and which
// of the others are in the pool too.
onboard_ask make_onboard_ask(const kv::block_allocator& pool, std::span<const kv::block_hash> hashes, std::size_t prompt_tokens);

// Imports the run the tiers read for `ask` (kv_tier_store::fetch) behind its
// G1 prefix. The prefix's blocks (those still cached) and the run's G1 blocks
// are pinned while the others are allocated, so importing cannot evict them; a
// run block marked G1 that has left the pool since ends the run there (its
// bytes were never read). Returns how many of the run's blocks are cached now;
// errors as import_blocks.
result<std::size_t> import_onboarded(kv::block_allocator& pool, executor& ex, const onboard_ask& ask, const onboard_fetch& f);

}  // namespace yard::backends
