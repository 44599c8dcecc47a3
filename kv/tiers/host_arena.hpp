// kv/tiers/host_arena.hpp — G2's memory: one slab of equal-sized block slots, page-locked on request, lent by lease.
//
// Owns: the slab (slots x block bytes, one allocation), which slots are free, the leases on slots, and the
// page-locking of the slab through hooks the owner supplies (on a GPU host, cudaHostRegister: device copies then
// read and write the slab by DMA, with no bounce through pageable memory).
// Must not touch: what the slots hold (hashes, LRU order: host_tier), G1, disk, CUDA itself (hooks only).
// Thread-safety: internally synchronised (one mutex). A lease may be dropped on any thread, also after the
// host_tier that made it is gone: every lease shares the arena, which is freed (and unpinned) with the last one.
//
// Why a slab: a G2 of thousands of equal blocks as one allocation is one page-locking call (registering every
// block's buffer would cost a driver call per offload), no allocator churn per offload, and a block can be lent
// to a reader (the engine importing it into G1) without a copy, because its slot is not reused while lent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

namespace yard::kv::tiers {

// How a host region is page-locked. Both empty: it is not (no GPU, CPU engines).
struct host_pinning {
  std::function<bool(void*, std::size_t)> pin;  // true: the region is page-locked now
  std::function<void(void*)> unpin;             // called once, at the end, for a region pin() locked
  bool enabled() const { return static_cast<bool>(pin); }
};

class host_arena;

// A reader's hold on one slot: its bytes stay valid and unchanged while any copy of the lease lives.
// Copyable (copies share the hold); empty when default-constructed.
class host_lease {
 public:
  host_lease() = default;
  std::span<const std::byte> bytes() const;
  explicit operator bool() const { return static_cast<bool>(hold_); }

 private:
  friend class host_arena;
  struct hold;
  std::shared_ptr<const hold> hold_;
};

class host_arena : public std::enable_shared_from_this<host_arena> {
 public:
  // `slots` slots of `slot_bytes` bytes, allocated now (pages are committed as they are first written, unless
  // pinned: page-locking commits them all). Null when slots or slot_bytes is 0 or the allocation fails.
  static std::shared_ptr<host_arena> create(std::size_t slots, std::size_t slot_bytes, host_pinning pinning = {});
  ~host_arena();
  host_arena(const host_arena&) = delete;
  host_arena& operator=(const host_arena&) = delete;

  // A free slot for a new block, or nullopt when every slot is held (by a block or by a lease).
  std::optional<std::uint32_t> acquire();
  // The block in `slot` left G2: the slot is free now, or when its last lease ends.
  void release(std::uint32_t slot);
  // The slot's bytes, for its owner to write (before any lease on it) and read.
  std::span<std::byte> slot(std::uint32_t s);
  // A lease on `slot` (which its owner holds).
  host_lease lease(std::uint32_t slot);

  std::size_t slots() const { return slots_; }
  std::size_t slot_bytes() const { return slot_bytes_; }
  bool pinned() const { return pinned_; }
  std::size_t free_slots() const;
  std::size_t leased_slots() const;  // slots with at least one lease now

  // A lease on `slot` ended (called by the lease's last copy, not by owners).
  void end_lease(std::uint32_t slot);

 private:
  host_arena(std::size_t slots, std::size_t slot_bytes, std::unique_ptr<std::byte[]> slab, host_pinning pinning);

  struct slot_state {
    std::uint32_t leases = 0;
    bool owned = false;  // a block lives in it (between acquire and release)
  };
  const std::size_t slots_, slot_bytes_;
  std::unique_ptr<std::byte[]> slab_;
  host_pinning pinning_;
  bool pinned_ = false;
  mutable std::mutex mu_;
  std::vector<slot_state> state_;
  std::vector<std::uint32_t> free_;  // a stack of free slots
};

}  // namespace yard::kv::tiers
