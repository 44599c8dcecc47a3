// actors/router_actor.hpp — the router: picks a worker for each request.
//
// Owns: the router's worker registry (from heartbeats) and one
// kv::kv_router_core per served model (KV index fed by workers' KV events,
// load tracker, routing policy). Receives generate_request on
// yard.<ns>.router.generate (queue group "routers", so router replicas split
// requests), tokenizes and hashes the prompt, asks the policy, and forwards
// the original body, reply inbox and Content-Type to the chosen worker: the
// worker then streams straight to the client's inbox. Answers with an error
// chunk when no worker can serve (503) or the model is unknown (404).
// Replicas publish every dispatch on yard.<ns>.router.inflight so each
// replica's load estimate counts the others' work. A worker whose KV events
// show a gap is asked for a snapshot on yard.<ns>.kv.snapshot.<id>.
// Trust: heartbeats and KV events are taken only on the sender's own subject
// (yard.<ns>.discovery.heartbeat.<id>, yard.<ns>.kv.events.<id>) and checked
// by worker_registry; a worker gets work only after it answered a status
// probe. A starting router asks every worker to heartbeat (roster) and holds
// requests it cannot place yet for up to startup_wait_ms instead of failing
// them; after a worker goes away (lease missed, restart) it holds them for up
// to outage_wait_ms, so a short total outage costs latency, not errors. A request without request_id gets one ("<router id>-<n>").
// Must not touch: engines (it holds a prompt_tokenizer only, never weights), HTTP.
// Thread-safety: an actor.
#pragma once

#include <memory>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "actors/router_metrics.hpp"
#include "actors/worker_registry.hpp"
#include "backends/prompt_tokenizer.hpp"
#include "kv/routing_policy.hpp"
#include "messages/codec.hpp"
#include "transport/nats_connection.hpp"

namespace yard::actors {

struct router_config {
  std::string ns = "default";        // subject namespace (default "default")
  std::string id = "router-0";       // instance id (default "router-0")
  std::string policy = "ttft";       // random|round_robin|least_loaded|approx|dynamo|ttft (default ttft)
  kv::policy_config policy_cfg;      // per-policy knobs
  bool use_kv_events = true;         // false: approximate mode (routed = cached) (default true)
  std::uint64_t seed = 1;            // policy RNG seed (default 1)
  int tick_ms = 100;                 // lease check and event pump period (default 100 ms)
  std::uint64_t pump_budget = 65536; // block events applied between two messages (default 64Ki)
  msg::decode_limits limits;
  registry_limits registry;          // heartbeat checks (ns is set from `ns`)
  int startup_wait_ms = 3000;        // hold unplaceable requests this long after start or while workers are unverified (default 3 s)
  int outage_wait_ms = 10000;        // ... and this long once a worker went away, while it may be restarting (default 10 s)
  std::size_t max_held = 10000;      // held requests at most; more get 503 at once (default 10000)
  // Turns prompts into tokens exactly as the workers do (mock: bytes). Null = mock.
  std::shared_ptr<const backends::prompt_tokenizer> tokenizer;
  // Exported on --metrics-port; kept across restarts (null = the router makes its own).
  std::shared_ptr<router_metrics> metrics;
};

// Checks the policy name before anything is spawned.
status validate_router_config(const router_config& cfg);

// What a router holds right now (tests, metrics): ask with (get_atom) -> router_stats.
struct router_stats {
  std::uint64_t tracked_requests = 0;  // dispatches the load trackers still track
  std::uint64_t held_requests = 0;     // requests waiting for a worker
  std::uint64_t refused_heartbeats = 0;
  std::uint64_t routed = 0;
  std::uint64_t tokenizer_mismatches = 0;  // worker incarnations whose tokenizer fingerprint differs from ours
  std::uint64_t workers = 0;               // workers this router holds a live lease for (routable or about to be)
  std::uint64_t indexed_blocks = 0;        // distinct block hashes in the KV indexes (every model)
  std::uint64_t kv_new_streams = 0;        // known workers whose KV stream started over (a restart's batch 0)
  std::uint64_t sticky_hits = 0;           // session_id requests kept on their session's worker
  std::uint64_t sticky_breaks = 0;         // ... moved because that worker was overloaded or gone
  std::uint64_t sessions = 0;              // sessions held now
  std::uint64_t kv_events_queued = 0;      // block events received and not yet applied
  std::uint64_t pools = 0;                 // routing pools (a router core each: models, and their prefill pools)
  std::uint64_t foreign_kv_batches = 0;    // KV batches/snapshots ignored: not the stream their worker announces
};

}  // namespace yard::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::actors::router_stats)

namespace yard::actors {

result<caf::actor> spawn_router(caf::actor_system& sys, transport::nats_connection& conn, router_config cfg);

}  // namespace yard::actors
