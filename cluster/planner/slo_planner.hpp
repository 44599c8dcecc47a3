// cluster/planner/slo_planner.hpp — the SLO planner's decision logic.
//
// Owns: turning latency windows (TTFT p90, ITL p90) and arrival counts into
// worker-count decisions for each pool (prefill, decode, or one aggregated
// "both" pool), within min/max bounds and with cool-downs.
// Load is predicted with Holt's double exponential smoothing (level + trend)
// of the arrival rate, projected `horizon_ms` ahead so capacity is ordered
// before a rising load arrives. A pool's per-worker capacity (requests/s one
// worker serves inside its SLO) starts at a configured guess and is learned:
// lowered when the pool misses its target, raised when it meets it with room
// to spare at a higher per-worker load.
// Pools are keyed by msg::worker_role; role names are strings only in the
// service's logs and metric labels (planner_service).
// Pure logic: no clock, no I/O. Time comes in with each observation (ms on
// any monotonic clock), so the same code runs live (`yard planner`) and in the
// simulator on a virtual clock.
// Must not touch: NATS, processes. Thread-safety: not thread-safe; one owner.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "messages/types.hpp"

namespace yard::cluster {

struct pool_options {
  msg::worker_role role = msg::worker_role::both;  // the pool's workers (default both)
  bool watch_ttft = false;              // scale on TTFT p90 (prefill, both)
  bool watch_itl = false;               // scale on ITL p90 (decode, both)
  std::uint32_t min_workers = 1;        // default 1
  std::uint32_t max_workers = 8;        // default 8
  double capacity_rps = 2.0;            // initial guess of req/s per worker within SLO (default 2)
};

struct planner_options {
  double ttft_p90_target_ms = 1000;     // default 1 s
  double itl_p90_target_ms = 50;        // default 50 ms
  std::vector<pool_options> pools;      // default: see default_pools()
  double level_alpha = 0.5;             // Holt level smoothing (default 0.5)
  double trend_beta = 0.3;              // Holt trend smoothing (default 0.3)
  std::uint64_t horizon_ms = 10000;     // forecast this far ahead, ~worker start-up (default 10 s)
  std::uint64_t up_cooldown_ms = 15000;   // after any change, wait before scaling up again (default 15 s)
  std::uint64_t down_cooldown_ms = 30000; // after any change, wait before scaling down (default 30 s)
  double down_ratio = 0.6;              // scale down only when every watched p90 < ratio * target (default 0.6)
  double headroom = 1.1;                // provision predicted load * headroom (default 1.1)
  std::uint32_t max_step_up = 4;        // most workers added to one pool per decision (default 4)
};

// prefill (TTFT) and decode (ITL) pools, or one aggregated pool.
std::vector<pool_options> default_pools(bool disaggregated);

// One observation window.
struct planner_observation {
  std::uint64_t now_ms = 0;             // end of the window, any monotonic clock
  double window_s = 1.0;                // length of the window (> 0)
  double arrivals = 0;                  // requests that arrived in the window
  std::optional<double> ttft_p90_ms;    // absent when no request got a first token
  std::optional<double> itl_p90_ms;     // absent when no inter-token gap was seen
  // Workers serving per role right now (live, not draining), e.g. {worker_role::prefill, 2}.
  std::vector<std::pair<msg::worker_role, std::uint32_t>> workers;
};

struct scale_decision {
  msg::worker_role role = msg::worker_role::both;
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  std::string reason;
  std::int32_t delta() const { return static_cast<std::int32_t>(to) - static_cast<std::int32_t>(from); }
};

class slo_planner {
 public:
  explicit slo_planner(planner_options opts);

  // Feeds one window; returns the changes to make now (empty = hold).
  std::vector<scale_decision> step(const planner_observation& obs);

  double observed_rate() const { return rate_; }     // req/s of the last window
  double predicted_rate() const { return predicted_; }  // req/s expected at now + horizon
  // Current learned capacity of a pool (req/s per worker); 0 for a role without a pool.
  double capacity(msg::worker_role role) const;
  const planner_options& options() const { return opts_; }

 private:
  struct pool_state {
    pool_options opts;
    double capacity = 0;
    std::optional<std::uint64_t> last_change_ms;
    std::uint32_t last_target = 0;
  };
  void forecast(const planner_observation& obs);
  bool steady_load() const;  // the arrival rate is flat (no trend, no jump)
  std::optional<scale_decision> decide(pool_state& p, std::uint32_t current, const planner_observation& obs);

  planner_options opts_;
  std::vector<pool_state> pools_;
  bool have_level_ = false;
  double level_ = 0, trend_ = 0;  // req/s and req/s per second
  double rate_ = 0, predicted_ = 0;
  std::optional<std::uint64_t> last_now_ms_;
};

}  // namespace yard::cluster
