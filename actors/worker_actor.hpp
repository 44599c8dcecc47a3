// actors/worker_actor.hpp — a worker: one engine behind a NATS subject.
//
// Owns: the engine, the streams it serves (request id -> reply inbox, wire
// format, next seq), its heartbeats and KV event batches, and its side of
// disaggregated prefill (kv_transfer_agent; see messages/disagg.hpp).
// Receives generate_request on yard.<ns>.worker.generate.<id>, cancel_request
// on the broadcast cancel subject; streams token_chunk to each request's reply
// inbox in the request's own format (JSON in, JSON out). Role "prefill" also
// serves remote_prefill_request on yard.<ns>.worker.prefill.<id> and
// kv_release; role "decode" sends long uncached prompts to the prefill pool
// (via yard.<ns>.router.prefill) and falls back to local prefill on any failure.
// Must not touch: routing decisions, HTTP.
// Thread-safety: an actor; spawned detached because engine steps may compute
// for milliseconds (native engine) and must not stall other actors.
#pragma once

#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "actors/kv_transfer_agent.hpp"
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
  // Disaggregation. A decode worker prefills remotely only when the prompt's
  // uncached part is at least remote_prefill_min_tokens and some prefill
  // worker of its model has fewer than prefill_queue_limit requests.
  std::uint32_t remote_prefill_min_tokens = 512;  // (default 512)
  std::uint32_t prefill_queue_limit = 8;          // requests waiting or running on a prefill worker (default 8)
  int remote_prefill_timeout_ms = 30000;          // no reply by then: prefill locally (default 30 s)
  kv_transfer_options transfer;                   // UCX staging, leases, checksums
  // Fault injection for tests (prefill side): "drop-release" ignores kv_release,
  // "corrupt-block" corrupts every staged lease's first block, "exit-after-reply"
  // kills the process right after its first remote prefill reply. Default "".
  std::string fault;
};

// Spawns the worker and subscribes its subjects. The connection must outlive
// the actor. Fails when a subscription fails.
result<caf::actor> spawn_worker(caf::actor_system& sys, transport::nats_connection& conn,
                                std::unique_ptr<backends::engine> engine, worker_config cfg);

}  // namespace yard::actors
