// actors/worker_actor.cpp — spawns a worker's actors and wires their subjects (see worker_actor.hpp).
#include "actors/worker_actor.hpp"

#include <caf/all.hpp>

#include "actors/worker_engine.hpp"
#include "messages/subjects.hpp"
#include "transport/actor_bridge.hpp"

namespace yard::actors {

namespace {

// Exposes each subject to its actor; the subscriptions are released when `owner` exits.
status expose_all(transport::nats_connection& conn, const caf::actor& owner,
                  const std::vector<std::tuple<std::string, caf::actor, caf::atom_value>>& routes) {
  auto keep = std::make_shared<std::vector<transport::subscription>>();
  for (const auto& [subject, to, tag] : routes) {
    auto sub = transport::expose(conn, subject, to, tag);
    if (!sub) return sub.err();
    keep->push_back(std::move(*sub));
  }
  owner->attach_functor([keep]() mutable { keep->clear(); });
  return status::success();
}

}  // namespace

result<caf::actor> spawn_worker(caf::actor_system& sys, transport::nats_connection& conn,
                                std::unique_ptr<backends::engine> engine, worker_config cfg) {
  auto ns = cfg.ns;
  auto id = cfg.id;
  // Prefill and decode workers move KV over UCX; "both" never needs to.
  auto xfer = std::make_shared<std::unique_ptr<kv_transfer_agent>>();
  const bool disagg = cfg.role != msg::worker_role::both;
  if (disagg && engine->kv_block_bytes() > 0) {
    auto a = kv_transfer_agent::create(cfg.transfer, engine->kv_block_bytes());
    if (a) *xfer = std::move(*a);
    else component_logger("worker")->warn("{}: no KV transfer ({}): every prefill stays local", id, a.err().describe());
  } else if (disagg) {
    component_logger("worker")->warn("{}: engine {} has no KV block bytes: every prefill stays local", id, engine->name());
  }
  auto publisher = spawn_heartbeat_publisher(sys, conn, {subjects::heartbeat(ns, id), cfg.heartbeat_ms});
  auto kv_manager = spawn_kv_block_manager(sys, conn, {id, subjects::kv_events(ns, id)});
  prefill_client_actor client;
  std::string inbox;
  if (cfg.role == msg::worker_role::decode && *xfer) {
    inbox = conn.new_inbox();
    prefill_client_config pc;
    pc.ns = ns;
    pc.model = cfg.model;
    pc.inbox = inbox;
    pc.lease_ms = cfg.lease_ms;
    pc.prefill_queue_limit = cfg.prefill_queue_limit;
    pc.timeout_ms = cfg.remote_prefill_timeout_ms;
    pc.limits = cfg.limits;
    client = spawn_prefill_client(sys, conn, std::move(pc));
  }
  auto holder = std::make_shared<std::unique_ptr<backends::engine>>(std::move(engine));
  auto actor = sys.spawn<caf::detached>(worker_detail::engine_behavior, &conn, holder, cfg, xfer, publisher, kv_manager, client);
  // Ordered before any heartbeat request: both learn the engine actor first.
  caf::anon_send(publisher, open_atom::value, actor);
  caf::anon_send(kv_manager, open_atom::value, actor);
  if (client) caf::anon_send(client, open_atom::value, actor);
  auto pub = caf::actor_cast<caf::actor>(publisher);
  auto kvm = caf::actor_cast<caf::actor>(kv_manager);
  std::vector<std::tuple<std::string, caf::actor, caf::atom_value>> routes = {
      {subjects::worker_generate(ns, id), actor, generate_atom::value},
      {subjects::worker_cancel(ns), actor, cancel_atom::value},
      {subjects::kv_snapshot(ns, id), kvm, snapshot_atom::value},
      {subjects::worker_status(ns, id), pub, status_atom::value},
      {subjects::roster(ns), pub, roster_atom::value},
  };
  if (disagg) {
    routes.emplace_back(subjects::worker_prefill(ns, id), actor, prefill_atom::value);
    routes.emplace_back(subjects::worker_kv_release(ns, id), actor, release_atom::value);
  }
  if (client) {
    auto c = caf::actor_cast<caf::actor>(client);
    routes.emplace_back(inbox, c, prefilled_atom::value);
    routes.emplace_back(subjects::heartbeat_all(ns), c, heartbeat_atom::value);
  }
  if (auto s = expose_all(conn, actor, routes); !s) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    return s.err();
  }
  conn.flush();
  caf::anon_send(publisher, tick_atom::value);  // announces the worker: its subjects are live now
  return actor;
}

}  // namespace yard::actors
