// actors/worker_actor.hpp — a worker: one engine behind a NATS subject.
//
// Owns: the engine, the streams it serves (request id -> reply inbox, wire
// format, next seq), its heartbeats and KV event batches. Receives
// generate_request on yard.<ns>.worker.generate.<id>, cancel_request on the
// broadcast cancel subject; streams token_chunk to each request's reply inbox
// in the request's own format (JSON in, JSON out).
// Must not touch: routing decisions, HTTP.
// Thread-safety: an actor; spawned detached because engine steps may compute
// for milliseconds (native engine) and must not stall other actors.
#pragma once

#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "backends/engine.hpp"
#include "messages/codec.hpp"
#include "transport/nats_connection.hpp"

namespace yard::actors {

struct worker_config {
  std::string ns = "default";      // subject namespace (default "default")
  std::string id;                  // unique instance id (required)
  std::string model = "mock";      // model name served (default "mock")
  std::string role = "both";       // both | prefill | decode (default both)
  int heartbeat_ms = 500;          // heartbeat period (default 500 ms)
  int lease_ms = 3000;             // peers drop us after this silence (default 3 s)
  msg::decode_limits limits;       // inbound body limits
};

// Spawns the worker and subscribes its subjects. The connection must outlive
// the actor. Fails when a subscription fails.
result<caf::actor> spawn_worker(caf::actor_system& sys, transport::nats_connection& conn,
                                std::unique_ptr<backends::engine> engine, worker_config cfg);

}  // namespace yard::actors
