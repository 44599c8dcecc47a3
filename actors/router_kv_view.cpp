// actors/router_kv_view.cpp — the router actor's view of workers and their KV blocks (see router_state.hpp).
#include <algorithm>
#include <chrono>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/router_state.hpp"
#include "messages/cluster.hpp"
#include "messages/router.hpp"
#include "messages/subjects.hpp"

namespace yard::actors::router_detail {

kv::kv_router_core* core_for(router_state& st, const std::string& model, std::uint32_t block_size) {
  auto it = st.cores.find(model);
  if (it != st.cores.end()) return it->second.get();
  // A core holds an index and load tables: heartbeats naming ever new models must not grow the router without end.
  if (st.cores.size() >= router_state::max_pools) {
    st.log->error("routing pool for '{}' refused: this router already routes {} pools (models x prefill)", model,
                  st.cores.size());
    return nullptr;
  }
  kv::kv_router_options o;
  o.policy = st.cfg.policy;
  o.policy_cfg = st.cfg.policy_cfg;
  o.seed = st.cfg.seed;
  o.block_size = block_size;
  o.use_kv_events = st.cfg.use_kv_events;
  auto core = kv::kv_router_core::create(o);
  if (!core) {
    st.log->error("cannot create the router core for '{}': {}", model, core.err().describe());
    return nullptr;
  }
  st.log->info("routing model '{}' with policy {} (block size {}, {})", model, st.cfg.policy, block_size,
               st.cfg.use_kv_events ? "KV events" : "approximate");
  return st.cores.emplace(model, std::move(*core)).first->second.get();
}

void drop_worker(router_state& st, const std::string& id) {
  st.last_loss = clock::now();
  st.snapshot_retries.erase(id);
  st.block_size_mismatch.erase(id);
  auto m = st.model_of.find(id);
  if (m == st.model_of.end()) return;
  if (auto c = st.cores.find(m->second); c != st.cores.end()) {
    c->second->remove_worker(id);
    if (c->second->num_workers() == 0) {  // its last worker left: the pool's index and tables go too
      st.log->info("routing pool '{}' has no worker left: dropped", c->first);
      st.cores.erase(c);
    }
  }
  st.model_of.erase(m);
}

namespace {

// The KV stream `worker` announced in its heartbeat (0: none announced, or not a worker we hold).
std::uint64_t announced_stream(const router_state& st, const std::string& worker) {
  const auto& all = st.workers.all();
  auto it = all.find(worker);
  return it == all.end() ? 0 : it->second.last.kv_stream;
}

// A batch or snapshot of another stream than the one its worker announces: a forgery (or a dead incarnation's
// straggler). Taken, a forged newer stream would make the worker's real batches look stale until it restarts.
bool foreign_stream(router_state& st, const std::string& worker, std::uint64_t stream, const char* what) {
  const std::uint64_t want = announced_stream(st, worker);
  if (want == 0 || stream == want) return false;
  st.foreign_kv_batches++;
  if (st.foreign_kv_batches <= 10 || st.foreign_kv_batches % 1000 == 0)
    st.log->warn("KV {} for worker {} on stream {}, not the announced {}: ignored ({} so far)", what, worker, stream,
                 want, st.foreign_kv_batches);
  return true;
}

}  // namespace

void request_snapshot(router_state& st, const std::string& worker_id) {
  st.log->info("asking worker {} for a KV snapshot", worker_id);
  st.metrics->kv_resyncs++;
  // Asked in msgpack (an empty body): the snapshot comes back in the asker's format, and msgpack is the compact one.
  st.conn->publish(subjects::kv_snapshot(st.cfg.ns, worker_id), "", st.snapshot_inbox + "." + worker_id,
                   "application/msgpack");
}

void pump(router_state& st) {
  for (auto& [model, core] : st.cores)
    if (core->queued_events() > 0)
      for (const auto& r : core->pump(st.cfg.pump_budget)) request_snapshot(st, r.worker_id);
}

namespace {

// A worker whose tokenizer differs from ours hashes other tokens into its blocks: our
// overlap for it would be wrong (typically zero). Say so loudly, once per incarnation,
// and leave its blocks out of the index (its KV events and snapshots are ignored), so it
// is routed on load only until it (or this router) runs the same tokenizer.
void check_tokenizer(router_state& st, const msg::heartbeat& hb) {
  if (hb.tokenizer_fingerprint == 0 || st.fingerprint == 0 || hb.tokenizer_fingerprint == st.fingerprint) {
    if (st.mismatched.erase(hb.instance_id))
      st.log->info("worker {} now tokenizes like this router: indexing its KV blocks again", hb.instance_id);
    return;
  }
  auto [it, fresh] = st.mismatched.try_emplace(hb.instance_id, hb.incarnation);
  if (!fresh && it->second == hb.incarnation) return;
  it->second = hb.incarnation;
  st.tokenizer_mismatches++;
  st.metrics->tokenizer_mismatches++;
  st.log->error("worker {} tokenizes differently from this router (fingerprint {:016x}, ours {:016x}): its KV blocks are "
                "not indexed and it is routed on load only; start the router with the workers' model "
                "(--engine native --model DIR)",
                hb.instance_id, hb.tokenizer_fingerprint, st.fingerprint);
  if (auto m = st.model_of.find(hb.instance_id); m != st.model_of.end())
    st.cores.at(m->second)->on_snapshot(hb.instance_id, 0, {});  // forget what was indexed for it
}

}  // namespace

void on_heartbeat(router_actor* self, transport::nats_message& m) {
  auto& st = self->state;
  auto taken = st.liveness->on_heartbeat(st.workers, m);
  if (!taken || taken->obs.what == worker_registry::change::refused) return;
  const msg::heartbeat* hb = &taken->hb;
  auto change = taken->obs.what;
  if (change == worker_registry::change::joined) {
    st.log->info("worker {} joined ({})", hb->instance_id, hb->generate_subject);
  } else if (change == worker_registry::change::restarted) {
    st.log->warn("worker {} restarted: its KV blocks are gone", hb->instance_id);
    drop_worker(st, hb->instance_id);
  }
  check_tokenizer(st, *hb);
  if (change != worker_registry::change::none) st.liveness->probe(st.workers, clock::now());
  join_pool(st, hb->instance_id);
}

// A worker enters its routing pool once it answered its status probe on its own subject (a claim nobody answers
// for costs the router no pool, index or snapshot); each heartbeat after that refreshes its load there.
void join_pool(router_state& st, const std::string& id) {
  auto e = st.workers.all().find(id);
  if (e == st.workers.all().end()) return;
  if (!st.workers.verified(e->second)) return;
  const msg::heartbeat* hb = &e->second.last;
  // Prefill-only workers form their own pool (KV-aware choice for remote prefill).
  auto pool = pool_key(hb->model, hb->role == msg::worker_role::prefill);
  auto* core = core_for(st, pool, hb->block_size);
  if (core == nullptr) return;
  if (core->block_size() != hb->block_size) {
    // Its blocks are hashed over other spans than the pool's: neither its events nor our overlap would mean
    // anything. Left out of the pool (no traffic through it), said once per incarnation.
    if (st.block_size_mismatch.insert(hb->instance_id).second)
      st.log->error("worker {} announces KV blocks of {} tokens, pool '{}' routes blocks of {}: not routed", hb->instance_id,
                    hb->block_size, pool, core->block_size());
    return;
  }
  if (!core->has_worker(hb->instance_id)) {
    core->add_worker(hb->instance_id);
    st.model_of[hb->instance_id] = pool;
    // A worker may join already holding blocks (G3 recovered after a restart, or events sent before this
    // router saw it): its snapshot makes the index right from the start.
    request_snapshot(st, hb->instance_id);
  }
  if (hb->load) {
    auto load = *hb->load;
    load.worker_id = hb->instance_id;
    core->on_load_report(load);
  }
}

void on_kv_events(router_actor* self, transport::nats_message& m) {
  auto& st = self->state;
  auto batch = msg::decode_auto<msg::kv_event_batch>(m.data, m.content_type, st.cfg.limits);
  if (!batch) {
    st.log->warn("bad KV event batch: {}", batch.err().describe());
    return;
  }
  if (batch->worker_id != subjects::last_token(m.subject)) {
    st.log->warn("KV events for '{}' on {}: refused", batch->worker_id, m.subject);
    return;
  }
  st.metrics->kv_event_batches++;
  st.metrics->kv_events += batch->events.size();
  if (batch->timestamp_ms > 0) {
    auto now = std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch()).count();
    st.metrics->kv_event_lag_seconds.observe(std::max(0.0, now - static_cast<double>(batch->timestamp_ms)) / 1000.0);
  }
  if (st.mismatched.count(batch->worker_id)) return;  // another tokenizer: its hashes mean nothing here
  if (foreign_stream(st, batch->worker_id, batch->stream, "events")) return;
  auto it = st.model_of.find(batch->worker_id);
  if (it == st.model_of.end()) return;  // not routable yet: its snapshot comes when it joins
  auto& core = st.cores.at(it->second);
  if (auto r = core->on_kv_events(std::move(*batch))) request_snapshot(st, r->worker_id);
  pump(st);
}

void on_snapshot_reply(router_actor* self, transport::nats_message& m) {
  auto& st = self->state;
  if (m.no_responders) {
    // The worker heartbeated before its snapshot subscription was up (or is restarting):
    // ask again a little later, a few times, while it is still routable.
    auto id = subjects::last_token(m.subject);
    if (!st.model_of.count(id)) return;
    int& tries = st.snapshot_retries[id];
    if (++tries > 5) {
      st.log->warn("worker {} never answered its KV snapshot request: routing without its cached blocks", id);
      st.snapshot_retries.erase(id);
      return;
    }
    self->delayed_send(self, std::chrono::milliseconds(50 << tries), snapshot_atom::value, id);
    return;
  }
  auto batch = msg::decode_auto<msg::kv_event_batch>(m.data, m.content_type, st.cfg.limits);
  if (!batch) {
    st.log->warn("bad KV snapshot: {}", batch.err().describe());
    return;
  }
  if (batch->worker_id != subjects::last_token(m.subject)) {
    st.log->warn("KV snapshot for '{}' on {}: refused", batch->worker_id, m.subject);
    return;
  }
  auto it = st.model_of.find(batch->worker_id);
  if (it == st.model_of.end()) return;
  st.snapshot_retries.erase(batch->worker_id);
  if (st.mismatched.count(batch->worker_id)) return;  // another tokenizer: see check_tokenizer
  if (foreign_stream(st, batch->worker_id, batch->stream, "snapshot")) return;
  if (!st.cores.at(it->second)->on_snapshot(batch->worker_id, batch->seq, batch->events, batch->stream)) {
    st.log->info("worker {}: KV snapshot of an earlier stream ({}) ignored", batch->worker_id, batch->stream);
    return;
  }
  st.metrics->kv_snapshots_applied++;
  st.log->info("worker {}: KV snapshot applied ({} events)", batch->worker_id, batch->events.size());
}

void on_route_notice(router_actor* self, transport::nats_message& m) {
  auto& st = self->state;
  auto note = msg::decode_auto<msg::route_notice>(m.data, m.content_type, st.cfg.limits);
  if (!note || note->router_id == st.cfg.id) return;
  auto it = st.cores.find(note->model);
  if (it == st.cores.end()) return;
  it->second->on_remote_dispatch(note->worker_id, note->request_id,
                                 note->prompt_tokens - std::min(note->prompt_tokens, note->cached_tokens),
                                 std::uint64_t{note->prompt_tokens} + note->max_tokens);
}

// The frontends' latency windows: what TTFT clients saw (beside the ttft policy's predictions).
void on_latency_report(router_actor* self, transport::nats_message& m) {
  auto& st = self->state;
  auto rep = msg::decode_auto<msg::latency_report>(m.data, m.content_type, st.cfg.limits);
  if (!rep) {
    st.log->debug("bad latency report: {}", rep.err().describe());
    return;
  }
  for (float ms : rep->ttft_ms) st.metrics->observed_ttft_seconds.observe(static_cast<double>(ms) / 1000.0);
}

// Gauges the scrape reads: refreshed every tick (cheap sums over the cores).
router_stats stats_of(const router_state& st) {
  router_stats s;
  for (const auto& [model, core] : st.cores) {
    s.tracked_requests += core->tracked_requests();
    s.indexed_blocks += core->index().num_blocks();
    s.kv_new_streams += core->index().stats().new_streams;
    s.kv_events_queued += core->queued_events();
    auto ss = core->session_stats();
    s.sticky_hits += ss.sticky_hits;
    s.sticky_breaks += ss.sticky_breaks;
    s.sessions += ss.sessions;
  }
  s.held_requests = st.held.size();
  s.refused_heartbeats = st.liveness->refused();
  s.routed = st.routed;
  s.tokenizer_mismatches = st.tokenizer_mismatches;
  s.workers = st.workers.size();
  s.pools = st.cores.size();
  s.foreign_kv_batches = st.foreign_kv_batches;
  return s;
}

void refresh_gauges(router_state& st) {
  const auto s = stats_of(st);
  auto& mx = *st.metrics;
  mx.tracked_requests = static_cast<std::int64_t>(s.tracked_requests);
  mx.indexed_blocks = static_cast<std::int64_t>(s.indexed_blocks);
  mx.kv_events_queued = static_cast<std::int64_t>(s.kv_events_queued);
  mx.sessions = static_cast<std::int64_t>(s.sessions);
  mx.kv_new_streams = s.kv_new_streams;
  mx.sticky_hits = s.sticky_hits;
  mx.sticky_breaks = s.sticky_breaks;
  mx.held_requests = static_cast<std::int64_t>(s.held_requests);
  mx.workers = static_cast<std::int64_t>(s.workers);
  mx.approximate_workers = static_cast<std::int64_t>(st.cfg.use_kv_events ? st.mismatched.size() : s.workers);
  mx.refused_heartbeats = s.refused_heartbeats;
}

}  // namespace yard::actors::router_detail
