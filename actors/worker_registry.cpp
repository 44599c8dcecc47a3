#include "actors/worker_registry.hpp"

#include <set>

namespace yard::actors {

worker_registry::change worker_registry::observe(const msg::heartbeat& hb, time_point now) {
  auto [it, inserted] = workers_.try_emplace(hb.instance_id);
  bool restarted = !inserted && it->second.last.incarnation != hb.incarnation;
  it->second.last = hb;
  it->second.last_seen = now;
  return inserted ? change::joined : restarted ? change::restarted : change::none;
}

std::vector<std::string> worker_registry::expire(time_point now) {
  std::vector<std::string> gone;
  for (auto it = workers_.begin(); it != workers_.end();) {
    auto lease = std::chrono::milliseconds(it->second.last.lease_ms);
    if (now - it->second.last_seen > lease) {
      gone.push_back(it->first);
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

std::vector<const worker_entry*> worker_registry::eligible(const std::string& model) const {
  std::vector<const worker_entry*> out;
  for (const auto& [id, w] : workers_) {
    if (w.last.draining) continue;
    if (w.last.role == "prefill") continue;  // prefill-only workers take work from decode workers
    if (!model.empty() && w.last.model != model) continue;
    out.push_back(&w);
  }
  return out;
}

std::vector<const worker_entry*> worker_registry::eligible_prefill(const std::string& model) const {
  std::vector<const worker_entry*> out;
  for (const auto& [id, w] : workers_)
    if (!w.last.draining && w.last.role == "prefill" && (model.empty() || w.last.model == model)) out.push_back(&w);
  return out;
}

bool worker_registry::knows_model(const std::string& model) const {
  for (const auto& [id, w] : workers_)
    if (w.last.model == model) return true;
  return false;
}

std::vector<std::string> worker_registry::models() const {
  std::set<std::string> s;
  for (const auto& [id, w] : workers_) s.insert(w.last.model);
  return {s.begin(), s.end()};
}

}  // namespace yard::actors
