// kv/tests/load_tracker_test.cpp — the router's per-request table stays bounded.
#include <gtest/gtest.h>

#include "kv/kv_router_core.hpp"
#include "kv/load_tracker.hpp"

namespace yard::kv {
namespace {

msg::load_report report(const std::string& id) {
  msg::load_report r;
  r.worker_id = id;
  r.total_kv_blocks = 1000;
  return r;
}

TEST(load_tracker, a_report_forgets_what_it_covers) {
  load_tracker t;
  t.on_dispatch(0, "a", 100, 4);
  t.on_dispatch(0, "b", 100, 4);
  EXPECT_EQ(t.in_flight(), 2u);
  EXPECT_EQ(t.load(0).queue_depth, 2u);
  msg::load_report r;
  r.active_requests = 2;
  t.on_load_report(0, r);
  EXPECT_EQ(t.in_flight(), 0u);
  EXPECT_EQ(t.load(0).queue_depth, 2u);  // the report counts them now
  t.on_complete("a");                    // a completion after the report changes nothing
  EXPECT_EQ(t.load(0).queue_depth, 2u);
}

TEST(load_tracker, completion_before_a_report_is_subtracted_and_forgotten) {
  load_tracker t;
  t.on_dispatch(0, "a", 100, 4);
  t.on_first_token("a");
  EXPECT_EQ(t.load(0).pending_prefill_tokens, 0u);
  t.on_complete("a");
  EXPECT_EQ(t.in_flight(), 0u);
  EXPECT_EQ(t.load(0).queue_depth, 0u);
}

TEST(load_tracker, the_table_has_a_hard_bound) {
  load_tracker t(4, 10);
  for (int i = 0; i < 50; ++i) t.on_dispatch(0, "r" + std::to_string(i), 1, 1);
  EXPECT_EQ(t.in_flight(), 10u);
  EXPECT_EQ(t.untracked(), 40u);
  EXPECT_EQ(t.load(0).queue_depth, 50u);  // still counted in the estimate
}

// 100k routed requests whose completions the router never hears of (workers
// stream straight to clients): the workers' load reports empty the table.
TEST(kv_router_core, tables_are_empty_after_100k_requests_and_a_report_each) {
  kv_router_options o;
  o.policy = "ttft";
  auto core = std::move(*kv_router_core::create(o));
  const int workers = 8;
  for (int w = 0; w < workers; ++w) core->add_worker("w" + std::to_string(w));
  for (int i = 0; i < 100000; ++i) {
    route_input in;
    in.request_id = "req-" + std::to_string(i);
    in.prompt_tokens = 64;
    in.max_tokens = 16;
    in.hashes = {static_cast<block_hash>(i % 977), static_cast<block_hash>(i)};
    in.now_ms = i * 0.01;
    ASSERT_TRUE(core->route(in).ok());
    if (i % 5000 == 4999)  // heartbeats arrive while traffic flows
      for (int w = 0; w < workers; ++w) core->on_load_report(report("w" + std::to_string(w)));
    ASSERT_LE(core->tracked_requests(), 5000u);  // bounded by what one report period dispatches
  }
  for (int w = 0; w < workers; ++w) core->on_load_report(report("w" + std::to_string(w)));
  EXPECT_EQ(core->tracked_requests(), 0u);
}

// Forged route notices (another "router" claiming dispatches) are bounded the same way.
TEST(kv_router_core, remote_dispatch_notices_do_not_accumulate) {
  auto core = std::move(*kv_router_core::create({}));
  core->add_worker("w0");
  for (int i = 0; i < 50000; ++i) core->on_remote_dispatch("w0", "forged-" + std::to_string(i), 10, 20);
  core->on_remote_dispatch("nobody", "x", 10, 20);  // unknown worker: ignored
  EXPECT_EQ(core->tracked_requests(), 50000u);
  core->on_load_report(report("w0"));
  EXPECT_EQ(core->tracked_requests(), 0u);
}

}  // namespace
}  // namespace yard::kv
