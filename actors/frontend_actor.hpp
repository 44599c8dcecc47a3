// actors/frontend_actor.hpp — the frontend's actor: owns every open stream.
//
// Owns: open requests (request -> chunk_queue of the HTTP connection serving it),
// seq checking, stream timeouts, request migration (a stream whose worker
// misses its lease, or that goes silent, is re-dispatched with the tokens
// already delivered as resume_tokens, up to max_attempts), cancellation on
// client disconnect, TTFT/ITL metrics, and the cluster_view the HTTP layer
// reads (live workers, models). A worker counts as live only after it
// answered a status probe (see worker_liveness); "no responders" on the
// router's subject (a router restarting) is retried with backoff within
// router_wait_ms instead of failing the request.
// HTTP connections talk to it through a frontend_port (actors/frontend_port.hpp): open() tells the actor
// (open_atom, generate_request, chunk_queue_ptr, inbox key) and then publishes the
// first attempt from the caller's thread, so no mailbox hop sits on the request
// path; the actor owns the stream from then on (replies, retries, migration).
// Chunks arrive on one wildcard inbox subscription `<inbox>.*`.
// Must not touch: HTTP parsing (http_server), routing (router_actor).
// Thread-safety: an actor; cluster_view is shared and locked.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "actors/chunk_queue.hpp"
#include "actors/frontend_port.hpp"
#include "actors/metrics.hpp"
#include "actors/worker_registry.hpp"
#include "messages/codec.hpp"
#include "transport/nats_connection.hpp"

namespace yard::actors {

struct frontend_config {
  std::string ns = "default";       // subject namespace (default "default")
  std::string id = "frontend-0";    // instance id (default "frontend-0")
  int stream_timeout_ms = 30000;    // silence after which a stream is migrated (default 30 s)
  int ack_timeout_ms = 2000;        // a dispatch no worker acknowledged is re-sent after this (default 2 s)
  int max_attempts = 3;             // dispatches per request incl. the first (default 3)
  int tick_ms = 100;                // housekeeping period (default 100 ms)
  int latency_window_ms = 1000;     // period of latency reports for the planner (default 1 s)
  // No router listening ("no responders": a router restarting) is retried with
  // backoff for this long from the request's start, without using an attempt; and
  // while no worker is live, an unacknowledged request (held by the router) waits
  // this long instead of being re-sent (default 15 s).
  int router_wait_ms = 15000;
  registry_limits registry;         // heartbeat checks (ns is set from `ns`); workers count for /health once they answered
};

// What the HTTP layer may read without asking the actor.
class cluster_view {
 public:
  void set(std::size_t live_workers, std::vector<std::string> models) {
    std::lock_guard<std::mutex> lock(mu_);
    live_ = live_workers;
    models_ = std::move(models);
  }
  std::size_t live_workers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return live_;
  }
  std::vector<std::string> models() const {
    std::lock_guard<std::mutex> lock(mu_);
    return models_;
  }
  void set_workers(std::vector<worker_status> w) {
    std::lock_guard<std::mutex> lock(mu_);
    workers_ = std::move(w);
  }
  std::vector<worker_status> workers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return workers_;
  }

 private:
  mutable std::mutex mu_;
  std::size_t live_ = 0;
  std::vector<std::string> models_;
  std::vector<worker_status> workers_;  // every worker with a live lease, by id
};

result<frontend_port> spawn_frontend(caf::actor_system& sys, transport::nats_connection& conn, frontend_config cfg,
                                     std::shared_ptr<frontend_metrics> metrics, std::shared_ptr<cluster_view> view);

}  // namespace yard::actors
