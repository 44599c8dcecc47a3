// kv/load_tracker.cpp — see load_tracker.hpp.
#include "kv/load_tracker.hpp"

#include <algorithm>

namespace yard::kv {

namespace {
std::uint64_t clamp_add(std::uint64_t base, std::int64_t d) {
  std::int64_t v = static_cast<std::int64_t>(base) + d;
  return v > 0 ? static_cast<std::uint64_t>(v) : 0;
}
}  // namespace

load_tracker::load_tracker(std::uint32_t max_workers, std::size_t max_tracked)
    : workers_(max_workers), max_tracked_(max_tracked) {}

void load_tracker::on_dispatch(worker_index worker, const std::string& id, std::uint64_t prefill_tokens,
                               std::uint64_t blocks) {
  if (worker >= workers_.size()) workers_.resize(worker + 1);
  on_complete(id);  // a re-dispatch (migration) replaces the earlier attempt
  auto& w = workers_[worker];
  mark_changed(worker);
  w.since.prefill += static_cast<std::int64_t>(prefill_tokens);
  w.since.blocks += static_cast<std::int64_t>(blocks);
  w.since.queue += 1;
  if (requests_.size() >= max_tracked_) {
    ++untracked_;  // counted until the next report, but its completion cannot be subtracted
    return;
  }
  requests_[id] = request{worker, prefill_tokens, blocks, w.epoch, false};
  w.dispatched.push_back(id);
}

void load_tracker::on_first_token(const std::string& id) {
  auto it = requests_.find(id);
  if (it == requests_.end() || it->second.prefilled) return;
  it->second.prefilled = true;
  auto& w = workers_[it->second.worker];
  mark_changed(it->second.worker);
  // Only work counted in `since` (dispatched after the last report) is ours to subtract.
  if (it->second.epoch == w.epoch) w.since.prefill -= static_cast<std::int64_t>(it->second.prefill);
}

void load_tracker::on_complete(const std::string& id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  auto& r = it->second;
  auto& w = workers_[r.worker];
  mark_changed(r.worker);
  if (r.epoch == w.epoch) {
    if (!r.prefilled) w.since.prefill -= static_cast<std::int64_t>(r.prefill);
    w.since.blocks -= static_cast<std::int64_t>(r.blocks);
    w.since.queue -= 1;
  }
  requests_.erase(it);
}

void load_tracker::on_load_report(worker_index worker, const msg::load_report& report) {
  if (worker >= workers_.size()) workers_.resize(worker + 1);
  auto& w = workers_[worker];
  mark_changed(worker);
  w.reported.pending_prefill_tokens = report.pending_prefill_tokens;
  w.reported.active_decode_blocks = report.active_kv_blocks;
  w.reported.queue_depth = report.active_requests + report.queued_requests;
  w.reported.total_kv_blocks = report.total_kv_blocks;
  w.since = delta{};
  // The report covers everything dispatched before it: those requests no longer touch the estimate.
  for (const auto& id : w.dispatched) {
    auto it = requests_.find(id);
    if (it != requests_.end() && it->second.worker == worker && it->second.epoch == w.epoch) requests_.erase(it);
  }
  w.dispatched.clear();
  ++w.epoch;
}

void load_tracker::remove_worker(worker_index worker) {
  if (worker >= workers_.size()) return;
  for (auto it = requests_.begin(); it != requests_.end();) {
    if (it->second.worker == worker) it = requests_.erase(it);
    else ++it;
  }
  workers_[worker] = per_worker{};
  mark_changed(worker);
}

worker_load load_tracker::load(worker_index worker) const {
  if (worker >= workers_.size()) return {};
  const auto& w = workers_[worker];
  worker_load l;
  l.pending_prefill_tokens = clamp_add(w.reported.pending_prefill_tokens, w.since.prefill);
  l.active_decode_blocks = clamp_add(w.reported.active_decode_blocks, w.since.blocks);
  l.queue_depth = static_cast<std::uint32_t>(clamp_add(w.reported.queue_depth, w.since.queue));
  l.total_kv_blocks = w.reported.total_kv_blocks;
  return l;
}

}  // namespace yard::kv
