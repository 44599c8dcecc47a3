// actors/heartbeat_publisher.hpp — a worker's heartbeat and lease publisher.
//
// Owns: the worker's heartbeat period, its heartbeat subject, and the answers
// to status probes (yard.<ns>.worker.status.<id>, to the asker only) and
// roster requests (a component that just started wants every worker's
// heartbeat now). The heartbeat's content comes from the engine actor, asked
// with (heartbeat_atom) -> msg::heartbeat, which also flushes KV events on
// that beat; the engine actor pushes an extra heartbeat
// itself when requests finish or it starts draining.
// Must not touch: the engine, streams, KV.
// Thread-safety: an event-based actor, linked to the engine actor.
#pragma once

#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "messages/types.hpp"
#include "transport/actor_bridge.hpp"  // nats_message as a CAF message type
#include "transport/nats_connection.hpp"

namespace yard::actors {

using heartbeat_publisher_actor = caf::typed_actor<
    caf::reacts_to<open_atom, caf::actor>,                  // the engine actor to ask (sent once, first)
    caf::reacts_to<tick_atom>,                              // a period passed: ask, publish, re-arm
    caf::reacts_to<heartbeat_atom, msg::heartbeat>,         // publish this heartbeat now
    caf::reacts_to<status_atom, transport::nats_message>,   // a status probe: answer its reply inbox
    caf::reacts_to<roster_atom, transport::nats_message>>;  // a roster request: publish a heartbeat now

struct heartbeat_publisher_config {
  std::string subject;       // where heartbeats go (subjects::heartbeat)
  int period_ms = 500;
};

heartbeat_publisher_actor spawn_heartbeat_publisher(caf::actor_system& sys, transport::nats_connection& conn,
                                                    heartbeat_publisher_config cfg);

}  // namespace yard::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::msg::heartbeat)
