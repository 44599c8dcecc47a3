// actors/worker_actor.cpp — spawns a worker's actors and wires their subjects (see worker_actor.hpp).
#include "actors/worker_actor.hpp"

#include <caf/all.hpp>

#include "actors/g1_pool_client.hpp"
#include "actors/service_face.hpp"
#include "actors/worker_engine.hpp"
#include "messages/subject_token.hpp"
#include "messages/subjects.hpp"
#include "transport/actor_bridge.hpp"

namespace yard::actors {

namespace {

// Subscribes every route (counted in the services face's STATS when the route
// names an endpoint); the subscriptions and the face end with `owner`.
status expose_all(transport::nats_connection& conn, const caf::actor& owner,
                  const std::vector<std::tuple<std::string, caf::actor, caf::atom_value, std::string>>& routes,
                  std::shared_ptr<transport::nats_service> face) {
  auto keep = std::make_shared<std::vector<transport::subscription>>();
  for (const auto& [subject, to, tag, endpoint] : routes) {
    auto sub = expose_counted(conn, subject, to, tag, std::string(), face, endpoint);
    if (!sub) return sub.err();
    keep->push_back(std::move(*sub));
  }
  owner->attach_functor([keep, face]() mutable {
    keep->clear();
    if (face) face->stop();
  });
  return status::success();
}

}  // namespace

result<caf::actor> spawn_worker(caf::actor_system& sys, transport::nats_connection& conn,
                                std::unique_ptr<backends::engine> engine, worker_config cfg) {
  if (!subjects::valid_token(cfg.id))
    return make_error(errc::bad_request, "worker id '" + cfg.id + "' must be 1 to 128 characters of [A-Za-z0-9_-] (it is "
                                         "a subject token: '*', '>' or '.' would reach other workers)");
  if (!subjects::valid_token(cfg.ns))
    return make_error(errc::bad_request, "namespace '" + cfg.ns + "' must be 1 to 128 characters of [A-Za-z0-9_-]");
  if (cfg.heartbeat_ms < 10 || cfg.lease_ms <= cfg.heartbeat_ms)
    return make_error(errc::bad_request, "heartbeat period " + std::to_string(cfg.heartbeat_ms) + " ms and lease " +
                                             std::to_string(cfg.lease_ms) +
                                             " ms: the period must be at least 10 ms and the lease longer than it");
  auto ns = cfg.ns;
  auto id = cfg.id;
  if (!cfg.metrics) cfg.metrics = std::make_shared<worker_metrics>();
  cfg.metrics->worker_id = id;
  cfg.metrics->role = std::string(msg::wire_name(cfg.role));
  cfg.metrics->model = cfg.model;
  cfg.metrics->kv_block_bytes = engine->kv_block_bytes();
  // Prefill and decode workers move KV over UCX; "both" never needs to.
  auto xfer = std::make_shared<std::unique_ptr<kv_transfer_agent>>();
  const bool disagg = cfg.role != msg::worker_role::both;
  if (disagg && engine->kv_block_bytes() > 0) {
    auto topts = cfg.transfer;
    topts.page_lock = engine->kv_on_gpu();
    auto a = kv_transfer_agent::create(topts, engine->kv_block_bytes(), cfg.faults);
    if (a) *xfer = std::move(*a);
    else component_logger("worker")->warn("{}: no KV transfer ({}): every prefill stays local", id, a.err().describe());
  } else if (disagg) {
    component_logger("worker")->warn("{}: engine {} has no KV block bytes: every prefill stays local", id, engine->name());
  }
  auto publisher = spawn_heartbeat_publisher(sys, conn, {subjects::heartbeat(ns, id), cfg.heartbeat_ms});
  // The engine's KV tiers move to the kv_block_manager; blocks G1 evicts reach it through tiers.link.
  auto tiers = worker_detail::release_engine_tiers(*engine);
  kv_block_manager_config mc{id, subjects::kv_events(ns, id)};
  mc.stream = cfg.kv_stream = kv_stream_id_now();  // announced in heartbeats: routers take this stream only
  // G1 moves there too: the manager owns the pool, the engine allocates through a client of it.
  kv_block_manager_actor kv_manager;
  engine->hand_over_g1([&](std::unique_ptr<kv::block_pool> pool) -> std::unique_ptr<kv::block_allocator> {
    auto client = std::make_unique<g1_pool_client>(*pool);
    kv_manager = spawn_kv_block_manager(sys, conn, mc, tiers.store, std::move(pool));
    client->bind(kv_manager);
    return client;
  });
  if (!kv_manager) kv_manager = spawn_kv_block_manager(sys, conn, std::move(mc), tiers.store);
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
    pc.metrics = cfg.metrics;
    client = spawn_prefill_client(sys, conn, std::move(pc));
  }
  prefill_server_actor server;  // prefill workers serve remote prefills; decode workers refuse them
  if (disagg) {
    prefill_server_config sc;
    sc.ns = ns;
    sc.worker_id = id;
    sc.role = cfg.role;
    sc.block_size = engine->block_size();
    sc.lease_ms = cfg.transfer.lease_ms;
    sc.limits = cfg.limits;
    sc.faults = cfg.faults;
    sc.metrics = cfg.metrics;
    server = spawn_prefill_server(sys, conn, std::move(sc));
  }
  auto holder = std::make_shared<std::unique_ptr<backends::engine>>(std::move(engine));
  auto actor = sys.spawn<caf::detached>(worker_detail::engine_behavior, &conn, holder, cfg, xfer, publisher, kv_manager,
                                        client, server, tiers.link);
  // Ordered before any heartbeat request: both learn the engine actor first.
  caf::anon_send(publisher, open_atom::value, actor);
  caf::anon_send(kv_manager, open_atom::value, actor);
  if (client) caf::anon_send(client, open_atom::value, actor);
  if (server) caf::anon_send(server, open_atom::value, actor);
  auto pub = caf::actor_cast<caf::actor>(publisher);
  auto kvm = caf::actor_cast<caf::actor>(kv_manager);
  std::vector<std::tuple<std::string, caf::actor, caf::atom_value, std::string>> routes = {
      {subjects::worker_generate(ns, id), actor, generate_atom::value, "generate"},
      {subjects::worker_cancel(ns), actor, cancel_atom::value, "cancel"},
      {subjects::kv_snapshot(ns, id), kvm, snapshot_atom::value, "kv_snapshot"},
      {subjects::worker_status(ns, id), pub, status_atom::value, "status"},
      {subjects::roster(ns), pub, roster_atom::value, ""},
  };
  if (server) {
    auto srv = caf::actor_cast<caf::actor>(server);
    routes.emplace_back(subjects::worker_prefill(ns, id), srv, prefill_atom::value, "prefill");
    routes.emplace_back(subjects::worker_kv_release(ns, id), srv, release_atom::value, "kv_release");
  }
  if (client) {
    auto c = caf::actor_cast<caf::actor>(client);
    routes.emplace_back(inbox, c, prefilled_atom::value, "");
    routes.emplace_back(subjects::heartbeat_all(ns), c, heartbeat_atom::value, "");
  }
  // The NATS services face ($SRV.PING/INFO/STATS) lists the worker's request subjects.
  service_face_config fc;
  fc.kind = component_kind::worker;
  fc.ns = ns;
  fc.instance = id;
  fc.metadata = {{"model", cfg.model}, {"role", std::string(msg::wire_name(cfg.role))}};
  for (const auto& [subject, to, tag, endpoint] : routes)
    if (!endpoint.empty()) fc.endpoints.push_back({endpoint, subject, "", {}, {}});
  auto face = start_service_face(conn, std::move(fc));
  if (!face) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    return face.err();
  }
  if (auto s = expose_all(conn, actor, routes, *face); !s) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    return s.err();
  }
  conn.flush();
  caf::anon_send(publisher, tick_atom::value);  // announces the worker: its subjects are live now
  return actor;
}

}  // namespace yard::actors
