// backends/kv_tier_store.hpp — the KV tiers below G1 (G2 host, G3 disk) and every decision about them.
//
// Owns: a kv::tiers::tier_manager (created and G3-recovered here), the offload
// of evicted G1 blocks (bytes in), the onboard-or-recompute plan for a
// request's prefix and the reading of the planned blocks (bytes out), the
// write-through count of hot G1 prefixes, tier statistics, the tier-2/3 KV
// events and snapshot, and the tier fields of a load report.
// Must not touch: G1 (the engine's pool and executor). Its owner hands it the
// bytes of evicted blocks and imports what it reads: the engine itself
// (backends/kv_tiering.hpp, synchronous: simulator, benches, tests), or, in a
// worker, the kv_block_manager actor, by message (actors/kv_block_manager.hpp).
// Thread-safety: not thread-safe; one owner calls it (the tier manager's own
// I/O threads are internal to kv/tiers).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.hpp"
#include "kv/block_hash.hpp"
#include "kv/tiers/tier_manager.hpp"
#include "messages/types.hpp"

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
  // How G2's slab is page-locked: a CUDA engine sets cudaHostRegister here, so
  // G1<->G2 copies are DMA from and to the slab (default: not page-locked).
  kv::tiers::host_pinning g2_pinning;
  bool enabled() const { return host_blocks > 0 || !disk_dir.empty(); }
};

// What the G1 side knows about a request being admitted: the question put to the tiers.
struct onboard_ask {
  std::vector<kv::block_hash> hashes;  // the prompt's usable full blocks (never the one holding the last token)
  std::size_t g1_blocks = 0;           // leading hashes already in G1
  std::vector<bool> in_g1;             // per hash after the G1 prefix: also in G1 now (inside the run)
  std::size_t prompt_tokens = 0;       // prompt + resume tokens
};

// The tiers' answer: the leading run of hashes[g1_blocks..] worth bringing back, and its bytes.
// A G2 block is lent, not copied: its lease keeps G2's slot unchanged until the
// answer (and every copy of it) is dropped, after the import.
struct onboard_fetch {
  std::vector<std::uint8_t> tier_of;  // per block of the run: 1 (in G1 when asked: no bytes), 2 or 3
  std::vector<std::byte> data;        // tier_of.size() blocks of block bytes (a G1 or lent block's slot unused)
  std::vector<kv::tiers::host_lease> lent;  // per block of the run: G2's bytes in place, or empty (read `data`)
  double modelled_ms = 0;             // G2/G3 blocks x modelled block bytes / modelled bandwidth
  std::size_t blocks() const { return tier_of.size(); }
  // Block j's bytes (`bb` bytes each): G2's slot when lent, else its part of `data`.
  std::span<const std::byte> block(std::size_t j, std::size_t bb) const {
    if (j < lent.size() && lent[j]) return lent[j].bytes().first(std::min(bb, lent[j].bytes().size()));
    if ((j + 1) * bb > data.size()) return {};
    return std::span<const std::byte>(data).subspan(j * bb, bb);
  }
};

struct kv_tiering_stats {
  std::uint64_t offloaded_blocks = 0;  // G1 evictions copied down
  std::uint64_t onboards = 0;          // requests that onboarded at least one block
  std::uint64_t g1_hit_blocks = 0;     // leading blocks already in G1, summed over asks
  std::uint64_t g2_hit_blocks = 0;     // blocks read back from G2 for onboarding
  std::uint64_t g3_hit_blocks = 0;     // blocks read back from G3 for onboarding
  std::uint64_t recovered_blocks = 0;  // G3 blocks found at start
  std::uint64_t written_through = 0;   // hot G1 blocks copied to G3 before eviction
};

class kv_tier_store {
 public:
  // Predicted prefill time (ms) of `uncached` tokens of a `prompt`-token prompt.
  using prefill_cost_fn = std::function<double(std::size_t prompt, std::size_t uncached)>;

  // Creates the tiers for blocks of `block_bytes` bytes and `block_tokens`
  // tokens and recovers G3 (its blocks become tier-3 "stored" events).
  // `overlapped`: the engine overlaps onboarding with the prefill (plan with
  // max(prefill, copy) when opts.overlap_onboarding is also set).
  // Errors: those of tier_manager::create/recover (bad G3 dir or key file).
  static result<std::unique_ptr<kv_tier_store>> create(const kv_tier_options& opts, std::size_t block_bytes,
                                                       std::uint32_t block_tokens, prefill_cost_fn prefill_cost,
                                                       bool overlapped);

  // G1 evicted `h`; `data` is its bytes.
  void offload(kv::block_hash h, std::span<const std::byte> data);

  // A request hit these leading G1 blocks: the ones now hot enough to be
  // written through to G3 (their owner reads them from G1 and calls
  // write_through). Empty unless write_through_hits and G3 are set.
  std::vector<kv::block_hash> note_hits(std::span<const kv::block_hash> g1_prefix);
  void write_through(kv::block_hash h, std::span<const std::byte> data);

  // The worthwhile leading run of ask.hashes[g1_blocks..] found in G2/G3 (and
  // G1, per in_g1), read into memory. Empty when recomputing is cheaper or
  // nothing is below G1. A block that cannot be read ends the run there.
  onboard_fetch fetch(const onboard_ask& ask);

  std::vector<msg::kv_event> drain_events() { return tm_->drain_events(); }
  std::vector<msg::kv_event> snapshot() const { return tm_->snapshot(); }
  const kv_tiering_stats& stats() const { return stats_; }
  // The tier part of a worker's load report (blocks per tier, offload/onboard counters, G3 health).
  msg::kv_tier_load load() const;
  kv::tiers::tier_manager& tiers() { return *tm_; }
  const kv::tiers::tier_manager& tiers() const { return *tm_; }
  // G1 prefix hits matter (note_hits can answer something): write-through to G3 is on.
  bool counts_hits() const { return opts_.write_through_hits > 0 && block_bytes_ > 0 && tm_->g3() != nullptr; }
  std::size_t block_bytes() const { return block_bytes_; }
  double block_ms(std::uint8_t tier) const;  // modelled onboarding ms of one block from tier 2 or 3

 private:
  kv_tier_store(const kv_tier_options& o, std::size_t block_bytes, std::uint32_t block_tokens, prefill_cost_fn f,
                bool overlapped);

  kv_tier_options opts_;
  std::size_t block_bytes_;
  std::uint32_t block_tokens_;
  prefill_cost_fn prefill_cost_;
  bool overlapped_;
  std::unique_ptr<kv::tiers::tier_manager> tm_;
  kv_tiering_stats stats_;
  std::unordered_map<kv::block_hash, std::uint32_t> hits_;  // G1 prefix hits of blocks not yet written through
};

}  // namespace yard::backends
