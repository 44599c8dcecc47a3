// actors/tests/frontend_port_test.cpp — the frontend_port a restart rebinds: every copy follows
// the binding, a request opened while the bound actor is dead is answered 503 at once (nothing
// published), and after the rebind it reaches the new actor and its first attempt is published.
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

}  // namespace
}  // namespace yard::actors
