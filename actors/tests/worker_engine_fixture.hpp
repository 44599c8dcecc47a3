// actors/tests/worker_engine_fixture.hpp — a worker's engine actor, kv_block_manager and heartbeat
// publisher on CAF's test coordinator (every engine step's model time is a timeout the test triggers)
// and a real nats-server; shared by worker_engine_test.cpp and worker_tiers_test.cpp. Wired as
// spawn_worker wires them (the engine's tiers, when it has any, go to the kv_block_manager).
#pragma once

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/tests/coordinated_bus.hpp"
#include "actors/worker_engine.hpp"
#include "backends/mock/mock_engine.hpp"
#include "messages/subjects.hpp"
#include "transport/tests/test_bus.hpp"

namespace yard::actors::testing {

using transport::nats_message;

struct inbox : transport::test_support::recorded_messages {
  // Waits for a chunk that ends the request (NATS delivers asynchronously).
  bool wait_final() {
    for (int i = 0; i < 1000; ++i) {
      auto c = chunks();
      if (!c.empty() && c.back().finish_reason) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::vector<msg::token_chunk> chunks() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<msg::token_chunk> out;
    for (const auto& m : got)
      if (auto c = msg::decode_auto<msg::token_chunk>(m.data, m.content_type)) out.push_back(std::move(*c));
    return out;
  }
};

struct worker_engine_test : ::testing::Test, coordinated_bus {
  caf::actor engine;
  heartbeat_publisher_actor publisher;
  kv_block_manager_actor kv_manager;

  // The engine under test (a fixed-delay mock unless a fixture says otherwise).
  virtual backends::mock_engine_options options() {
    backends::mock_engine_options mo;
    mo.per_token_delay_ms = 5;
    return mo;
  }

  // The worker's role and thresholds (a plain "both" worker unless a fixture says otherwise).
  virtual void configure(worker_config&) {}
  // A decode worker's prefill_client and KV transfer (none unless a fixture gives them).
  virtual prefill_client_actor make_prefill_client() { return {}; }
  virtual std::unique_ptr<kv_transfer_agent> make_transfer(std::size_t /*block_bytes*/) { return nullptr; }

  void SetUp() override {
    start_coordinated();
    auto made = backends::mock_engine::create(options());
    ASSERT_TRUE(made.ok()) << made.err().describe();
    auto eng = std::make_shared<std::unique_ptr<backends::engine>>(std::move(made.value()));
    auto tiers = worker_detail::release_engine_tiers(**eng);  // as spawn_worker does
    auto xfer = std::make_shared<std::unique_ptr<kv_transfer_agent>>(make_transfer((**eng).kv_block_bytes()));
    worker_config wc;
    wc.ns = "t";
    wc.id = "w1";
    configure(wc);
    publisher = spawn_heartbeat_publisher(*sys, *conn, {subjects::heartbeat("t", "w1"), 500});
    kv_manager = spawn_kv_block_manager(*sys, *conn, {"w1", subjects::kv_events("t", "w1"), /*own_thread=*/false},
                                        tiers.store);
    // Not detached here, so the test coordinator runs it like any other actor.
    auto client = make_prefill_client();
    engine = sys->spawn(worker_detail::engine_behavior, conn, eng, wc, xfer, publisher, kv_manager, client,
                        prefill_server_actor{}, tiers.link);
    if (client) caf::anon_send(client, open_atom::value, engine);
    caf::anon_send(publisher, open_atom::value, engine);
    caf::anon_send(kv_manager, open_atom::value, engine);
    sched->run();
  }

  void TearDown() override {
    caf::anon_send_exit(engine, caf::exit_reason::user_shutdown);
    sched->run();
  }

  void listen(inbox& box, const std::string& subject) { bus.record(box, subject); }

  // Runs every message and every step's model-time timeout until the actors are idle.
  void settle() {
    for (int i = 0; i < 10000 && (sched->has_job() || sched->has_pending_timeout()); ++i) {
      sched->run();
      sched->trigger_timeouts();
    }
  }

  void send(caf::atom_value tag, const std::string& reply, const std::string& json) {
    nats_message m{"t.worker", reply, json, "application/json", false};
    if (tag == generate_atom::value) caf::anon_send(engine, generate_atom::value, m);
    else if (tag == cancel_atom::value) caf::anon_send(engine, cancel_atom::value, m);
    else caf::anon_send(kv_manager, snapshot_atom::value, m);
  }

  static std::string expected(const std::string& prompt, std::size_t from, std::size_t to) {
    std::vector<backends::token_id> p(prompt.begin(), prompt.end());
    std::string s;
    for (std::size_t i = from; i < to; ++i) s.push_back(static_cast<char>(backends::mock_engine::expected_token(p, 0, i)));
    return s;
  }
};

inline std::vector<msg::kv_event_batch> batches_of(inbox& box) {
  std::lock_guard<std::mutex> lock(box.mu);
  std::vector<msg::kv_event_batch> out;
  for (const auto& m : box.got)
    if (auto b = msg::decode_auto<msg::kv_event_batch>(m.data, m.content_type)) out.push_back(std::move(*b));
  return out;
}

}  // namespace yard::actors::testing
