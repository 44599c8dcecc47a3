// cluster/planner/planner_service.hpp — `yard planner` wiring around slo_planner.
//
// Owns: the NATS side of the planner: it collects latency_report samples
// (subjects::latency_metrics), worker heartbeats and agent_status messages,
// turns each interval into a planner_observation (p90s of the samples,
// arrivals, workers per role), runs slo_planner::step and sends
// scale_request to agents' control subjects, spreading additions over agents
// with room (fewest workers of the role first) and removals over agents with
// the most above their minimum. Roles are msg::worker_role throughout;
// their wire names appear only in metric labels, logs and request ids.
// Must not touch: processes (agents do that), the planning logic itself.
// Thread-safety: handlers run on nats.c threads and only append under a
// mutex; tick() runs on the service's thread (or a test's).
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/planner/slo_planner.hpp"
#include "common/prometheus.hpp"
#include "common/status.hpp"
#include "messages/cluster.hpp"
#include "transport/nats_connection.hpp"

namespace yard::cluster {

struct planner_service_options {
  std::string ns = "default";
  planner_options planner;
  std::uint32_t interval_ms = 5000;        // one observation window (default 5 s)
  std::uint32_t request_timeout_ms = 2000; // per scale_request (default 2 s)
  std::uint32_t agent_timeout_ms = 5000;   // an agent silent this long is ignored (default 5 s)
  bool dry_run = false;                    // log decisions, send nothing (default off)
  bool run_thread = true;                  // false: the caller drives tick() (tests)
};

// p90 by nearest rank; nullopt for no samples.
std::optional<double> percentile90(std::vector<float> samples);

class planner_service {
 public:
  static result<std::unique_ptr<planner_service>> start(planner_service_options opts, transport::nats_connection* nc);
  ~planner_service();

  // Closes one window at `now_ms` (a monotonic clock): plans and sends
  // scale requests. Returns the decisions taken.
  std::vector<scale_decision> tick(std::uint64_t now_ms);
  planner_observation last_observation() const;
  // Prometheus: decisions by role and direction, windows, the last window's
  // p90s, arrival rate and workers per role, and each role's last target.
  void render_metrics(prom::exposition& out) const;
  const slo_planner& planner() const { return planner_; }

 private:
  explicit planner_service(planner_service_options opts);
  void on_latency(const transport::nats_message& m);
  void on_heartbeat(const transport::nats_message& m);
  void on_agent(const transport::nats_message& m);
  void apply(const scale_decision& d, std::uint64_t now_ms);
  void loop();

  struct worker_seen {
    msg::worker_role role = msg::worker_role::both;
    std::uint64_t seen_ms = 0;
    std::uint32_t lease_ms = 3000;
    bool draining = false;
  };
  struct agent_seen {
    msg::agent_status status;
    std::uint64_t seen_ms = 0;
  };

  planner_service_options opts_;
  transport::nats_connection* nc_ = nullptr;
  slo_planner planner_;
  mutable std::mutex mu_;
  std::vector<float> ttft_, itl_;
  double arrivals_ = 0;
  std::uint64_t window_start_ms_ = 0;
  std::map<std::string, worker_seen> workers_;
  std::map<std::string, agent_seen> agents_;
  planner_observation last_obs_;
  std::map<msg::worker_role, std::uint32_t> targets_;  // role -> the last decision's worker count (under mu_)
  prom::labelled_counter decisions_{{"role", "direction"}};
  std::atomic<std::uint64_t> windows_{0};
  std::vector<transport::subscription> subs_;
  std::atomic<bool> stop_{false};
  std::mutex wake_mu_;
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace yard::cluster
