// backends/tests/kv_event_subscriber_test.cpp — the live subscriber against a real ZeroMQ
// publisher built like vLLM's ZmqEventPublisher (backends/tests/fake_kv_publisher.hpp).
#include "backends/external/kv_event_subscriber.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "backends/tests/engine_kv_events_util.hpp"
#include "backends/tests/fake_kv_publisher.hpp"
#include "kv/block_hash.hpp"

namespace yard::backends::external {
namespace {

using namespace testing;
using msg::kv_event_kind;

using test_support::be64;
using test_support::fake_engine;

struct live {
  live(fake_engine& engine, kv_event_source source = kv_event_source::vllm, std::string topic = "") {
    kv_event_subscriber_options o;
    o.source = source;
    o.endpoint = engine.endpoint;
    o.replay_endpoint = engine.replay_endpoint;
    o.topic = std::move(topic);
    auto s = kv_event_subscriber::start(o);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.err().describe());
    if (s.ok()) sub = std::move(*s);
    EXPECT_TRUE(engine.wait_subscribed());
  }
  // Drains until `done` holds (or 20 s pass); returns every event drained.
  std::vector<msg::kv_event> until(const std::function<bool(const kv_event_subscriber_stats&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done(sub->stats()) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    auto got = sub->drain();
    events.insert(events.end(), got.begin(), got.end());
    return events;
  }
  std::vector<msg::kv_event> batches(std::uint64_t n) {
    return until([n](const kv_event_subscriber_stats& s) { return s.batches >= n; });
  }
  std::unique_ptr<kv_event_subscriber> sub;
  std::vector<msg::kv_event> events;
};

const auto prompt = token_run(5000, 48);
std::vector<msg::token_id> slice(std::size_t from, std::size_t n) {
  return {prompt.begin() + from, prompt.begin() + from + n};
}
const auto want = kv::hash_blocks(prompt, 16);

TEST(kv_event_subscriber, stored_and_removed_blocks_translate_and_snapshot_holds_the_rest) {
  fake_engine engine(true);
  live l(engine, kv_event_source::vllm, "kv-events");
  engine.publish(batch({stored({1, 2, 3}, std::nullopt, prompt)}), false, "kv-events");
  engine.publish(batch({removed({2})}), false, "kv-events");
  auto ev = l.batches(2);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, kv_event_kind::stored);
  EXPECT_EQ(ev[0].block_hashes, want);  // equal to what the router computes from the prompt
  EXPECT_EQ(ev[0].tier, 1);
  EXPECT_EQ(ev[1].kind, kv_event_kind::removed);
  EXPECT_EQ(ev[1].block_hashes, std::vector<std::uint64_t>{want[1]});
  auto snap = l.sub->snapshot();
  ASSERT_EQ(snap.size(), 2u);
  std::set<std::uint64_t> held;
  for (const auto& e : snap) {
    EXPECT_EQ(e.kind, kv_event_kind::stored);
    ASSERT_EQ(e.block_hashes.size(), 1u);
    held.insert(e.block_hashes[0]);
    if (e.block_hashes[0] == want[2]) {
      EXPECT_EQ(e.parent_hash, want[1]);
    }
    if (e.block_hashes[0] == want[0]) {
      EXPECT_FALSE(e.parent_hash.has_value());
    }
  }
  EXPECT_EQ(held, (std::set<std::uint64_t>{want[0], want[2]}));
  EXPECT_EQ(l.sub->stats().events, 2u);
  EXPECT_TRUE(l.sub->drain().empty());
}

TEST(kv_event_subscriber, a_gap_is_recovered_through_the_replay_socket) {
  fake_engine engine(true);
  live l(engine);
  engine.publish(batch({stored({1}, std::nullopt, slice(0, 16))}));
  engine.publish(batch({stored({2}, 1, slice(16, 16))}), /*lost=*/true);
  engine.publish(batch({stored({3}, 2, slice(32, 16))}));
  auto ev = l.batches(2);
  ASSERT_EQ(ev.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(ev[i].kind, kv_event_kind::stored);
    EXPECT_EQ(ev[i].block_hashes, std::vector<std::uint64_t>{want[i]});
  }
  auto st = l.sub->stats();
  EXPECT_EQ(st.gaps, 1u);
  EXPECT_EQ(st.replayed_batches, 1u);
  EXPECT_EQ(st.resyncs, 0u);
  EXPECT_EQ(st.unknown_parents, 0u);
  EXPECT_EQ(l.sub->snapshot().size(), 3u);
}

TEST(kv_event_subscriber, a_gap_without_replay_resyncs) {
  fake_engine engine(false);
  live l(engine);
  engine.publish(batch({stored({1}, std::nullopt, slice(0, 16))}));
  engine.publish(batch({stored({2}, 1, slice(16, 16))}), /*lost=*/true);
  engine.publish(batch({stored({3}, 2, slice(32, 16))}));
  auto ev = l.batches(2);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].kind, kv_event_kind::stored);
  EXPECT_EQ(ev[1].kind, kv_event_kind::cleared);
  EXPECT_EQ(ev[2].kind, kv_event_kind::stored);  // the snapshot: what is still known
  EXPECT_EQ(ev[2].block_hashes, std::vector<std::uint64_t>{want[0]});
  auto st = l.sub->stats();
  EXPECT_EQ(st.gaps, 1u);
  EXPECT_EQ(st.resyncs, 1u);
  EXPECT_EQ(st.unknown_parents, 1u);  // block 3's parent was in the lost batch
}

TEST(kv_event_subscriber, a_gap_older_than_the_replay_buffer_resyncs) {
  fake_engine engine(true);
  live l(engine);
  engine.publish(batch({stored({1}, std::nullopt, slice(0, 16))}));
  engine.publish(batch({stored({2}, 1, slice(16, 16))}), /*lost=*/true);
  engine.forget_before(2);
  engine.publish(batch({removed({1})}));
  auto ev = l.batches(2);
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[1].kind, kv_event_kind::cleared);
  EXPECT_EQ(ev[2].kind, kv_event_kind::stored);
  EXPECT_EQ(ev[3].kind, kv_event_kind::removed);
  EXPECT_EQ(ev[3].block_hashes, std::vector<std::uint64_t>{want[0]});
  EXPECT_EQ(l.sub->stats().resyncs, 1u);
  EXPECT_EQ(l.sub->stats().replayed_batches, 0u);
  EXPECT_TRUE(l.sub->snapshot().empty());
}

TEST(kv_event_subscriber, all_blocks_cleared_clears) {
  fake_engine engine(true);
  live l(engine);
  engine.publish(batch({stored({1, 2}, std::nullopt, slice(0, 32))}));
  engine.publish(batch({cleared()}));
  auto ev = l.batches(2);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].kind, kv_event_kind::cleared);
  EXPECT_TRUE(l.sub->snapshot().empty());
}

TEST(kv_event_subscriber, malformed_payloads_and_frames_are_counted_never_fatal) {
  fake_engine engine(true);
  live l(engine);
  engine.send({"", "short"});                  // not [topic, seq, payload]
  engine.publish("\xc1\xc1 not msgpack");      // seq 0
  engine.publish(batch({stored({1}, std::nullopt, slice(0, 16))}));  // seq 1
  auto ev = l.batches(2);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].block_hashes, std::vector<std::uint64_t>{want[0]});
  EXPECT_EQ(l.sub->stats().decode_errors, 2u);
  EXPECT_EQ(l.sub->stats().gaps, 0u);
}

TEST(kv_event_subscriber, a_new_sglang_epoch_in_the_topic_is_a_restart) {
  fake_engine engine(false);
  live l(engine, kv_event_source::sglang, "kv");
  const std::string epoch_a("kv\0sgl-kv-epoch=a", 17), epoch_b("kv\0sgl-kv-epoch=b", 17);
  engine.publish(batch({stored({1}, std::nullopt, slice(0, 16), 16, {text("GPU")})}, 0), false, epoch_a);
  engine.publish(batch({stored({1}, std::nullopt, slice(0, 16), 16, {text("GPU")})}, 0), false, epoch_b);
  auto ev = l.batches(2);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[1].kind, kv_event_kind::cleared);
  EXPECT_EQ(ev[2].block_hashes, std::vector<std::uint64_t>{want[0]});
  EXPECT_EQ(l.sub->stats().restarts, 1u);
}

TEST(kv_event_subscriber, bad_options_are_error_values) {
  kv_event_subscriber_options o;
  EXPECT_FALSE(kv_event_subscriber::start(o).ok());  // no endpoint
  o.endpoint = "not-a-transport://x";
  auto bad = kv_event_subscriber::start(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("not-a-transport://x"), std::string::npos);
  o.endpoint = "tcp://127.0.0.1:1";
  o.replay_endpoint = "tcp://";
  EXPECT_FALSE(kv_event_subscriber::start(o).ok());
  EXPECT_EQ(*parse_kv_event_source("vllm"), kv_event_source::vllm);
  EXPECT_EQ(*parse_kv_event_source("sglang"), kv_event_source::sglang);
  auto tgi = parse_kv_event_source("tgi");
  ASSERT_FALSE(tgi.ok());
  EXPECT_NE(tgi.err().message.find("tgi"), std::string::npos);
}

}  // namespace
}  // namespace yard::backends::external
