// actors/kv_block_manager.hpp — a worker's KV block manager actor.
//
// Owns: the worker's KV event stream on the bus (yard.<ns>.kv.events.<id>:
// batches numbered 0, 1, 2, ... with no gap), the block ledger those batches
// describe (kv/block_ledger.hpp), and the answers to KV snapshot requests,
// taken from that ledger so a snapshot at seq S is exactly batches 0..S. A
// stream opens with batch 0 = [cleared]: a router that sees it knows a new
// incarnation started and resets its view of the worker, whatever heartbeat
// it has or has not seen yet. When the engine actor ends (a crash, a stop),
// the manager publishes one more [cleared] — the engine's blocks are gone —
// and ends with it, so routers forget them at once instead of after a lease.
// The blocks themselves (the pool and its tiers) are allocated inside the
// engine's step, which cannot wait on a mailbox per block: the engine drains
// its events after each step and sends them here (kv_events_atom).
// Must not touch: the engine, its pool, streams, routing.
// Thread-safety: an event-based actor, linked to the engine actor and monitoring
// it; it holds a handle to itself until the engine's end has reached it (the
// engine holds the only other one and drops it as it dies).
#pragma once

#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "messages/types.hpp"
#include "transport/actor_bridge.hpp"  // nats_message as a CAF message type
#include "transport/nats_connection.hpp"

namespace yard::actors {

using kv_block_manager_actor = caf::typed_actor<
    caf::reacts_to<open_atom, caf::actor>,                        // the engine actor (sent once, first): monitored
    caf::reacts_to<kv_events_atom, std::vector<msg::kv_event>>,   // the engine's events since its last push
    caf::reacts_to<snapshot_atom, transport::nats_message>,       // a snapshot request: answer its reply inbox
    caf::replies_to<caf::get_atom>::with<msg::kv_event_batch>>;   // the ledger as a snapshot (tests, tools)

struct kv_block_manager_config {
  std::string worker_id;
  std::string events_subject;  // subjects::kv_events(ns, id)
};

kv_block_manager_actor spawn_kv_block_manager(caf::actor_system& sys, transport::nats_connection& conn,
                                              kv_block_manager_config cfg);

}  // namespace yard::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<yard::msg::kv_event>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::msg::kv_event_batch)
