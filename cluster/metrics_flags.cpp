#include "cluster/metrics_flags.hpp"

namespace yard::cluster {

void add_metrics_flags(CLI::App& app, metrics_flags& f, int default_port, const std::string& default_host) {
  f.port = default_port;
  f.host = default_host;
  app.add_option("--metrics-port", f.port,
                 "serve Prometheus metrics on this port at /metrics (0 = off)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--metrics-host", f.host, "address the metrics endpoint listens on")->capture_default_str();
}

bool metrics_port_given(const CLI::App& app) { return app.count("--metrics-port") > 0; }

result<std::unique_ptr<metrics_endpoint>> serve_metrics(const metrics_flags& f,
                                                        std::shared_ptr<const metrics_registry> registry) {
  if (f.port <= 0) return std::unique_ptr<metrics_endpoint>{};
  return metrics_endpoint::start(std::move(registry), f.host, f.port);
}

}  // namespace yard::cluster
