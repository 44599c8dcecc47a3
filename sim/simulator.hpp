// sim/simulator.hpp — deterministic discrete-event simulation of a fleet of mock workers behind a router.
//
// Owns: the virtual clock, the event loop (arrivals from a trace, step
// completions of each worker), per-request timing, and the metrics of one run.
// Each simulated worker is a real backends::mock_engine in profile mode (the
// same scheduler and block pool as live workers); routing goes through a
// sim::router_bridge onto the production router policy classes, fed with the
// workers' real KV events and load reports.
// Must not touch: wall clocks inside the simulation (only the optional
// progress callback looks at time), files, threads (one run = one thread; run
// several policies on several threads, they share only the read-only trace).
// Thread-safety: run_simulation is reentrant; prepared_trace is read-only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/kv_tiering.hpp"
#include "backends/timing_model.hpp"
#include "common/status.hpp"
#include "sim/router_bridge.hpp"
#include "sim/trace.hpp"

namespace yard::sim {

// A trace with its prompt block hashes at one block size, computed once and
// shared by every policy's run.
struct prepared_trace {
  const trace* source = nullptr;
  std::uint32_t block_size = 64;
  std::vector<std::vector<kv::block_hash>> hashes;  // [request][full block]
  double ideal_hit_rate = 0;  // prompt tokens an infinite shared cache would serve / prompt tokens
};
prepared_trace prepare_trace(const trace& t, std::uint32_t block_size);

// What an autoscaler (e.g. cluster::slo_planner) sees every period.
struct autoscale_window {
  double now_ms = 0;                 // virtual time at the end of the window
  double window_ms = 0;
  std::uint32_t arrivals = 0;        // requests that arrived in the window
  std::vector<double> ttft_ms;       // first tokens seen in the window
  std::vector<double> itl_ms;        // inter-token gaps seen in the window
  std::uint32_t serving = 0;         // workers in routing now
};
// Returns how many workers should serve from now on.
using autoscaler_fn = std::function<std::uint32_t(const autoscale_window&)>;

struct sim_options {
  std::uint32_t workers = 16;
  std::string policy = "round_robin";
  kv::policy_config policy_cfg;      // the policies' knobs (overlap weight, tier hit weights ...)
  backends::engine_profile profile;  // timing, limits, block size, cache blocks per worker
  double rate_scale = 1.0;           // arrival timestamps are divided by this (default 1)
  std::uint64_t seed = 1;            // router randomness and sampling seeds (default 1)
  std::uint32_t hit_rate_buckets = 40;  // points of the hit-rate-over-time series (default 40)
  // Tests may inject a router (e.g. one that records what it is fed); empty =
  // make_router_bridge(policy, ...), the production policies.
  std::function<std::unique_ptr<router_bridge>()> router_factory;
  // Autoscaling: empty = a fixed fleet of `workers`. Otherwise `workers` start
  // serving, the autoscaler is asked every autoscale_period_ms, new workers
  // come up after startup_ms (fresh, empty cache) and removed ones stop taking
  // requests but finish theirs. At most max_workers ever serve at once.
  autoscaler_fn autoscaler;
  double autoscale_period_ms = 1000;  // (default 1 s)
  double startup_ms = 0;              // worker start-up delay (default 0)
  std::uint32_t max_workers = 64;     // (default 64)
  // KV tiers under every worker (default off). A set disk_dir is a base
  // directory: worker i keeps its G3 in <disk_dir>/w<i> (give each concurrent
  // run its own base). G3 writes are made synchronous so a run stays
  // deterministic; onboarding time is charged by the mock's timing model.
  backends::kv_tier_options tiers;
  // Agent hints. interactive_fraction in [0, 1]: each request is made
  // interactive with this probability (seeded, the same for every policy and
  // for hints on/off), the rest batch; < 0 keeps the trace's own classes
  // (default -1). hints = false: the classes, priorities and sessions are
  // measured but not given to the router and the workers (default true).
  double interactive_fraction = -1;
  bool hints = true;
};

struct latency_summary {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0;
};

struct sim_result {
  std::string policy;
  std::uint32_t workers = 0;
  double rate_scale = 1;
  std::uint64_t requests = 0;    // arrivals
  std::uint64_t completed = 0;
  std::uint64_t rejected = 0;    // refused by the engine (never fits) or by the router
  std::uint64_t preempted = 0;   // preemptions across workers
  latency_summary ttft_ms, itl_ms, e2e_ms;
  latency_summary ttft_interactive_ms, ttft_batch_ms;  // TTFT per latency class
  std::uint64_t interactive_requests = 0;
  double makespan_ms = 0;        // first arrival to last token
  double throughput_tok_s = 0;   // output tokens / makespan
  double requests_per_s = 0;
  double hit_rate = 0;           // cached prompt tokens / prompt tokens
  double ideal_hit_rate = 0;
  double imbalance = 0;          // max / mean busy time over workers
  // Tier hit mix, in prompt tokens of completed requests: served from G1 (the
  // engine's prefix cache), onboarded from G2 / G3 (tiers on only).
  bool tiers = false;
  std::uint64_t prompt_tokens = 0;
  std::uint64_t g1_hit_tokens = 0, g2_hit_tokens = 0, g3_hit_tokens = 0;
  std::vector<double> ttft_sorted_ms;                 // for the CDF plot
  std::vector<std::pair<double, double>> hit_rate_series;  // (arrival time s, hit rate in that bucket)
  // With an autoscaler: per period (end time s, workers serving, TTFT p90 ms of the window or -1).
  struct scale_point {
    double t_s = 0;
    std::uint32_t serving = 0;
    double ttft_p90_ms = -1;
  };
  std::vector<scale_point> scale_series;
};

// Progress: requests finished so far, out of the total.
using progress_fn = std::function<void(std::uint64_t done, std::uint64_t total)>;

result<sim_result> run_simulation(const prepared_trace& t, const sim_options& opts, const progress_fn& progress = {});

}  // namespace yard::sim
