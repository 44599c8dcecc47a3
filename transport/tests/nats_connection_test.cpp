// transport/tests/nats_connection_test.cpp — publish and delivery on a real nats-server:
// msgpack goes out bare, other content types as a header; every message of a long run
// arrives whole and in order (delivered messages are freed in batches behind the handler).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
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
