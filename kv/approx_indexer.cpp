// kv/approx_indexer.cpp — see approx_indexer.hpp.
#include "kv/approx_indexer.hpp"

#include <algorithm>

namespace yard::kv {

approx_indexer::approx_indexer(approx_indexer_options opts) : opts_(opts) {
  if (opts_.capacity == 0) opts_.capacity = 1;
}

void approx_indexer::erase(list_t::iterator it) {
  auto bh = by_hash_.find(it->hash);
  if (bh != by_hash_.end()) {
    auto& v = bh->second;
    v.erase(std::find(v.begin(), v.end(), it));
    if (v.empty()) by_hash_.erase(bh);
  }
  auto pw = per_worker_.find(it->worker);
  if (pw != per_worker_.end() && --pw->second == 0) per_worker_.erase(pw);
  lru_.erase(it);
}

void approx_indexer::record(worker_index worker, std::span<const block_hash> hashes, double now_ms) {
  for (block_hash h : hashes) {
    auto& v = by_hash_[h];
    auto it = std::find_if(v.begin(), v.end(), [&](list_t::iterator e) { return e->worker == worker; });
    if (it != v.end()) {
      (*it)->t = now_ms;
      lru_.splice(lru_.end(), lru_, *it);
      continue;
    }
    lru_.push_back(entry{h, worker, now_ms});
    v.push_back(std::prev(lru_.end()));
    ++per_worker_[worker];
  }
  while (lru_.size() > opts_.capacity) erase(lru_.begin());
}

void approx_indexer::expire(double now_ms) {
  while (!lru_.empty() && lru_.front().t + opts_.ttl_ms < now_ms) erase(lru_.begin());
}

void approx_indexer::find_matches(std::span<const block_hash> hashes, double now_ms, std::vector<overlap>& out) {
  expire(now_ms);
  out.clear();
  // A few workers per hash: plain vectors beat per-worker maps here.
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    auto bh = by_hash_.find(hashes[i]);
    if (bh == by_hash_.end()) break;
    std::uint32_t extended = 0;
    for (auto e : bh->second) {
      if (i == 0) {
        out.push_back(overlap{e->worker, 1, 1});
        ++extended;
        continue;
      }
      for (auto& o : out) {
        if (o.worker == e->worker && o.blocks == i) {
          o.blocks = o.blocks_any = static_cast<std::uint32_t>(i + 1);
          ++extended;
          break;
        }
      }
    }
    if (!extended) break;
  }
}

std::vector<overlap> approx_indexer::find_matches(std::span<const block_hash> hashes, double now_ms) {
  std::vector<overlap> out;
  find_matches(hashes, now_ms, out);
  return out;
}

void approx_indexer::remove_worker(worker_index worker) {
  for (auto it = lru_.begin(); it != lru_.end();) {
    auto next = std::next(it);
    if (it->worker == worker) erase(it);
    it = next;
  }
}

std::uint64_t approx_indexer::worker_blocks(worker_index w) const {
  auto it = per_worker_.find(w);
  return it == per_worker_.end() ? 0 : it->second;
}

}  // namespace yard::kv
