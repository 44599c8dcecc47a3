#include "cluster/metrics_endpoint.hpp"

#include <httplib.h>

#include <chrono>

#include "common/log.hpp"

namespace yard::cluster {

void metrics_registry::add(metrics_collector c) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(c));
}

std::string metrics_registry::render() const {
  std::vector<metrics_collector> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all = collectors_;
  }
  prom::exposition out;
  for (const auto& c : all) c(out);
  return out.text();
}

result<std::unique_ptr<metrics_endpoint>> metrics_endpoint::start(std::shared_ptr<const metrics_registry> registry,
                                                                  const std::string& host, int port) {
  std::unique_ptr<metrics_endpoint> ep(new metrics_endpoint());
  ep->registry_ = std::move(registry);
  ep->server_ = std::make_unique<httplib::Server>();
  auto reg = ep->registry_;
  ep->server_->Get("/metrics", [reg](const httplib::Request&, httplib::Response& res) {
    res.set_content(reg->render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  ep->server_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404) res.set_content("not found: " + req.path + " (metrics are at /metrics)\n", "text/plain");
  });
  ep->server_->set_keep_alive_max_count(100);
  // cpp-httplib's default also sets SO_REUSEPORT, which lets a second process bind the same
  // port and split the scrapes: only SO_REUSEADDR here, so a taken port is an error.
  ep->server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof(yes));
  });
  int bound = port == 0 ? ep->server_->bind_to_any_port(host) : (ep->server_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0)
    return error{errc::unavailable, "metrics endpoint cannot listen on " + host + ":" + std::to_string(port)};
  ep->port_ = bound;
  auto* srv = ep->server_.get();
  ep->thread_ = std::thread([srv] { srv->listen_after_bind(); });
  // stop() only reaches a server that is already listening: wait for it (bounded).
  for (int i = 0; i < 2000 && !srv->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  component_logger("metrics")->info("Prometheus metrics on http://{}:{}/metrics", host, bound);
  return ep;
}

void metrics_endpoint::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

metrics_endpoint::~metrics_endpoint() { stop(); }

}  // namespace yard::cluster
