// actors/tests/prefill_server_test.cpp — the prefill_server's state machine, driven step by step by CAF's
// test coordinator on a real nats-server, with a stand-in engine actor that records the runs and lease frees
// it is sent: a bad request's error reply, a job run for one token then staged and replied, kv_release
// freeing the lease once (an unknown lease is harmless), an unreleased lease's end, engine failures and
// refusals as error replies, the serving faults; then the real engine actor (mock engine, real UCX staging)
// computing a job and copying its blocks into staging until the kv_release.
#include "actors/prefill_server.hpp"

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/tests/coordinated_bus.hpp"
#include "actors/worker_engine.hpp"
#include "backends/mock/mock_engine.hpp"
#include "kv/block_hash.hpp"
#include "messages/subjects.hpp"
#include "transport/tests/test_bus.hpp"

namespace yard::actors {
namespace {

using transport::nats_message;
using inbox = transport::test_support::recorded_messages;

struct engine_log {  // what the stand-in engine actor was sent
  std::vector<std::pair<std::uint64_t, prefill_run>> runs;
  std::vector<std::uint64_t> freed;
};

struct test_faults final : prefill_faults {
  bool drop = false;
  bool drop_release() const override { return drop; }
};

struct prefill_server_test : ::testing::Test, testing::coordinated_bus {
  std::shared_ptr<engine_log> seen = std::make_shared<engine_log>();
  std::shared_ptr<worker_metrics> metrics = std::make_shared<worker_metrics>();
  std::shared_ptr<test_faults> faults;
  caf::actor engine;
  prefill_server_actor server;
  inbox replies;  // the decode worker's inbox

  void SetUp() override {
    start_coordinated();
    bus.record(replies, "t.pf");
  }

  void TearDown() override {
    if (server) caf::anon_send_exit(server, caf::exit_reason::user_shutdown);
    if (engine) caf::anon_send_exit(engine, caf::exit_reason::user_shutdown);
    sched->run();
  }

  prefill_server_config config(msg::worker_role role) {
    prefill_server_config sc;
    sc.ns = "t";
    sc.worker_id = "p1";
    sc.role = role;
    sc.block_size = 4;
    sc.lease_ms = 1000;
    sc.faults = faults;
    sc.metrics = metrics;
    return sc;
  }

  // The server with a stand-in engine actor that records what it is sent.
  void start(msg::worker_role role = msg::worker_role::prefill) {
    engine = sys->spawn([seen = seen](caf::event_based_actor*) -> caf::behavior {
      return {
          [seen](prefill_atom, std::uint64_t job, const prefill_run& run) { seen->runs.emplace_back(job, run); },
          [seen](release_atom, std::uint64_t lease) { seen->freed.push_back(lease); },
      };
    });
    server = spawn_prefill_server(*sys, *bus.conn, config(role));
    caf::anon_send(server, open_atom::value, engine);
    sched->run();
  }

  static msg::remote_prefill_request request(const std::string& id, std::uint32_t max_tokens = 6) {
    msg::remote_prefill_request pr;
    pr.request_id = id;
    pr.attempt = 1;
    pr.token_ids = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};  // two full blocks of 4 and a tail
    pr.max_tokens = max_tokens;
    pr.block_size = 4;
    return pr;
  }

  void ask(const std::string& body) {
    caf::anon_send(server, prefill_atom::value, nats_message{"t.worker.prefill.p1", "t.pf", body, "", false});
    sched->run();
  }
  void ask(const msg::remote_prefill_request& pr) { ask(msg::encode(pr)); }

  void release(std::uint64_t lease) {
    msg::kv_release rel;
    rel.lease_id = lease;
    rel.request_id = "r";
    caf::anon_send(server, release_atom::value, nats_message{"t.worker.kv_release.p1", "", msg::encode(rel), "", false});
    sched->run();
  }

  void output(std::uint64_t job, prefill_output p) {
    caf::anon_send(server, prefilled_atom::value, job, std::move(p));
    sched->run();
  }

  // The engine's last output for a job: one token, ended by `why`, with a lease on two staged blocks when lease != 0.
  static prefill_output token(msg::token_id t, msg::finish_kind why, std::uint64_t lease = 0) {
    prefill_output p;
    p.out.new_tokens = {t};
    p.out.text_delta = "x";
    p.out.finish_reason = why;
    if (lease) {
      p.staged = staged_blocks{};
      p.staged->lease_id = lease;
      p.staged->region.worker_address = "ucx-p1";
      p.staged->blocks.resize(2);
    }
    return p;
  }

  // The n-th reply on the inbox (waits for it).
  msg::remote_prefill_reply reply(std::size_t n) {
    EXPECT_TRUE(replies.wait_for(n + 1));
    std::lock_guard<std::mutex> lock(replies.mu);
    if (replies.got.size() <= n) return {};
    auto r = msg::decode_auto<msg::remote_prefill_reply>(replies.got[n].data, replies.got[n].content_type);
    EXPECT_TRUE(r);
    return r ? *r : msg::remote_prefill_reply{};
  }
};

TEST_F(prefill_server_test, a_bad_request_gets_an_error_reply_and_runs_nothing) {
  start();
  ask(std::string("\xc1not msgpack"));
  auto r = reply(0);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, 400);
  EXPECT_EQ(r.request_id, "");
  EXPECT_EQ(r.prefill_worker_id, "p1");
  auto pr = request("r");
  pr.block_size = 8;
  ask(pr);
  r = reply(1);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->message, "block size 8 != 4");
  EXPECT_EQ(r.request_id, "r");
  EXPECT_EQ(r.attempt, 1u);
  EXPECT_TRUE(seen->runs.empty());
}

TEST_F(prefill_server_test, a_decode_worker_and_a_draining_one_refuse) {
  start(msg::worker_role::decode);
  ask(request("r"));
  auto r0 = reply(0);
  ASSERT_TRUE(r0.error);
  EXPECT_EQ(r0.error->code, 400);
  EXPECT_EQ(r0.error->message, "worker p1 does not prefill for others");
  TearDown();
  start();
  caf::anon_send(server, drain_atom::value);
  sched->run();
  ask(request("r"));
  auto r = reply(1);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, 503);
  EXPECT_EQ(r.error->message, "worker p1 is draining");
  EXPECT_TRUE(seen->runs.empty());
}

TEST_F(prefill_server_test, a_job_runs_for_one_token_and_its_staged_blocks_are_replied) {
  start();
  ask(request("r"));
  ASSERT_EQ(seen->runs.size(), 1u);
  const auto& [job, run] = seen->runs[0];
  EXPECT_EQ(run.request.request_id, "pf:r#1");
  EXPECT_EQ(run.request.max_tokens, 1u);
  EXPECT_EQ(run.request.prompt, request("r").token_ids);
  EXPECT_EQ(run.hashes, kv::hash_blocks(run.request.prompt, 4, std::nullopt));
  EXPECT_EQ(run.hashes.size(), 2u);
  EXPECT_EQ(run.request_id, "r");
  EXPECT_EQ(run.attempt, 1u);
  EXPECT_TRUE(run.stage);
  // The token and the end come in two outputs: one reply, with both.
  prefill_output first;
  first.out.new_tokens = {42};
  first.out.text_delta = "a";
  output(job, std::move(first));
  auto last = token(43, msg::finish_kind::length, 77);
  last.out.new_tokens.clear();
  last.out.text_delta = "b";
  output(job, std::move(last));
  auto r = reply(0);
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.request_id, "r");
  EXPECT_EQ(r.attempt, 1u);
  EXPECT_EQ(r.first_tokens, std::vector<msg::token_id>{42});
  EXPECT_EQ(r.text, "ab");
  EXPECT_FALSE(r.finish_reason);
  EXPECT_EQ(r.lease_id, 77u);
  EXPECT_EQ(r.lease_ms, 1000u);
  ASSERT_TRUE(r.region);
  EXPECT_EQ(r.region->worker_address, "ucx-p1");
  EXPECT_EQ(r.blocks.size(), 2u);
  EXPECT_EQ(r.release_subject, subjects::worker_kv_release("t", "p1"));
  EXPECT_EQ(metrics->remote_prefills_served.load(), 1u);
  EXPECT_EQ(replies.got.size(), 1u);
}

TEST_F(prefill_server_test, a_kv_release_frees_the_lease_once_and_an_unknown_lease_is_harmless) {
  start();
  ask(request("r"));
  output(seen->runs.at(0).first, token(5, msg::finish_kind::length, 77));
  reply(0);
  EXPECT_TRUE(seen->freed.empty());
  release(77);
  EXPECT_EQ(seen->freed, std::vector<std::uint64_t>{77});
  release(77);   // again: unknown now
  release(999);  // never leased
  EXPECT_EQ(sched->trigger_timeouts(), 1u);  // the lease's timer: released in time, nothing to do
  sched->run();
  EXPECT_EQ(seen->freed, std::vector<std::uint64_t>{77});
  // The server goes on serving, the same request included.
  ask(request("r"));
  EXPECT_EQ(seen->runs.size(), 2u);
}

TEST_F(prefill_server_test, an_unreleased_lease_ends_after_lease_ms) {
  start();
  ask(request("r"));
  output(seen->runs.at(0).first, token(5, msg::finish_kind::length, 78));
  reply(0);
  EXPECT_EQ(sched->trigger_timeouts(), 1u);
  sched->run();
  EXPECT_EQ(seen->freed, std::vector<std::uint64_t>{78});
  release(78);  // too late: harmless
  EXPECT_EQ(seen->freed, std::vector<std::uint64_t>{78});
}

TEST_F(prefill_server_test, engine_failures_and_refusals_are_error_replies) {
  start();
  ask(request("a"));
  ask(request("b"));
  ask(request("c"));
  ASSERT_EQ(seen->runs.size(), 3u);
  prefill_output failed;
  failed.out.finish_reason = msg::finish_kind::error;
  failed.out.error_message = "engine lost its device";
  output(seen->runs[0].first, std::move(failed));
  auto r = reply(0);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.request_id, "a");
  EXPECT_EQ(r.error->code, 500);
  EXPECT_EQ(r.error->message, "engine lost its device");
  EXPECT_EQ(r.lease_id, 0u);
  prefill_output cancelled;
  cancelled.out.finish_reason = msg::finish_kind::cancelled;
  output(seen->runs[1].first, std::move(cancelled));
  r = reply(1);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->message, "prefill ended: cancelled");
  prefill_output refused;
  refused.refused = error{errc::bad_request, "prompt of 10 tokens leaves no room"};
  output(seen->runs[2].first, std::move(refused));
  r = reply(2);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.request_id, "c");
  EXPECT_EQ(r.error->code, 400);
  EXPECT_EQ(r.error->message, "prompt of 10 tokens leaves no room");
  EXPECT_EQ(metrics->remote_prefills_served.load(), 0u);
  EXPECT_EQ(sched->trigger_timeouts(), 0u);  // no lease anywhere
}

TEST_F(prefill_server_test, a_running_duplicate_conflicts_and_a_one_token_request_ends_unstaged) {
  start();
  ask(request("r", 1));
  ask(request("r", 1));
  ASSERT_EQ(seen->runs.size(), 1u);
  EXPECT_FALSE(seen->runs[0].second.stage);  // max_tokens 1: nothing to stage
  auto r = reply(0);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->code, 409);
  EXPECT_EQ(r.error->message, "already prefilling this request");
  output(seen->runs[0].first, token(9, msg::finish_kind::length));
  r = reply(1);
  EXPECT_FALSE(r.error);
  ASSERT_TRUE(r.finish_reason);
  EXPECT_EQ(*r.finish_reason, msg::finish_kind::length);
  EXPECT_EQ(r.lease_id, 0u);
  EXPECT_TRUE(r.release_subject.empty());
  ask(request("r", 1));  // done: the same attempt may come again
  EXPECT_EQ(seen->runs.size(), 2u);
}

TEST_F(prefill_server_test, the_drop_release_fault_leaves_the_lease_to_its_timer) {
  faults = std::make_shared<test_faults>();
  faults->drop = true;
  start();
  ask(request("r"));
  ASSERT_EQ(seen->runs.size(), 1u);
  output(seen->runs[0].first, token(5, msg::finish_kind::length, 79));
  reply(0);
  release(79);
  EXPECT_TRUE(seen->freed.empty());  // dropped: the lease runs out instead
  EXPECT_EQ(sched->trigger_timeouts(), 1u);
  sched->run();
  EXPECT_EQ(seen->freed, std::vector<std::uint64_t>{79});
}

// The real engine actor: it runs the job on a mock engine, copies the prompt's blocks into UCX
// staging on its own thread, and frees them when the server passes on the kv_release.
TEST_F(prefill_server_test, the_engine_actor_computes_a_job_and_stages_its_blocks_until_the_release) {
  backends::mock_engine_options mo;
  mo.per_token_delay_ms = 0.001;  // steps take no model time: no timeouts but the lease's
  auto transfer = kv_transfer_agent::create(kv_transfer_options{.staging_mb = 1}, mo.kv_block_bytes);
  ASSERT_TRUE(transfer) << transfer.err().describe();
  kv_transfer_agent* agent = transfer->get();  // read only while the coordinator is idle (same thread)
  auto xfer = std::make_shared<std::unique_ptr<kv_transfer_agent>>(std::move(*transfer));
  auto eng = std::make_shared<std::unique_ptr<backends::engine>>(std::make_unique<backends::mock_engine>(mo));
  worker_config wc;
  wc.ns = "t";
  wc.id = "p1";
  wc.role = msg::worker_role::prefill;
  auto sc = config(msg::worker_role::prefill);
  sc.block_size = 16;
  server = spawn_prefill_server(*sys, *bus.conn, sc);
  auto publisher = spawn_heartbeat_publisher(*sys, *bus.conn, {subjects::heartbeat("t", "p1"), 500});
  auto kv_manager = spawn_kv_block_manager(*sys, *bus.conn, {"p1", subjects::kv_events("t", "p1")});
  engine = sys->spawn(worker_detail::engine_behavior, bus.conn.get(), eng, wc, xfer, publisher, kv_manager,
                      prefill_client_actor{}, server, worker_detail::tier_link{});
  caf::anon_send(server, open_atom::value, engine);
  caf::anon_send(publisher, open_atom::value, engine);
  caf::anon_send(kv_manager, open_atom::value, engine);
  sched->run();
  msg::remote_prefill_request pr;
  pr.request_id = "r";
  for (int i = 0; i < 40; ++i) pr.token_ids.push_back(100 + i);  // two full blocks of 16 and a tail
  pr.max_tokens = 6;
  ask(pr);
  sched->run();
  auto r = reply(0);
  ASSERT_FALSE(r.error) << r.error->message;
  EXPECT_EQ(r.first_tokens, std::vector<msg::token_id>{backends::mock_engine::expected_token(pr.token_ids, 0, 0)});
  EXPECT_NE(r.lease_id, 0u);
  EXPECT_EQ(r.blocks.size(), 2u);
  for (const auto& b : r.blocks) EXPECT_TRUE(b.checksum.has_value());
  EXPECT_EQ(agent->leased_blocks(), 2u);
  release(r.lease_id);
  sched->run();  // the server tells the engine actor, which frees the slots
  EXPECT_EQ(agent->leased_blocks(), 0u);
  EXPECT_EQ(metrics->remote_prefills_served.load(), 1u);
}

}  // namespace
}  // namespace yard::actors
