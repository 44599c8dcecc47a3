#include "actors/router_actor.hpp"

#include <chrono>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/worker_registry.hpp"
#include "common/log.hpp"
#include "messages/subjects.hpp"
#include "transport/actor_bridge.hpp"

namespace yard::actors {

namespace {

struct router_state {
  transport::nats_connection* conn = nullptr;
  router_config cfg;
  worker_registry workers;
  std::size_t rr_next = 0;
  std::uint64_t routed = 0;
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "router";
};

using router_actor = caf::stateful_actor<router_state>;

void reply_error(router_state& st, const transport::nats_message& m, msg::wire_format f, const std::string& request_id,
                 const error& err) {
  msg::token_chunk c;
  c.request_id = request_id;
  c.finish_reason = "error";
  c.error = msg::error_reply{static_cast<std::int32_t>(err.code), err.message};
  st.conn->publish(m.reply, msg::encode(c, f), {}, msg::content_type_of(f));
}

void on_generate(router_actor* self, transport::nats_message& m) {
  auto& st = self->state;
  if (m.reply.empty()) {
    st.log->warn("generate request without a reply inbox on {}: dropped", m.subject);
    return;
  }
  auto fmt = msg::detect_format(m.content_type, m.data);
  auto req = msg::decode<msg::generate_request>(m.data, fmt, st.cfg.limits);
  if (!req) {
    st.log->warn("bad generate request: {}", req.err().describe());
    reply_error(st, m, fmt, "", req.err());
    return;
  }
  if (!req->model.empty() && !st.workers.knows_model(req->model) && st.workers.size() > 0) {
    reply_error(st, m, fmt, req->request_id, error{errc::not_found, "model '" + req->model + "' is not served"});
    return;
  }
  auto candidates = st.workers.eligible(req->model);
  if (candidates.empty()) {
    reply_error(st, m, fmt, req->request_id, error{errc::unavailable, "no worker available"});
    return;
  }
  const worker_entry* chosen = candidates[st.rr_next++ % candidates.size()];
  st.routed++;
  auto ct = m.content_type.empty() ? std::string(msg::content_type_of(fmt)) : m.content_type;
  if (auto s = st.conn->publish(chosen->last.generate_subject, m.data, m.reply, ct); !s) {
    reply_error(st, m, fmt, req->request_id, s.err());
    return;
  }
  st.log->debug("{} -> {}", req->request_id, chosen->last.instance_id);
}

caf::behavior router_behavior(router_actor* self, transport::nats_connection* conn, router_config cfg) {
  auto& st = self->state;
  st.conn = conn;
  st.cfg = std::move(cfg);
  st.log = component_logger("router");
  self->send(self, tick_atom::value);
  return {
      [=](generate_atom, transport::nats_message& m) { on_generate(self, m); },
      [=](heartbeat_atom, transport::nats_message& m) {
        auto hb = msg::decode_auto<msg::heartbeat>(m.data, m.content_type, self->state.cfg.limits);
        if (!hb) {
          self->state.log->warn("bad heartbeat: {}", hb.err().describe());
          return;
        }
        if (hb->component != "worker") return;
        auto change = self->state.workers.observe(*hb, std::chrono::steady_clock::now());
        if (change == worker_registry::change::joined)
          self->state.log->info("worker {} joined ({})", hb->instance_id, hb->generate_subject);
        else if (change == worker_registry::change::restarted)
          self->state.log->warn("worker {} restarted", hb->instance_id);
      },
      [=](tick_atom) {
        for (const auto& id : self->state.workers.expire(std::chrono::steady_clock::now()))
          self->state.log->warn("worker {} missed its lease: removed from routing", id);
        self->delayed_send(self, std::chrono::milliseconds(self->state.cfg.tick_ms), tick_atom::value);
      },
  };
}

}  // namespace

result<caf::actor> spawn_router(caf::actor_system& sys, transport::nats_connection& conn, router_config cfg) {
  auto ns = cfg.ns;
  auto actor = sys.spawn(router_behavior, &conn, cfg);
  auto keep = std::make_shared<std::vector<transport::subscription>>();
  auto gen = transport::expose(conn, subjects::router_generate(ns), actor, generate_atom::value, "routers");
  if (!gen) return gen.err();
  keep->push_back(std::move(*gen));
  auto hb = transport::expose(conn, subjects::heartbeat(ns), actor, heartbeat_atom::value);
  if (!hb) return hb.err();
  keep->push_back(std::move(*hb));
  actor->attach_functor([keep]() mutable { keep->clear(); });
  conn.flush();
  return actor;
}

}  // namespace yard::actors
