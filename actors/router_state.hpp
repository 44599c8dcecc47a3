// actors/router_state.hpp — internal: the router actor's state, shared by its two files.
//
// Owns: router_state (registry, liveness, per-pool router cores, held
// requests, tokenizer checks) and the declarations that router_actor.cpp
// (dispatch, held requests, the behaviour) and router_kv_view.cpp (the KV view:
// heartbeats, KV events, snapshots, tokenizer checks, route notices) share.
// Must not touch: anything outside the router actor.
// Thread-safety: one actor's state.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <caf/atom.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/router_actor.hpp"
#include "actors/worker_liveness.hpp"
#include "actors/worker_registry.hpp"
#include "common/log.hpp"
#include "kv/kv_router_core.hpp"

namespace yard::actors::router_detail {

using clock = std::chrono::steady_clock;
using route_notice_atom = caf::atom_constant<caf::atom("notice")>;

struct held_request {
  transport::nats_message m;
  std::string model;  // the request's model ("" = any), to see when a worker can take it
  clock::time_point deadline;
};

struct router_state {
  transport::nats_connection* conn = nullptr;
  router_config cfg;
  worker_registry workers;
  std::unique_ptr<worker_liveness> liveness;
  std::deque<held_request> held;  // requests no worker could take yet (start-up, unverified workers)
  std::map<std::string, std::unique_ptr<kv::kv_router_core>> cores;  // per model
  std::map<std::string, std::string> model_of;                       // worker id -> model
  std::string snapshot_inbox;
  std::uint64_t routed = 0;
  std::uint64_t named = 0;  // request ids this router made up
  std::uint64_t id_nonce = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) % 1000000007u;
  clock::time_point started = clock::now();
  clock::time_point last_loss{};                  // when a worker last went away (lease missed, restart)
  std::map<std::string, int> snapshot_retries;    // worker id -> snapshot asks that found no responder
  std::uint64_t fingerprint = 0;                  // our tokenizer's (backends/tokenizer_fingerprint)
  std::map<std::string, std::uint64_t> mismatched;  // worker id -> incarnation that tokenizes differently
  std::uint64_t tokenizer_mismatches = 0;
  std::set<std::string> block_size_mismatch;  // workers left out of their pool for their block size (logged once)
  std::uint64_t foreign_kv_batches = 0;  // KV batches/snapshots of another stream than the worker announces
  static constexpr std::size_t max_pools = 64;  // routing pools (a core each) this router creates at most
  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<router_metrics> metrics;  // from cfg (never null once the behaviour runs)
  static inline const char* name = "router";
};

using router_actor = caf::stateful_actor<router_state>;

// Router cores are per pool: a model's decode/aggregated workers, and its prefill workers.
inline std::string pool_key(const std::string& model, bool prefill) { return prefill ? model + "@prefill" : model; }

// router_kv_view.cpp
kv::kv_router_core* core_for(router_state& st, const std::string& model, std::uint32_t block_size);
void drop_worker(router_state& st, const std::string& id);
void request_snapshot(router_state& st, const std::string& worker_id);
void pump(router_state& st);
void on_heartbeat(router_actor* self, transport::nats_message& m);
void join_pool(router_state& st, const std::string& worker_id);
void on_kv_events(router_actor* self, transport::nats_message& m);
void on_snapshot_reply(router_actor* self, transport::nats_message& m);
void on_route_notice(router_actor* self, transport::nats_message& m);
void on_latency_report(router_actor* self, transport::nats_message& m);
// What the router holds now: answered to (get_atom), and the source of the metrics' gauges.
router_stats stats_of(const router_state& st);
void refresh_gauges(router_state& st);

}  // namespace yard::actors::router_detail
