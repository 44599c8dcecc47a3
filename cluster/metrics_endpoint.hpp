// cluster/metrics_endpoint.hpp — a process's Prometheus scrape endpoint (--metrics-port).
//
// Owns: the collectors registered by the process's components (router,
// workers, frontend, agent, planner), the HTTP listener that answers
// GET /metrics with their text (every other path: 404), and its thread.
// Must not touch: the metric values themselves (each component owns its
// metrics struct; a collector only reads it).
// Thread-safety: add() and the scrape thread may run concurrently; collectors
// must be safe to call from the scrape thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/prometheus.hpp"
#include "common/status.hpp"

namespace httplib {
class Server;
}

namespace yard::cluster {

using metrics_collector = std::function<void(prom::exposition&)>;

class metrics_registry {
 public:
  void add(metrics_collector c);
  std::string render() const;  // every collector, families merged

 private:
  mutable std::mutex mu_;
  std::vector<metrics_collector> collectors_;
};

class metrics_endpoint {
 public:
  // Listens on host:port (port 0 = any free port; port() tells which).
  // errc::unavailable naming the address when it cannot bind.
  static result<std::unique_ptr<metrics_endpoint>> start(std::shared_ptr<const metrics_registry> registry,
                                                          const std::string& host, int port);
  ~metrics_endpoint();
  int port() const { return port_; }
  void stop();

 private:
  metrics_endpoint() = default;
  std::shared_ptr<const metrics_registry> registry_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace yard::cluster
