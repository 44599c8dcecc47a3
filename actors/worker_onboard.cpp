// actors/worker_onboard.cpp — the engine actor's half of the KV tiers (see worker_engine.hpp).
//
// The kv_block_manager owns G2/G3; this side asks it about a request's prefix
// before the request is scheduled, imports the bytes it replies with, and
// answers its requests for the bytes of hot G1 blocks (write-through).
#include <functional>

#include <caf/all.hpp>

#include "actors/worker_engine.hpp"

namespace yard::actors::worker_detail {

namespace {

// How long admission waits for the tiers before it recomputes the prefix instead.
constexpr auto onboard_timeout = std::chrono::seconds(10);

// The tiers answered (or failed): import what they read, then go on.
void on_onboarded(worker_actor* self, const backends::onboard_ask& ask, const backends::onboard_fetch& f,
                  const std::function<void(worker_actor*)>& then) {
  auto& st = self->state;
  if (f.blocks() > 0) {
    auto r = st.engine->onboard_kv(ask, f);
    if (!r) st.log->warn("{}: onboarding {} blocks: {} (recomputed)", st.cfg.id, f.blocks(), r.err().describe());
    publish_kv_events(st);  // the imported blocks are in G1 now: the router may route to them
  }
  then(self);
}

}  // namespace

std::optional<backends::onboard_ask> tier_question(worker_state& st, const backends::engine_request& er,
                                                   const std::vector<kv::block_hash>& hashes) {
  if (!st.tiers.active() || hashes.empty()) return std::nullopt;
  // Empty tiers (as last reported: a cold worker) have nothing to bring back: no round trip; and without
  // write-through nothing wants the G1 hits either, so the prefix is not even looked up.
  const bool tiers_hold = st.tiers.load.g2_kv_blocks + st.tiers.load.g3_kv_blocks > 0;
  if (!tiers_hold && !st.tiers.counts_hits) return std::nullopt;
  auto ask = st.engine->onboard_question(hashes, er.prompt.size() + er.resume_tokens.size());
  if (ask.g1_blocks < ask.hashes.size() && tiers_hold) return ask;
  if (ask.g1_blocks > 0 && st.tiers.counts_hits) caf::anon_send(st.kv_manager, hits_atom::value, std::move(ask.hashes));
  return std::nullopt;
}

void onboard_then(worker_actor* self, backends::onboard_ask ask, std::function<void(worker_actor*)> then) {
  auto q = std::make_shared<const backends::onboard_ask>(std::move(ask));
  auto next = std::make_shared<std::function<void(worker_actor*)>>(std::move(then));
  self->request(self->state.kv_manager, onboard_timeout, onboard_atom::value, *q)
      .then([=](backends::onboard_fetch& f) { on_onboarded(self, *q, f, *next); },
            [=](caf::error& e) {
              self->state.log->warn("{}: the KV tiers did not answer ({}): the prefix is recomputed",
                                    self->state.cfg.id, caf::to_string(e));
              on_onboarded(self, *q, backends::onboard_fetch{}, *next);
            });
}

void onboard_then_run(worker_actor* self, const std::string& key, backends::engine_request er,
                      backends::onboard_ask ask) {
  auto it = self->state.streams.find(key);
  if (it == self->state.streams.end()) return;
  it->second.phase = request_phase::onboarding;
  it->second.parked = std::move(er);
  onboard_then(self, std::move(ask), [key](worker_actor* me) {
    auto s = me->state.streams.find(key);
    if (s == me->state.streams.end() || s->second.phase != request_phase::onboarding) return;  // cancelled meanwhile
    start_in_engine(me, key, std::move(*s->second.parked));
  });
}

std::vector<kv_block_copy> copy_g1_blocks(worker_state& st, const std::vector<kv::block_hash>& hashes) {
  std::vector<kv_block_copy> out;
  const std::size_t bb = st.engine->kv_block_bytes();
  if (bb == 0) return out;
  for (auto h : hashes) {
    kv_block_copy c;
    c.hash = h;
    c.bytes.resize(bb);
    if (st.engine->export_kv(std::span<const kv::block_hash>(&h, 1), c.bytes) == 1) out.push_back(std::move(c));
  }
  return out;
}

released_tiers release_engine_tiers(backends::engine& engine) {
  released_tiers t;
  auto buf = std::make_shared<std::vector<kv_block_copy>>();
  t.store = engine.release_tiers([buf](kv::block_hash h, std::span<const std::byte> b) {
    buf->push_back(kv_block_copy{h, std::vector<std::byte>(b.begin(), b.end())});
  });
  if (t.store) {
    t.link.evicted = std::move(buf);
    t.link.counts_hits = t.store->counts_hits();
  }
  return t;
}

}  // namespace yard::actors::worker_detail
