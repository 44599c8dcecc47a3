// actors/router_actor.hpp — the router: picks a worker for each request.
//
// Owns: the router's worker registry (from heartbeats) and its policy state.
// Receives generate_request on yard.<ns>.router.generate (queue group
// "routers", so router replicas split requests), forwards the original body,
// reply inbox and Content-Type to the chosen worker's subject: the worker then
// streams straight to the client's inbox (no extra hop through the router).
// Answers with an error chunk when no worker can serve (503) or the model is
// unknown (404).
// Must not touch: engines, HTTP.
// Thread-safety: an actor.
#pragma once

#include <string>

#include <caf/fwd.hpp>

#include "messages/codec.hpp"
#include "transport/nats_connection.hpp"

namespace yard::actors {

struct router_config {
  std::string ns = "default";   // subject namespace (default "default")
  std::string id = "router-0";  // instance id (default "router-0")
  std::string policy = "round_robin";  // routing policy (default round_robin)
  int tick_ms = 100;            // lease check period (default 100 ms)
  msg::decode_limits limits;
};

result<caf::actor> spawn_router(caf::actor_system& sys, transport::nats_connection& conn, router_config cfg);

}  // namespace yard::actors
