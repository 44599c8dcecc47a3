// transport/tests/test_bus.hpp — test helpers: a real nats-server with one connection, and a recorder of messages.
//
// Owns: nothing beyond a test. Used by transport/ and actors/ tests that talk to a real bus.
// Thread-safety: recorded_messages is filled from NATS callback threads and read by the test.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "transport/nats_connection.hpp"
#include "transport/nats_server_process.hpp"

namespace yard::transport::test_support {

// Messages as they arrive on a subscription.
struct recorded_messages {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<nats_message> got;
  subscription sub;  // optional: kept alive with the recorder

  void push(nats_message m) {
    std::lock_guard<std::mutex> lock(mu);
    got.push_back(std::move(m));
    cv.notify_all();
  }
  // True once at least n messages arrived (10 s at most).
  bool wait_for(std::size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return got.size() >= n; });
  }
};

// A nats-server on a free loopback port and a connection to it; stopped on destruction.
struct test_bus {
  std::unique_ptr<nats_server_process> server;
  std::unique_ptr<nats_connection> conn;

  // Call from SetUp (ASSERTs on failure).
  void start() {
    auto s = nats_server_process::start({});
    ASSERT_TRUE(s) << s.err().describe();
    server = std::move(*s);
    nats_options o;
    o.servers = {server->url()};
    auto c = nats_connection::connect(o);
    ASSERT_TRUE(c) << c.err().describe();
    conn = std::move(*c);
  }
  // Records every message on `subject` into `into` (subscribed and flushed before it returns).
  void record(recorded_messages& into, const std::string& subject) {
    auto sub = conn->subscribe(subject, [&into](nats_message m) { into.push(std::move(m)); });
    ASSERT_TRUE(sub) << sub.err().describe();
    into.sub = std::move(*sub);
    ASSERT_TRUE(conn->flush());
  }
};

}  // namespace yard::transport::test_support
