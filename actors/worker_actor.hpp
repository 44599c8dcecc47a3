// actors/worker_actor.hpp — a worker: one engine behind a NATS subject.
//
// A worker is up to five linked actors (see actors/README.md): the engine
// actor (worker_engine.hpp: the engine, the streams it serves, KV events, the
// kv_transfer_agent with its staging copies and KV pulls), the heartbeat
// publisher (heartbeat_publisher.hpp: heartbeats, status probes, roster), the
// KV block manager (kv_block_manager.hpp: the KV event stream and snapshots),
// for prefill and decode workers the prefill server (prefill_server.hpp:
// remote prefill requests, jobs, replies, leases, kv_release) and, for
// decode workers, the prefill client (prefill_client.hpp: the prefill pool's
// load, remote prefill requests and their deadlines). spawn_worker wires them
// and returns the engine actor, which a supervisor watches; any of them dying
// takes the others down with it.
// Receives generate_request on yard.<ns>.worker.generate.<id>, cancel_request
// on the broadcast cancel subject; streams token_chunk to each request's reply
// inbox in the request's own format (JSON in, JSON out). Role "prefill" also
// serves remote_prefill_request on yard.<ns>.worker.prefill.<id> and
// kv_release; role "decode" sends long uncached prompts to the prefill pool
// (via yard.<ns>.router.prefill) and falls back to local prefill on any failure.
// Must not touch: routing decisions, HTTP.
// Thread-safety: actors; the engine actor is detached because engine steps
// may compute for milliseconds (native engine) and must not stall others.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <caf/fwd.hpp>

#include "actors/worker_metrics.hpp"
#include "actors/kv_transfer_agent.hpp"
#include "actors/worker_faults.hpp"
#include "backends/chat/tool_calls/tool_call_format.hpp"
#include "backends/engine.hpp"
#include "messages/codec.hpp"
#include "transport/nats_connection.hpp"

namespace yard::actors {

struct worker_config {
  std::string ns = "default";      // subject namespace (default "default")
  std::string id;                  // unique instance id (required)
  std::string model = "mock";      // model name served (default "mock")
  msg::worker_role role = msg::worker_role::both;  // (default both)
  // Tool calls in model output (--tool-call-format): default the engine's model family's format.
  std::optional<backends::chat::tool_call_format> tool_call_format;
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
  // Test seam (prefill side; actors/worker_faults.hpp). Null in production (default).
  std::shared_ptr<const prefill_faults> faults;
  // Exported on --metrics-port; kept across restarts (null = the worker makes its own).
  std::shared_ptr<worker_metrics> metrics;
  // Set by spawn_worker, not by callers: this incarnation's KV event stream id (the kv_block_manager's), which
  // the engine actor announces in its heartbeats.
  std::uint64_t kv_stream = 0;
};

// Spawns the worker and subscribes its subjects. The connection must outlive
// the actor. Fails when a subscription fails.
result<caf::actor> spawn_worker(caf::actor_system& sys, transport::nats_connection& conn,
                                std::unique_ptr<backends::engine> engine, worker_config cfg);

}  // namespace yard::actors
