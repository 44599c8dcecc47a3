// kv/block_pool.cpp — see block_pool.hpp. Every operation is O(blocks touched).
#include "kv/block_pool.hpp"

#include <cassert>

namespace yard::kv {

block_pool::block_pool(block_pool_options opts) : opts_(opts) {
  if (opts_.block_size == 0) opts_.block_size = 1;
}

std::size_t block_pool::match_prefix(std::span<const block_hash> hashes) const {
  if (!opts_.enable_prefix_caching) return 0;
  std::size_t n = 0;
  for (auto h : hashes) {
    if (!cache_.count(h)) break;
    ++n;
  }
  return n;
}

void block_pool::acquire_cached(std::span<const block_hash> hashes, std::size_t n, std::size_t lookup,
                                std::vector<block_id>& out) {
  stats_.lookup_blocks += lookup;
  stats_.hit_blocks += n;
  pin_cached(hashes, n, out);
}

void block_pool::pin_cached(std::span<const block_hash> hashes, std::size_t n, std::vector<block_id>& out) {
  for (std::size_t i = 0; i < n; ++i) {
    auto it = cache_.find(hashes[i]);
    assert(it != cache_.end() && "acquire_cached: hash not cached (call match_prefix first)");
    block_id b = it->second;
    auto& m = meta_[b];
    if (m.ref == 0) {
      lru_remove(b);
      ++num_referenced_;
    }
    ++m.ref;
    out.push_back(b);
  }
}

block_id block_pool::take_one() {
  if (!free_.empty()) {
    block_id b = free_.back();
    free_.pop_back();
    return b;
  }
  if (meta_.size() < opts_.num_blocks) {
    meta_.emplace_back();
    return static_cast<block_id>(meta_.size() - 1);
  }
  if (lru_head_ == no_block) return no_block;
  block_id b = lru_head_;
  lru_remove(b);
  evict(b);
  return b;
}

void block_pool::evict(block_id b) {
  auto& m = meta_[b];
  if (on_evict_) on_evict_(b, m.hash, m.has_parent ? std::optional<block_hash>(m.parent) : std::nullopt);
  cache_.erase(m.hash);
  record_removed(m.hash);
  ++stats_.evicted_blocks;
  m.hashed = false;
  m.has_parent = false;
}

bool block_pool::allocate(std::size_t n, std::vector<block_id>& out) {
  if (n > num_free()) {
    ++stats_.failed_allocations;
    return false;
  }
  for (std::size_t i = 0; i < n; ++i) {
    block_id b = take_one();
    assert(b != no_block);
    meta_[b].ref = 1;
    ++num_referenced_;
    out.push_back(b);
  }
  return true;
}

void block_pool::commit(block_id b, block_hash hash, std::optional<block_hash> parent) {
  if (!opts_.enable_prefix_caching) return;
  auto& m = meta_[b];
  assert(m.ref > 0 && "commit on an unreferenced block");
  if (m.hashed) return;  // already registered (e.g. a prefix hit)
  if (!cache_.emplace(hash, b).second) return;  // another block holds this content
  m.hash = hash;
  m.hashed = true;
  m.has_parent = parent.has_value();
  m.parent = parent.value_or(0);
  ++stats_.stored_blocks;
  record_stored(hash, parent);
}

void block_pool::release(block_id b) {
  auto& m = meta_[b];
  assert(m.ref > 0 && "release of an unreferenced block");
  if (--m.ref > 0) return;
  --num_referenced_;
  if (m.hashed) lru_push_back(b);
  else free_.push_back(b);
}

void block_pool::release_all(std::span<const block_id> blocks) {
  // Release the tail first so that, among one sequence's blocks, the deepest
  // ones (least likely to be shared) are evicted first.
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) release(*it);
}

std::optional<block_hash> block_pool::hash_of(block_id b) const {
  if (b >= meta_.size() || !meta_[b].hashed) return std::nullopt;
  return meta_[b].hash;
}

void block_pool::lru_push_back(block_id b) {
  auto& m = meta_[b];
  m.prev = lru_tail_;
  m.next = no_block;
  if (lru_tail_ != no_block) meta_[lru_tail_].next = b;
  else lru_head_ = b;
  lru_tail_ = b;
}

void block_pool::lru_remove(block_id b) {
  auto& m = meta_[b];
  if (m.prev != no_block) meta_[m.prev].next = m.next;
  else lru_head_ = m.next;
  if (m.next != no_block) meta_[m.next].prev = m.prev;
  else lru_tail_ = m.prev;
  m.prev = m.next = no_block;
}

void block_pool::record_stored(block_hash h, std::optional<block_hash> parent) {
  if (!opts_.emit_events) return;
  if (!events_.empty()) {
    auto& last = events_.back();
    if (last.kind == msg::kv_event_kind::stored && !last.block_hashes.empty() && parent && last.block_hashes.back() == *parent) {
      last.block_hashes.push_back(h);
      return;
    }
  }
  msg::kv_event e;
  e.kind = msg::kv_event_kind::stored;
  e.block_hashes.push_back(h);
  e.parent_hash = parent;
  e.tier = 1;
  events_.push_back(std::move(e));
}

void block_pool::record_removed(block_hash h) {
  if (!opts_.emit_events) return;
  if (!events_.empty() && events_.back().kind == msg::kv_event_kind::removed) {
    events_.back().block_hashes.push_back(h);
    return;
  }
  msg::kv_event e;
  e.kind = msg::kv_event_kind::removed;
  e.block_hashes.push_back(h);
  e.tier = 1;
  events_.push_back(std::move(e));
}

std::vector<msg::kv_event> block_pool::drain_events() {
  std::vector<msg::kv_event> out;
  out.swap(events_);
  return out;
}

std::vector<msg::kv_event> block_pool::snapshot() const {
  // One event per cached block: the parent link is what the indexer needs,
  // and order does not matter to a hash-keyed index.
  std::vector<msg::kv_event> out;
  out.reserve(cache_.size());
  for (const auto& [h, b] : cache_) {
    const auto& m = meta_[b];
    msg::kv_event e;
    e.kind = msg::kv_event_kind::stored;
    e.block_hashes.push_back(h);
    if (m.has_parent) e.parent_hash = m.parent;
    e.tier = 1;
    out.push_back(std::move(e));
  }
  return out;
}

void block_pool::evict_all_unreferenced() {
  while (lru_head_ != no_block) {
    block_id b = lru_head_;
    lru_remove(b);
    evict(b);
    free_.push_back(b);
  }
}

}  // namespace yard::kv
