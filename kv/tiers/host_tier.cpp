// kv/tiers/host_tier.cpp — see host_tier.hpp.
#include "kv/tiers/host_tier.hpp"

#include <cstring>

namespace yard::kv::tiers {

host_tier::host_tier(host_tier_options opts) : opts_(std::move(opts)) {
  if (opts_.block_bytes > 0) make_slab(opts_.block_bytes);
}

// Once, sized for blocks of `block_bytes`: one slot more than the capacity, because a put stores the new
// block before it evicts the one it displaces. A failed allocation is not retried (blocks go on the heap).
void host_tier::make_slab(std::size_t block_bytes) {
  if (arena_tried_ || opts_.capacity_blocks == 0 || block_bytes == 0) return;
  arena_tried_ = true;
  arena_ = host_arena::create(opts_.capacity_blocks + 1, block_bytes, opts_.pinning);
}

std::span<const std::byte> host_tier::view(const entry& e) const {
  if (e.slot) return arena_->slot(*e.slot).first(e.size);
  return e.data;
}

void host_tier::drop(entry& e) {
  if (e.slot) arena_->release(*e.slot);
  e.slot.reset();
  e.data = bytes{};
  e.size = 0;
}

void host_tier::store(entry& e, std::span<const std::byte> data) {
  // A new slot even when replacing: a lease on the old bytes must keep seeing them.
  drop(e);
  make_slab(data.size());
  std::optional<std::uint32_t> s;
  if (arena_ && data.size() == arena_->slot_bytes()) s = arena_->acquire();
  if (s) {
    std::memcpy(arena_->slot(*s).data(), data.data(), data.size());
    e.slot = s;
  } else {
    e.data.assign(data.begin(), data.end());
  }
  e.size = data.size();
}

void host_tier::set_evict_callback(evict_fn fn) {
  std::lock_guard lk(mu_);
  on_evict_ = std::move(fn);
}

void host_tier::touch(entry& e, block_hash h) {
  list_of(e).erase(e.pos);
  if (!e.hot && opts_.protect_hits > 0 && e.hits >= opts_.protect_hits) e.hot = true;
  auto& l = list_of(e);
  e.pos = l.insert(l.end(), h);
}

std::vector<std::pair<block_hash, bytes>> host_tier::evict_over_capacity(bool want_bytes) {
  std::vector<std::pair<block_hash, bytes>> out;
  while (map_.size() > opts_.capacity_blocks) {
    auto& l = cold_.empty() ? hot_ : cold_;
    block_hash victim = l.front();
    l.pop_front();
    auto it = map_.find(victim);
    entry& e = it->second;
    stats_.bytes_held -= e.size;
    if (want_bytes) {
      if (e.slot) {
        const auto v = view(e);
        out.emplace_back(victim, bytes(v.begin(), v.end()));
      } else {
        out.emplace_back(victim, std::move(e.data));
      }
    }
    drop(e);
    map_.erase(it);
    ++stats_.evictions;
  }
  return out;
}

void host_tier::put(block_hash hash, std::span<const std::byte> data) {
  std::vector<std::pair<block_hash, bytes>> victims;
  evict_fn cb;
  {
    std::lock_guard lk(mu_);
    auto it = map_.find(hash);
    if (it != map_.end()) {
      stats_.bytes_held -= it->second.size;
      store(it->second, data);
      stats_.bytes_held += data.size();
      touch(it->second, hash);
    } else {
      entry e;
      store(e, data);
      e.pos = cold_.insert(cold_.end(), hash);
      stats_.bytes_held += data.size();
      map_.emplace(hash, std::move(e));
    }
    ++stats_.puts;
    cb = on_evict_;
    victims = evict_over_capacity(static_cast<bool>(cb));
  }
  if (cb)
    for (auto& [h, b] : victims) cb(h, std::move(b));
}

result<bytes> host_tier::get(block_hash hash) {
  std::lock_guard lk(mu_);
  auto it = map_.find(hash);
  if (it == map_.end()) {
    ++stats_.misses;
    return make_error(errc::not_found, "block not in G2");
  }
  ++stats_.hits;
  ++it->second.hits;
  touch(it->second, hash);
  const auto v = view(it->second);
  return bytes(v.begin(), v.end());
}

status host_tier::get_into(block_hash hash, std::span<std::byte> out) {
  std::lock_guard lk(mu_);
  auto it = map_.find(hash);
  if (it == map_.end()) {
    ++stats_.misses;
    return make_error(errc::not_found, "block not in G2");
  }
  if (it->second.size != out.size())
    return make_error(errc::bad_request, "G2 block size " + std::to_string(it->second.size) +
                                             " != buffer size " + std::to_string(out.size()));
  ++stats_.hits;
  ++it->second.hits;
  touch(it->second, hash);
  if (!out.empty()) std::memcpy(out.data(), view(it->second).data(), out.size());
  return {};
}

host_lease host_tier::lease(block_hash hash) {
  std::lock_guard lk(mu_);
  auto it = map_.find(hash);
  if (it == map_.end() || !it->second.slot) return {};
  ++stats_.hits;
  ++it->second.hits;
  touch(it->second, hash);
  return arena_->lease(*it->second.slot);
}

std::size_t host_tier::slab_bytes() const {
  std::lock_guard lk(mu_);
  return arena_ ? arena_->slots() * arena_->slot_bytes() : 0;
}

bool host_tier::pinned() const {
  std::lock_guard lk(mu_);
  return arena_ && arena_->pinned();
}

bool host_tier::contains(block_hash hash) const {
  std::lock_guard lk(mu_);
  return map_.count(hash) != 0;
}

bool host_tier::erase(block_hash hash) {
  std::lock_guard lk(mu_);
  auto it = map_.find(hash);
  if (it == map_.end()) return false;
  list_of(it->second).erase(it->second.pos);
  stats_.bytes_held -= it->second.size;
  drop(it->second);
  map_.erase(it);
  return true;
}

std::vector<block_hash> host_tier::hashes() const {
  std::lock_guard lk(mu_);
  std::vector<block_hash> out;
  out.reserve(map_.size());
  for (const auto& kv : map_) out.push_back(kv.first);
  return out;
}

std::size_t host_tier::size() const {
  std::lock_guard lk(mu_);
  return map_.size();
}

tier_stats host_tier::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

}  // namespace yard::kv::tiers
