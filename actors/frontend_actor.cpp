#include "actors/frontend_actor.hpp"

#include <chrono>
#include <map>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/worker_liveness.hpp"
#include "actors/worker_registry.hpp"
#include "common/log.hpp"
#include "messages/cluster.hpp"
#include "messages/error_chunk.hpp"
#include "messages/cluster_subjects.hpp"
#include "messages/subjects.hpp"
#include "transport/actor_bridge.hpp"

namespace yard::actors {

namespace {

using clock = std::chrono::steady_clock;
using retry_atom = caf::atom_constant<caf::atom("retry")>;  // (retry_atom, request id, inbox key): re-send after no responders

struct open_stream {
  msg::generate_request req;
  chunk_queue_ptr sink;
  std::string key;                          // current attempt's inbox suffix
  std::uint64_t next_seq = 0;               // expected seq from the current attempt
  std::uint64_t client_seq = 0;             // seq of the next chunk handed to the client
  std::vector<msg::token_id> delivered;     // tokens already handed to the client
  std::string worker_id;                    // who serves the current attempt
  std::uint32_t attempts = 0;
  clock::time_point started, last_activity, last_token;
  bool got_first_token = false;
  std::chrono::milliseconds backoff{0};     // next wait after "no responders" (doubles, capped)
};

struct frontend_state {
  transport::nats_connection* conn = nullptr;
  frontend_config cfg;
  std::shared_ptr<frontend_metrics> metrics;
  std::shared_ptr<cluster_view> view;
  std::string inbox_prefix;
  std::shared_ptr<std::atomic<std::uint64_t>> next_key;  // shared with frontend_port
  std::map<std::string, open_stream> by_id;          // request id -> stream
  std::map<std::string, std::string> id_by_key;      // inbox suffix -> request id
  worker_registry workers;
  std::unique_ptr<worker_liveness> liveness;
  msg::latency_report window;          // samples since the last latency report (for the planner)
  clock::time_point window_start = clock::now();
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "frontend";

  frontend_state() = default;
  frontend_state(const frontend_state&) = delete;
  frontend_state& operator=(const frontend_state&) = delete;
  // The actor is ending (a crash its supervisor will rebuild it from, or the
  // process stopping): the streams it owned cannot go on without it, so each
  // client gets a final error now instead of waiting for its deadline.
  ~frontend_state() {
    if (by_id.empty()) return;
    if (log) log->warn("frontend ending with {} open stream(s): each ends with an error", by_id.size());
    for (auto& [id, s] : by_id)
      if (s.sink)
        s.sink->push(msg::error_chunk(id, s.client_seq++, errc::unavailable,
                                 "the frontend restarted while this request was open: retry it"));
  }
};

using frontend_actor = caf::stateful_actor<frontend_state>;

void fail_stream(frontend_state& st, open_stream& s, errc code, const std::string& message) {
  s.sink->push(msg::error_chunk(s.req.request_id, s.client_seq++, code, message));
}

void finish(frontend_state& st, const std::string& request_id) {
  auto it = st.by_id.find(request_id);
  if (it == st.by_id.end()) return;
  st.id_by_key.erase(it->second.key);
  st.metrics->e2e.observe(std::chrono::duration<double>(clock::now() - it->second.started).count());
  st.by_id.erase(it);
}

void dispatch(frontend_state& st, open_stream& s) {
  if (s.attempts > 0) {
    // Stop the previous attempt wherever it still runs (a frozen worker may wake up).
    msg::cancel_request c{s.req.request_id, "migrated", s.attempts - 1};
    st.conn->publish(subjects::worker_cancel(st.cfg.ns), msg::encode(c));
  }
  st.id_by_key.erase(s.key);
  s.key = std::to_string(st.next_key->fetch_add(1));
  st.id_by_key[s.key] = s.req.request_id;
  s.next_seq = 0;
  s.worker_id.clear();
  s.last_activity = clock::now();
  s.attempts++;
  auto req = s.req;
  req.resume_tokens = s.delivered;
  req.attempt = s.attempts - 1;
  auto st_pub = st.conn->publish(subjects::router_generate(st.cfg.ns), msg::encode(req), st.inbox_prefix + "." + s.key,
                                 msg::content_type_of(msg::wire_format::msgpack));
  if (!st_pub && st_pub.err().code == errc::payload_too_large) {
    // A resumed request (prompt + delivered tokens) over the server's max_payload fails every time: end it.
    st.log->warn("dispatch of {} failed: {}", s.req.request_id, st_pub.err().describe());
    fail_stream(st, s, errc::payload_too_large, "the request is over the NATS server's max_payload: " + st_pub.err().message);
    finish(st, s.req.request_id);
  } else if (!st_pub) {
    st.log->warn("dispatch of {} failed: {}", s.req.request_id, st_pub.err().describe());
    // The tick will retry after the stream timeout; NATS buffers while reconnecting.
  }
}

// Re-dispatches a stream whose worker failed, or fails it after max_attempts.
void migrate(frontend_state& st, open_stream& s, const std::string& why) {
  if (s.attempts >= static_cast<std::uint32_t>(st.cfg.max_attempts)) {
    st.log->warn("request {} failed after {} attempts ({})", s.req.request_id, s.attempts, why);
    fail_stream(st, s, errc::unavailable, "request failed after " + std::to_string(s.attempts) + " attempts: " + why);
    finish(st, s.req.request_id);
    return;
  }
  st.log->warn("migrating request {} ({}), {} tokens already delivered", s.req.request_id, why, s.delivered.size());
  st.metrics->migrations_total++;
  dispatch(st, s);
}

void on_chunk(frontend_actor* self, transport::nats_message& m) {
  auto& st = self->state;
  auto key = m.subject.substr(st.inbox_prefix.size() + 1);
  auto kit = st.id_by_key.find(key);
  if (kit == st.id_by_key.end()) return;  // a late chunk of a finished or migrated attempt
  auto& s = st.by_id.at(kit->second);
  if (m.no_responders) {
    // Nobody subscribes to the router's subject right now (a router restarting): wait and
    // send again, within the request's router wait, without spending an attempt.
    auto waited = clock::now() - s.started;
    if (waited >= std::chrono::milliseconds(st.cfg.router_wait_ms)) {
      fail_stream(st, s, errc::unavailable, "no router answered within " + std::to_string(st.cfg.router_wait_ms) + " ms");
      finish(st, s.req.request_id);
      return;
    }
    s.backoff = std::min(std::chrono::milliseconds(500), std::max(std::chrono::milliseconds(20), s.backoff * 2));
    st.log->debug("no router for {}: retrying in {} ms", s.req.request_id, s.backoff.count());
    s.last_activity = clock::now() + s.backoff;  // the ack timeout counts from the retry
    self->delayed_send(self, s.backoff, retry_atom::value, s.req.request_id, s.key);
    return;
  }
  auto chunk = msg::decode_auto<msg::token_chunk>(m.data, m.content_type);
  if (!chunk) {
    st.log->warn("bad chunk for {}: {}", s.req.request_id, chunk.err().describe());
    migrate(st, s, "malformed chunk");
    return;
  }
  if (chunk->error) {
    auto code = static_cast<errc>(chunk->error->code);
    // A worker that refused because it is draining, a router with no worker
    // right now, or a worker whose engine died under the stream (an external
    // engine's upstream) is worth another attempt, resumed from the tokens
    // delivered so far; request errors go to the client.
    if ((code == errc::unavailable) && s.attempts < static_cast<std::uint32_t>(st.cfg.max_attempts) &&
        st.workers.size() > 0) {
      migrate(st, s, chunk->error->message);
      return;
    }
    fail_stream(st, s, code, chunk->error->message);
    finish(st, s.req.request_id);
    return;
  }
  if (chunk->seq < s.next_seq) return;  // duplicate
  if (chunk->seq > s.next_seq) {
    migrate(st, s, "gap in stream: expected seq " + std::to_string(s.next_seq) + ", got " + std::to_string(chunk->seq));
    return;
  }
  s.next_seq++;
  s.worker_id = chunk->worker_id;
  s.last_activity = clock::now();
  if (chunk->token_ids.empty() && !chunk->finish_reason) return;  // admission ack: nothing for the client
  if (!chunk->token_ids.empty()) {
    auto now = clock::now();
    if (!s.got_first_token) {
      double ttft = std::chrono::duration<double>(now - s.started).count();
      st.metrics->ttft.observe(ttft);
      st.window.ttft_ms.push_back(static_cast<float>(ttft * 1000));
      s.got_first_token = true;
    } else {
      // A whole (non-streamed) response's tokens come in batches: the gap is spread over them.
      auto k = chunk->token_ids.size();
      double itl = std::chrono::duration<double>(now - s.last_token).count() / static_cast<double>(k);
      for (std::size_t i = 0; i < k; ++i) {
        st.metrics->itl.observe(itl);
        if (st.window.itl_ms.size() < 4096) st.window.itl_ms.push_back(static_cast<float>(itl * 1000));
      }
    }
    s.last_token = now;
    st.metrics->output_tokens_total += chunk->token_ids.size();
    s.delivered.insert(s.delivered.end(), chunk->token_ids.begin(), chunk->token_ids.end());
  }
  bool done = chunk->finish_reason.has_value();
  chunk->seq = s.client_seq++;
  if (done && chunk->usage_info) chunk->usage_info->completion_tokens = static_cast<std::uint32_t>(s.delivered.size());
  s.sink->push(std::move(*chunk));
  if (done) finish(st, s.req.request_id);
}

// Publishes the window's latency samples for the SLO planner (yard planner).
void publish_latency_window(frontend_state& st, clock::time_point now) {
  st.window.source = st.cfg.id;
  st.window.window_ms = static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now - st.window_start).count());
  st.window.timestamp_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  st.conn->publish(subjects::latency_metrics(st.cfg.ns), msg::encode(st.window));
  st.window = msg::latency_report{};
  st.window_start = now;
}

void on_tick(frontend_actor* self) {
  auto& st = self->state;
  auto now = clock::now();
  if (now - st.window_start >= std::chrono::milliseconds(st.cfg.latency_window_ms)) publish_latency_window(st, now);
  for (const auto& id : st.workers.expire(now)) st.log->warn("worker {} missed its lease", id);
  st.liveness->probe(st.workers, now);
  st.view->set(st.workers.eligible("").size(), st.workers.models());
  std::vector<worker_status> ws;
  ws.reserve(st.workers.size());
  for (const auto& [id, w] : st.workers.all())
    ws.push_back(worker_status{id, std::string(msg::wire_name(w.last.role)), w.last.model, w.last.draining, w.last.load.value_or(msg::load_report{})});
  st.view->set_workers(std::move(ws));
  std::vector<std::string> to_migrate, out_of_time;
  // With no live worker the router holds unacknowledged requests until one (re)joins:
  // re-sending them would only spend attempts, so they wait up to router_wait_ms.
  bool outage = st.workers.eligible("").empty();
  for (auto& [id, s] : st.by_id) {
    bool worker_lost = !s.worker_id.empty() && !st.workers.alive(s.worker_id);
    bool silent = now - s.last_activity > std::chrono::milliseconds(st.cfg.stream_timeout_ms);
    bool unacked = s.worker_id.empty() && now - s.last_activity > std::chrono::milliseconds(st.cfg.ack_timeout_ms);
    if (unacked && !worker_lost && !silent && outage) {
      if (now - s.started >= std::chrono::milliseconds(st.cfg.router_wait_ms)) out_of_time.push_back(id);
      continue;
    }
    if (worker_lost || silent || unacked) to_migrate.push_back(id);
  }
  for (const auto& id : out_of_time) {
    auto& s = st.by_id.at(id);
    fail_stream(st, s, errc::unavailable, "no worker available within " + std::to_string(st.cfg.router_wait_ms) + " ms");
    finish(st, id);
  }
  for (const auto& id : to_migrate) {
    auto it = st.by_id.find(id);
    if (it == st.by_id.end()) continue;
    auto& s = it->second;
    bool lost = !s.worker_id.empty() && !st.workers.alive(s.worker_id);
    migrate(st, s, lost ? "worker " + s.worker_id + " lost" : s.worker_id.empty() ? "no worker acknowledged" : "stream timed out");
  }
}

caf::behavior frontend_behavior(frontend_actor* self, transport::nats_connection* conn, frontend_config cfg,
                                std::shared_ptr<frontend_metrics> metrics, std::shared_ptr<cluster_view> view,
                                std::string inbox_prefix, std::shared_ptr<std::atomic<std::uint64_t>> next_key) {
  auto& st = self->state;
  st.next_key = std::move(next_key);
  st.conn = conn;
  st.cfg = std::move(cfg);
  st.metrics = std::move(metrics);
  st.view = std::move(view);
  st.inbox_prefix = std::move(inbox_prefix);
  st.log = component_logger("frontend");
  st.cfg.registry.ns = st.cfg.ns;
  st.cfg.registry.require_answer = true;
  st.workers = worker_registry(st.cfg.registry);
  st.liveness = std::make_unique<worker_liveness>(conn, st.cfg.ns, st.inbox_prefix + "-status", st.log);
  self->send(self, tick_atom::value);
  return {
      [=](open_atom, msg::generate_request& req, chunk_queue_ptr& sink, std::string& key) {
        // frontend_port::open publishes the first attempt right after this message.
        sink->claim();  // ours now: if we die, our end fails it (not the port's rebind)
        auto& st = self->state;
        if (st.by_id.count(req.request_id)) {
          sink->push(msg::error_chunk(req.request_id, 0, errc::conflict, "duplicate request id"));
          return;
        }
        st.window.arrivals++;
        open_stream s;
        s.req = std::move(req);
        s.sink = std::move(sink);
        s.started = s.last_activity = clock::now();
        s.key = std::move(key);
        s.attempts = 1;
        st.id_by_key[s.key] = s.req.request_id;
        auto id = s.req.request_id;
        st.by_id.emplace(id, std::move(s));
      },
      [=](cancel_atom, const std::string& request_id) {
        auto& st = self->state;
        if (!st.by_id.count(request_id)) return;
        st.log->info("client of {} went away: cancelling", request_id);
        msg::cancel_request c{request_id, "client disconnected", std::nullopt};
        st.conn->publish(subjects::worker_cancel(st.cfg.ns), msg::encode(c));
        finish(st, request_id);
      },
      [=](chunk_atom, transport::nats_message& m) { on_chunk(self, m); },
      [=](retry_atom, const std::string& request_id, const std::string& key) {
        auto& st = self->state;
        auto it = st.by_id.find(request_id);
        if (it == st.by_id.end() || it->second.key != key) return;  // finished, or already re-sent
        it->second.attempts--;  // the retry is the same attempt
        dispatch(st, it->second);
      },
      [=](status_atom, transport::nats_message& m) { self->state.liveness->on_status_reply(self->state.workers, m); },
      [=](heartbeat_atom, transport::nats_message& m) {
        auto& st = self->state;
        auto taken = st.liveness->on_heartbeat(st.workers, m);
        if (!taken || taken->obs.what == worker_registry::change::refused) return;
        if (taken->obs.what != worker_registry::change::none) st.liveness->probe(st.workers, clock::now());
        auto hb = &taken->hb;
        if (taken->obs.what != worker_registry::change::restarted) return;
        // The process behind this id died and came back: its streams are gone.
        std::vector<std::string> lost;
        for (auto& [id, s] : st.by_id)
          if (s.worker_id == hb->instance_id) lost.push_back(id);
        for (const auto& id : lost) migrate(st, st.by_id.at(id), "worker " + hb->instance_id + " restarted");
      },
      [=](tick_atom) {
        on_tick(self);
        self->delayed_send(self, std::chrono::milliseconds(self->state.cfg.tick_ms), tick_atom::value);
      },
  };
}

}  // namespace

result<frontend_port> spawn_frontend(caf::actor_system& sys, transport::nats_connection& conn, frontend_config cfg,
                                     std::shared_ptr<frontend_metrics> metrics, std::shared_ptr<cluster_view> view) {
  auto ns = cfg.ns;
  auto inbox = conn.new_inbox();
  auto next_key = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto actor = sys.spawn(frontend_behavior, &conn, cfg, std::move(metrics), std::move(view), inbox, next_key);
  auto keep = std::make_shared<std::vector<transport::subscription>>();
  auto chunks = transport::expose(conn, inbox + ".*", actor, chunk_atom::value);
  if (!chunks) return chunks.err();
  keep->push_back(std::move(*chunks));
  auto hb = transport::expose(conn, subjects::heartbeat_all(ns), actor, heartbeat_atom::value);
  if (!hb) return hb.err();
  keep->push_back(std::move(*hb));
  auto status = transport::expose(conn, inbox + "-status.*", actor, status_atom::value);
  if (!status) return status.err();
  keep->push_back(std::move(*status));
  actor->attach_functor([keep]() mutable { keep->clear(); });
  conn.flush();
  request_roster(conn, ns);
  return frontend_port(actor, &conn, subjects::router_generate(ns), inbox, std::move(next_key));
}

}  // namespace yard::actors
