// actors/kv_transfer_agent.hpp — a worker's side of disaggregated KV transfer.
//
// Owns: the worker's UCX data plane (transport/ucx), one registered staging
// region cut into block-sized slots (page-locked for CUDA on a GPU host), and
// the leases on them. Prefill side:
// stage() copies a prompt's blocks out of the engine into free slots (with
// xxh3 checksums) under a lease that ends on release() (the prefill_server
// decides when: a kv_release, or its lease timer).
// Decode side: a pull reads a remote lease's blocks over UCX into local slots
// on the agent's transfer thread, verifying checksums; the owner then imports
// them into the engine's prefix cache.
// Must not touch: NATS, routing, the engine's scheduling (it only calls the
// engine's export_kv/import_kv/cached_blocks).
// Thread-safety: every method but the transfer thread's work runs on the
// owner's thread (the engine actor); start_pull's callback runs on the
// transfer thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/worker_faults.hpp"
#include "backends/engine.hpp"
#include "common/status.hpp"
#include "messages/disagg.hpp"
#include "transport/ucx/ucx_data_plane.hpp"

namespace yard::actors {

struct kv_transfer_options {
  std::size_t staging_mb = 256;     // registered staging memory (default 256 MiB; touched only as used)
  std::string ucx_transports = "tcp";  // UCX_TLS list (default tcp: works across hosts, detects dead peers)
  int lease_ms = 10000;             // prefill side: blocks freed when not released by then (default 10 s; the prefill_server's timer)
  int pull_timeout_ms = 5000;       // decode side: one pull's limit (default 5 s)
  bool checksums = true;            // per-block xxh3 on stage, verified on pull (default on)
  // Page-lock the staging region (cudaHostRegister): the engine's KV is on a GPU, so its copies into and out of
  // the slots are DMA. Set from the engine by spawn_worker, not a flag (default off: pageable and lazy).
  bool page_lock = false;
};

struct staged_blocks {
  std::uint64_t lease_id = 0;
  msg::kv_region_descriptor region;
  std::vector<msg::kv_block_ref> blocks;
};

struct transfer_counters {
  std::uint64_t staged_leases = 0, released_leases = 0;
  std::uint64_t pulls = 0, pulled_blocks = 0, pulled_bytes = 0, failed_pulls = 0;
};

class kv_transfer_agent {
 public:
  using clock = std::chrono::steady_clock;

  // Fails when UCX cannot start or the staging memory cannot be registered.
  // `faults`: the test seam (tamper_staged on each lease's first block); null in production.
  static result<std::unique_ptr<kv_transfer_agent>> create(const kv_transfer_options& opts, std::size_t block_bytes,
                                                           std::shared_ptr<const prefill_faults> faults = nullptr);
  ~kv_transfer_agent();

  // Prefill side. Copies the cached leading blocks of `hashes` into staging
  // slots under a new lease. errc::unavailable when the slots are exhausted;
  // a result with no blocks when the engine holds none of them.
  result<staged_blocks> stage(const backends::engine& eng, const std::vector<kv::block_hash>& hashes);
  // Frees a lease's slots; false when it is unknown (already released).
  bool release(std::uint64_t lease_id);
  std::size_t leased_blocks() const;
  std::size_t num_leases() const { return leases_.size(); }
  // The staging region is page-locked (kv_transfer_options::page_lock and a GPU that took it).
  bool page_locked() const { return pinned_; }

  // Decode side, in three steps so the worker keeps decoding while bytes move:
  // prepare_pull() checks the reply against the prompt's hashes and reserves
  // local slots for the blocks the engine lacks (nullopt: nothing to pull);
  // start_pull() reads them over UCX on the agent's transfer thread and calls
  // `done` there (post it back to the owner); finish_pull() — on the owner's
  // thread — imports the verified blocks into the engine and frees the slots.
  struct pull_job {
    std::uint64_t id = 0;
    msg::kv_region_descriptor remote;
    std::vector<kv::block_hash> hashes;   // the blocks to import, in chain order
    std::optional<kv::block_hash> parent; // of hashes[0]
    std::vector<std::uint32_t> slots;     // local slot per block
    std::vector<transport::block_copy> copies;
    std::vector<std::uint64_t> checksums; // empty = unchecked
  };
  result<std::optional<pull_job>> prepare_pull(const backends::engine& eng, const msg::remote_prefill_reply& reply,
                                               const std::vector<kv::block_hash>& hashes);
  void start_pull(const pull_job& job, std::function<void(status)> done);
  // Imports a pulled job (when `pulled` is ok) and frees its slots. Returns the blocks imported.
  result<std::size_t> finish_pull(backends::engine& eng, const pull_job& job, const status& pulled);
  // Drops the cached UCX endpoint of a peer that left.
  void forget_peer(const std::string& worker_address) { plane_->forget_peer(worker_address); }

  std::size_t block_bytes() const { return block_bytes_; }
  std::size_t capacity_blocks() const { return slots_.size(); }
  const transfer_counters& counters() const { return counters_; }
  const kv_transfer_options& options() const { return opts_; }

 private:
  kv_transfer_agent() = default;
  struct lease {
    std::vector<std::uint32_t> slots;
  };
  std::byte* slot_ptr(std::uint32_t s) { return static_cast<std::byte*>(base_) + std::size_t{s} * block_bytes_; }

  kv_transfer_options opts_;
  std::size_t block_bytes_ = 0;
  std::unique_ptr<transport::ucx_data_plane> plane_;
  transport::region_handle region_{};
  void* base_ = nullptr;
  bool pinned_ = false;  // base_ page-locked for CUDA copies (a GPU host)
  msg::kv_region_descriptor descriptor_;
  std::vector<std::uint32_t> slots_;  // all slot indices (size = capacity)
  std::vector<std::uint32_t> free_;
  std::size_t pulling_ = 0;           // slots borrowed by pulls in progress
  std::uint64_t next_pull_ = 1;
  // The transfer thread: runs pulls one at a time (the data plane serialises them anyway).
  void transfer_loop();
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<pull_job, std::function<void(status)>>> queue_;
  bool stop_ = false;
  std::map<std::uint64_t, lease> leases_;
  std::uint64_t next_lease_ = 1;
  std::shared_ptr<const prefill_faults> faults_;  // null in production
  transfer_counters counters_;
};

}  // namespace yard::actors
