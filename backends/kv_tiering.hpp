// backends/kv_tiering.hpp — KV tiers (G2 host, G3 disk) wired under an engine's G1 block pool.
//
// Owns: a kv::tiers::tier_manager, the G1 eviction hook (an evicted block's
// bytes are read through the executor and offloaded to G2, cascading to G3),
// onboarding a request's prefix from G2/G3 into G1 when the scheduler admits
// it (backends/kv_exchange import; the engine installs this as the scheduler's
// admit hook) when kv::tiers::tier_manager::plan_onboard predicts it beats
// recomputation, G3 recovery at start, and the tier-2/3 KV events/snapshot.
// Must not touch: scheduling (the engine's scheduler owns the pool; this only
// imports cached blocks into it), the engine interface, clocks (the caller
// charges or measures onboarding time).
// Thread-safety: not thread-safe; the engine's owner calls it (the tier
// manager's own I/O threads are internal to kv/tiers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/scheduler/batch_plan.hpp"
#include "common/status.hpp"
#include "kv/block_pool.hpp"
#include "kv/tiers/tier_manager.hpp"

namespace yard::backends {

// Engine-level tier configuration (both engines' options carry one). Off
// unless host_blocks > 0 or disk_dir is set.
struct kv_tier_options {
  std::size_t host_blocks = 0;      // G2 capacity in blocks (default 0 = no G2)
  std::string disk_dir;             // G3 block directory, one per worker (default "" = no G3)
  std::size_t disk_blocks = 65536;  // G3 capacity in blocks (default 65536)
  std::string disk_key_file;        // 32-byte AES-256-GCM key for G3 at rest (default "" = plaintext)
  std::uint32_t disk_io_threads = 2;  // G3 pread/pwrite threads (default 2)
  // G3 back-pressure: writes queued at most; further offloads skip G3 (default 256).
  std::size_t disk_max_pending_writes = 256;
  // Write-through for hot prefixes: a G1 block whose prefix is hit this many
  // times is also written to G3 right away, so a widely shared prefix (a
  // system prompt) persists across a restart before it is ever evicted
  // (default 0 = off: G3 only receives evicted blocks).
  std::uint32_t write_through_hits = 0;
  bool disk_sync_writes = false;    // offload waits for each G3 write: deterministic G3 contents (simulator, tests; default off)
  // Modelled bandwidths for the onboard-or-recompute decision (and, in the mock
  // engine, the charged onboarding time). Defaults: PCIe host->device ~25 GB/s,
  // a local NVMe read ~8 GB/s.
  double g2_gbps = 25.0;            // G2 -> G1 GB/s (default 25)
  double g3_gbps = 8.0;             // G3 -> G1 GB/s (default 8)
  // Bytes per block the bandwidth model uses; 0 = the executor's kv_block_bytes
  // (default 0). The mock engine's synthetic blocks are small, so the simulator
  // and benches set the real model's block size here.
  std::size_t modelled_block_bytes = 0;
  // The onboarding copy overlaps the prefill that follows it (layer-wise
  // loading, as LMCache and vLLM's KV connectors do): the onboard plan weighs
  // max(prefill, copy), and the mock charges a step max(compute, copy) instead
  // of their sum. The native engine imports synchronously and always plans and
  // pays the sum (default true).
  bool overlap_onboarding = true;
  bool enabled() const { return host_blocks > 0 || !disk_dir.empty(); }
};

// What one onboarding did.
struct onboard_outcome {
  std::size_t g1_blocks = 0;  // leading blocks already in G1 when the request arrived
  std::size_t g2_blocks = 0;  // blocks brought back from G2
  std::size_t g3_blocks = 0;  // blocks brought back from G3
  double modelled_ms = 0;     // g2/g3 blocks x modelled block bytes / modelled bandwidth
};

struct kv_tiering_stats {
  std::uint64_t offloaded_blocks = 0;  // G1 evictions copied down
  std::uint64_t onboards = 0;          // requests that onboarded at least one block
  std::uint64_t g1_hit_blocks = 0;     // sums of onboard_outcome over requests
  std::uint64_t g2_hit_blocks = 0;
  std::uint64_t g3_hit_blocks = 0;
  std::uint64_t recovered_blocks = 0;  // G3 blocks found at start
  std::uint64_t written_through = 0;   // hot G1 blocks copied to G3 before eviction
};

class kv_tiering {
 public:
  // Predicted prefill time (ms) of `uncached` tokens of a `prompt`-token prompt.
  using prefill_cost_fn = std::function<double(std::size_t prompt, std::size_t uncached)>;

  // Creates the tiers, recovers G3 (its blocks become tier-3 "stored" events)
  // and installs the eviction hook on `pool`. `pool` and `ex` must outlive this.
  // Errors: those of tier_manager::create/recover (bad G3 dir or key file);
  // nothing is hooked then.
  // `overlapped`: the engine overlaps onboarding with the prefill (plan with
  // max(prefill, copy) when opts.overlap_onboarding is also set).
  static result<std::unique_ptr<kv_tiering>> create(const kv_tier_options& opts, kv::block_pool& pool, executor& ex,
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

  // Tier-2/3 events since the last call.
  std::vector<msg::kv_event> drain_events() { return tm_->drain_events(); }
  std::vector<msg::kv_event> snapshot() const { return tm_->snapshot(); }

  const kv_tiering_stats& stats() const { return stats_; }
  // The tier fields of a worker's load report (blocks per tier, offload/onboard counters, G3 health).
  void fill_load(msg::load_report& load) const;
  kv::tiers::tier_manager& tiers() { return *tm_; }
  const kv::tiers::tier_manager& tiers() const { return *tm_; }
  double block_ms(std::uint8_t tier) const;  // modelled onboarding ms of one block from tier 2 or 3

 private:
  kv_tiering(const kv_tier_options& o, kv::block_pool& pool, executor& ex, prefill_cost_fn f, bool overlapped);
  void on_evict(kv::block_id b, kv::block_hash h);

  kv_tier_options opts_;
  kv::block_pool& pool_;
  executor& ex_;
  prefill_cost_fn prefill_cost_;
  bool overlapped_;
  std::unique_ptr<kv::tiers::tier_manager> tm_;
  void note_hits(std::span<const kv::block_hash> g1_prefix);
  std::vector<std::byte> scratch_;  // one block, for offloads
  kv_tiering_stats stats_;
  std::unordered_map<kv::block_hash, std::uint32_t> hits_;  // G1 prefix hits of blocks not yet written through
};

}  // namespace yard::backends
