// backends/external/upstream_load.hpp — an engine server's load, read from its Prometheus metrics.
//
// Owns: parsing the Prometheus text exposition format (sample lines: name,
// labels, value; comments and timestamps skipped) into per-name sums, and the
// mapping from each engine's metric names to Switchyard's load numbers:
//   running   vllm:num_requests_running | sglang:num_running_reqs |
//             llamacpp:requests_processing | yard_worker_active_requests
//   waiting   vllm:num_requests_waiting | sglang:num_queue_reqs |
//             llamacpp:requests_deferred | yard_worker_queued_requests
//   KV usage  vllm:kv_cache_usage_perc (v1) | vllm:gpu_cache_usage_perc (v0) |
//             sglang:token_usage | llamacpp:kv_cache_usage_ratio (fractions 0..1), or
//             yard_worker_kv_blocks_active / yard_worker_kv_blocks_capacity (blocks)
// Several series of one name (several engines behind one server, data-parallel
// ranks) are summed; fractions are averaged.
// Must not touch: sockets (the caller fetches the text), the engine.
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace yard::backends::external {

struct metric_sums {
  std::map<std::string, double, std::less<>> sum;    // by metric name, over every label set
  std::map<std::string, int, std::less<>> series;    // how many samples each name had
  std::size_t malformed_lines = 0;                    // skipped
};

// Parses the text format; never fails (bad lines are counted and skipped).
metric_sums parse_prometheus_text(std::string_view text);

struct upstream_load {
  std::optional<double> running, waiting;
  // KV blocks in use and capacity: real block counts where the server exports
  // them, else the usage fraction as per-mille of a nominal 1000-block pool.
  std::optional<double> kv_used, kv_capacity;
  const char* dialect = "unknown";  // "vllm" | "sglang" | "llama.cpp" | "switchyard" | "unknown"
};

// Every count is >= 0 and <= 2^32 - 1 (negative or NaN: absent; larger: clamped), kv_used <= kv_capacity.
upstream_load load_from_metrics(const metric_sums& m);

}  // namespace yard::backends::external
