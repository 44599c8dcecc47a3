// cluster/agent/node_agent.hpp — one node's agent: its workers and its control subject.
//
// Owns: the supervisor holding this node's worker processes (one child per
// worker instance, started as `<worker_binary> worker --nats ... --id ...`),
// the scale logic (per-role counts within [min_count, max_count], keyed by
// msg::worker_role; the role's wire name appears only in argv, instance ids,
// the supervisor's group label and logs), the
// subscription to yard.<ns>.agent.<node>.control (scale_request ->
// scale_reply) and the periodic agent_status publication.
// Shutdown: stop answering scale requests, publish draining, SIGTERM every
// worker (they drain), SIGKILL stragglers after restart.shutdown_timeout_ms.
// Must not touch: what workers do (it only starts/stops processes).
// Thread-safety: all public methods are thread-safe; NATS handlers call in
// from nats.c threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/agent/agent_config.hpp"
#include "cluster/agent/supervisor.hpp"
#include "common/status.hpp"
#include "messages/cluster.hpp"
#include "transport/nats_connection.hpp"

namespace yard::cluster {

struct node_agent_options {
  agent_config config;
  std::string worker_binary;        // resolved path of the `yard` executable (or a test stand-in)
  std::string worker_log_level;     // passed as --log-level when non-empty (default "")
  std::uint32_t status_interval_ms = 1000;  // agent_status period (default 1 s)
  std::uint32_t stable_ms = 10000;  // a worker up this long has its backoff reset (default 10 s)
  // "NAME=value" entries with the workers' NATS auth (YARD_NATS_*): secrets reach
  // children through their environment, never their argv (default none).
  std::vector<std::string> worker_auth_env;
};

// The argv of one worker instance (argv[0] = opts.worker_binary). Server URLs
// appear without any credentials they carried.
std::vector<std::string> worker_argv(const node_agent_options& opts, const worker_group& g, const std::string& id);
// Extra environment of a worker: YARD_NODE, YARD_DEVICE and, for "cuda:N",
// CUDA_VISIBLE_DEVICES=N.
std::vector<std::string> worker_env(const agent_config& cfg, const worker_group& g);

class node_agent {
 public:
  // Starts the configured workers and, when `nc` is not null, subscribes to
  // the control subject and starts publishing status. `nc` must outlive the
  // agent. Fails (nothing left running) if the subscription fails.
  static result<std::unique_ptr<node_agent>> start(node_agent_options opts, transport::nats_connection* nc);
  ~node_agent();  // shutdown()

  // Applies a scale request (clamped to the role's bounds) and says what it did.
  msg::scale_reply scale(const msg::scale_request& req);
  msg::agent_status status() const;
  std::uint64_t scale_requests() const { return scale_requests_.load(); }
  // Drains and stops every worker; idempotent; blocks up to the shutdown timeout.
  void shutdown();

  supervisor& processes() { return sup_; }
  const node_agent_options& options() const { return opts_; }

 private:
  explicit node_agent(node_agent_options opts);
  std::uint32_t running_locked(msg::worker_role role) const;  // holds mu_
  yard::status start_instance_locked(const worker_group& g);
  void status_loop();
  void on_control(transport::nats_message m);

  node_agent_options opts_;
  transport::nats_connection* nc_ = nullptr;
  supervisor sup_;
  mutable std::mutex mu_;
  std::map<msg::worker_role, std::uint32_t> next_index_;             // role -> next instance number
  std::map<msg::worker_role, std::vector<std::string>> instances_;  // role -> instance ids, oldest first
  std::atomic<bool> draining_{false};
  std::atomic<std::uint64_t> scale_requests_{0};
  bool stopped_ = false;
  transport::subscription control_sub_;
  std::thread status_thread_;
  std::mutex wake_mu_;
  std::condition_variable wake_;
};

}  // namespace yard::cluster
