// kv/kv_router_core.cpp — see kv_router_core.hpp.
#include "kv/kv_router_core.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace yard::kv {

namespace {
std::uint64_t batch_events(const msg::kv_event_batch& b) {
  std::uint64_t n = 0;
  for (const auto& e : b.events) n += std::max<std::size_t>(1, e.block_hashes.size());
  return n;
}
}  // namespace

result<std::unique_ptr<kv_router_core>> kv_router_core::create(kv_router_options opts) {
  auto p = make_policy(opts.policy, opts.policy_cfg, opts.seed);
  if (!p) return p.err();
  if (opts.block_size == 0) return make_error(errc::bad_request, "block_size must be > 0");
  return std::unique_ptr<kv_router_core>(new kv_router_core(std::move(opts), std::move(*p)));
}

kv_router_core::kv_router_core(kv_router_options opts, std::unique_ptr<routing_policy> p)
    : opts_(std::move(opts)),
      policy_(std::move(p)),
      index_(std::make_unique<kv_indexer>(opts_.index)),
      approx_(opts_.approx),
      sessions_(opts_.sessions),
      load_(opts_.index.max_workers) {}

std::optional<worker_index> kv_router_core::index_of(const std::string& worker_id) const {
  auto it = ids_.find(worker_id);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

worker_index kv_router_core::add_worker(const std::string& worker_id) {
  if (auto i = index_of(worker_id)) return *i;
  worker_index w;
  if (!free_.empty()) {
    w = free_.back();
    free_.pop_back();
    names_[w] = worker_id;
  } else {
    w = static_cast<worker_index>(names_.size());
    names_.push_back(worker_id);
    queues_.emplace_back();
  }
  ids_[worker_id] = w;
  cands_stale_ = true;
  return w;
}

void kv_router_core::remove_worker(const std::string& worker_id) {
  auto it = ids_.find(worker_id);
  if (it == ids_.end()) return;
  worker_index w = it->second;
  index_->remove_worker(w);
  approx_.remove_worker(w);
  load_.remove_worker(w);
  policy_->on_worker_removed(w);
  sessions_.forget_worker(w);  // its index is reused by the next worker to join
  queued_total_ -= queues_[w].events;
  queues_[w] = queued{};
  names_[w].clear();
  free_.push_back(w);
  ids_.erase(it);
  cands_stale_ = true;
}

void kv_router_core::refresh_candidates() {
  for (std::uint32_t pos : touched_) {
    auto& c = cands_[pos];
    c.overlap_blocks = c.overlap_blocks_any = c.overlap_blocks_g2 = c.overlap_blocks_g3 = 0;
  }
  touched_.clear();
  if (cands_stale_) {
    cands_.clear();
    cand_pos_.assign(names_.size(), no_candidate);
    for (worker_index w = 0; w < names_.size(); ++w) {
      if (names_[w].empty()) continue;
      cand_pos_[w] = static_cast<std::uint32_t>(cands_.size());
      cands_.push_back(worker_candidate{w, 0, 0, load_.load(w)});
    }
    load_.take_changed([](worker_index) {});
    cands_stale_ = false;
    return;
  }
  load_.take_changed([&](worker_index w) {
    if (w < cand_pos_.size() && cand_pos_[w] != no_candidate) cands_[cand_pos_[w]].load = load_.load(w);
  });
}

result<route_output> kv_router_core::route(const route_input& in) {
  if (ids_.empty()) return make_error(errc::unavailable, "no workers to route to");
  route_request req;
  req.hashes = in.hashes;
  req.prompt_tokens = in.prompt_tokens;
  req.block_size = opts_.block_size;
  req.max_tokens = in.max_tokens;
  req.now_ms = in.now_ms;
  if (opts_.use_kv_events) index_->find_matches(in.hashes, scratch_);
  else approx_.find_matches(in.hashes, in.now_ms, scratch_);
  refresh_candidates();
  for (const auto& m : scratch_) {
    if (m.worker >= cand_pos_.size() || cand_pos_[m.worker] == no_candidate) continue;
    auto& c = cands_[cand_pos_[m.worker]];
    c.overlap_blocks = m.blocks;
    c.overlap_blocks_any = m.blocks_any;
    c.overlap_blocks_g2 = m.blocks_g2;
    c.overlap_blocks_g3 = m.blocks_g3;
    touched_.push_back(cand_pos_[m.worker]);
  }
  auto d = policy_->choose(req, cands_);
  if (!d) return d.err();
  bool sticky = false;
  if (auto w = sessions_.pick(in.session_id, cands_, in.now_ms); w && *w != d->worker) {
    auto c = std::find_if(cands_.begin(), cands_.end(), [&](const worker_candidate& x) { return x.worker == *w; });
    *d = route_decision{*w, d->score, c->overlap_blocks};
    sticky = true;
  } else if (w) {
    sticky = true;
  }
  sessions_.record(in.session_id, d->worker, in.now_ms);
  policy_->on_routed(req, d->worker);
  if (!opts_.use_kv_events) approx_.record(d->worker, in.hashes, in.now_ms);
  std::uint64_t cached = std::min<std::uint64_t>(in.prompt_tokens, std::uint64_t{d->overlap_blocks} * opts_.block_size);
  std::uint64_t blocks = (in.prompt_tokens + in.max_tokens + opts_.block_size - 1) / opts_.block_size;
  load_.on_dispatch(d->worker, in.request_id, in.prompt_tokens - cached, blocks);
  return route_output{names_[d->worker], d->worker, d->score, d->overlap_blocks, sticky};
}

void kv_router_core::on_remote_dispatch(const std::string& worker_id, const std::string& request_id,
                                        std::uint64_t prefill_tokens, std::uint64_t total_tokens) {
  auto it = ids_.find(worker_id);
  if (it == ids_.end()) return;
  load_.on_dispatch(it->second, request_id, prefill_tokens, (total_tokens + opts_.block_size - 1) / opts_.block_size);
}

std::optional<resync_needed> kv_router_core::on_kv_events(msg::kv_event_batch batch) {
  worker_index w = add_worker(batch.worker_id);
  if (w >= opts_.index.max_workers) {
    component_logger("kv_router")->warn("worker {}: index {} over max_workers: events dropped", batch.worker_id, w);
    return std::nullopt;
  }
  auto& q = queues_[w];
  std::uint64_t n = batch_events(batch);
  if (q.events + n > opts_.max_queued_events_per_worker) {
    component_logger("kv_router")
        ->warn("worker {}: {} queued kv events over the bound {}: queue dropped, snapshot requested", batch.worker_id,
               q.events + n, opts_.max_queued_events_per_worker);
    queued_total_ -= q.events;
    q = queued{};
    return resync_needed{batch.worker_id};
  }
  q.events += n;
  queued_total_ += n;
  q.batches.push_back(std::move(batch));
  return std::nullopt;
}

std::vector<resync_needed> kv_router_core::pump(std::uint64_t budget) {
  std::vector<resync_needed> out;
  if (queues_.empty()) return out;
  // One batch per worker per turn: a flooding worker gets one batch of
  // progress for each batch of every other worker with work queued.
  std::size_t idle_turns = 0;
  while (budget > 0 && queued_total_ > 0 && idle_turns < queues_.size()) {
    std::size_t w = pump_cursor_;
    pump_cursor_ = (pump_cursor_ + 1) % queues_.size();
    auto& q = queues_[w];
    if (q.batches.empty()) {
      ++idle_turns;
      continue;
    }
    idle_turns = 0;
    auto b = std::move(q.batches.front());
    q.batches.pop_front();
    std::uint64_t n = batch_events(b);
    q.events -= n;
    queued_total_ -= n;
    budget = n >= budget ? 0 : budget - n;
    if (!opts_.use_kv_events) continue;  // approximate mode: events are not trusted
    auto act = index_->apply_batch(static_cast<worker_index>(w), b.seq, b.events, b.stream);
    if (act == batch_action::request_snapshot) {
      bool already = std::any_of(out.begin(), out.end(), [&](const resync_needed& r) { return r.worker_id == b.worker_id; });
      if (!already) out.push_back(resync_needed{b.worker_id});
    }
  }
  return out;
}

bool kv_router_core::on_snapshot(const std::string& worker_id, std::uint64_t seq,
                                 const std::vector<msg::kv_event>& events, std::uint64_t stream) {
  worker_index w = add_worker(worker_id);
  if (w >= opts_.index.max_workers) return false;
  if (index_->stale_stream(w, stream)) return false;  // a dead incarnation's answer
  // Queued batches the snapshot covers go: its stream's (or, unknown, any) up to
  // `seq`, and every batch of an older stream. Later ones stay.
  auto& q = queues_[w];
  auto covered = [&](const msg::kv_event_batch& b) {
    if (stream && b.stream && b.stream != stream) return b.stream < stream;
    return b.seq <= seq;
  };
  for (auto it = q.batches.begin(); it != q.batches.end();) {
    if (!covered(*it)) {
      ++it;
      continue;
    }
    std::uint64_t n = batch_events(*it);
    q.events -= n;
    queued_total_ -= n;
    it = q.batches.erase(it);
  }
  return index_->apply_snapshot(w, seq, events, stream);
}

void kv_router_core::on_load_report(const msg::load_report& report) {
  auto w = index_of(report.worker_id);
  if (!w) return;
  load_.on_load_report(*w, report);
}

}  // namespace yard::kv
