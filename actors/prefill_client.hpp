// actors/prefill_client.hpp — a decode worker's side of disaggregated prefill.
//
// Owns: the prefill pool as this worker sees it (prefill workers of its model
// and how busy their heartbeats say they are), the decision to prefill a
// request remotely, the remote prefill requests in flight (published on
// yard.<ns>.router.prefill with this actor's reply inbox) and their deadlines.
// Answers the engine actor with (prefilled_atom, key, remote_prefill_reply)
// when a prefill worker computed the prompt, or (local_atom, key, fallback)
// when the request should prefill here: declined (pool empty or full;
// fallback false), or failed or timed out (fallback true). A reply that comes
// after its deadline or cancel has its KV lease released at once.
// Must not touch: the engine, streams, KV bytes (the engine actor pulls them).
// Thread-safety: an event-based actor, linked to the engine actor.
#pragma once

#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include "actors/worker_metrics.hpp"
#include "actors/atoms.hpp"
#include "messages/codec.hpp"
#include "messages/disagg.hpp"
#include "transport/actor_bridge.hpp"  // nats_message as a CAF message type
#include "transport/nats_connection.hpp"

namespace yard::actors {

using prefill_client_actor = caf::typed_actor<
    caf::reacts_to<open_atom, caf::actor>,                                   // the engine actor to answer (sent once, first)
    caf::reacts_to<prefill_atom, std::string, msg::remote_prefill_request>,  // attempt key: prefill it remotely if worth it
    caf::reacts_to<cancel_atom, std::string>,                                // attempt key: the client went away
    caf::reacts_to<remote_timeout_atom, std::string>,                        // attempt key: its deadline passed
    caf::reacts_to<prefilled_atom, transport::nats_message>,                 // a reply on the inbox
    caf::reacts_to<heartbeat_atom, transport::nats_message>>;                // a worker's heartbeat

struct prefill_client_config {
  std::string ns = "default";
  std::string model;
  std::string inbox;                      // this worker's reply inbox for prefill replies
  int lease_ms = 3000;                    // a prefill worker silent this long has left
  std::uint32_t prefill_queue_limit = 8;  // requests waiting or running on a prefill worker
  int timeout_ms = 30000;                 // no reply by then: prefill locally
  msg::decode_limits limits;
  std::shared_ptr<worker_metrics> metrics;  // remote prefills and fallback causes (never null from spawn_worker)
};

prefill_client_actor spawn_prefill_client(caf::actor_system& sys, transport::nats_connection& conn,
                                          prefill_client_config cfg);

// Engine-side id of one dispatch attempt ("<request id>#<attempt>"): a migrated
// request may come back to a worker while its earlier attempt is still being cancelled.
std::string attempt_key(const std::string& request_id, std::uint32_t attempt);

// Frees the KV lease a prefill reply holds (no-op when it holds none).
void release_remote_lease(transport::nats_connection& conn, const msg::remote_prefill_reply& r);

}  // namespace yard::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::msg::remote_prefill_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::msg::remote_prefill_reply)
