// actors/router_metrics.hpp — what a router exports on --metrics-port.
//
// Owns: the router's counters, gauges and histograms (decisions by pool and
// worker, overlap, predicted and observed TTFT, index size, KV-event lag,
// resyncs, approximate-mode workers, tokenizer mismatches) and their
// Prometheus rendering. One object per router id; it outlives the router
// actor's incarnations (the supervisor's restarts keep the counts).
// Must not touch: routing (the router actor writes it; the scrape thread reads it).
// Thread-safety: every member is atomic or internally locked.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "common/prometheus.hpp"

namespace yard::actors {

struct router_metrics {
  std::string router_id;
  std::string policy;
  prom::labelled_counter decisions{{"pool", "worker"}};  // pool: decode (aggregated or decode) | prefill
  prom::labelled_counter failures{{"reason"}};           // requests answered with an error: no_worker, unknown_model, bad_request, ...
  prom::histogram overlap_blocks{prom::count_buckets(1024)};
  prom::histogram predicted_ttft_seconds{prom::latency_buckets()};  // the ttft policy's prediction for its choice
  prom::histogram observed_ttft_seconds{prom::latency_buckets()};   // what the frontends saw (their latency reports)
  prom::histogram kv_event_lag_seconds{prom::fast_latency_buckets()};  // worker publish -> router receipt
  std::atomic<std::uint64_t> kv_event_batches{0}, kv_events{0}, kv_resyncs{0}, kv_snapshots_applied{0};
  std::atomic<std::uint64_t> tokenizer_mismatches{0}, refused_heartbeats{0};
  std::atomic<std::int64_t> workers{0}, approximate_workers{0}, indexed_blocks{0}, kv_events_queued{0};
  std::atomic<std::int64_t> held_requests{0}, tracked_requests{0}, sessions{0};
  std::atomic<std::uint64_t> kv_new_streams{0}, sticky_hits{0}, sticky_breaks{0};

  void render(prom::exposition& out) const;
};

}  // namespace yard::actors
