// kv/tests/session_affinity_test.cpp — a session stays on its worker until that worker is overloaded.
#include "kv/session_affinity.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "kv/kv_router_core.hpp"

namespace yard::kv {
namespace {

worker_candidate cand(worker_index w, std::uint32_t queue, std::uint32_t active_blocks = 0, std::uint32_t total = 0) {
  worker_candidate c;
  c.worker = w;
  c.load.queue_depth = queue;
  c.load.active_decode_blocks = active_blocks;
  c.load.total_kv_blocks = total;
  return c;
}

TEST(session_affinity, keeps_a_session_on_its_worker_until_overloaded) {
  session_affinity_options o;
  o.max_queue_gap = 4;
  session_affinity a(o);
  std::vector<worker_candidate> cands = {cand(0, 0), cand(1, 2), cand(2, 0)};
  EXPECT_FALSE(a.pick("s1", cands, 0).has_value());  // new session
  a.record("s1", 1, 0);
  EXPECT_EQ(a.pick("s1", cands, 10), std::optional<worker_index>(1));
  cands[1].load.queue_depth = 5;  // 5 > 0 + 4: overloaded
  EXPECT_FALSE(a.pick("s1", cands, 20).has_value());
  cands[1].load.queue_depth = 1;
  cands[1].load.active_decode_blocks = 95;
  cands[1].load.total_kv_blocks = 100;  // KV 95% used
  EXPECT_FALSE(a.pick("s1", cands, 30).has_value());
  cands.erase(cands.begin() + 1);  // the worker left routing
  EXPECT_FALSE(a.pick("s1", cands, 40).has_value());
  auto st = a.stats();
  EXPECT_EQ(st.sticky_hits, 1u);
  EXPECT_EQ(st.sticky_breaks, 3u);
  EXPECT_EQ(st.new_sessions, 1u);
  EXPECT_EQ(st.sessions, 1u);
  EXPECT_FALSE(a.pick("", cands, 50).has_value());  // no session: nothing counted
  EXPECT_EQ(a.stats().new_sessions, 1u);
}

TEST(session_affinity, expires_idle_sessions_and_bounds_the_table) {
  session_affinity_options o;
  o.ttl_ms = 100;
  o.max_sessions = 3;
  session_affinity a(o);
  std::vector<worker_candidate> cands = {cand(0, 0), cand(1, 0)};
  a.record("old", 0, 0);
  EXPECT_FALSE(a.pick("old", cands, 500).has_value());  // idle 500 ms > 100
  EXPECT_EQ(a.stats().new_sessions, 1u);
  for (int i = 0; i < 10; ++i) a.record("s" + std::to_string(i), i % 2, 600);
  EXPECT_EQ(a.stats().sessions, 3u);
  EXPECT_EQ(a.pick("s9", cands, 601), std::optional<worker_index>(1));  // the most recent survive
  EXPECT_FALSE(a.pick("s0", cands, 601).has_value());
  a.forget_worker(1);
  EXPECT_FALSE(a.pick("s9", cands, 602).has_value());
}

// Through the router core: a session sticks even where the policy would pick
// another worker, and the stickiness shows in route_output and the stats.
TEST(session_affinity, router_core_prefers_the_session_worker) {
  kv_router_options ro;
  ro.policy = "round_robin";
  auto core = kv_router_core::create(ro);
  ASSERT_TRUE(core.ok());
  auto& c = **core;
  c.add_worker("w0");
  c.add_worker("w1");
  c.add_worker("w2");
  std::vector<std::string> got;
  for (int i = 0; i < 6; ++i) {
    route_input in;
    in.request_id = "r" + std::to_string(i);
    in.prompt_tokens = 16;
    in.now_ms = i;
    in.session_id = "conversation-7";
    auto out = c.route(in);
    ASSERT_TRUE(out.ok());
    got.push_back(out->worker_id);
    EXPECT_EQ(out->sticky, i > 0);
    c.on_complete(in.request_id);
  }
  for (const auto& w : got) EXPECT_EQ(w, got.front());  // round robin alone would rotate
  EXPECT_EQ(c.session_stats().sticky_hits, 5u);
  // Without a session the policy rotates again.
  route_input a, b;
  a.request_id = "x";
  b.request_id = "y";
  auto oa = c.route(a), ob = c.route(b);
  ASSERT_TRUE(oa.ok() && ob.ok());
  EXPECT_NE(oa->worker_id, ob->worker_id);
}

}  // namespace
}  // namespace yard::kv
