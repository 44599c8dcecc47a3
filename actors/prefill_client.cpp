// actors/prefill_client.cpp — see prefill_client.hpp.
#include "actors/prefill_client.hpp"

#include <algorithm>
#include <chrono>
#include <map>

#include <caf/all.hpp>

#include "common/log.hpp"
#include "messages/subjects.hpp"

namespace yard::actors {

namespace {

using clock = std::chrono::steady_clock;

struct prefill_peer {
  std::uint32_t in_flight = 0;
  clock::time_point seen;
  std::string ucx_address;  // from its replies: the engine actor's UCX endpoint to drop when it leaves
};

struct client_state {
  transport::nats_connection* conn = nullptr;
  prefill_client_config cfg;
  caf::actor engine;
  std::map<std::string, prefill_peer> pool;  // prefill workers of our model
  std::map<std::string, bool> waiting;       // attempt keys with a remote prefill in flight
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "prefill_client";
};

using client = prefill_client_actor::stateful_pointer<client_state>;

void forget(client self, std::map<std::string, prefill_peer>::iterator it) {
  if (!it->second.ucx_address.empty()) caf::anon_send(self->state.engine, forget_atom::value, it->second.ucx_address);
  self->state.pool.erase(it);
}

// Remote prefill only pays off while the pool has room (heartbeats lag: our
// own requests in flight count too, spread over the pool).
bool pool_has_room(client self) {
  auto& st = self->state;
  const auto now = clock::now();
  std::uint32_t best = UINT32_MAX;
  std::size_t fresh = 0;
  for (auto it = st.pool.begin(); it != st.pool.end();) {
    if (now - it->second.seen > std::chrono::milliseconds(st.cfg.lease_ms)) {
      auto gone = it++;
      forget(self, gone);
      continue;
    }
    best = std::min(best, it->second.in_flight);
    ++fresh;
    ++it;
  }
  if (fresh == 0) return false;
  return best + st.waiting.size() / fresh < st.cfg.prefill_queue_limit;
}

void on_prefill(client self, const std::string& key, const msg::remote_prefill_request& pr) {
  auto& st = self->state;
  if (!pool_has_room(self)) {
    caf::anon_send(st.engine, local_atom::value, key, false);
    return;
  }
  st.waiting[key] = true;
  if (st.cfg.metrics) st.cfg.metrics->remote_prefills++;
  st.conn->publish(subjects::router_prefill(st.cfg.ns), msg::encode(pr), st.cfg.inbox);
  self->delayed_send(self, std::chrono::milliseconds(st.cfg.timeout_ms), remote_timeout_atom::value, key);
}

void on_reply(client self, const transport::nats_message& m) {
  auto& st = self->state;
  auto r = msg::decode_auto<msg::remote_prefill_reply>(m.data, m.content_type, st.cfg.limits);
  if (!r) {
    st.log->warn("bad remote prefill reply: {}", r.err().describe());
    return;  // the request's deadline falls back to local prefill
  }
  auto key = attempt_key(r->request_id, r->attempt);
  if (!st.waiting.erase(key)) {  // timed out or cancelled meanwhile: free the blocks at once
    release_remote_lease(*st.conn, *r);
    return;
  }
  if (r->error) {
    st.log->info("remote prefill of {} failed ({}): prefilling locally", r->request_id, r->error->message);
    if (st.cfg.metrics) st.cfg.metrics->local_fallbacks.add({fallback_remote_error});
    caf::anon_send(st.engine, local_atom::value, key, true);
    return;
  }
  if (r->region)
    if (auto peer = st.pool.find(r->prefill_worker_id); peer != st.pool.end())
      peer->second.ucx_address = r->region->worker_address;
  caf::anon_send(st.engine, prefilled_atom::value, key, std::move(*r));
}

// Prefill workers' heartbeats say how busy the prefill pool is.
void on_heartbeat(client self, const transport::nats_message& m) {
  auto& st = self->state;
  auto hb = msg::decode_auto<msg::heartbeat>(m.data, m.content_type, st.cfg.limits);
  if (!hb || hb->component != msg::component_kind::worker || hb->role != msg::worker_role::prefill || hb->model != st.cfg.model) return;
  if (hb->instance_id != subjects::last_token(m.subject)) return;  // a heartbeat only speaks for its own subject
  if (hb->draining) {
    if (auto it = st.pool.find(hb->instance_id); it != st.pool.end()) forget(self, it);
    return;
  }
  auto& p = st.pool[hb->instance_id];
  p.seen = clock::now();
  p.in_flight = hb->load ? hb->load->active_requests + hb->load->queued_requests : 0;
}

prefill_client_actor::behavior_type client_behavior(client self, transport::nats_connection* conn,
                                                    prefill_client_config cfg) {
  self->state.conn = conn;
  self->state.cfg = std::move(cfg);
  self->state.log = component_logger("worker");
  return {
      [=](open_atom, caf::actor engine) { self->state.engine = std::move(engine); },
      [=](prefill_atom, const std::string& key, const msg::remote_prefill_request& pr) { on_prefill(self, key, pr); },
      [=](cancel_atom, const std::string& key) { self->state.waiting.erase(key); },
      [=](remote_timeout_atom, const std::string& key) {
        if (!self->state.waiting.erase(key)) return;
        self->state.log->warn("remote prefill of {} timed out after {} ms: prefilling locally", key,
                              self->state.cfg.timeout_ms);
        if (self->state.cfg.metrics) self->state.cfg.metrics->local_fallbacks.add({fallback_timeout});
        caf::anon_send(self->state.engine, local_atom::value, key, true);
      },
      [=](prefilled_atom, const transport::nats_message& m) { on_reply(self, m); },
      [=](heartbeat_atom, const transport::nats_message& m) { on_heartbeat(self, m); },
  };
}

}  // namespace

prefill_client_actor spawn_prefill_client(caf::actor_system& sys, transport::nats_connection& conn,
                                          prefill_client_config cfg) {
  return sys.spawn(client_behavior, &conn, std::move(cfg));
}

std::string attempt_key(const std::string& request_id, std::uint32_t attempt) {
  return request_id + "#" + std::to_string(attempt);
}

void release_remote_lease(transport::nats_connection& conn, const msg::remote_prefill_reply& r) {
  if (r.lease_id == 0 || r.release_subject.empty()) return;
  msg::kv_release rel;
  rel.lease_id = r.lease_id;
  rel.request_id = r.request_id;
  conn.publish(r.release_subject, msg::encode(rel));
}

}  // namespace yard::actors
