// actors/worker_engine.hpp — internal: the engine actor of a worker.
//
// Owns: the engine, the streams it serves (one per dispatch attempt, with an
// explicit request_phase), step pacing, draining the engine's KV events (to the kv_block_manager), the
// kv_transfer_agent (its staging slots and the decode side's KV pulls), and
// the engine's half of serving remote prefills: the prefill_server's runs, their
// outputs handed back and their blocks copied into staging. Its handlers are
// split by job: worker_engine.cpp (admission, cancel, steps, the behaviour),
// worker_streams.cpp (chunks to clients), worker_prefill_run.cpp (runs for the
// prefill_server), worker_kv_pull.cpp (a remote prefill's KV coming in).
// Must not touch: the prefill pool's load and remote deadlines (prefill_client),
// remote prefill requests, their replies, jobs and leases (prefill_server),
// heartbeat timing (heartbeat_publisher), the KV event stream and snapshots
// (kv_block_manager), routing, HTTP.
// Thread-safety: one detached actor; engine steps may compute for
// milliseconds (native engine) and must not stall other actors.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <caf/behavior.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/heartbeat_publisher.hpp"
#include "actors/kv_block_manager.hpp"
#include "actors/kv_transfer_agent.hpp"
#include "actors/prefill_client.hpp"
#include "actors/prefill_server.hpp"
#include "actors/recent_cancels.hpp"
#include "actors/worker_actor.hpp"
#include "common/log.hpp"

namespace yard::actors::worker_detail {

using clock = std::chrono::steady_clock;
using publish_atom = caf::atom_constant<caf::atom("publish")>;  // a held step's model time passed
using pulled_atom = caf::atom_constant<caf::atom("pulled")>;    // (pull id, errc or 0, message): a KV pull ended

// Where one dispatch attempt is in its life on this worker.
enum class request_phase : std::uint8_t {
  running,         // in the engine: its steps stream tokens
  remote_prefill,  // asked the prefill_client; waiting for a prefill worker or a "prefill here"
  pulling_kv,      // a prefill worker computed it; its KV is on the way (kv_transfer_agent)
  onboarding,      // the kv_block_manager reads its prefix from G2/G3; scheduled when the bytes are in
};

struct stream_state {
  std::string request_id;
  std::string reply;
  msg::wire_format format = msg::wire_format::msgpack;
  std::uint64_t next_seq = 0;
  request_phase phase = request_phase::running;
  // remote_prefill / pulling_kv / onboarding: the request to run here once that ends (or fails).
  std::optional<backends::engine_request> parked;
  std::vector<kv::block_hash> hashes;
  // stream=false: the client reads one response, so tokens after the first go out in
  // batches (at most whole_batch apart) instead of one message each. The first
  // token still goes at once (TTFT, and n > 1 opens its other choices on it).
  bool whole = false;
  bool sent_token = false;
  std::optional<msg::token_chunk> held;  // batched tokens not yet sent
  clock::time_point last_sent{};
};

struct pull_wait {  // decode side: KV bytes on their way
  std::string key;
  msg::remote_prefill_reply reply;
  kv_transfer_agent::pull_job job;
  clock::time_point started;  // for the transfer latency histogram
};

struct prefill_run_state {  // prefill side: a prefill_server job in the engine
  std::uint64_t job = 0;               // the prefill_server's job number
  std::string request_id;              // the decode worker's request id and attempt (cancel)
  std::uint32_t attempt = 0;
  std::vector<kv::block_hash> hashes;  // the prompt's full blocks: what staging copies
  bool stage = false;
  bool produced = false;               // a token came out
};

// The engine actor's side of the KV tiers below G1, which the kv_block_manager owns (a worker
// without tiers: `evicted` is null).
struct tier_link {
  std::shared_ptr<std::vector<kv_block_copy>> evicted;  // blocks G1 evicted since the last push to the manager
  bool counts_hits = false;  // the manager uses G1 prefix hits (write-through to G3 is on)
  msg::kv_tier_load load;    // the tier part of the load the manager last reported (for heartbeats)
  bool active() const { return static_cast<bool>(evicted); }
};

struct worker_state {
  transport::nats_connection* conn = nullptr;
  std::unique_ptr<backends::engine> engine;
  worker_config cfg;
  std::map<std::string, stream_state> streams;  // attempt key -> stream
  bool stepping = false;
  std::optional<backends::step_result> held;  // a step's outputs waiting for its model time
  bool draining = false;
  bool engine_unavailable = false;  // the engine's unavailable_reason() at the last heartbeat (logged on change)
  std::uint64_t incarnation = 0;
  std::uint64_t tokenizer_fingerprint = 0;  // announced in heartbeats: routers check they tokenize alike
  recent_cancels early_cancels;  // cancels that matched nothing yet: their request may still be on its way
  clock::time_point last_heartbeat;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<kv_transfer_agent> xfer;  // null: this worker moves no KV (no block bytes or no UCX)
  heartbeat_publisher_actor publisher;
  kv_block_manager_actor kv_manager;        // publishes our KV events and answers snapshots
  prefill_client_actor prefill_client;      // decode workers with KV transfer only
  prefill_server_actor prefill_server;      // prefill and decode workers (a decode worker's refuses)
  std::map<std::uint64_t, pull_wait> pulls;                // pull id -> waiting
  std::map<std::string, prefill_run_state> prefill_runs;   // engine request id -> prefill_server job
  std::uint64_t named_requests = 0;  // ids made up for requests sent straight to us without one
  tier_link tiers;  // the KV tiers the kv_block_manager owns, seen from here
  static inline const char* name = "worker";
};

using worker_actor = caf::stateful_actor<worker_state>;

// worker_engine.cpp
caf::behavior engine_behavior(worker_actor* self, transport::nats_connection* conn,
                              std::shared_ptr<std::unique_ptr<backends::engine>> engine, worker_config cfg,
                              std::shared_ptr<std::unique_ptr<kv_transfer_agent>> xfer, heartbeat_publisher_actor publisher,
                              kv_block_manager_actor kv_manager, prefill_client_actor prefill_client,
                              prefill_server_actor prefill_server, tier_link tiers);
msg::heartbeat make_heartbeat(worker_state& st);
void publish_heartbeat_now(worker_state& st);
void publish_kv_events(worker_state& st);  // hands the engine's pending KV events to the kv_block_manager
void kick(worker_actor* self);
// The request goes on here (from the start, or after a remote prefill): through the tiers first when
// part of its prefix is below G1 (worker_onboard.cpp), else straight into the engine.
void run_locally(worker_actor* self, const std::string& key, backends::engine_request er);
void start_in_engine(worker_actor* self, const std::string& key, backends::engine_request er);

// worker_onboard.cpp
// The question for the tiers when they may hold part of this prompt's prefix below G1
// (none when the prefix is all in G1 or the tiers last reported no block: then only the
// G1 hits are reported, for write-through).
std::optional<backends::onboard_ask> tier_question(worker_state& st, const backends::engine_request& er,
                                                   const std::vector<kv::block_hash>& hashes);
// Asks the kv_block_manager, imports the bytes it replies with (nothing on a timeout or error: the prefix
// is recomputed), then calls `then` on this actor.
void onboard_then(worker_actor* self, backends::onboard_ask ask, std::function<void(worker_actor*)> then);
// Parks the stream (phase onboarding) and onboards; the request starts when the bytes are in.
void onboard_then_run(worker_actor* self, const std::string& key, backends::engine_request er,
                      backends::onboard_ask ask);
// The bytes of these G1 blocks (those still in G1), for the manager's write-through.
std::vector<kv_block_copy> copy_g1_blocks(worker_state& st, const std::vector<kv::block_hash>& hashes);
// The engine's KV tiers, taken for the kv_block_manager (null when it has none), and the engine
// actor's link to them (the buffer its evicted blocks now go to, pushed to the manager after each step).
struct released_tiers {
  std::shared_ptr<backends::kv_tier_store> store;
  tier_link link;
};
released_tiers release_engine_tiers(backends::engine& engine);

// worker_streams.cpp
void reply_error(worker_state& st, const std::string& reply, msg::wire_format f, const std::string& request_id,
                 std::uint64_t seq, const error& err);
void send_chunk(worker_state& st, stream_state& s, msg::token_chunk& c);  // stamps seq and worker, publishes
void publish_outputs(worker_state& st, backends::step_result& r);

// worker_prefill_run.cpp
void on_prefill_run(worker_actor* self, std::uint64_t job, prefill_run& run);  // onboards first when the tiers hold part of it
void start_prefill_run(worker_actor* self, std::uint64_t job, prefill_run& run);
// A run's output, to the prefill_server (staged first when it is the last and the run stages).
void hand_prefill_output(worker_state& st, prefill_run_state& run, backends::sequence_output& out);
void free_lease(worker_state& st, std::uint64_t lease_id);  // the prefill_server ended a lease

// worker_kv_pull.cpp
void on_prefilled(worker_actor* self, const std::string& key, msg::remote_prefill_reply& r);
void on_pulled(worker_actor* self, std::uint64_t id, std::int32_t code, const std::string& message);

}  // namespace yard::actors::worker_detail
