// kv/tiers/host_tier.hpp — G2: a host-memory store of opaque KV blocks keyed by block hash.
//
// Owns: the bytes of blocks offloaded from G1 (in a host_arena slab, page-locked
// on a GPU host; a block of another size than the slab's, or one arriving while
// every slot is lent out, on the heap), their LRU order and hit counts.
// Must not touch: G1 (the engine's block_pool), disk, events (tier_manager makes them).
// Thread-safety: every member is internally synchronised (one mutex); the
// eviction callback runs on the caller's thread after the lock is released.
// A lease (lease()) stays valid after the block is evicted or replaced and
// after this tier is gone: the slot is reused only when the lease ends.
//
// Policy: LRU with frequency protection. A block read `protect_hits` times or
// more moves to the protected list; eviction takes the least recently used
// cold block first and a protected block only when no cold block is left.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/status.hpp"
#include "kv/tiers/host_arena.hpp"
#include "kv/block_hash.hpp"

namespace yard::kv::tiers {

using bytes = std::vector<std::byte>;

struct host_tier_options {
  std::size_t capacity_blocks = 4096;  // max blocks held (default 4096; 0 = hold nothing)
  std::uint32_t protect_hits = 2;      // hits that make a block protected (default 2)
  // Bytes of a block: the slab (capacity_blocks + 1 slots) is allocated at construction
  // (default 0 = at the first put, sized by that block).
  std::size_t block_bytes = 0;
  host_pinning pinning;                // how the slab is page-locked (default: it is not)
};

struct tier_stats {
  std::uint64_t puts = 0;       // blocks stored
  std::uint64_t hits = 0;       // get() found the block
  std::uint64_t misses = 0;     // get() did not
  std::uint64_t evictions = 0;  // blocks pushed out by capacity
  std::uint64_t errors = 0;     // failed reads/writes (corrupt, I/O)
  std::uint64_t bytes_held = 0; // payload bytes held now
  std::uint64_t dropped = 0;    // puts refused by back-pressure (G3: write queue full)
};

class host_tier {
 public:
  // Called with each evicted block (hash and its bytes, moved out), e.g. to cascade to G3.
  using evict_fn = std::function<void(block_hash, bytes&&)>;

  explicit host_tier(host_tier_options opts = {});

  void set_evict_callback(evict_fn fn);

  // Stores a copy of `data` under `hash` (replacing an older copy) as most
  // recently used; may evict others through the callback.
  void put(block_hash hash, std::span<const std::byte> data);
  // Copies the block out (counts a hit and refreshes its LRU position);
  // errc::not_found if absent.
  result<bytes> get(block_hash hash);
  // Copies into `out` (must be exactly the block's size, else errc::bad_request).
  status get_into(block_hash hash, std::span<std::byte> out);
  // A zero-copy read: the block's bytes, held unchanged while the lease lives (counts
  // a hit like get). An empty lease when absent or not in the slab (read with get_into).
  host_lease lease(block_hash hash);
  bool contains(block_hash hash) const;
  bool erase(block_hash hash);  // true if it was held

  std::size_t size() const;
  std::vector<block_hash> hashes() const;  // every block held now (any order)
  std::size_t capacity() const { return opts_.capacity_blocks; }
  tier_stats stats() const;
  bool pinned() const;  // the slab is page-locked
  std::size_t slab_bytes() const;  // bytes of the slab (0: none yet, or its allocation failed: blocks on the heap)

 private:
  struct entry {
    std::optional<std::uint32_t> slot;  // in the slab, else in data
    std::size_t size = 0;
    bytes data;
    std::uint32_t hits = 0;
    bool hot = false;
    std::list<block_hash>::iterator pos;
  };
  std::list<block_hash>& list_of(const entry& e) { return e.hot ? hot_ : cold_; }
  void touch(entry& e, block_hash h);  // lock held
  std::vector<std::pair<block_hash, bytes>> evict_over_capacity(bool want_bytes);  // lock held
  std::span<const std::byte> view(const entry& e) const;  // lock held
  void store(entry& e, std::span<const std::byte> data);   // lock held: e's old bytes are dropped
  void drop(entry& e);                                      // lock held: frees e's slot or heap bytes
  void make_slab(std::size_t block_bytes);  // lock held (or constructing)

  host_tier_options opts_;
  mutable std::mutex mu_;
  std::unordered_map<block_hash, entry> map_;
  std::list<block_hash> cold_;  // front = least recently used
  std::list<block_hash> hot_;
  tier_stats stats_;
  evict_fn on_evict_;
  std::shared_ptr<host_arena> arena_;  // null until the first block (or block_bytes) sizes it
  bool arena_tried_ = false;
};

}  // namespace yard::kv::tiers
