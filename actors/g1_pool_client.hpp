// actors/g1_pool_client.hpp — the engine's side of the G1 block pool its kv_block_manager owns.
//
// Owns: the queue of block writes (commit, release) not sent yet, the pool's
// counts as of the last answer, and the eviction callback the engine's pool
// had (the KV tiers' copy-out, moved here by scheduler::hand_over_pool). Every
// call that needs an answer is one message to the manager (g1_atom with a
// kv::pool_call: the queued writes, then the question) and a wait for its
// answer; the callback runs for each block the answer says was evicted, before
// the call returns, while the engine has not written the block yet.
// Must not touch: the pool (the manager's), the engine's bytes.
// Thread-safety: one caller, the engine actor's thread (it blocks on each
// answer: the engine actor is detached and the manager never waits on it). If
// the manager is gone (it ends with the engine, so only while both go down),
// calls answer "nothing cached, nothing free" and an error is logged once.
#pragma once

#include <caf/function_view.hpp>

#include <memory>
#include <vector>

#include "actors/kv_block_manager.hpp"
#include "common/log.hpp"
#include "kv/block_allocator.hpp"

namespace yard::actors {

class g1_pool_client final : public kv::block_allocator {
 public:
  // `pool`: the pool as handed over (its size, block size and counts now).
  explicit g1_pool_client(const kv::block_pool& pool);
  // The manager that owns the pool now; before the first call.
  void bind(kv_block_manager_actor manager);

  std::uint32_t num_blocks() const override { return num_blocks_; }
  std::uint32_t block_size() const override { return block_size_; }
  std::uint32_t num_free() const override;
  std::uint32_t num_referenced() const override;
  std::size_t match_prefix(std::span<const kv::block_hash> hashes) const override;
  std::optional<kv::block_id> block_of(kv::block_hash h) const override;
  void acquire_cached(std::span<const kv::block_hash> hashes, std::size_t n, std::size_t lookup,
                      std::vector<kv::block_id>& out) override;
  void pin_cached(std::span<const kv::block_hash> hashes, std::size_t n, std::vector<kv::block_id>& out) override;
  bool allocate(std::size_t n, std::vector<kv::block_id>& out) override;
  void commit(kv::block_id b, kv::block_hash hash, std::optional<kv::block_hash> parent) override;
  void release(kv::block_id b) override;
  void release_all(std::span<const kv::block_id> blocks) override;
  // The manager publishes them on the worker's KV event stream; none come back.
  std::vector<msg::kv_event> drain_events() override;
  std::vector<msg::kv_event> snapshot() const override;
  void set_evict_callback(evict_fn fn) override { on_evict_ = std::move(fn); }
  evict_fn take_evict_callback() override { return std::exchange(on_evict_, {}); }

  // Calls answered (messages to the manager) so far.
  std::uint64_t calls() const { return calls_; }

 private:
  // Sends the queued writes and `call`'s question; runs the eviction callback
  // for what the answer evicted and keeps its counts.
  kv::pool_answer ask(kv::pool_call call) const;
  // Sends the queued writes alone, when there are any.
  void flush() const;

  std::uint32_t num_blocks_;
  std::uint32_t block_size_;
  mutable std::uint32_t num_free_;
  mutable std::uint32_t num_referenced_;
  mutable std::vector<kv::pool_write> writes_;
  mutable caf::function_view<kv_block_manager_actor> rpc_;
  kv_block_manager_actor manager_;
  evict_fn on_evict_;
  mutable std::uint64_t calls_ = 0;
  mutable bool lost_ = false;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace yard::actors
