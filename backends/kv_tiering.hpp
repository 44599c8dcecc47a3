// backends/kv_tiering.hpp — KV tiers (G2 host, G3 disk) wired synchronously under an engine's G1 block pool.
//
// Owns: a kv_tier_store (backends/kv_tier_store.hpp: the tiers and every
// decision about them) while the engine keeps it, and the G1 side of the
// wiring: evicted blocks' bytes go to the store (kv_exchange's
// forward_evictions), and onboarding a request's prefix when the
// scheduler admits it (the engine installs this as the scheduler's admit hook):
// ask the store, import what it read (backends/kv_exchange), write hot
// prefixes through. This is how the simulator, the benches and a bare engine
// run tiers; a worker hands the store to its kv_block_manager actor instead
// (release()), which does the same by message.
// Must not touch: scheduling (the engine's scheduler owns the pool; this only
// imports cached blocks into it), the engine interface, clocks (the caller
// charges or measures onboarding time).
// Thread-safety: not thread-safe; the engine's owner calls it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "backends/kv_tier_store.hpp"
#include "backends/scheduler/batch_plan.hpp"
#include "common/status.hpp"
#include "kv/block_pool.hpp"

namespace yard::backends {

// What one onboarding did.
struct onboard_outcome {
  std::size_t g1_blocks = 0;  // leading blocks already in G1 when the request arrived
  std::size_t g2_blocks = 0;  // blocks brought back from G2
  std::size_t g3_blocks = 0;  // blocks brought back from G3
  double modelled_ms = 0;     // g2/g3 blocks x modelled block bytes / modelled bandwidth
};

class kv_tiering {
 public:
  using prefill_cost_fn = kv_tier_store::prefill_cost_fn;

  // Creates the store (recovering G3) and installs the eviction hook on
  // `pool`. `pool` and `ex` must outlive this. Errors: those of
  // kv_tier_store::create; nothing is hooked then.
  static result<std::unique_ptr<kv_tiering>> create(const kv_tier_options& opts, kv::block_allocator& pool, executor& ex,
                                                    prefill_cost_fn prefill_cost, bool overlapped = true);
  ~kv_tiering();
  kv_tiering(const kv_tiering&) = delete;
  kv_tiering& operator=(const kv_tiering&) = delete;

  // A request with these full-block prompt hashes (block i chained after
  // block i-1, the first after the chain root) and `prompt_tokens` tokens is
  // being admitted (the scheduler's admit hook): imports the worthwhile part
  // of the prefix found below G1 into G1.
  // Never fails: a block that cannot be read or imported ends the onboarding
  // there (the rest is recomputed).
  onboard_outcome onboard(std::span<const kv::block_hash> hashes, std::size_t prompt_tokens);

  // Unhooks the pool and hands the store to a new owner; this object is empty after.
  std::unique_ptr<kv_tier_store> release();

  // Tier-2/3 events since the last call.
  std::vector<msg::kv_event> drain_events() { return store_->drain_events(); }
  std::vector<msg::kv_event> snapshot() const { return store_->snapshot(); }
  const kv_tiering_stats& stats() const { return store_->stats(); }
  msg::kv_tier_load load() const { return store_->load(); }
  kv::tiers::tier_manager& tiers() { return store_->tiers(); }
  const kv::tiers::tier_manager& tiers() const { return store_->tiers(); }
  double block_ms(std::uint8_t tier) const { return store_->block_ms(tier); }

 private:
  kv_tiering(kv::block_allocator& pool, executor& ex) : pool_(pool), ex_(ex) {}

  kv::block_allocator& pool_;
  executor& ex_;
  std::unique_ptr<kv_tier_store> store_;
  std::vector<std::byte> scratch_;  // one block, for write-throughs (evictions: forward_evictions)
};

}  // namespace yard::backends
