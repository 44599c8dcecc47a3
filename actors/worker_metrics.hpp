// actors/worker_metrics.hpp — what a worker exports on --metrics-port.
//
// Owns: one worker's counters and histograms (engine step time and batch
// size, admissions, migrations received, disaggregation: remote prefills
// asked and served, local fallbacks by cause, KV transfer bytes, blocks and
// latency), its latest load report (queue, KV blocks by tier, offload and
// onboard counts and bytes), and the Prometheus rendering of a load report
// that the frontend's /metrics shares (render_worker_load). One object per
// worker id; it outlives the worker actor's incarnations.
// Must not touch: the engine or the worker's actors (they write it; the
// scrape thread reads it).
// Thread-safety: every member is atomic or internally locked.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "common/prometheus.hpp"
#include "messages/types.hpp"

namespace yard::actors {

struct worker_metrics {
  std::string worker_id, role, model;
  prom::histogram step_seconds{prom::fast_latency_buckets()};
  prom::histogram batch_size{prom::count_buckets(1024)};  // sequences with output in one step
  std::atomic<std::uint64_t> steps{0}, admitted{0}, rejected{0}, migrations_received{0}, output_tokens{0};
  std::atomic<std::uint64_t> remote_prefills{0};          // decode side: prompts sent to a prefill worker
  std::atomic<std::uint64_t> remote_prefills_served{0};   // prefill side: remote prefills computed here
  prom::labelled_counter local_fallbacks{{"cause"}};      // decode side: remote prefill abandoned, prefilled here
  std::atomic<std::uint64_t> kv_transfer_bytes{0}, kv_transfer_blocks{0}, kv_transfer_failures{0};
  prom::histogram kv_transfer_seconds{prom::fast_latency_buckets()};
  std::atomic<std::uint64_t> kv_block_bytes{0};  // bytes per KV block (0: the engine has no block bytes)

  // The latest heartbeat's load (set at each beat).
  void set_load(const msg::load_report& load, bool draining);
  void render(prom::exposition& out) const;

 private:
  mutable std::mutex mu_;
  msg::load_report load_;
  bool draining_ = false;
};

// Causes of a local fallback (label values).
inline constexpr const char* fallback_timeout = "timeout";          // no reply within the deadline
inline constexpr const char* fallback_remote_error = "remote_error";  // the prefill worker or router answered an error
inline constexpr const char* fallback_pull_failed = "pull_failed";  // the KV pull failed or did not verify

// The gauges and counters of one load report under `l` (frontend: from
// heartbeats; worker: its own). No block_bytes (the frontend does not know
// them) leaves the byte counters out.
void render_worker_load(prom::exposition& out, const prom::labels& l, const msg::load_report& load, bool draining,
                        std::optional<std::uint64_t> block_bytes);

}  // namespace yard::actors
