// kv/tiers/disk_tier.hpp — G3: one checksummed (optionally AES-256-GCM encrypted) file per KV block.
//
// Owns: the block files under `dir` (<16 hex hash>.ykvb), their LRU index, a
// small I/O thread pool (pwrite; reads with O_DIRECT where the file system has
// it, so onboarding a block does not evict other data from the page cache), the G3 key.
// Must not touch: G1/G2, files in `dir` that are not *.ykvb / *.ykvb.tmp.*.
// Thread-safety: every member is internally synchronised; futures complete on
// pool threads; the eviction callback runs on a pool thread.
//
// File = 64-byte header + payload. Header (little-endian): "YKVB", u16 version
// (1), u16 flags (bit 0 = encrypted), u64 block hash, u64 payload length, u64
// xxh3-64 of the stored payload, 12-byte GCM nonce, 16-byte GCM tag, 4 zero bytes.
// A write goes to <name>.tmp.<n> and is renamed over the final name, so a torn
// file is never visible under the final name; recover() removes leftover temps
// and files whose header or checksum is bad. With a key, the payload is
// encrypted with the block hash as associated data: a wrong key (or a file
// renamed to another hash) fails authentication -> errc::corrupt.
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
  std::size_t capacity_blocks = 65536;  // max files kept (default 65536)
  std::uint32_t io_threads = 2;         // pread/pwrite pool size (default 2)
  bool sync_each_write = false;         // fdatasync each file before rename (default off; recovery checksums anyway)
  std::optional<std::filesystem::path> key_file;  // 32 raw bytes -> AES-256-GCM at rest (default none)
  // Back-pressure: writes queued or in flight at most; try_put_async refuses
  // more (the block is simply not kept in G3) instead of letting queued block
  // copies grow without bound when evictions outrun the disk (default 256).
  std::size_t max_pending_writes = 256;
};

class io_pool;

class disk_tier {
 public:
  using evict_fn = std::function<void(block_hash)>;

  // Creates the directory and loads the key. Errors: bad_request (no dir,
  // key file not exactly 32 bytes), io_error (cannot create/read).
  static result<std::unique_ptr<disk_tier>> open(disk_tier_options opts);
  ~disk_tier();
  disk_tier(const disk_tier&) = delete;
  disk_tier& operator=(const disk_tier&) = delete;

  // Scans `dir`: removes temps and invalid files (bad magic/version/length/
  // checksum, name != header hash), indexes the rest (oldest mtime = LRU head,
  // trimmed to capacity) and returns the recovered hashes. Call once, at start.
  result<std::vector<block_hash>> recover();

  void set_evict_callback(evict_fn fn);  // called for each block dropped by capacity

  // Writes asynchronously; the block is visible to get() once the future is
  // ready. A no-op returning ok when the tier is disabled.
  std::future<status> put_async(block_hash hash, bytes data);
  // Like put_async, but refuses (nullopt, counted in stats().dropped, logged)
  // while max_pending_writes writes are queued or in flight. The offload path
  // uses this: a cache tier may drop a block, never stall the engine.
  std::optional<std::future<status>> try_put_async(block_hash hash, bytes data);
  std::size_t pending_writes() const { return pending_writes_.load(); }
  status put(block_hash hash, std::span<const std::byte> data);
  // Reads and validates: not_found, corrupt (file removed), io_error.
  std::future<result<bytes>> get_async(block_hash hash);
  result<bytes> get(block_hash hash);

  bool contains(block_hash hash) const;
  bool erase(block_hash hash);
  std::size_t size() const;
  std::vector<block_hash> hashes() const;  // every block held now (any order)
  bool disabled() const { return disabled_.load(); }
  tier_stats stats() const;
  // syncfs() on the directory: makes every finished write durable.
  status sync();
  const std::filesystem::path& dir() const { return opts_.dir; }

  // Test hook: every write after this fails as if the disk were full.
  void fail_writes_for_testing(bool on) { fail_writes_.store(on); }
  // Test hook: while on, queued writes wait before touching the disk (a slow disk).
  void hold_writes_for_testing(bool on);

 private:
  explicit disk_tier(disk_tier_options opts);
  std::filesystem::path path_of(block_hash h) const;
  status write_file(block_hash h, const bytes& data);  // pool thread
  result<bytes> read_file(block_hash h, bool decrypt = true);  // pool thread; !decrypt = validate only
  void disable(const std::string& why);
  void index_insert(block_hash h, std::uint64_t len);  // takes mu_, evicts over capacity
  void index_drop(block_hash h);                       // takes mu_

  disk_tier_options opts_;
  std::optional<std::array<unsigned char, 32>> key_;
  std::unique_ptr<io_pool> pool_;
  int dir_fd_ = -1;
  mutable std::mutex mu_;
  struct entry {
    std::uint64_t len;
    std::list<block_hash>::iterator pos;
  };
  std::unordered_map<block_hash, entry> map_;
  std::list<block_hash> lru_;  // front = least recently used
  tier_stats stats_;
  evict_fn on_evict_;
  std::atomic<bool> disabled_{false};
  std::atomic<bool> fail_writes_{false};
  std::atomic<std::uint64_t> tmp_counter_{0};
  std::atomic<std::size_t> pending_writes_{0};
  std::mutex hold_mu_;
  std::condition_variable hold_cv_;
  bool hold_writes_ = false;
};

}  // namespace yard::kv::tiers
