// actors/kv_block_manager.cpp — see kv_block_manager.hpp.
#include "actors/kv_block_manager.hpp"

#include <algorithm>
#include <chrono>
#include <span>
#include <caf/all.hpp>

#include "common/log.hpp"
#include "kv/block_ledger.hpp"
#include "messages/codec.hpp"

namespace yard::actors {

namespace {

struct manager_state {
  transport::nats_connection* conn = nullptr;
  kv_block_manager_config cfg;
  kv::block_ledger ledger;
  std::uint64_t next_seq = 0;
  std::uint64_t stream = 0;  // this incarnation's stream id: wall clock µs at start (msg::kv_event_batch::stream)
  caf::actor_addr engine;
  caf::actor engine_handle;  // for write-through bytes and tier loads; dropped as the engine ends
  bool engine_ended = false;
  std::shared_ptr<backends::kv_tier_store> tiers;  // G2/G3 (null: none)
  std::unique_ptr<kv::block_pool> g1;              // G1, when the engine handed it over (null: the engine keeps it)
  // Keeps this actor alive until it has seen the engine's end: the engine holds the only
  // other strong handle and drops it as it dies, before its exit reaches us; without this
  // the manager could be destroyed unreachable with that exit still queued (and never
  // publish the cleared). Released with the state when the manager quits.
  caf::actor keep_alive;
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "kv_block_manager";
};

using manager = kv_block_manager_actor::stateful_pointer<manager_state>;

void publish(manager_state& st, std::vector<msg::kv_event> events) {
  if (auto bad = st.ledger.apply(events))
    st.log->error("{}: {} KV events with a tier outside 1..3 from the engine: published as they are", st.cfg.worker_id,
                  bad);
  msg::kv_event_batch b;
  b.worker_id = st.cfg.worker_id;
  b.seq = st.next_seq++;
  b.events = std::move(events);
  b.timestamp_ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  b.stream = st.stream;
  st.conn->publish(st.cfg.events_subject, msg::encode(b));
}

std::vector<msg::kv_event> cleared() { return {msg::kv_event{msg::kv_event_kind::cleared, {}, std::nullopt, 1}}; }

// What the tiers did since the last call: their events on the stream, their load to the engine.
void after_tier_work(manager_state& st) {
  if (!st.tiers) return;
  if (auto ev = st.tiers->drain_events(); !ev.empty()) publish(st, std::move(ev));
  if (!st.engine_handle) return;
  caf::anon_send(st.engine_handle, tier_load_atom::value, st.tiers->load());
}

// A request hit these leading G1 blocks: the ones now hot enough go to G3, with bytes asked of the engine.
void note_hits(manager self, std::span<const kv::block_hash> g1_prefix) {
  auto& st = self->state;
  if (!st.tiers || !st.engine_handle) return;
  auto hot = st.tiers->note_hits(g1_prefix);
  if (hot.empty()) return;
  self->request(st.engine_handle, std::chrono::seconds(10), export_atom::value, std::move(hot))
      .then(
          [=](std::vector<kv_block_copy>& blocks) {
            auto& s = self->state;
            if (!s.tiers) return;
            for (const auto& b : blocks) s.tiers->write_through(b.hash, b.bytes);
            after_tier_work(s);
          },
          [=](caf::error& e) {
            self->state.log->warn("{}: write-through bytes not received: {}", self->state.cfg.worker_id,
                                  caf::to_string(e));
          });
}

msg::kv_event_batch snapshot_of(const manager_state& st) {
  msg::kv_event_batch b;
  b.worker_id = st.cfg.worker_id;
  b.seq = st.next_seq - 1;  // batch 0 went out at start: every snapshot covers at least it
  b.events = st.ledger.snapshot();
  b.stream = st.stream;
  return b;
}

// A block call from the engine on the G1 pool owned here; the events a drain takes go out on the stream.
kv::pool_answer serve_g1(manager_state& st, const kv::pool_call& call) {
  if (!st.g1) {  // the engine ended (its pool with it), or it never handed one over: nothing is granted
    st.log->error("{}: a G1 block call with no G1 pool here: refused", st.cfg.worker_id);
    kv::pool_answer a;
    a.ok = false;
    a.refused = static_cast<std::uint32_t>(call.writes.size());
    return a;
  }
  std::vector<msg::kv_event> drained;
  auto a = kv::serve(*st.g1, call, drained);
  if (a.refused)
    st.log->error("{}: {} G1 block write(s) named a block the engine does not hold: skipped", st.cfg.worker_id,
                  a.refused);
  if (!drained.empty()) publish(st, std::move(drained));
  return a;
}

kv_block_manager_actor::behavior_type manager_behavior(manager self, transport::nats_connection* conn,
                                                       kv_block_manager_config cfg,
                                                       std::shared_ptr<backends::kv_tier_store> tiers,
                                                       std::shared_ptr<std::unique_ptr<kv::block_pool>> g1) {
  auto& st = self->state;
  st.conn = conn;
  st.cfg = std::move(cfg);
  st.tiers = std::move(tiers);
  st.g1 = std::move(*g1);
  st.log = component_logger("kv_block_manager");
  st.keep_alive = caf::actor_cast<caf::actor>(self);
  st.stream = st.cfg.stream != 0 ? st.cfg.stream : kv_stream_id_now();
  publish(st, cleared());  // batch 0: a new stream (a new incarnation holds nothing yet)
  after_tier_work(st);     // batch 1: the G3 blocks recovered at start, if any
  // The engine's end, however it comes (its link's exit, or the monitor's down when the
  // exit does not reach us): publish [cleared] once, then end with it.
  auto engine_gone = [=](const caf::actor_addr& who, const caf::error& reason) {
    auto& s = self->state;
    if (who != s.engine || s.engine_ended) return false;
    s.engine_ended = true;
    s.engine_handle = nullptr;
    s.tiers.reset();  // closes G3 now (pending writes land), before a restarted worker reopens its directory
    s.g1.reset();     // the engine's block tables died with it: every G1 block is free again
    s.log->info("{}: engine actor ended ({}): its {} KV blocks are gone, cleared published", s.cfg.worker_id,
                caf::to_string(reason), s.ledger.size());
    publish(s, cleared());  // empties the ledger too
    return true;
  };
  self->set_exit_handler([=](const caf::exit_msg& m) {
    engine_gone(m.source, m.reason);
    self->quit(m.reason);
  });
  self->set_down_handler([=](const caf::down_msg& m) {
    if (engine_gone(m.source, m.reason)) self->quit(m.reason);
  });
  return {
      [=](open_atom, caf::actor engine) {
        self->state.engine = engine.address();
        self->monitor(engine);  // the engine linked itself to us at its start
        if (!self->state.tiers) return;
        self->state.engine_handle = engine;
        after_tier_work(self->state);  // the engine's first heartbeats carry the recovered G3
      },
      [=](kv_events_atom, std::vector<msg::kv_event>& events) {
        if (!events.empty()) publish(self->state, std::move(events));
      },
      [=](g1_atom, const kv::pool_call& call) -> kv::pool_answer { return serve_g1(self->state, call); },
      [=](kv_events_atom, const kv::pool_call& call) {
        // Writes and a drain only: nothing here can evict, so the engine needs no answer.
        if (auto a = serve_g1(self->state, call); !a.evicted.empty())
          self->state.log->error("{}: a one-way G1 call evicted {} blocks whose bytes are now lost", self->state.cfg.worker_id,
                                 a.evicted.size());
      },
      [=](offload_atom, std::vector<kv_block_copy>& blocks) {
        auto& s = self->state;
        if (!s.tiers) return;
        for (const auto& b : blocks) s.tiers->offload(b.hash, b.bytes);
        after_tier_work(s);
      },
      [=](onboard_atom, backends::onboard_ask& ask) -> backends::onboard_fetch {
        auto& s = self->state;
        if (!s.tiers) return {};
        note_hits(self, std::span<const kv::block_hash>(ask.hashes).first(std::min(ask.g1_blocks, ask.hashes.size())));
        auto f = s.tiers->fetch(ask);
        after_tier_work(s);
        return f;
      },
      [=](hits_atom, std::vector<kv::block_hash>& g1_prefix) { note_hits(self, g1_prefix); },
      [=](snapshot_atom, const transport::nats_message& m) {
        if (m.reply.empty()) return;
        const auto fmt = msg::detect_format(m.content_type, m.data);  // answered in the asker's format
        self->state.conn->publish(m.reply, msg::encode(snapshot_of(self->state), fmt), {},
                                  std::string(msg::content_type_of(fmt)));
      },
      [=](caf::get_atom) { return snapshot_of(self->state); },
  };
}

}  // namespace

kv_block_manager_actor spawn_kv_block_manager(caf::actor_system& sys, transport::nats_connection& conn,
                                              kv_block_manager_config cfg,
                                              std::shared_ptr<backends::kv_tier_store> tiers,
                                              std::unique_ptr<kv::block_pool> g1) {
  // The engine waits for every G1 answer: a manager with G1 never shares the cooperative threads.
  const bool detached = g1 || (tiers && cfg.own_thread);
  auto pool = std::make_shared<std::unique_ptr<kv::block_pool>>(std::move(g1));
  if (detached) return sys.spawn<caf::detached>(manager_behavior, &conn, std::move(cfg), std::move(tiers), pool);
  return sys.spawn(manager_behavior, &conn, std::move(cfg), std::move(tiers), pool);
}

std::uint64_t kv_stream_id_now() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

}  // namespace yard::actors
