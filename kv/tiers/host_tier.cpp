// kv/tiers/host_tier.cpp — see host_tier.hpp.
#include "kv/tiers/host_tier.hpp"

#include <cstring>

namespace yard::kv::tiers {

host_tier::host_tier(host_tier_options opts) : opts_(opts) {}

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

std::vector<std::pair<block_hash, bytes>> host_tier::evict_over_capacity() {
  std::vector<std::pair<block_hash, bytes>> out;
  while (map_.size() > opts_.capacity_blocks) {
    auto& l = cold_.empty() ? hot_ : cold_;
    block_hash victim = l.front();
    l.pop_front();
    auto it = map_.find(victim);
    stats_.bytes_held -= it->second.data.size();
    out.emplace_back(victim, std::move(it->second.data));
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
      stats_.bytes_held -= it->second.data.size();
      it->second.data.assign(data.begin(), data.end());
      stats_.bytes_held += data.size();
      touch(it->second, hash);
    } else {
      entry e;
      e.data.assign(data.begin(), data.end());
      e.pos = cold_.insert(cold_.end(), hash);
      stats_.bytes_held += data.size();
      map_.emplace(hash, std::move(e));
    }
    ++stats_.puts;
    victims = evict_over_capacity();
    cb = on_evict_;
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
  return it->second.data;
}

status host_tier::get_into(block_hash hash, std::span<std::byte> out) {
  std::lock_guard lk(mu_);
  auto it = map_.find(hash);
  if (it == map_.end()) {
    ++stats_.misses;
    return make_error(errc::not_found, "block not in G2");
  }
  if (it->second.data.size() != out.size())
    return make_error(errc::bad_request, "G2 block size " + std::to_string(it->second.data.size()) +
                                             " != buffer size " + std::to_string(out.size()));
  ++stats_.hits;
  ++it->second.hits;
  touch(it->second, hash);
  if (!out.empty()) std::memcpy(out.data(), it->second.data.data(), out.size());
  return {};
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
  stats_.bytes_held -= it->second.data.size();
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
