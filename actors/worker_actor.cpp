#include "actors/worker_actor.hpp"

#include <chrono>
#include <map>
#include <random>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "common/log.hpp"
#include "messages/subjects.hpp"
#include "transport/actor_bridge.hpp"

namespace yard::actors {

namespace {

using clock = std::chrono::steady_clock;
using publish_atom = caf::atom_constant<caf::atom("publish")>;

// Engine-side id of one dispatch attempt: a migrated request may come back to
// this worker while its earlier attempt is still being cancelled.
std::string attempt_key(const std::string& request_id, std::uint32_t attempt) {
  return request_id + "#" + std::to_string(attempt);
}

struct stream_state {
  std::string request_id;
  std::string reply;
  msg::wire_format format = msg::wire_format::msgpack;
  std::uint64_t next_seq = 0;
};

struct worker_state {
  transport::nats_connection* conn = nullptr;
  std::unique_ptr<backends::engine> engine;
  worker_config cfg;
  std::map<std::string, stream_state> streams;
  bool stepping = false;
  std::optional<backends::step_result> held;  // a step's outputs waiting for its model time
  bool draining = false;
  std::uint64_t kv_seq = 0;
  std::uint64_t incarnation = 0;
  clock::time_point last_heartbeat;
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "worker";
};

using worker_actor = caf::stateful_actor<worker_state>;

std::uint64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void reply_error(worker_state& st, const std::string& reply, msg::wire_format f, const std::string& request_id,
                 std::uint64_t seq, const error& err) {
  msg::token_chunk c;
  c.request_id = request_id;
  c.seq = seq;
  c.finish_reason = "error";
  c.error = msg::error_reply{static_cast<std::int32_t>(err.code), err.message};
  c.worker_id = st.cfg.id;
  st.conn->publish(reply, msg::encode(c, f), {}, msg::content_type_of(f));
}

void publish_heartbeat(worker_state& st) {
  st.last_heartbeat = clock::now();
  msg::heartbeat hb;
  hb.instance_id = st.cfg.id;
  hb.component = "worker";
  hb.role = st.cfg.role;
  hb.model = st.cfg.model;
  hb.generate_subject = subjects::worker_generate(st.cfg.ns, st.cfg.id);
  hb.lease_ms = static_cast<std::uint32_t>(st.cfg.lease_ms);
  hb.block_size = st.engine->block_size();
  auto load = st.engine->load();
  load.worker_id = st.cfg.id;
  load.timestamp_ms = now_ms();
  hb.load = load;
  hb.draining = st.draining;
  hb.incarnation = st.incarnation;
  st.conn->publish(subjects::heartbeat(st.cfg.ns), msg::encode(hb));
}

void publish_kv_events(worker_state& st) {
  auto events = st.engine->drain_kv_events();
  if (events.empty()) return;
  msg::kv_event_batch b;
  b.worker_id = st.cfg.id;
  b.seq = st.kv_seq++;
  b.events = std::move(events);
  st.conn->publish(subjects::kv_events(st.cfg.ns), msg::encode(b));
}

result<std::vector<backends::token_id>> prompt_tokens(const backends::engine& eng, const msg::generate_request& r) {
  if (r.token_ids && !r.token_ids->empty()) return *r.token_ids;
  if (r.messages && !r.messages->empty()) return eng.apply_chat_template(*r.messages);
  if (r.prompt && !r.prompt->empty()) return eng.tokenize(*r.prompt);
  return make_error(errc::bad_request, "one of 'prompt', 'token_ids' or 'messages' is required and must not be empty");
}

void on_generate(worker_actor* self, transport::nats_message& m) {
  auto& st = self->state;
  if (m.reply.empty()) {
    st.log->warn("generate request on {} without a reply inbox: dropped", m.subject);
    return;
  }
  auto fmt = msg::detect_format(m.content_type, m.data);
  auto req = msg::decode<msg::generate_request>(m.data, fmt, st.cfg.limits);
  if (!req) {
    st.log->warn("bad generate request: {}", req.err().describe());
    reply_error(st, m.reply, fmt, "", 0, req.err());
    return;
  }
  if (st.draining) {
    reply_error(st, m.reply, fmt, req->request_id, 0, error{errc::unavailable, "worker " + st.cfg.id + " is draining"});
    return;
  }
  auto tokens = prompt_tokens(*st.engine, *req);
  if (!tokens) {
    reply_error(st, m.reply, fmt, req->request_id, 0, tokens.err());
    return;
  }
  auto key = attempt_key(req->request_id, req->attempt);
  backends::engine_request er;
  er.request_id = key;
  er.prompt = std::move(*tokens);
  er.resume_tokens = req->resume_tokens;
  er.sampling = req->sampling;
  er.max_tokens = req->max_tokens;
  er.stop_token_ids = req->stop_token_ids;
  er.stop = req->stop;
  er.cache_salt = req->cache_salt;
  if (st.streams.count(key)) {
    reply_error(st, m.reply, fmt, req->request_id, 0, error{errc::conflict, "request id already running here"});
    return;
  }
  if (auto s = st.engine->add_request(std::move(er)); !s) {
    st.log->warn("request {} rejected: {}", req->request_id, s.err().describe());
    reply_error(st, m.reply, fmt, req->request_id, 0, s.err());
    return;
  }
  auto& stream = st.streams[key] = stream_state{req->request_id, m.reply, fmt, 0};
  // Acknowledge admission so the client knows who serves it.
  msg::token_chunk ack;
  ack.request_id = req->request_id;
  ack.seq = stream.next_seq++;
  ack.worker_id = st.cfg.id;
  st.conn->publish(m.reply, msg::encode(ack, fmt), {}, msg::content_type_of(fmt));
  if (!st.stepping) {
    st.stepping = true;
    self->send(self, step_atom::value);
  }
}

// Streams one step's outputs to their clients. The step's KV events go out
// first, so a router sees the blocks before the client sees the request end.
void publish_outputs(worker_state& st, backends::step_result& r) {
  publish_kv_events(st);
  bool finished = false;
  for (auto& out : r.outputs) {
    auto it = st.streams.find(out.request_id);
    if (it == st.streams.end()) continue;
    if (out.new_tokens.empty() && !out.finish_reason) continue;
    msg::token_chunk c;
    c.request_id = it->second.request_id;
    c.seq = it->second.next_seq++;
    c.token_ids = std::move(out.new_tokens);
    c.text = std::move(out.text_delta);
    c.logprobs = std::move(out.logprobs);
    c.finish_reason = out.finish_reason;
    c.worker_id = st.cfg.id;
    if (out.finish_reason) c.usage_info = out.usage_info;
    if (out.error_message) c.error = msg::error_reply{static_cast<std::int32_t>(errc::internal), *out.error_message};
    st.conn->publish(it->second.reply, msg::encode(c, it->second.format), {}, msg::content_type_of(it->second.format));
    if (out.finish_reason) {
      st.streams.erase(it);
      finished = true;
    }
  }
  // Routers only learn that work finished from our reports: send one now
  // (at most every 10 ms) instead of waiting for the next heartbeat.
  if (finished && clock::now() - st.last_heartbeat > std::chrono::milliseconds(10)) publish_heartbeat(st);
}

// After a step's outputs are out: the next step now, or idle.
void continue_stepping(worker_actor* self) {
  if (self->state.engine->has_work()) self->send(self, step_atom::value);
  else self->state.stepping = false;
}

// One engine step. Its outputs are released when the step's model time has
// passed (an emulated engine computes instantly; a real one has already spent
// it), so clients see the step's true latency.
void on_step(worker_actor* self) {
  auto& st = self->state;
  auto t0 = clock::now();
  auto r = st.engine->step();
  auto spent = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  double wait_ms = r.model_time_ms - spent;
  if (wait_ms > 0.05) {
    st.held = std::move(r);
    self->delayed_send(self, std::chrono::microseconds(static_cast<std::int64_t>(wait_ms * 1000)), publish_atom::value);
    return;
  }
  publish_outputs(st, r);
  continue_stepping(self);
}

caf::behavior worker_behavior(worker_actor* self, transport::nats_connection* conn,
                              std::shared_ptr<std::unique_ptr<backends::engine>> engine, worker_config cfg) {
  auto& st = self->state;
  st.conn = conn;
  st.engine = std::move(*engine);
  st.cfg = std::move(cfg);
  st.log = component_logger("worker");
  st.incarnation = std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ now_ms();
  self->send(self, heartbeat_atom::value);
  self->set_down_handler([](const caf::down_msg&) {});
  return {
      [=](generate_atom, transport::nats_message& m) { on_generate(self, m); },
      [=](cancel_atom, transport::nats_message& m) {
        auto c = msg::decode_auto<msg::cancel_request>(m.data, m.content_type, self->state.cfg.limits);
        if (!c) {
          self->state.log->warn("bad cancel request: {}", c.err().describe());
          return;
        }
        for (const auto& [key, stream] : self->state.streams) {
          if (stream.request_id != c->request_id) continue;
          if (c->attempt && key != attempt_key(c->request_id, *c->attempt)) continue;
          self->state.log->info("cancelling {} ({})", key, c->reason);
          self->state.engine->cancel(key);
        }
      },
      [=](step_atom) { on_step(self); },
      [=](publish_atom) {
        if (self->state.held) {
          publish_outputs(self->state, *self->state.held);
          self->state.held.reset();
        }
        continue_stepping(self);
      },
      [=](snapshot_atom, transport::nats_message& m) {
        auto& st = self->state;
        if (m.reply.empty()) return;
        publish_kv_events(st);  // whatever is pending goes out first, in order
        msg::kv_event_batch b;
        b.worker_id = st.cfg.id;
        b.seq = st.kv_seq - 1;  // covers every batch sent so far (wraps to "none yet" at 0)
        b.events = st.engine->kv_snapshot();
        st.conn->publish(m.reply, msg::encode(b));
      },
      [=](heartbeat_atom) {
        publish_heartbeat(self->state);
        self->delayed_send(self, std::chrono::milliseconds(self->state.cfg.heartbeat_ms), heartbeat_atom::value);
      },
      [=](drain_atom) {
        self->state.draining = true;
        self->state.log->info("{} draining: {} streams in flight", self->state.cfg.id, self->state.streams.size());
        publish_heartbeat(self->state);
      },
      [=](drain_atom, caf::get_atom) { return static_cast<std::int64_t>(self->state.streams.size()); },
  };
}

}  // namespace

result<caf::actor> spawn_worker(caf::actor_system& sys, transport::nats_connection& conn,
                                std::unique_ptr<backends::engine> engine, worker_config cfg) {
  auto ns = cfg.ns;
  auto id = cfg.id;
  auto holder = std::make_shared<std::unique_ptr<backends::engine>>(std::move(engine));
  auto actor = sys.spawn<caf::detached>(worker_behavior, &conn, holder, cfg);
  auto gen = transport::expose(conn, subjects::worker_generate(ns, id), actor, generate_atom::value);
  if (!gen) return gen.err();
  auto cancel = transport::expose(conn, subjects::worker_cancel(ns), actor, cancel_atom::value);
  if (!cancel) return cancel.err();
  auto snap = transport::expose(conn, subjects::kv_snapshot(ns, id), actor, snapshot_atom::value);
  if (!snap) return snap.err();
  // The subscriptions live as long as the actor: released when it exits.
  auto keep = std::make_shared<std::vector<transport::subscription>>();
  keep->push_back(std::move(*gen));
  keep->push_back(std::move(*cancel));
  keep->push_back(std::move(*snap));
  actor->attach_functor([keep]() mutable { keep->clear(); });
  conn.flush();
  return actor;
}

}  // namespace yard::actors
