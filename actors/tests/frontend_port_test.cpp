// actors/tests/frontend_port_test.cpp — the frontend_port a restart rebinds: every copy follows
// the binding, a request opened while the bound actor is dead is answered 503 at once (nothing
// published), after the rebind it reaches the new actor and its first attempt is published, and an
// open the dead actor never took is answered 503 at the rebind (once; taken ones are left alone).
#include "actors/frontend_port.hpp"

#include <gtest/gtest.h>

#include <caf/all.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "actors/atoms.hpp"
#include "messages/codec.hpp"
#include "transport/tests/test_bus.hpp"

namespace yard::actors {
namespace {

struct frontend_port_test : ::testing::Test {
  transport::test_support::test_bus bus;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<std::atomic<int>> opened = std::make_shared<std::atomic<int>>(0);

  void SetUp() override {
    bus.start();
    sys = std::make_unique<caf::actor_system>(cfg);
  }
  void TearDown() override {
    sys.reset();  // waits for the actors
  }

  // A stand-in frontend actor that counts the streams it is told of.
  caf::actor counting_actor() {
    return sys->spawn([n = opened](caf::event_based_actor*) -> caf::behavior {
      return {[n](open_atom, msg::generate_request&, chunk_queue_ptr&, std::string&) { ++*n; },
              [](cancel_atom, std::string&) {}};
    });
  }

  frontend_port port_for(caf::actor a, const std::string& inbox) {
    return frontend_port(std::move(a), bus.conn.get(), "t.router.generate", inbox,
                         std::make_shared<std::atomic<std::uint64_t>>(0));
  }

  static msg::generate_request request(const std::string& id) {
    msg::generate_request r;
    r.request_id = id;
    r.token_ids = std::vector<msg::token_id>{1, 2, 3};
    r.max_tokens = 2;
    return r;
  }
};

TEST_F(frontend_port_test, a_request_opened_on_a_dead_actor_is_refused_at_once_and_a_rebind_reaches_the_new_one) {
  transport::test_support::recorded_messages published;
  auto sub = bus.conn->subscribe("t.router.generate", [&](transport::nats_message m) { published.push(std::move(m)); });
  ASSERT_TRUE(sub);
  bus.conn->flush();

  auto first = counting_actor();
  auto port = port_for(first, "_INBOX.old");
  const frontend_port copy = port;  // what an HTTP connection holds
  {
    caf::scoped_actor self{*sys};
    self->monitor(first);
    caf::anon_send_exit(first, caf::exit_reason::kill);
    self->receive([](const caf::down_msg&) {});
  }
  auto sink = std::make_shared<chunk_queue>();
  copy.open(request("r1"), sink);
  auto got = sink->take_all();
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(got[0].finish_reason);
  EXPECT_EQ(*got[0].finish_reason, msg::finish_kind::error);
  ASSERT_TRUE(got[0].error);
  EXPECT_EQ(got[0].error->code, static_cast<std::int32_t>(errc::unavailable));
  EXPECT_NE(got[0].error->message.find("restarting"), std::string::npos);

  // The supervisor's rebuild: a new actor and inbox, bound through the original port.
  auto second = counting_actor();
  port.rebind(port_for(second, "_INBOX.new"));
  EXPECT_EQ(copy.actor(), second);
  auto sink2 = std::make_shared<chunk_queue>();
  copy.open(request("r2"), sink2);
  ASSERT_TRUE(published.wait_for(1)) << "the first attempt is published after the rebind";
  {
    std::lock_guard<std::mutex> lock(published.mu);
    ASSERT_EQ(published.got.size(), 1u);  // nothing was published for the refused one
    EXPECT_EQ(published.got[0].reply.rfind("_INBOX.new.", 0), 0u) << published.got[0].reply;
    auto r = msg::decode_auto<msg::generate_request>(published.got[0].data, published.got[0].content_type);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->request_id, "r2");
  }
  for (int i = 0; i < 500 && opened->load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(opened->load(), 1);
  EXPECT_TRUE(sink2->take_all().empty());
  caf::anon_send_exit(second, caf::exit_reason::user_shutdown);
}

// An open still in the mailbox when the actor dies is lost with it: the rebind answers it (503), once,
// and leaves alone the streams the old actor had taken (their end is the dying actor's to send).
TEST_F(frontend_port_test, an_open_lost_in_a_dead_actors_mailbox_is_answered_at_the_rebind) {
  // A stand-in that takes "kept" (claims it) and never reads anything else.
  auto first = sys->spawn([](caf::event_based_actor*) -> caf::behavior {
    return {[](open_atom, msg::generate_request& r, chunk_queue_ptr& sink, std::string&) {
              if (r.request_id == "kept") sink->claim();
            },
            [](cancel_atom, std::string&) {}};
  });
  auto port = port_for(first, "_INBOX.old");
  auto kept = std::make_shared<chunk_queue>();
  port.open(request("kept"), kept);
  auto blocked = std::make_shared<chunk_queue>();
  {
    // The old actor took "kept", then dies.
    caf::scoped_actor self{*sys};
    self->monitor(first);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // "kept" taken first
    EXPECT_TRUE(kept->claimed());
    caf::anon_send_exit(first, caf::exit_reason::kill);
    self->receive([](const caf::down_msg&) {});
  }
  // The actor died before this open: the port refuses it at once (its existing check) ...
  port.open(request("late"), blocked);
  EXPECT_EQ(blocked->take_all().size(), 1u);
  // ... and the lost case: a sink told to the actor that never claimed it.
  auto lost = std::make_shared<chunk_queue>();
  auto second = counting_actor();
  auto third = counting_actor();
  port.rebind(port_for(second, "_INBOX.mid"));
  port.open(request("lost"), lost);  // second counts it but never claims it (a stand-in's open handler)
  for (int i = 0; i < 500 && opened->load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  {
    caf::scoped_actor self{*sys};
    self->monitor(second);
    caf::anon_send_exit(second, caf::exit_reason::kill);
    self->receive([](const caf::down_msg&) {});
  }
  EXPECT_TRUE(lost->take_all().empty());  // nothing until the supervisor rebinds
  port.rebind(port_for(third, "_INBOX.new"));
  auto got = lost->take_all();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].request_id, "lost");
  ASSERT_TRUE(got[0].error);
  EXPECT_EQ(got[0].error->code, static_cast<std::int32_t>(errc::unavailable));
  EXPECT_TRUE(kept->take_all().empty());     // the old actor had taken it: not the rebind's to answer
  EXPECT_TRUE(blocked->take_all().empty());  // answered once, at open
  port.rebind(port_for(third, "_INBOX.new"));
  EXPECT_TRUE(lost->take_all().empty());     // once
  caf::anon_send_exit(third, caf::exit_reason::user_shutdown);
}

}  // namespace
}  // namespace yard::actors
