// actors/tests/prefill_client_test.cpp — the prefill_client's state machine, driven step by step by CAF's
// test coordinator (deterministic scheduling and timeouts) on a real nats-server: declined with an empty or
// full pool, a remote prefill that times out, a reply handed over, a failed reply, a late reply after a
// cancel releasing its lease, and a prefill worker that leaves dropping its UCX endpoint.
#include "actors/prefill_client.hpp"

#include "actors/tests/coordinated_bus.hpp"

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "messages/subjects.hpp"
#include "transport/tests/test_bus.hpp"

namespace yard::actors {
namespace {

using transport::nats_message;

using inbox = transport::test_support::recorded_messages;

struct prefill_client_test : ::testing::Test, testing::coordinated_bus {
  std::shared_ptr<std::vector<std::string>> seen = std::make_shared<std::vector<std::string>>();
  prefill_client_actor client;
  inbox requests;  // what the client publishes to the prefill routers

  void SetUp() override {
    start_coordinated();
    bus.record(requests, subjects::router_prefill("t"));
    // Stands in for the engine actor: records what the client tells it.
    auto engine = sys->spawn([seen = seen](caf::event_based_actor*) -> caf::behavior {
      return {
          [seen](local_atom, const std::string& key, bool fallback) {
            seen->push_back("local " + key + (fallback ? " fallback" : " declined"));
          },
          [seen](prefilled_atom, const std::string& key, const msg::remote_prefill_reply& r) {
            seen->push_back("prefilled " + key + " lease " + std::to_string(r.lease_id));
          },
          [seen](forget_atom, const std::string& address) { seen->push_back("forget " + address); },
      };
    });
    prefill_client_config pc;
    pc.ns = "t";
    pc.model = "m";
    pc.inbox = "t.inbox";
    pc.prefill_queue_limit = 2;
    pc.timeout_ms = 1000;
    client = spawn_prefill_client(*sys, *conn, pc);
    caf::anon_send(client, open_atom::value, engine);
    sched->run();
  }

  void TearDown() override {
    caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
    sched->run();
  }

  void heartbeat(const std::string& id, std::uint32_t busy, bool draining = false) {
    msg::heartbeat hb;
    hb.instance_id = id;
    hb.component = msg::component_kind::worker;
    hb.role = msg::worker_role::prefill;
    hb.model = "m";
    hb.draining = draining;
    hb.load = msg::load_report{};
    hb.load->active_requests = busy;
    caf::anon_send(client, heartbeat_atom::value, nats_message{subjects::heartbeat("t", id), "", msg::encode(hb), "", false});
    sched->run();
  }

  void ask(const std::string& request_id) {
    msg::remote_prefill_request pr;
    pr.request_id = request_id;
    pr.model = "m";
    pr.token_ids = {1, 2, 3};
    caf::anon_send(client, prefill_atom::value, attempt_key(request_id, 0), pr);
    sched->run();
  }

  void reply(const msg::remote_prefill_reply& r) {
    caf::anon_send(client, prefilled_atom::value, nats_message{"t.inbox", "", msg::encode(r), "", false});
    sched->run();
  }
};

TEST_F(prefill_client_test, an_empty_pool_declines_at_once) {
  ask("r");
  EXPECT_EQ(*seen, std::vector<std::string>{"local r#0 declined"});
}

TEST_F(prefill_client_test, a_full_pool_declines) {
  heartbeat("p1", 2);  // at the queue limit of 2
  ask("r");
  EXPECT_EQ(*seen, std::vector<std::string>{"local r#0 declined"});
}

TEST_F(prefill_client_test, a_remote_prefill_that_times_out_prefills_locally) {
  heartbeat("p1", 0);
  ask("r");
  ASSERT_TRUE(requests.wait_for(1));
  EXPECT_EQ(requests.got[0].reply, "t.inbox");
  EXPECT_TRUE(seen->empty());  // waiting for the prefill worker
  EXPECT_EQ(sched->trigger_timeouts(), 1u);
  sched->run();
  EXPECT_EQ(*seen, std::vector<std::string>{"local r#0 fallback"});
  // A reply after the deadline frees its lease at once.
  inbox releases;
  bus.record(releases, "t.release");
  msg::remote_prefill_reply late;
  late.request_id = "r";
  late.lease_id = 42;
  late.release_subject = "t.release";
  reply(late);
  ASSERT_TRUE(releases.wait_for(1));
  auto rel = msg::decode_auto<msg::kv_release>(releases.got[0].data, releases.got[0].content_type);
  ASSERT_TRUE(rel);
  EXPECT_EQ(rel->lease_id, 42u);
  EXPECT_EQ(seen->size(), 1u);
}

TEST_F(prefill_client_test, a_reply_is_handed_to_the_engine_and_an_error_reply_falls_back) {
  heartbeat("p1", 0);
  ask("a");
  ask("b");
  msg::remote_prefill_reply ok;
  ok.request_id = "a";
  ok.prefill_worker_id = "p1";
  ok.lease_id = 9;
  reply(ok);
  msg::remote_prefill_reply bad;
  bad.request_id = "b";
  bad.error = msg::error_reply{500, "boom"};
  reply(bad);
  EXPECT_EQ(*seen, (std::vector<std::string>{"prefilled a#0 lease 9", "local b#0 fallback"}));
  // Both answered: their deadlines do nothing.
  sched->trigger_timeouts();
  sched->run();
  EXPECT_EQ(seen->size(), 2u);
}

TEST_F(prefill_client_test, a_cancelled_request_ignores_its_deadline_and_a_bad_reply_is_dropped) {
  heartbeat("p1", 0);
  ask("c");
  caf::anon_send(client, cancel_atom::value, attempt_key("c", 0));
  sched->run();
  caf::anon_send(client, prefilled_atom::value, nats_message{"t.inbox", "", "\xc1not msgpack", "", false});
  sched->run();
  sched->trigger_timeouts();
  sched->run();
  EXPECT_TRUE(seen->empty());
}

TEST_F(prefill_client_test, a_prefill_worker_that_drains_drops_its_ucx_endpoint) {
  heartbeat("p1", 0);
  ask("d");
  msg::remote_prefill_reply ok;
  ok.request_id = "d";
  ok.prefill_worker_id = "p1";
  ok.region = msg::kv_region_descriptor{};
  ok.region->worker_address = "ucx-addr-p1";
  reply(ok);
  heartbeat("p1", 0, /*draining=*/true);
  EXPECT_EQ(*seen, (std::vector<std::string>{"prefilled d#0 lease 0", "forget ucx-addr-p1"}));
  ask("e");  // the pool is empty again
  EXPECT_EQ(seen->back(), "local e#0 declined");
}

}  // namespace
}  // namespace yard::actors
