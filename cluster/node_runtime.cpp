#include "cluster/node_runtime.hpp"

#include <unistd.h>

#include <chrono>
#include <thread>

#include <caf/all.hpp>

#include "actors/service_face.hpp"

#include "actors/atoms.hpp"

namespace yard::cluster {

result<std::unique_ptr<node_runtime>> node_runtime::create(const transport::nats_options& nats, int scheduler_threads,
                                                          actors::supervisor_config supervision) {
  std::unique_ptr<node_runtime> rt(new node_runtime());
  auto conn = transport::nats_connection::connect(nats);
  if (!conn) return conn.err();
  rt->conn_ = std::move(*conn);
  rt->sys_cfg_ = std::make_unique<caf::actor_system_config>();
  if (scheduler_threads <= 0) scheduler_threads = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  rt->sys_cfg_->set("scheduler.max-threads", static_cast<size_t>(scheduler_threads));
  rt->sys_cfg_->set("logger.verbosity", caf::atom("quiet"));
  // One shared job queue whose idle threads block on a condition variable: a message
  // wakes a thread at once. CAF's default work stealing polls with 50 us sleeps for
  // a while after each job, which on a small machine costs more CPU than it saves
  // and delays a message by up to one sleep (see bench/README.md, edge).
  rt->sys_cfg_->set("scheduler.policy", caf::atom("sharing"));
  rt->sys_ = std::make_unique<caf::actor_system>(*rt->sys_cfg_);
  if (supervision.node_id.empty()) {
    // The process's NATS client name ("yard-worker-w0", "yard-up"...) on this host; a bare
    // "yard" adds the pid. One subject token: dots, wildcards and blanks become '-'.
    char host[256] = {0};
    ::gethostname(host, sizeof(host) - 1);
    auto id = nats.name + "-" + host;
    if (nats.name == "yard" || nats.name.empty()) id += "-" + std::to_string(::getpid());
    for (auto& ch : id)
      if (ch == '.' || ch == '*' || ch == '>' || ch == ' ' || ch == '\t') ch = '-';
    supervision.node_id = id;
  }
  if (supervision.ns.empty()) supervision.ns = "default";
  supervision.conn = rt->conn_.get();
  auto sup = actors::spawn_supervisor(*rt->sys_, std::move(supervision));
  if (!sup) return sup.err();
  rt->supervisor_ = *sup;
  // The supervision tree: restarts per actor (asked of the supervisor at each scrape).
  auto* raw = rt.get();
  rt->registry_->add([raw](prom::exposition& out) {
    auto t = raw->tree();
    const prom::labels n{{"node", t.node}};
    out.gauge("yard_process_uptime_seconds", "Seconds since this process started.", n, t.uptime_s);
    for (const auto& a : t.actors) {
      prom::labels l{{"node", t.node}, {"actor", a.name}, {"kind", a.kind}};
      out.counter("yard_actor_restarts_total", "Restarts of a supervised actor since the process started.", l, a.restarts);
      out.gauge("yard_actor_up", "1 while the supervised actor runs.", l, a.state == "running" ? 1 : 0);
    }
  });
  return rt;
}

void node_runtime::supervise(actors::child_spec spec, const caf::actor& first) {
  caf::anon_send(supervisor_, actors::supervise_atom::value, std::move(spec), first);
}

std::vector<caf::actor> node_runtime::children(const std::string& kind) {
  std::vector<caf::actor> out;
  caf::scoped_actor self{*sys_};
  self->request(supervisor_, std::chrono::seconds(5), caf::get_atom::value, kind)
      .receive([&](std::vector<caf::actor>& v) { out = std::move(v); }, [&](caf::error&) {});
  return out;
}

msg::node_tree node_runtime::tree() {
  msg::node_tree t;
  caf::scoped_actor self{*sys_};
  self->request(supervisor_, std::chrono::seconds(5), caf::get_atom::value)
      .receive([&](msg::node_tree& v) { t = std::move(v); }, [&](caf::error&) {});
  return t;
}

node_runtime::~node_runtime() { shutdown(); }

result<caf::actor> node_runtime::add_worker(const engine_options& eng, actors::worker_config cfg) {
  cfg.model = served_model_name(eng);
  return add_worker(engine_factory([eng] { return make_engine(eng); }), std::move(cfg));
}

void node_runtime::set_identity(const std::string& identity, transport::nats_options opts) {
  identities_[identity] = std::move(opts);
}

result<transport::nats_connection*> node_runtime::connection_for(const std::string& identity) {
  auto it = identities_.find(identity);
  if (it == identities_.end()) return conn_.get();
  if (auto c = own_conns_.find(identity); c != own_conns_.end()) return c->second.get();
  auto conn = transport::nats_connection::connect(it->second);
  if (!conn) return conn.err();
  return own_conns_.emplace(identity, std::move(*conn)).first->second.get();
}

status node_runtime::serve_metrics(const metrics_flags& f) {
  if (f.port <= 0 || metrics_ep_) return status::success();
  auto ep = cluster::serve_metrics(f, registry_);
  if (!ep) return ep.err();
  metrics_ep_ = std::move(*ep);
  return status::success();
}

// The worker's metrics outlive its incarnations: made once here, rendered by the endpoint.
static void register_worker_metrics(metrics_registry& reg, actors::worker_config& cfg) {
  if (!cfg.metrics) cfg.metrics = std::make_shared<actors::worker_metrics>();
  reg.add([m = cfg.metrics](prom::exposition& out) { m->render(out); });
}

result<caf::actor> node_runtime::add_worker(engine_factory make, actors::worker_config cfg) {
  auto conn = connection_for(cfg.id);
  if (!conn) return conn.err();
  register_worker_metrics(*registry_, cfg);
  actors::child_spec spec{"worker " + cfg.id, "worker", nullptr};
  spec.start = [sys = sys_.get(), c = *conn, make, cfg]() -> result<caf::actor> {
    auto engine = make();
    if (!engine) return engine.err();
    return actors::spawn_worker(*sys, *c, std::move(*engine), cfg);
  };
  auto w = spec.start();
  if (!w) return w.err();
  supervise(std::move(spec), *w);
  return *w;
}

result<caf::actor> node_runtime::add_worker(std::unique_ptr<backends::engine> engine, actors::worker_config cfg) {
  auto conn = connection_for(cfg.id);
  if (!conn) return conn.err();
  register_worker_metrics(*registry_, cfg);
  auto name = "worker " + cfg.id;
  auto w = actors::spawn_worker(*sys_, **conn, std::move(engine), std::move(cfg));
  if (!w) return w.err();
  supervise({name, "worker", nullptr}, *w);
  return *w;
}

result<caf::actor> node_runtime::add_router(actors::router_config cfg) {
  auto conn = connection_for("router");
  if (!conn) return conn.err();
  if (!cfg.metrics) cfg.metrics = std::make_shared<actors::router_metrics>();
  registry_->add([m = cfg.metrics](prom::exposition& out) { m->render(out); });
  actors::child_spec spec{"router " + cfg.id, "router", nullptr};
  spec.start = [sys = sys_.get(), c = *conn, cfg]() { return actors::spawn_router(*sys, *c, cfg); };
  auto r = spec.start();
  if (!r) return r.err();
  supervise(std::move(spec), *r);
  return *r;
}

status node_runtime::add_frontend(actors::frontend_config cfg, actors::http_options http) {
  metrics_ = std::make_shared<actors::frontend_metrics>();
  view_ = std::make_shared<actors::cluster_view>();
  registry_->add([m = metrics_](prom::exposition& out) { m->render(out); });
  auto conn = connection_for("frontend");
  if (!conn) return conn.err();
  auto cfg_id = cfg.id;
  auto cfg_ns = cfg.ns;
  auto f = actors::spawn_frontend(*sys_, **conn, cfg, metrics_, view_);
  if (!f) return f.err();
  // A rebuilt frontend gets a fresh inbox and subscriptions; the HTTP server and its
  // connections keep their port, which rebind() points at the new incarnation. The
  // streams the dead one owned ended with an error chunk as it went (its state's end).
  actors::child_spec spec{"frontend " + cfg_id, "frontend", nullptr};
  spec.start = [sys = sys_.get(), c = *conn, cfg, metrics = metrics_, view = view_,
                port = *f]() -> result<caf::actor> {
    auto fresh = actors::spawn_frontend(*sys, *c, cfg, metrics, view);
    if (!fresh) return fresh.err();
    port.rebind(*fresh);
    return fresh->actor();
  };
  supervise(std::move(spec), f->actor());
  const std::string host = http.host;
  const bool tls = !http.tls_cert_file.empty();
  http_ = std::make_unique<actors::http_server>(std::move(http), *f, metrics_, view_);
  if (auto s = http_->start(); !s) return s;
  // The NATS services face: the frontend serves no NATS endpoint; its metadata says where its HTTP API is.
  actors::service_face_config fc;
  fc.kind = actors::component_kind::frontend;
  fc.ns = cfg_ns;
  fc.instance = cfg_id;
  fc.metadata = {{"api", "openai"},
                 {"http", std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(http_->port())}};
  auto face = actors::start_service_face(**conn, std::move(fc));
  if (!face) return face.err();
  frontend_face_ = std::move(*face);
  return status::success();
}

std::optional<actors::router_stats> node_runtime::router_stats() {
  auto routers = children("router");
  if (routers.empty()) return std::nullopt;
  caf::scoped_actor self{*sys_};
  std::optional<actors::router_stats> out;
  self->request(routers.front(), std::chrono::seconds(5), caf::get_atom::value)
      .receive([&](actors::router_stats s) { out = s; }, [&](caf::error&) {});
  return out;
}

std::int64_t node_runtime::drain_workers(int timeout_ms) {
  auto workers = children("worker");
  for (auto& w : workers) caf::anon_send(w, actors::drain_atom::value);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  caf::scoped_actor self{*sys_};
  std::int64_t running = 0;
  do {
    running = 0;
    for (auto& w : workers) {
      self->request(w, std::chrono::seconds(2), actors::drain_atom::value, caf::get_atom::value)
          .receive([&](std::int64_t n) { running += n; }, [&](caf::error&) {});
    }
    if (running == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() < deadline);
  return running;
}

void node_runtime::shutdown() {
  if (down_) return;
  down_ = true;
  if (metrics_ep_) metrics_ep_->stop();
  if (http_) http_->stop();
  // Children first (user_shutdown: the supervisor does not restart them), then the supervisor.
  if (supervisor_) {
    for (const auto& kind : {"worker", "router", "frontend"})
      for (auto& a : children(kind)) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
  if (supervisor_) caf::anon_send_exit(supervisor_, caf::exit_reason::user_shutdown);
  supervisor_ = nullptr;
  if (sys_) sys_->await_all_actors_done();
  if (conn_) conn_->flush(500);
  for (auto& [id, c] : own_conns_) c->flush(500);
}

}  // namespace yard::cluster
