// actors/tests/worker_registry_test.cpp — the registry refuses forged heartbeats.
#include <gtest/gtest.h>

#include "actors/worker_registry.hpp"
#include "messages/subjects.hpp"

namespace yard::actors {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

msg::heartbeat beat(const std::string& id, std::uint64_t incarnation = 1) {
  msg::heartbeat hb;
  hb.instance_id = id;
  hb.component = msg::component_kind::worker;
  hb.role = msg::worker_role::both;
  hb.model = "mock";
  hb.generate_subject = subjects::worker_generate("default", id);
  hb.lease_ms = 3000;
  hb.incarnation = incarnation;
  return hb;
}

TEST(worker_registry, a_heartbeat_speaks_only_for_its_own_subject) {
  worker_registry reg;
  auto t = clock::now();
  EXPECT_EQ(reg.observe(beat("w0"), "evil", t).what, worker_registry::change::refused);
  EXPECT_EQ(reg.size(), 0u);
  EXPECT_EQ(reg.observe(beat("w0"), "w0", t).what, worker_registry::change::joined);
}

TEST(worker_registry, only_a_worker_heartbeat_registers_a_worker) {
  worker_registry reg;
  auto hb = beat("w0");
  hb.component = msg::component_kind::router;  // was a way around the generate-subject check
  hb.generate_subject = "_INBOX.forger.x";
  auto obs = reg.observe(hb, "w0", clock::now());
  EXPECT_EQ(obs.what, worker_registry::change::refused);
  EXPECT_NE(obs.why.find("heartbeat of a router"), std::string::npos) << obs.why;
  EXPECT_EQ(reg.size(), 0u);
}

TEST(worker_registry, generate_subject_must_be_the_workers_own) {
  worker_registry reg;
  auto hb = beat("w0");
  hb.generate_subject = "_INBOX.forger.x";
  auto obs = reg.observe(hb, "w0", clock::now());
  EXPECT_EQ(obs.what, worker_registry::change::refused);
  EXPECT_NE(obs.why.find("generate subject"), std::string::npos);
  hb.generate_subject = subjects::worker_generate("default", "w1");  // another worker's subject
  EXPECT_EQ(reg.observe(hb, "w0", clock::now()).what, worker_registry::change::refused);
}

TEST(worker_registry, leases_are_clamped) {
  registry_limits lim;
  worker_registry reg(lim);
  auto t = clock::now();
  auto hb = beat("w0");
  hb.lease_ms = 1;
  reg.observe(hb, "w0", t);
  EXPECT_EQ(reg.all().at("w0").last.lease_ms, lim.min_lease_ms);
  EXPECT_TRUE(reg.expire(t + 500ms).empty());  // a 1 ms lease no longer drops a live worker
  hb.lease_ms = 0xffffffffu;
  reg.observe(hb, "w0", t);
  EXPECT_EQ(reg.all().at("w0").last.lease_ms, lim.max_lease_ms);
  EXPECT_EQ(reg.expire(t + std::chrono::milliseconds(lim.max_lease_ms) + 1ms).size(), 1u);  // a dead worker goes
}

TEST(worker_registry, a_new_incarnation_cannot_displace_a_live_one) {
  worker_registry reg;
  auto t = clock::now();
  reg.observe(beat("w0", 1), "w0", t);
  auto clone = beat("w0", 2);
  clone.draining = true;
  EXPECT_EQ(reg.observe(clone, "w0", t + 100ms).what, worker_registry::change::refused);
  EXPECT_FALSE(reg.all().at("w0").last.draining);  // draining from another incarnation is not honoured
  EXPECT_EQ(reg.all().at("w0").last.incarnation, 1u);
  // The real worker keeps beating; the clone stays refused.
  reg.observe(beat("w0", 1), "w0", t + 1000ms);
  EXPECT_EQ(reg.observe(clone, "w0", t + 1200ms).what, worker_registry::change::refused);
  // A real restart: the old incarnation has gone silent for the grace period.
  EXPECT_EQ(reg.observe(beat("w0", 3), "w0", t + 1000ms + 1600ms).what, worker_registry::change::restarted);
}

TEST(worker_registry, draining_from_the_registered_incarnation_is_honoured) {
  worker_registry reg;
  auto t = clock::now();
  reg.observe(beat("w0"), "w0", t);
  reg.mark_answered("w0", 1);
  EXPECT_EQ(reg.eligible("").size(), 1u);
  auto hb = beat("w0");
  hb.draining = true;
  reg.observe(hb, "w0", t + 100ms);
  EXPECT_TRUE(reg.eligible("").empty());
}

TEST(worker_registry, only_answered_workers_are_eligible_when_required) {
  registry_limits lim;
  lim.require_answer = true;
  worker_registry reg(lim);
  auto t = clock::now();
  reg.observe(beat("ghost"), "ghost", t);
  EXPECT_TRUE(reg.eligible("").empty());
  EXPECT_EQ(reg.due_for_probe(t, 1000ms), std::vector<std::string>{"ghost"});
  EXPECT_TRUE(reg.due_for_probe(t + 10ms, 1000ms).empty());  // not again before `every`
  reg.mark_answered("ghost", 99);  // an answer from another incarnation does not count
  EXPECT_TRUE(reg.eligible("").empty());
  reg.mark_answered("ghost", 1);
  EXPECT_EQ(reg.eligible("").size(), 1u);
}

TEST(worker_registry, the_table_is_bounded) {
  registry_limits lim;
  lim.max_workers = 3;
  worker_registry reg(lim);
  auto t = clock::now();
  for (int i = 0; i < 10; ++i) reg.observe(beat("w" + std::to_string(i)), "w" + std::to_string(i), t);
  EXPECT_EQ(reg.size(), 3u);
}

TEST(worker_registry, a_block_size_out_of_range_is_refused) {
  worker_registry reg;
  auto t = clock::now();
  for (std::uint32_t bs : {0u, worker_registry::max_block_size + 1}) {
    auto hb = beat("w0");
    hb.block_size = bs;
    auto obs = reg.observe(hb, "w0", t);
    EXPECT_EQ(obs.what, worker_registry::change::refused) << bs;
    EXPECT_NE(obs.why.find("block size"), std::string::npos) << obs.why;
  }
  EXPECT_EQ(reg.size(), 0u);
}

// What a process serves is fixed for its life: an incarnation that "changes" model, role, block size or KV
// stream is refused (each change would otherwise move it between routing pools); a new incarnation may.
TEST(worker_registry, an_incarnation_cannot_change_what_it_serves) {
  worker_registry reg;
  auto t = clock::now();
  auto hb = beat("w0", 7);
  hb.kv_stream = 100;
  ASSERT_EQ(reg.observe(hb, "w0", t).what, worker_registry::change::joined);
  auto model = hb;
  model.model = "other";
  auto role = hb;
  role.role = msg::worker_role::prefill;
  auto bs = hb;
  bs.block_size = 32;
  auto stream = hb;
  stream.kv_stream = 101;
  for (const auto* forged : {&model, &role, &bs, &stream}) {
    auto obs = reg.observe(*forged, "w0", t + 10ms);
    EXPECT_EQ(obs.what, worker_registry::change::refused);
    EXPECT_NE(obs.why.find("within incarnation 7"), std::string::npos) << obs.why;
  }
  EXPECT_EQ(reg.all().at("w0").last.model, "mock");
  EXPECT_EQ(reg.observe(hb, "w0", t + 20ms).what, worker_registry::change::none);  // the same claim again is fine
  auto next = model;  // a restart (after the grace) may serve another model
  next.incarnation = 8;
  EXPECT_EQ(reg.observe(next, "w0", t + 10s).what, worker_registry::change::restarted);
  EXPECT_EQ(reg.all().at("w0").last.model, "other");
}

TEST(worker_registry, only_answered_workers_models_are_advertised) {
  registry_limits lim;
  lim.require_answer = true;
  worker_registry reg(lim);
  auto t = clock::now();
  auto claim = beat("ghost");
  claim.model = "evil";
  reg.observe(claim, "ghost", t);
  reg.observe(beat("w0", 3), "w0", t);
  EXPECT_TRUE(reg.models().empty());
  EXPECT_TRUE(reg.knows_model("evil"));  // a request for it waits for the answer instead of a 404
  reg.mark_answered("w0", 3);
  EXPECT_EQ(reg.models(), std::vector<std::string>{"mock"});
}

}  // namespace
}  // namespace yard::actors
