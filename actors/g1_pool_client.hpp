// actors/g1_pool_client.hpp — the engine's side of the G1 block pool its kv_block_manager owns.
//
// Owns: the queue of block writes (commit, release) not sent yet, the blocks
// the engine holds and how often (so num_free/num_referenced are known here
// exactly, without asking: only this engine takes or drops references), and
// the eviction callback the engine's pool had (the KV tiers' copy-out, moved
// here by scheduler::hand_over_pool). Every question (match, acquire, pin,
// allocate, block_of, snapshot) is one message to the manager (g1_atom with a
// kv::pool_call: the queued writes, then the question) and a wait for its
// answer; the callback runs for each block the answer says was evicted,
// before the call returns, while the engine has not written the block yet.
// A drain is one message with no answer (kv_events_atom: the queued writes,
// then "publish your pool's events"), sent from the same blocking actor, so
// it stays in order with the questions. An allocation that has to ask also
// takes a small grant of blocks that need no eviction (`spare_target`), kept
// here and spent by later allocations without a message: a decode step that
// only grows sequences by a block each asks nothing. Spares are only ever
// clean blocks, so the manager evicts exactly what a local pool would.
// Must not touch: the pool (the manager's), the engine's bytes.
// Thread-safety: one caller, the engine actor's thread (it blocks on each
// answer, with no timeout: the engine actor is detached and the manager never
// waits on it). If the manager is gone (it ends with the engine, so only
// while both go down), questions answer "nothing cached, nothing free", the
// KV reads as full and an error is logged once. A release of a block the
// engine does not hold is logged and never sent.
#pragma once

#include <caf/scoped_actor.hpp>

#include <memory>
#include <optional>
#include <unordered_map>
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
  std::uint32_t num_free() const override { return num_blocks_ - num_referenced(); }
  std::uint32_t num_referenced() const override;
  std::size_t match_prefix(std::span<const kv::block_hash> hashes) const override;
  std::optional<kv::block_id> block_of(kv::block_hash h) const override;
  std::vector<kv::block_id> blocks_of(std::span<const kv::block_hash> hashes) const override;
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

  // Questions answered by the manager so far (blocking round trips; drains are not counted).
  std::uint64_t calls() const { return calls_; }
  // Blocks granted and not used yet (held at the manager, free from here).
  std::size_t spare_blocks() const { return spare_.size(); }

 private:
  // Sends the queued writes and `call`'s question; runs the eviction callback
  // for what the answer evicted.
  kv::pool_answer ask(kv::pool_call call) const;
  void hold(const std::vector<kv::block_id>& blocks);  // references the answer granted
  // acquire_cached / pin_cached: references on the first `n` of `hashes`, one question.
  void take_cached(kv::pool_query q, std::span<const kv::block_hash> hashes, std::size_t n, std::size_t lookup,
                   std::vector<kv::block_id>& out);
  caf::scoped_actor& self() const;  // the blocking actor questions and drains go from

  std::uint32_t num_blocks_;
  std::uint32_t block_size_;
  std::unordered_map<kv::block_id, std::uint32_t> refs_;  // blocks the engine holds -> references
  std::vector<kv::block_id> spare_;  // granted by the manager (held there), not used yet: free from here
  std::size_t spare_target_;         // how many an asking allocation takes: 1/64 of the pool, 1..32
  mutable std::vector<kv::pool_write> writes_;
  mutable std::optional<caf::scoped_actor> self_;  // made on the first call, on the engine's thread
  kv_block_manager_actor manager_;
  evict_fn on_evict_;
  mutable std::uint64_t calls_ = 0;
  mutable bool lost_ = false;
  mutable bool dirty_ = false;  // a message went to the manager since the last drain
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace yard::actors
