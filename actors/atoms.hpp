// actors/atoms.hpp — CAF atoms shared by the actors (CAF 0.17 atom_constant).
//
// Owns: message tags only. Must not touch: behaviour.
#pragma once

#include <caf/atom.hpp>

namespace yard::actors {

using generate_atom = caf::atom_constant<caf::atom("generate")>;   // (generate_atom, nats_message)
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;       // (cancel_atom, nats_message | string)
using heartbeat_atom = caf::atom_constant<caf::atom("heartbt")>;   // (heartbeat_atom, nats_message) or timer
using kv_events_atom = caf::atom_constant<caf::atom("kvevents")>;  // (kv_events_atom, nats_message)
using chunk_atom = caf::atom_constant<caf::atom("chunk")>;         // (chunk_atom, nats_message)
using step_atom = caf::atom_constant<caf::atom("step")>;           // worker: run one engine step
using tick_atom = caf::atom_constant<caf::atom("tick")>;           // periodic housekeeping
using open_atom = caf::atom_constant<caf::atom("open")>;           // frontend: open a stream
using drain_atom = caf::atom_constant<caf::atom("drain")>;         // stop taking new work
using snapshot_atom = caf::atom_constant<caf::atom("snapshot")>;   // KV snapshot request
using prefill_atom = caf::atom_constant<caf::atom("prefill")>;     // remote prefill request (router, prefill worker)
using prefilled_atom = caf::atom_constant<caf::atom("prefilled")>; // remote prefill reply (decode worker)
using status_atom = caf::atom_constant<caf::atom("wstatus")>;   // worker status probe (worker) / its answer (router, frontend)
using roster_atom = caf::atom_constant<caf::atom("roster")>;     // roster request: heartbeat now (worker)
using release_atom = caf::atom_constant<caf::atom("kvrelease")>;   // kv_release (prefill worker; prefill_server -> engine: free a lease)
using lease_end_atom = caf::atom_constant<caf::atom("leaseend")>;  // prefill_server: a staged lease's time ran out
using supervise_atom = caf::atom_constant<caf::atom("supervise")>; // supervisor: adopt a child
using local_atom = caf::atom_constant<caf::atom("local")>;         // worker: prefill this request here (prefill_client -> engine)
using forget_atom = caf::atom_constant<caf::atom("forget")>;       // worker: a prefill peer left, drop its UCX endpoint
using remote_timeout_atom = caf::atom_constant<caf::atom("rtimeout")>; // prefill_client: a remote prefill's deadline
using tree_atom = caf::atom_constant<caf::atom("tree")>;           // supervisor: a tree request from NATS
using offload_atom = caf::atom_constant<caf::atom("offload")>;   // engine -> kv_block_manager: blocks G1 evicted
using onboard_atom = caf::atom_constant<caf::atom("onboard")>;   // engine -> kv_block_manager: a request's prefix from the tiers
using hits_atom = caf::atom_constant<caf::atom("kvhits")>;       // engine -> kv_block_manager: G1 prefix hits (write-through)
using g1_atom = caf::atom_constant<caf::atom("g1call")>;      // engine -> kv_block_manager: a call on the G1 pool it owns
using export_atom = caf::atom_constant<caf::atom("kvexport")>;   // kv_block_manager -> engine: bytes of G1 blocks
using tier_load_atom = caf::atom_constant<caf::atom("tierload")>; // kv_block_manager -> engine: the tier fields of its load
using latency_atom = caf::atom_constant<caf::atom("latency")>;     // router: a frontend latency report (observed TTFT)

}  // namespace yard::actors
