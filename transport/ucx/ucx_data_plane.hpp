// transport/ucx/ucx_data_plane.hpp — the per-process UCX data plane for KV blocks.
//
// Owns: one ucp context + worker, the memory regions registered with it (ucp_mem_map
// + packed rkeys), a cache of endpoints keyed by remote worker address, and batched
// one-sided reads (ucp_get_nbx) of many blocks with completion, timeout and optional
// per-block xxh3 checksum verification.
// Must not touch: NATS, actors, the KV pool's bookkeeping (callers own what the
// bytes mean; descriptors travel over NATS as msg::kv_region_descriptor).
// Thread-safety: every public method takes an internal mutex, so one plane may be
// shared between threads; pulls are serialised. An optional background thread
// progresses the worker so peers can read this process's regions (needed for
// software-emulated transports such as tcp).
//
// Memory path: Debian's UCX 1.13 has no CUDA transports (no cuda_ipc/cuda_copy), so
// only host memory is registered; device KV would be staged through pinned host
// memory. The path in use is logged once at create().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "messages/kv_transfer.hpp"

namespace yard::transport {

struct ucx_options {
  std::string transports;      // UCX_TLS-like list, e.g. "tcp" or "posix,cma,self" ("" = UCX chooses)
  bool progress_thread = true; // progress the worker in the background so peers can read us
  // How long the progress thread keeps spinning after the last event before it sleeps
  // on the worker's event fd. 0 suits tcp (its sockets wake the fd; spinning on a
  // small machine steals the reader's core); shared-memory transports do not wake
  // the fd, so give them a few ms.
  int idle_spin_us = 0;
};

struct region_handle {
  std::uint64_t id = 0;
};

struct block_copy {
  std::uint64_t remote_offset = 0;  // from the remote descriptor's base
  std::uint64_t local_offset = 0;   // from the local region's base
  std::uint64_t length = 0;
};

struct transfer_stats {
  std::uint64_t bytes = 0;
  double seconds = 0.0;
};

class ucx_data_plane {
 public:
  static result<std::unique_ptr<ucx_data_plane>> create(const ucx_options& opts = {});
  ~ucx_data_plane();
  ucx_data_plane(const ucx_data_plane&) = delete;
  ucx_data_plane& operator=(const ucx_data_plane&) = delete;

  // Registers [base, base+len) for remote reads and local writes.
  result<region_handle> register_region(void* base, std::size_t len);
  status deregister_region(region_handle region);

  // Allocates and registers `len` bytes through UCX (ucp_mem_map ALLOCATE), which
  // shared-memory transports (posix) can export for direct one-sided reads; user
  // memory from register_region() is read via cma or tcp instead. The memory lives
  // until deregister_region() or the plane's destruction.
  result<std::pair<region_handle, void*>> allocate_region(std::size_t len);

  // What a peer needs to read `region` (worker address, rkey, base, length).
  result<msg::kv_region_descriptor> local_descriptor(region_handle region);

  // Reads every block from `remote` into `local`, all issued at once, and waits
  // until all complete or `timeout_ms` passes (errc::timeout; a dead peer gives
  // errc::unavailable). When `expected_checksums` is non-empty it must have one
  // xxh3-64 per block; a mismatch gives errc::corrupt naming the block.
  result<transfer_stats> pull(const msg::kv_region_descriptor& remote, std::span<const block_copy> blocks,
                              region_handle local, int timeout_ms,
                              std::span<const std::uint64_t> expected_checksums = {});

  // Closes and drops the cached endpoint to the peer with this worker address.
  void forget_peer(const std::string& worker_address);
  std::size_t cached_peers();

  // One round of worker progress (for callers running without the progress thread).
  void progress();

  // "host" here: which memory path this build uses (see the header comment).
  const std::string& memory_path() const { return memory_path_; }
  const std::string& transports() const { return transports_; }

  static std::uint64_t checksum(const void* data, std::size_t len);

 private:
  struct region;
  struct peer;
  ucx_data_plane() = default;
  result<std::pair<region_handle, void*>> map_region(void* base, std::size_t len);  // base null = allocate
  result<peer*> peer_for(const std::string& worker_address);
  void drop_peer_locked(const std::string& worker_address);
  void progress_loop();

  std::mutex mu_;
  void* context_ = nullptr;  // ucp_context_h
  void* worker_ = nullptr;   // ucp_worker_h
  int efd_ = -1;
  std::string address_;
  std::map<std::uint64_t, std::unique_ptr<region>> regions_;
  std::map<std::string, std::unique_ptr<peer>> peers_;
  std::uint64_t next_region_ = 1;
  std::string memory_path_ = "host";
  std::string transports_;
  int idle_spin_us_ = 0;
  std::atomic<bool> stop_{false};
  std::thread progress_;
};

}  // namespace yard::transport
