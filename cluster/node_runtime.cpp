#include "cluster/node_runtime.hpp"

#include <chrono>
#include <thread>

#include <caf/all.hpp>

#include "actors/atoms.hpp"

namespace yard::cluster {

result<std::unique_ptr<node_runtime>> node_runtime::create(const transport::nats_options& nats, int scheduler_threads) {
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
  return rt;
}

node_runtime::~node_runtime() { shutdown(); }

result<caf::actor> node_runtime::add_worker(const engine_options& eng, actors::worker_config cfg) {
  auto engine = make_engine(eng);
  if (!engine) return engine.err();
  cfg.model = served_model_name(eng);
  return add_worker(std::move(*engine), std::move(cfg));
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

result<caf::actor> node_runtime::add_worker(std::unique_ptr<backends::engine> engine, actors::worker_config cfg) {
  auto conn = connection_for(cfg.id);
  if (!conn) return conn.err();
  auto w = actors::spawn_worker(*sys_, **conn, std::move(engine), std::move(cfg));
  if (!w) return w.err();
  workers_.push_back(*w);
  return *w;
}

result<caf::actor> node_runtime::add_router(actors::router_config cfg) {
  auto conn = connection_for("router");
  if (!conn) return conn.err();
  auto r = actors::spawn_router(*sys_, **conn, std::move(cfg));
  if (!r) return r.err();
  others_.push_back(*r);
  routers_.push_back(*r);
  return *r;
}

status node_runtime::add_frontend(actors::frontend_config cfg, actors::http_options http) {
  metrics_ = std::make_shared<actors::frontend_metrics>();
  view_ = std::make_shared<actors::cluster_view>();
  auto conn = connection_for("frontend");
  if (!conn) return conn.err();
  auto f = actors::spawn_frontend(*sys_, **conn, std::move(cfg), metrics_, view_);
  if (!f) return f.err();
  others_.push_back(f->actor());
  http_ = std::make_unique<actors::http_server>(std::move(http), *f, metrics_, view_);
  return http_->start();
}

std::optional<actors::router_stats> node_runtime::router_stats() {
  if (routers_.empty()) return std::nullopt;
  caf::scoped_actor self{*sys_};
  std::optional<actors::router_stats> out;
  self->request(routers_.front(), std::chrono::seconds(5), caf::get_atom::value)
      .receive([&](actors::router_stats s) { out = s; }, [&](caf::error&) {});
  return out;
}

std::int64_t node_runtime::drain_workers(int timeout_ms) {
  for (auto& w : workers_) caf::anon_send(w, actors::drain_atom::value);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  caf::scoped_actor self{*sys_};
  std::int64_t running = 0;
  do {
    running = 0;
    for (auto& w : workers_) {
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
  if (http_) http_->stop();
  for (auto& a : workers_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  for (auto& a : others_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  workers_.clear();
  others_.clear();
  routers_.clear();
  if (sys_) sys_->await_all_actors_done();
  if (conn_) conn_->flush(500);
  for (auto& [id, c] : own_conns_) c->flush(500);
}

}  // namespace yard::cluster
