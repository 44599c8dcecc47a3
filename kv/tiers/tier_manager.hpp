// kv/tiers/tier_manager.hpp — G2 (host) + G3 (disk) behind one interface for an engine.
//
// Owns: a host_tier, an optional disk_tier, the cascade G1 -> G2 -> G3, the
// onboarding decision model and the tier-2/3 KV events (msg::kv_event).
// Must not touch: G1 (the engine's block_pool: the engine calls offload() with
// a block's bytes when G1 evicts it, and copies onboarded bytes into G1 itself).
// Thread-safety: every member is internally synchronised.
//
// Tenant isolation is by construction: blocks are keyed by salted chain hashes
// (kv/block_hash.hpp), so a chain under another salt never names the same block;
// G3 also binds each file to its hash (header check + GCM associated data).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "common/status.hpp"
#include "kv/tiers/disk_tier.hpp"
#include "kv/tiers/host_tier.hpp"
#include "messages/types.hpp"

namespace yard::kv::tiers {

struct tier_manager_options {
  host_tier_options g2;                  // host tier (capacity 0 = no G2: offload goes straight to G3)
  std::optional<disk_tier_options> g3;   // disk tier (default none)
  bool emit_events = true;               // record tier-2/3 kv_events for drain_events() (default true)
  // Wait for each G3 write to land before offload() returns, so what G3 holds
  // never depends on I/O thread timing (simulator, tests; default false).
  bool sync_g3_writes = false;
};

// Leading blocks of a hash chain found below G1; each counts once, in the tier
// it would be read from (G2 when in both).
struct prefix_hit {
  std::size_t g2 = 0;
  std::size_t g3 = 0;
  std::vector<std::uint8_t> tier_of;  // 2 or 3 per leading block (lookup_prefix fills it; may be empty);
                                      // a caller may also mark a block 1 = already in G1 (free to onboard)
  // Blocks in the run: tier_of's length when filled (it may mark G1 blocks), else g2 + g3.
  std::size_t total() const { return tier_of.empty() ? g2 + g3 : tier_of.size(); }
  // Tier of leading block i: tier_of when filled, else the first g2 blocks count as G2.
  std::uint8_t tier(std::size_t i) const { return i < tier_of.size() ? tier_of[i] : (i < g2 ? 2 : 3); }
};

// Inputs of the onboard-or-recompute decision.
struct onboard_cost_model {
  double g2_bytes_per_ms = 0;  // measured G2 -> G1 copy bandwidth
  double g3_bytes_per_ms = 0;  // measured G3 read bandwidth
  std::size_t block_bytes = 0; // bytes per KV block
  std::uint32_t block_tokens = 0;
  std::function<double(std::size_t uncached_tokens)> prefill_ms;  // engine's prefill cost
  // Onboarding overlaps the prefill (layer-wise loading: layer l's KV is copied
  // while layer l-1 computes): cost = max(prefill, copy) instead of their sum (default false).
  bool overlap = false;
};

class tier_manager {
 public:
  // Errors: those of disk_tier::open. Does not recover(); call recover() next.
  static result<std::unique_ptr<tier_manager>> create(tier_manager_options opts);

  // Scans G3 and records a "stored" tier-3 event for every block found
  // (the worker republishes them). Empty without G3.
  result<std::vector<block_hash>> recover();

  // G1 evicted `hash`: keep a copy in G2 (or G3 if G2 has no capacity).
  void offload(block_hash hash, std::span<const std::byte> data);
  // Write-through: copies a block that is still in G1 to G3 now (a hot prefix
  // then survives a restart without waiting to be evicted). No-op without G3,
  // when G3 already holds it, or when G3's write queue is full; true when queued.
  bool write_through(block_hash hash, std::span<const std::byte> data);

  // How many leading blocks of `hashes` are held in G2/G3 (stops at the first miss).
  prefix_hit lookup_prefix(std::span<const block_hash> hashes) const;

  // Copies the first `count` blocks of `hashes` into `out[i]` (each exactly
  // block-sized). G3 reads are issued in parallel. Returns the number of
  // leading blocks copied (a block that fails — missing, corrupt — ends the run).
  std::size_t onboard(std::span<const block_hash> hashes, std::size_t count, std::span<const std::span<std::byte>> out);

  // Best number of the hit's leading blocks to onboard (0 = recompute), given
  // `prompt_tokens` of which `g1_tokens` are already in G1: minimises
  // prefill(rest) + G2/G3 copy time (max of the two with m.overlap).
  static std::size_t plan_onboard(std::size_t prompt_tokens, std::size_t g1_tokens, const prefix_hit& hit,
                                  const onboard_cost_model& m);
  static bool should_onboard(std::size_t prompt_tokens, std::size_t g1_tokens, const prefix_hit& hit,
                             const onboard_cost_model& m) {
    return plan_onboard(prompt_tokens, g1_tokens, hit, m) > 0;
  }

  std::vector<msg::kv_event> drain_events();

  // Every block held in G2 and G3 now, as "stored" events of tier 2 and 3
  // (answer to an indexer resync, beside G1's own snapshot).
  std::vector<msg::kv_event> snapshot() const;

  // Where `hash` would be read from: 2 (G2), 3 (G3) or 0 (neither).
  std::uint8_t tier_of(block_hash hash) const;

  host_tier& g2() { return *g2_; }
  const host_tier& g2() const { return *g2_; }
  disk_tier* g3() { return g3_.get(); }
  const disk_tier* g3() const { return g3_.get(); }

 private:
  explicit tier_manager(tier_manager_options opts);
  void emit(msg::kv_event_kind kind, std::uint8_t tier, block_hash h);
  // Queues `data` for G3 unless back-pressure refuses it; records the tier-3
  // "stored" event (waiting for the write first with sync_g3_writes). True when queued.
  bool put_g3(block_hash h, bytes data);

  tier_manager_options opts_;
  // Declared before the tiers: G3's pool threads may still emit while g3_ is destroyed.
  std::mutex ev_mu_;
  std::vector<msg::kv_event> events_;
  std::unique_ptr<host_tier> g2_;
  std::unique_ptr<disk_tier> g3_;
};

}  // namespace yard::kv::tiers
