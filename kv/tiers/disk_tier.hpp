// kv/tiers/disk_tier.hpp — G3: KV blocks in one slab file of fixed-size slots, read and
// written with O_DIRECT, checksummed and optionally AES-256-GCM encrypted.
//
// Owns: the slab file `dir/blocks.ykvs`, its slot table (which block is in
// which slot, free slots), the blocks' LRU order, a small I/O thread pool, the
// G3 key. Must not touch: G1/G2, other files in `dir` (it removes only the
// previous layout's one-file-per-block `*.ykvb` / `*.ykvb.tmp.*` at recovery).
// Thread-safety: every member is internally synchronised; futures complete on
// pool threads; the eviction callback runs on a pool thread.
//
// Why a slab: one file per block cost a create, a rename and an open per block,
// and the file system's directory lock, not the disk, bounded G3 (perf: the
// ext4 directory rwsem). A slab slot is one aligned pread/pwrite at a known
// offset, with O_DIRECT so a block read once (onboarding, recovery) does not
// push other data out of the page cache; a file system without O_DIRECT
// (tmpfs) gets plain reads and writes.
//
// Slab = a 4096-byte slab header, then slots of `slot_bytes` (a multiple of
// 4096) each. Slab header (little-endian): "YKVS", u16 version (1), u16 0,
// u64 slot_bytes, u64 xxh3-64 of those 16 bytes. Slot = a 128-byte block
// header, then the payload, zero-padded: "YKVB", u16 version (2), u16 flags
// (bit 0 = encrypted), u64 block hash, u64 payload length, u64 checksum, u64
// write sequence number, 12-byte GCM nonce, 16-byte GCM tag, zeros. The
// checksum is the xxh3-64 of the stored payload seeded with the xxh3-64 of the
// header (checksum field zeroed), so a torn slot (old header, new payload or the reverse) never
// validates. A block is written to a free slot, never over a live one, so a
// crash mid-write loses at most the block being written. The slot size is
// fixed by `block_bytes`, else by an existing slab, else by the first block
// written; a block larger than a slot is refused (try_put_async: nullopt).
// recover() checks every slot (header and checksum), keeps the newest
// `capacity_blocks` by write sequence (that order is the LRU order it
// restores), and frees the rest. Evicted blocks stay in their slot until it
// is reused, so a restart may bring back a block evicted just before it
// (still the right bytes for its hash); erase() zeroes the slot header first.
// With a key, the payload is encrypted with the block hash as associated data:
// a wrong key (or a header edited to another hash) fails -> errc::corrupt.
// Any write error (ENOSPC, EIO, the test hook) logs "G3 disabled: ..." once
// and the tier degrades to no-G3: puts become no-ops, gets miss.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.hpp"
#include "kv/block_hash.hpp"
#include "kv/tiers/host_tier.hpp"

namespace yard::kv::tiers {

struct disk_tier_options {
  std::filesystem::path dir;            // block directory, created if missing (required)
  std::size_t capacity_blocks = 65536;  // max blocks kept (default 65536)
  // Largest payload a slot holds (0 = an existing slab's, else the first block's size).
  // A different value than an existing slab's starts an empty slab (the blocks are of another shape).
  std::size_t block_bytes = 0;
  std::uint32_t io_threads = 2;         // pread/pwrite pool size (default 2)
  bool sync_each_write = false;         // fdatasync each file before rename (default off; recovery checksums anyway)
  std::optional<std::filesystem::path> key_file;  // 32 raw bytes -> AES-256-GCM at rest (default none)
  // Back-pressure: writes queued or in flight at most; try_put_async refuses
  // more (the block is simply not kept in G3) instead of letting queued block
  // copies grow without bound when evictions outrun the disk (default 256).
  std::size_t max_pending_writes = 256;
  // One tier per slab: the slab is locked (flock) while open. A second opener
  // (a restarted worker while the old one's tier still closes, or two workers
  // given one directory) waits this long for the lock, then gets errc::conflict (default 5000).
  int lock_wait_ms = 5000;
};

class io_pool;

class disk_tier {
 public:
  using evict_fn = std::function<void(block_hash)>;

  // Creates the directory, loads the key and locks the slab. Errors: bad_request
  // (no dir, key file not exactly 32 bytes), io_error (cannot create/read),
  // conflict (another tier holds the slab past lock_wait_ms).
  static result<std::unique_ptr<disk_tier>> open(disk_tier_options opts);
  ~disk_tier();
  disk_tier(const disk_tier&) = delete;
  disk_tier& operator=(const disk_tier&) = delete;

  // Reads every slot of the slab: indexes the blocks whose header and checksum
  // hold (oldest write = LRU head, the newest capacity_blocks kept), frees the
  // rest, removes the previous layout's files, and returns the recovered hashes
  // (oldest first). Call once, at start, before any put.
  result<std::vector<block_hash>> recover();

  void set_evict_callback(evict_fn fn);  // called for each block dropped by capacity

  // Writes asynchronously; the block is visible to get() once the future is
  // ready. A no-op returning ok when the tier is disabled; a block larger than
  // a slot -> bad_request (nothing written).
  std::future<status> put_async(block_hash hash, bytes data);
  // Like put_async, but refuses (nullopt, counted in stats().dropped, logged)
  // while max_pending_writes writes are queued or in flight, or when the block
  // is larger than a slot. The offload path
  // uses this: a cache tier may drop a block, never stall the engine.
  std::optional<std::future<status>> try_put_async(block_hash hash, bytes data);
  std::size_t pending_writes() const { return pending_writes_.load(); }
  status put(block_hash hash, std::span<const std::byte> data);
  // Reads and validates: not_found, corrupt (slot freed), io_error.
  std::future<result<bytes>> get_async(block_hash hash);
  result<bytes> get(block_hash hash);

  bool contains(block_hash hash) const;
  bool erase(block_hash hash);
  std::size_t size() const;
  std::vector<block_hash> hashes() const;  // every block held now (any order)
  bool disabled() const { return disabled_.load(); }
  tier_stats stats() const;
  // fdatasync() on the slab: makes every finished write durable.
  status sync();
  const std::filesystem::path& dir() const { return opts_.dir; }
  std::filesystem::path slab_path() const { return opts_.dir / "blocks.ykvs"; }
  std::size_t slot_bytes() const;   // 0 until fixed
  bool direct_io() const { return direct_; }  // O_DIRECT accepted by the file system

  // Test hook: the slab offset of `hash`'s slot, if it is held.
  std::optional<std::uint64_t> slot_offset_for_testing(block_hash hash) const;

  // Test hook: every write after this fails as if the disk were full.
  void fail_writes_for_testing(bool on) { fail_writes_.store(on); }
  // Test hook: while on, queued writes wait before touching the disk (a slow disk).
  void hold_writes_for_testing(bool on);

 private:
  explicit disk_tier(disk_tier_options opts);
  static constexpr std::uint64_t slab_header_bytes = 4096;
  std::uint64_t offset_of(std::uint64_t slot) const { return slab_header_bytes + slot * slot_bytes_; }
  status fix_slot_size(std::size_t payload);  // takes mu_: fixes slot_bytes_ and writes the slab header
  bool fits(std::size_t payload) const;       // takes mu_
  status write_slot(block_hash h, const bytes& data, std::uint64_t slot, std::uint64_t seq);  // pool thread
  // Pool thread: reads, validates and decrypts. `len` = the payload length the index holds.
  result<bytes> read_slot(block_hash h, std::uint64_t slot, std::uint64_t len);
  void disable(const std::string& why);
  std::uint64_t take_slot();                                // mu_ held
  void commit(block_hash h, std::uint64_t len, std::uint64_t slot);  // takes mu_, evicts over capacity
  std::optional<std::uint64_t> unindex_locked(block_hash h);  // mu_ held: index entry out, its slot (not freed)
  void forget_locked(block_hash h);                          // mu_ held: unindex_locked, then the slot freed

  disk_tier_options opts_;
  std::optional<std::array<unsigned char, 32>> key_;
  std::unique_ptr<io_pool> pool_;
  int fd_ = -1;         // the slab
  bool direct_ = false;
  mutable std::mutex mu_;
  std::uint64_t slot_bytes_ = 0;  // 0 = not fixed yet
  std::uint64_t next_slot_ = 0;   // slots [0, next_slot_) have been handed out at least once
  std::vector<std::uint64_t> free_slots_;
  std::vector<std::uint32_t> slot_gen_;  // bumped when a slot's block leaves: a read in flight then misses
  std::uint64_t next_seq_ = 1;
  struct entry {
    std::uint64_t len;
    std::uint64_t slot;
    std::list<block_hash>::iterator pos;
  };
  std::unordered_map<block_hash, entry> map_;
  std::list<block_hash> lru_;  // front = least recently used
  tier_stats stats_;
  evict_fn on_evict_;
  std::atomic<bool> disabled_{false};
  std::atomic<bool> fail_writes_{false};
  std::atomic<std::size_t> pending_writes_{0};
  std::atomic<std::uint64_t> refused_{0};  // blocks larger than a slot (logged 1st, 2nd, 4th ...)
  std::mutex hold_mu_;
  std::condition_variable hold_cv_;
  bool hold_writes_ = false;
};

}  // namespace yard::kv::tiers
