// transport/tests/nats_connection_test.cpp — publish and delivery on a real nats-server:
// msgpack goes out bare, other content types as a header; every message of a long run
// arrives whole and in order (delivered messages are freed in batches behind the handler); dropping a
// subscription waits for its running handler, a handler may drop its own, and churn under traffic is safe.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "transport/nats_connection.hpp"
#include "transport/nats_server_process.hpp"
#include "transport/tests/test_bus.hpp"

namespace {

using namespace yard::transport;

using inbox = test_support::recorded_messages;

struct nats_connection_test : ::testing::Test {
  test_support::test_bus bus;
  nats_connection* conn = nullptr;
  void SetUp() override {
    bus.start();
    conn = bus.conn.get();
  }
};

TEST_F(nats_connection_test, msgpack_goes_out_bare_and_other_types_carry_a_content_type_header) {
  inbox box;
  auto sub = conn->subscribe("t.ct", [&](nats_message m) { box.push(std::move(m)); });
  ASSERT_TRUE(sub);
  ASSERT_TRUE(conn->flush());
  ASSERT_TRUE(conn->publish("t.ct", std::string("\x81\xa1x\x01", 4), "r.1", "application/msgpack"));
  ASSERT_TRUE(conn->publish("t.ct", "{\"x\":1}", "", "application/json"));
  ASSERT_TRUE(conn->publish("t.ct", "plain"));
  ASSERT_TRUE(box.wait_for(3));
  EXPECT_EQ(box.got[0].content_type, "");
  EXPECT_EQ(box.got[0].reply, "r.1");
  EXPECT_EQ(box.got[0].data, std::string("\x81\xa1x\x01", 4));
  EXPECT_EQ(box.got[1].content_type, "application/json");
  EXPECT_EQ(box.got[1].reply, "");
  EXPECT_EQ(box.got[1].data, "{\"x\":1}");
  EXPECT_EQ(box.got[2].content_type, "");
  EXPECT_EQ(box.got[2].data, "plain");
}

TEST_F(nats_connection_test, a_long_run_arrives_whole_and_in_order_across_batched_frees) {
  inbox box;
  auto sub = conn->subscribe("t.run", [&](nats_message m) { box.push(std::move(m)); });
  ASSERT_TRUE(sub);
  ASSERT_TRUE(conn->flush());
  // Sizes cross both batch bounds (count and bytes); one body is over the byte bound alone.
  constexpr int n = 200;
  for (int i = 0; i < n; ++i) {
    std::size_t size = i == 77 ? (300u << 10) : static_cast<std::size_t>(i % 7) * 1000 + 1;
    ASSERT_TRUE(conn->publish("t.run", std::string(size, static_cast<char>('a' + i % 26)), "r." + std::to_string(i)));
  }
  ASSERT_TRUE(box.wait_for(n));
  for (int i = 0; i < n; ++i) {
    std::size_t size = i == 77 ? (300u << 10) : static_cast<std::size_t>(i % 7) * 1000 + 1;
    ASSERT_EQ(box.got[i].data, std::string(size, static_cast<char>('a' + i % 26))) << i;
    ASSERT_EQ(box.got[i].reply, "r." + std::to_string(i));
  }
  // Unsubscribing frees what is still held; the connection keeps working.
  *sub = subscription();
  inbox again;
  auto sub2 = conn->subscribe("t.run", [&](nats_message m) { again.push(std::move(m)); });
  ASSERT_TRUE(sub2);
  ASSERT_TRUE(conn->flush());
  ASSERT_TRUE(conn->publish("t.run", "after"));
  ASSERT_TRUE(again.wait_for(1));
  EXPECT_EQ(again.got[0].data, "after");
}

}  // namespace

namespace {

// Dropping a subscription while its handler runs waits for the handler: whatever the handler touches may
// be freed by the caller as soon as the destructor returns.
TEST_F(nats_connection_test, dropping_a_subscription_waits_for_its_running_handler) {
  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  std::atomic<bool> finished{false};
  auto sub = conn->subscribe("t.slow", [&](nats_message) {
    {
      std::lock_guard<std::mutex> lock(mu);
      started = true;
    }
    cv.notify_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    finished = true;
  });
  ASSERT_TRUE(sub);
  ASSERT_TRUE(conn->flush());
  ASSERT_TRUE(conn->publish("t.slow", "x"));
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return started; }));
  }
  *sub = subscription();  // unsubscribes while the handler sleeps
  EXPECT_TRUE(finished.load()) << "the handler was still running when the subscription was gone";
}

// A handler may drop its own subscription (no wait on itself), and many subscriptions made and dropped
// under a steady stream of messages neither crash nor lose the connection.
TEST_F(nats_connection_test, a_handler_drops_its_own_subscription_and_churn_under_traffic_is_safe) {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  std::optional<subscription> self;
  auto s = conn->subscribe("t.self", [&](nats_message) {
    std::lock_guard<std::mutex> lock(mu);
    ++calls;
    self.reset();  // runs on this subscription's own delivery thread
    cv.notify_all();
  });
  ASSERT_TRUE(s);
  self = std::move(*s);
  ASSERT_TRUE(conn->flush());
  ASSERT_TRUE(conn->publish("t.self", "x"));
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return calls == 1; }));
  }
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    while (!stop) conn->publish("t.churn", "y");
  });
  std::atomic<int> delivered{0};
  for (int i = 0; i < 200; ++i) {
    auto c = conn->subscribe("t.churn", [&](nats_message) { delivered++; });
    ASSERT_TRUE(c);
    if (i % 20 == 0) conn->flush();
  }
  stop = true;
  publisher.join();
  EXPECT_TRUE(conn->connected());
  ASSERT_TRUE(conn->publish("t.self", "x"));
  ASSERT_TRUE(conn->flush());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(calls, 1) << "a dropped subscription was called again";
}

}  // namespace
