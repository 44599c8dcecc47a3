// actors/prefill_server.hpp — a worker's side of disaggregated prefill that serves other workers.
//
// Owns: remote_prefill_request messages on yard.<ns>.worker.prefill.<id>
// (decoded, checked, refused with an error reply), the table of prefill jobs
// with an explicit phase (running in the engine, then leased until its
// kv_release or its lease's end), the replies to decode workers (first token,
// lease, staged block descriptors), kv_release on yard.<ns>.worker.kv_release.<id>,
// the lease timers, the serving hooks of the prefill_faults seam
// (drop-release, exit-after-reply; corrupt-block lives in the KV transfer
// agent, which the seam is handed to at start) and the remote-prefills-served
// metric.
// The engine stays with the engine actor: the server hands it a prefill_run
// (prefill_atom, job, run) and gets each of the run's outputs back as
// (prefilled_atom, job, prefill_output); it frees a lease's slots with
// (release_atom, lease id). The block bytes are copied from the engine into
// the kv_transfer_agent's staging slots by the engine actor, on its thread, in
// the same handler that sees the run's last output: the copy reads the
// engine's pool (export_kv) and the next step may evict those blocks, and the
// agent's slot pool is shared with the engine actor's own KV pulls, so the
// agent is touched by the engine actor only. The server gets the staged
// descriptors (or why staging failed) with that last output.
// Must not touch: the engine, the kv_transfer_agent, streams, the decode side
// (prefill_client, KV pulls).
// Thread-safety: an event-based actor, linked to the engine actor (it dies and
// restarts with it).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "actors/kv_transfer_agent.hpp"
#include "actors/worker_faults.hpp"
#include "actors/worker_metrics.hpp"
#include "backends/engine.hpp"
#include "messages/codec.hpp"
#include "messages/disagg.hpp"
#include "transport/actor_bridge.hpp"  // nats_message as a CAF message type
#include "transport/nats_connection.hpp"

namespace yard::actors {

// server -> engine actor: run a remote prefill's prompt for one token.
struct prefill_run {
  backends::engine_request request;   // request_id "pf:<request id>#<attempt>", max_tokens 1
  std::vector<kv::block_hash> hashes; // the prompt's full blocks, hashed once: the scheduler's and the staging's
  std::string request_id;             // the decode worker's request id and attempt (a cancel names them)
  std::uint32_t attempt = 0;
  bool stage = false;    // copy the blocks into staging when the run ends with its token (the decode worker goes on)
};

// engine actor -> server: one of a run's outputs; the last one carries its finish_reason.
struct prefill_output {
  std::optional<error> refused;   // the engine did not take the run: the whole answer (no output follows)
  backends::sequence_output out;
  // The last output only, when the run asked for staging, the engine has a kv_transfer_agent and
  // the run ended with its token (prefill_run_stages): the staged lease, or why there is none.
  std::optional<staged_blocks> staged;
  std::optional<error> stage_error;
};

using prefill_server_actor = caf::typed_actor<
    caf::reacts_to<open_atom, caf::actor>,                         // the engine actor (sent once, first)
    caf::reacts_to<prefill_atom, transport::nats_message>,         // a remote_prefill_request: reply to its inbox
    caf::reacts_to<release_atom, transport::nats_message>,         // a kv_release
    caf::reacts_to<prefilled_atom, std::uint64_t, prefill_output>, // the engine: job's output
    caf::reacts_to<lease_end_atom, std::uint64_t>,                 // a lease's time ran out (own timer)
    caf::reacts_to<drain_atom>>;                                   // the engine actor drains: refuse new jobs

struct prefill_server_config {
  std::string ns = "default";
  std::string worker_id;
  msg::worker_role role = msg::worker_role::both;  // decode workers refuse every request
  std::uint32_t block_size = 16;  // the engine's KV block size in tokens
  int lease_ms = 10000;           // staged blocks are freed this long after the reply unless released (default 10 s)
  msg::decode_limits limits;
  std::shared_ptr<const prefill_faults> faults;  // null in production
  std::shared_ptr<worker_metrics> metrics;       // remote prefills served (null: the server makes its own)
};

prefill_server_actor spawn_prefill_server(caf::actor_system& sys, transport::nats_connection& conn,
                                          prefill_server_config cfg);

// Whether a run (its prefill_run::stage) that ended with `why`, having produced tokens or not,
// stages its blocks: the engine actor copies them then and only then (exactly when the
// server's reply goes without a finish_reason and needs them).
bool prefill_run_stages(bool stage, msg::finish_kind why, bool produced);

}  // namespace yard::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::actors::prefill_run)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::actors::prefill_output)
