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
// It also owns the KV tiers below G1 when the worker has them (G2 host
// memory, G3 disk: backends/kv_tier_store.hpp, handed over by the engine at
// spawn): blocks G1 evicts arrive here by message and go down a tier; a
// request the engine admits is first put to the tiers here (onboard_atom), and
// the manager reads the worthwhile run of its prefix and replies with the
// bytes, which the engine imports before it schedules the request; hot G1
// prefixes are written through to G3 with bytes asked of the engine
// (export_atom); the tier events go out on the same stream, and the tier
// fields of the worker's load go back to the engine (tier_load_atom) for its
// heartbeats. It owns G1 too — the worker's kv::block_pool, handed over by
// the engine at spawn (engine::hand_over_g1): which block holds what, who
// holds a block, what is evicted next, the tier-1 events. The engine keeps
// only its block tables and the bytes; every block call of its step is a
// message here (g1_atom, kv/pool_call.hpp, through actors/g1_pool_client),
// answered at once: a manager with G1 runs on a thread of its own and never
// waits on the engine. The answer names the blocks the call evicted; the
// engine copies their bytes out before it writes them and sends them here
// (offload_atom) after its step, before it asks the manager to publish the
// step's G1 events (a block's lower tier is known as it leaves G1). When the
// engine ends, its pool ends here with it.
// Must not touch: the engine's bytes, its streams, routing.
// Thread-safety: an event-based actor, linked to the engine actor and monitoring
// it; it holds a handle to itself until the engine's end has reached it (the
// engine holds the only other one and drops it as it dies).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "backends/kv_tier_store.hpp"
#include "kv/pool_call.hpp"
#include "messages/types.hpp"
#include "transport/actor_bridge.hpp"  // nats_message as a CAF message type
#include "transport/nats_connection.hpp"

namespace yard::actors {

// A G1 block's bytes: one evicted (an offload), or one asked for a write-through.
struct kv_block_copy {
  kv::block_hash hash = 0;
  std::vector<std::byte> bytes;
};

using kv_block_manager_actor = caf::typed_actor<
    caf::reacts_to<open_atom, caf::actor>,                        // the engine actor (sent once, first): monitored
    caf::reacts_to<kv_events_atom, std::vector<msg::kv_event>>,   // the engine's events since its last push (G1 in the engine)
    caf::replies_to<g1_atom, kv::pool_call>::with<kv::pool_answer>,  // a block question on the G1 pool owned here
    caf::reacts_to<kv_events_atom, kv::pool_call>,                // G1 writes, then publish the pool's events (no answer)
    caf::reacts_to<offload_atom, std::vector<kv_block_copy>>,     // blocks G1 evicted: down a tier
    caf::replies_to<onboard_atom, backends::onboard_ask>::with<backends::onboard_fetch>,  // a prefix from the tiers
    caf::reacts_to<hits_atom, std::vector<kv::block_hash>>,       // G1 prefix hits of a request (write-through)
    caf::reacts_to<snapshot_atom, transport::nats_message>,       // a snapshot request: answer its reply inbox
    caf::replies_to<caf::get_atom>::with<msg::kv_event_batch>>;   // the ledger as a snapshot (tests, tools)

struct kv_block_manager_config {
  std::string worker_id;
  std::string events_subject;  // subjects::kv_events(ns, id)
  // With tiers, run on a thread of its own (G3 reads block it; default true). Tests that
  // drive every actor with CAF's test coordinator set false.
  bool own_thread = true;
  // This incarnation's stream id (kv_event_batch::stream; announced in heartbeats); 0 = wall-clock µs now.
  std::uint64_t stream = 0;
};

// A new KV stream id: wall-clock microseconds now (so a later incarnation's is larger).
std::uint64_t kv_stream_id_now();

// `tiers`: the KV tiers the engine released (null: none). `g1`: the engine's
// block pool (null: it stays in the engine, as under CAF's test coordinator,
// where a blocking call could never be answered); with it the manager always
// runs on its own thread (own_thread is ignored).
kv_block_manager_actor spawn_kv_block_manager(caf::actor_system& sys, transport::nats_connection& conn,
                                              kv_block_manager_config cfg,
                                              std::shared_ptr<backends::kv_tier_store> tiers = nullptr,
                                              std::unique_ptr<kv::block_pool> g1 = nullptr);

}  // namespace yard::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<yard::msg::kv_event>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::msg::kv_event_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<yard::actors::kv_block_copy>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::backends::onboard_ask)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::backends::onboard_fetch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::msg::kv_tier_load)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::kv::pool_call)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::kv::pool_answer)
