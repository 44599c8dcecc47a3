// cluster/node_runtime.hpp — one process's actor system, NATS connection and
// the components it hosts.
//
// Owns: the caf::actor_system, the process's single nats_connection, its
// supervisor (actors/supervisor.hpp: the root of the process's supervision
// tree, which restarts a worker or router that ends abnormally and answers the
// node tree subjects), the actors under it (workers, router, frontend) and the
// HTTP server.
// `yard up` puts all of them in one runtime; `yard worker|router|frontend`
// put one each. Actors only ever talk through NATS subjects, so both shapes
// behave the same.
// Must not touch: process supervision (cluster/agent), policy logic.
// Thread-safety: call from the main thread only.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/frontend_actor.hpp"
#include "actors/http_server.hpp"
#include "actors/router_actor.hpp"
#include "actors/supervisor.hpp"
#include "actors/worker_actor.hpp"
#include "cluster/metrics_endpoint.hpp"
#include "cluster/metrics_flags.hpp"
#include "cluster/process_options.hpp"
#include "transport/nats_service.hpp"

namespace yard::cluster {

class node_runtime {
 public:
  // Connects to NATS and starts the actor system. errc::unavailable with the
  // URLs tried when NATS cannot be reached.
  // `supervision`: the tree's node id (default <hostname>-<pid>), namespace,
  // restart intensity and escalation (default: exit 70); its conn is set here.
  static result<std::unique_ptr<node_runtime>> create(const transport::nats_options& nats, int scheduler_threads = 0,
                                                      actors::supervisor_config supervision = {});
  // A `yard` process's runtime: the default scheduler and supervision, its tree on namespace `ns`.
  static result<std::unique_ptr<node_runtime>> create_in_namespace(const transport::nats_options& nats, const std::string& ns) {
    actors::supervisor_config supervision;
    supervision.ns = ns;
    return create(nats, 0, std::move(supervision));
  }
  ~node_runtime();

  // Supervised workers: one that ends abnormally is rebuilt (engine and actor).
  result<caf::actor> add_worker(const engine_options& eng, actors::worker_config cfg);
  using engine_factory = std::function<result<std::unique_ptr<backends::engine>>()>;
  result<caf::actor> add_worker(engine_factory make, actors::worker_config cfg);
  // A worker around an engine built by the caller (cfg.model names what it
  // serves). It cannot be rebuilt here: its abnormal end escalates.
  result<caf::actor> add_worker(std::unique_ptr<backends::engine> engine, actors::worker_config cfg);
  result<caf::actor> add_router(actors::router_config cfg);
  // Spawns the frontend actor and starts its HTTP server.
  status add_frontend(actors::frontend_config cfg, actors::http_options http);

  // Gives the component named `identity` ("frontend", "router" or a worker id)
  // its own NATS connection with these options (its own user on a permissioned
  // bus) instead of the process's shared one. Call before adding it.
  void set_identity(const std::string& identity, transport::nats_options opts);

  // Serves every component's metrics (router, workers, frontend, the
  // supervision tree) on f.port at /metrics; nothing when f.port is 0.
  // Components added later are included. Errors name the address.
  status serve_metrics(const metrics_flags& f);
  int metrics_port() const { return metrics_ep_ ? metrics_ep_->port() : 0; }
  // The registry the endpoint renders (a caller may add its own collector).
  const std::shared_ptr<metrics_registry>& metrics_registry_ptr() const { return registry_; }

  // The supervision tree as the supervisor sees it now.
  msg::node_tree tree();
  // The current incarnations of one kind of child ("worker", "router", "frontend").
  std::vector<caf::actor> children(const std::string& kind);

  // What the first router holds now (tests, metrics); empty without a router.
  std::optional<actors::router_stats> router_stats();

  // Live workers the frontend sees (0 without a frontend).
  std::size_t live_workers() const { return view_ ? view_->live_workers() : 0; }
  int http_port() const { return http_ ? http_->port() : 0; }
  // The frontend's metrics (null without a frontend).
  const actors::frontend_metrics* metrics() const { return metrics_.get(); }
  transport::nats_connection& nats() { return *conn_; }

  // Tells every worker to stop taking work and waits (up to timeout_ms) until
  // their in-flight requests finish. Returns the number still running.
  std::int64_t drain_workers(int timeout_ms);
  // Stops HTTP, then every actor; idempotent.
  void shutdown();

 private:
  node_runtime() = default;
  result<transport::nats_connection*> connection_for(const std::string& identity);
  // Hands a running child to the supervisor.
  void supervise(actors::child_spec spec, const caf::actor& first);
  std::unique_ptr<transport::nats_connection> conn_;
  std::map<std::string, transport::nats_options> identities_;
  std::map<std::string, std::unique_ptr<transport::nats_connection>> own_conns_;  // outlive the actors (declared before sys_)
  std::unique_ptr<caf::actor_system_config> sys_cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  caf::actor supervisor_;
  std::shared_ptr<actors::frontend_metrics> metrics_;
  std::shared_ptr<actors::cluster_view> view_;
  std::unique_ptr<actors::http_server> http_;
  std::shared_ptr<transport::nats_service> frontend_face_;  // $SRV face of the frontend (after http_: stops first)
  std::shared_ptr<metrics_registry> registry_ = std::make_shared<metrics_registry>();
  std::unique_ptr<metrics_endpoint> metrics_ep_;
  bool down_ = false;
};

}  // namespace yard::cluster
