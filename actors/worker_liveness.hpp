// actors/worker_liveness.hpp — heartbeats in, liveness probes out, for the
// actors that keep a worker_registry (router, frontend).
//
// Owns: decoding a heartbeat and handing it to the registry with the id its
// subject names; logging refused heartbeats without flooding (the 1st, 2nd,
// 4th, 8th, ... refusal of each id); the status probe that turns an announced
// worker into an answering one (request on yard.<ns>.worker.status.<id>,
// answer on `<probe inbox>.<id>`); and the roster request a starting component
// sends so every worker heartbeats at once.
// Must not touch: routing, streams (callers act on the returned observation).
// Thread-safety: called from the owning actor only.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

#include "actors/worker_registry.hpp"
#include "messages/codec.hpp"
#include "transport/nats_connection.hpp"

namespace yard::actors {

// Asks every worker to heartbeat now: a component that just started (after it
// subscribed to heartbeats) learns the fleet at once, not a heartbeat period later.
void request_roster(transport::nats_connection& conn, const std::string& ns);

class worker_liveness {
 public:
  worker_liveness(transport::nats_connection* conn, std::string ns, std::string probe_inbox,
                  std::shared_ptr<spdlog::logger> log, msg::decode_limits limits = {})
      : conn_(conn), ns_(std::move(ns)), probe_inbox_(std::move(probe_inbox)), log_(std::move(log)), limits_(limits) {}

  struct taken {
    msg::heartbeat hb;
    worker_registry::observation obs;
  };
  // A message from yard.<ns>.discovery.heartbeat.<id>. Empty when undecodable
  // or not from a worker; refused heartbeats are logged (rate-limited) and
  // returned with obs.what == refused.
  std::optional<taken> on_heartbeat(worker_registry& reg, const transport::nats_message& m);
  // An answer on `<probe inbox>.<id>`: marks the worker answered when the
  // heartbeat in it is that worker's current incarnation.
  void on_status_reply(worker_registry& reg, const transport::nats_message& m);
  // Probes every worker that has not answered (again after `every`).
  void probe(worker_registry& reg, std::chrono::steady_clock::time_point now,
             std::chrono::milliseconds every = std::chrono::milliseconds(1000));
  std::uint64_t refused() const { return refused_total_; }
  const std::string& probe_inbox() const { return probe_inbox_; }

 private:
  transport::nats_connection* conn_;
  std::string ns_;
  std::string probe_inbox_;
  std::shared_ptr<spdlog::logger> log_;
  msg::decode_limits limits_;
  std::map<std::string, std::uint64_t> refusals_;  // per claimed id; bounded below
  std::uint64_t refused_total_ = 0;
};

}  // namespace yard::actors
