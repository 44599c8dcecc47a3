// kv/session_affinity.cpp — see session_affinity.hpp.
#include "kv/session_affinity.hpp"

#include <algorithm>

namespace yard::kv {

bool session_affinity::overloaded(const worker_candidate& c, std::span<const worker_candidate> cands) const {
  std::uint32_t least = c.load.queue_depth;
  for (const auto& o : cands) least = std::min(least, o.load.queue_depth);
  if (c.load.queue_depth > least + o_.max_queue_gap) return true;
  return c.load.total_kv_blocks > 0 &&
         static_cast<double>(c.load.active_decode_blocks) > o_.max_kv_use * c.load.total_kv_blocks;
}

void session_affinity::expire(double now_ms) {
  while (!lru_.empty()) {
    auto it = sessions_.find(lru_.back());
    if (it != sessions_.end() && now_ms - it->second.last_ms <= o_.ttl_ms && sessions_.size() <= o_.max_sessions) break;
    if (it != sessions_.end()) sessions_.erase(it);
    lru_.pop_back();
  }
}

std::optional<worker_index> session_affinity::pick(std::string_view session, std::span<const worker_candidate> cands,
                                                   double now_ms) {
  if (session.empty()) return std::nullopt;
  expire(now_ms);
  auto it = sessions_.find(std::string(session));
  if (it == sessions_.end()) {
    ++stats_.new_sessions;
    return std::nullopt;
  }
  auto c = std::find_if(cands.begin(), cands.end(), [&](const worker_candidate& x) { return x.worker == it->second.worker; });
  if (c == cands.end() || overloaded(*c, cands)) {
    ++stats_.sticky_breaks;
    return std::nullopt;
  }
  ++stats_.sticky_hits;
  return c->worker;
}

void session_affinity::record(std::string_view session, worker_index w, double now_ms) {
  if (session.empty()) return;
  auto [it, fresh] = sessions_.try_emplace(std::string(session));
  if (!fresh) lru_.erase(it->second.lru);
  lru_.push_front(it->first);
  it->second = entry{w, now_ms, lru_.begin()};
  expire(now_ms);
}

void session_affinity::forget_worker(worker_index w) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second.worker == w) {
      lru_.erase(it->second.lru);
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

session_affinity_stats session_affinity::stats() const {
  auto s = stats_;
  s.sessions = sessions_.size();
  return s;
}

}  // namespace yard::kv
