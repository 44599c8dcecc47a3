#include "actors/worker_registry.hpp"

#include <algorithm>
#include <set>

namespace yard::actors {

worker_registry::observation worker_registry::observe(const msg::heartbeat& hb, const std::string& subject_id,
                                                     time_point now) {
  auto refuse = [](std::string why) { return observation{change::refused, std::move(why)}; };
  if (hb.instance_id.empty()) return refuse("heartbeat without an instance id");
  if (hb.instance_id != subject_id)
    return refuse("heartbeat for '" + hb.instance_id + "' published on the subject of '" + subject_id + "'");
  if (hb.component != msg::component_kind::worker)
    return refuse("heartbeat of a " + std::string(msg::wire_name(hb.component)) + " ('" + hb.instance_id +
                  "') on a worker heartbeat subject");
  if (hb.generate_subject != subjects::worker_generate(limits_.ns, hb.instance_id))
    return refuse("worker '" + hb.instance_id + "' announced generate subject '" + hb.generate_subject +
                  "', not its own");
  if (hb.block_size == 0 || hb.block_size > max_block_size)
    return refuse("worker '" + hb.instance_id + "' announced a KV block size of " + std::to_string(hb.block_size) +
                  " tokens (1.." + std::to_string(max_block_size) + ")");
  auto it = workers_.find(hb.instance_id);
  if (it == workers_.end() && workers_.size() >= limits_.max_workers)
    return refuse("worker table full (" + std::to_string(limits_.max_workers) + "): '" + hb.instance_id + "' refused");
  msg::heartbeat clamped = hb;
  clamped.lease_ms = std::clamp(hb.lease_ms, limits_.min_lease_ms, limits_.max_lease_ms);
  if (it == workers_.end()) {
    workers_.emplace(hb.instance_id, worker_entry{std::move(clamped), now, false, {}});
    return {change::joined, {}};
  }
  auto& w = it->second;
  bool restarted = w.last.incarnation != hb.incarnation;
  if (restarted && now - w.last_seen < std::chrono::milliseconds(limits_.incarnation_grace_ms))
    return refuse("worker '" + hb.instance_id + "': incarnation " + std::to_string(hb.incarnation) +
                  " while incarnation " + std::to_string(w.last.incarnation) + " is still alive");
  // What a process serves is fixed for its life: a change within one incarnation is a forgery (or a bug), and
  // taking it would move the worker between routing pools on every heartbeat.
  if (!restarted && (hb.model != w.last.model || hb.role != w.last.role || hb.block_size != w.last.block_size ||
                     hb.kv_stream != w.last.kv_stream))
    return refuse("worker '" + hb.instance_id + "' changed its model, role, block size or KV stream within incarnation " +
                  std::to_string(hb.incarnation));
  w.last = std::move(clamped);
  w.last_seen = now;
  if (restarted) {
    w.answered = false;
    w.probed = {};
  }
  return {restarted ? change::restarted : change::none, {}};
}

void worker_registry::mark_answered(const std::string& id, std::uint64_t incarnation) {
  auto it = workers_.find(id);
  if (it != workers_.end() && it->second.last.incarnation == incarnation) it->second.answered = true;
}

std::vector<std::string> worker_registry::due_for_probe(time_point now, std::chrono::milliseconds every) {
  std::vector<std::string> out;
  for (auto& [id, w] : workers_)
    if (!w.answered && now - w.probed >= every) {
      w.probed = now;
      out.push_back(id);
    }
  return out;
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
    if (!usable(w)) continue;
    if (w.last.role == msg::worker_role::prefill) continue;  // prefill-only workers take work from decode workers
    if (!model.empty() && w.last.model != model) continue;
    out.push_back(&w);
  }
  return out;
}

std::vector<const worker_entry*> worker_registry::eligible_prefill(const std::string& model) const {
  std::vector<const worker_entry*> out;
  for (const auto& [id, w] : workers_)
    if (usable(w) && w.last.role == msg::worker_role::prefill && (model.empty() || w.last.model == model)) out.push_back(&w);
  return out;
}

bool worker_registry::knows_model(const std::string& model) const {
  for (const auto& [id, w] : workers_)
    if (w.last.model == model) return true;
  return false;
}

std::vector<std::string> worker_registry::models() const {
  std::set<std::string> s;
  for (const auto& [id, w] : workers_)
    if (verified(w)) s.insert(w.last.model);  // an unverified claim is not advertised
  return {s.begin(), s.end()};
}

}  // namespace yard::actors
