// actors/metrics.hpp — Prometheus counters and histograms for the frontend.
//
// Owns: the frontend's metric values and their text exposition
// (common/prometheus.hpp), plus the per-worker gauges rendered from the
// workers' latest heartbeats (actors/worker_metrics.hpp's render_worker_load).
// Must not touch: HTTP or NATS (the server renders render()).
// Thread-safety: thread-safe (atomics and one mutex per histogram).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/prometheus.hpp"
#include "messages/types.hpp"

namespace yard::actors {

struct frontend_metrics {
  std::atomic<std::uint64_t> requests_total{0};
  std::atomic<std::uint64_t> migrations_total{0};
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::uint64_t> output_tokens_total{0};
  std::atomic<std::uint64_t> client_disconnects_total{0};  // requests cancelled because the client went away
  std::atomic<std::int64_t> connections_open{0};           // HTTP connections held now
  std::atomic<std::uint64_t> connections_rejected_total{0};  // 503s over the connection cap
  prom::histogram ttft{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}};
  prom::histogram itl{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}};
  prom::histogram e2e{{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};

  void count_error(int http_status);
  // Per-tenant request and token counters (labels tenant, status / kind), when API keys are on.
  void count_tenant_request(const std::string& tenant, int http_status);
  void count_tenant_tokens(const std::string& tenant, std::uint64_t prompt, std::uint64_t completion);
  std::string render() const;
  void render(prom::exposition& out) const;

 private:
  struct tenant_counters {
    std::map<int, std::uint64_t> requests_by_status;
    std::uint64_t prompt_tokens = 0, completion_tokens = 0;
  };
  mutable std::mutex labelled_mu_;  // the by-status and per-tenant maps
  std::map<int, std::uint64_t> errors_by_status_;
  std::map<std::string, tenant_counters> tenants_;  // under labelled_mu_
};

// One worker as the frontend last heard of it (its heartbeat's load report).
struct worker_status {
  std::string id;
  std::string role;
  std::string model;
  bool draining = false;
  msg::load_report load;
};

// Appends per-worker gauges and counters (labels worker, role, model): queue,
// pending prefill tokens, KV blocks in use / total, KV blocks per tier, and
// the tier counters (offloaded, onboarded, G3 writes dropped, G3 disabled).
void render_worker_metrics(std::string& out, const std::vector<worker_status>& workers);

}  // namespace yard::actors
