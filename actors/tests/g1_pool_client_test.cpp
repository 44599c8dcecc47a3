// actors/tests/g1_pool_client_test.cpp — G1 owned by the kv_block_manager actor, on real threads and a real
// nats-server (as spawn_worker wires it): an engine that handed its pool over serves the same tokens and the same
// prefix-cache hits as one that kept it, through calls answered by the manager; the manager's pool holds the
// prompt's blocks and its stream carries their tier-1 events (the engine drains none itself); blocks the manager
// evicts reach the engine's eviction sink with their bytes before they are reused, and leave the stream as
// `removed`; a manager that is gone grants nothing and the engine does not hang.
#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include <caf/all.hpp>

#include "actors/g1_pool_client.hpp"
#include "backends/mock/mock_engine.hpp"
#include "kv/block_ledger.hpp"
#include "messages/codec.hpp"
#include "messages/subjects.hpp"
#include "transport/tests/test_bus.hpp"

namespace yard::actors {
namespace {

using transport::test_support::recorded_messages;

struct g1_pool_client_test : ::testing::Test {
  transport::test_support::test_bus bus;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  kv_block_manager_actor manager;
  g1_pool_client* client = nullptr;
  recorded_messages events;

  void SetUp() override {
    bus.start();
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    bus.record(events, subjects::kv_events("t", "w1"));
  }
  void TearDown() override {
    if (manager) caf::anon_send_exit(manager, caf::exit_reason::user_shutdown);
    manager = nullptr;
  }

  static backends::mock_engine_options options(std::uint32_t num_blocks) {
    backends::mock_engine_options mo;
    mo.per_token_delay_ms = 1;
    mo.block_size = 4;
    mo.num_blocks = num_blocks;
    return mo;
  }

  // Hands `eng`'s pool to a new manager, as spawn_worker does.
  void hand_over(backends::engine& eng) {
    const bool moved = eng.hand_over_g1([&](std::unique_ptr<kv::block_pool> pool) -> std::unique_ptr<kv::block_allocator> {
      auto c = std::make_unique<g1_pool_client>(*pool);
      manager = spawn_kv_block_manager(*sys, *bus.conn, {"w1", subjects::kv_events("t", "w1")}, nullptr, std::move(pool));
      c->bind(manager);
      client = c.get();
      return c;
    });
    ASSERT_TRUE(moved);
    ASSERT_FALSE(eng.hand_over_g1([](std::unique_ptr<kv::block_pool>) { return nullptr; })) << "handed over twice";
  }

  struct run_result {
    std::vector<backends::token_id> tokens;
    std::uint32_t cached = 0;
  };
  // Runs one request to its end on `eng` (the calling thread is the engine's).
  static run_result run(backends::engine& eng, const std::string& id, const std::string& text, std::uint32_t max_tokens) {
    backends::engine_request r;
    r.request_id = id;
    r.prompt = *eng.tokenize(text);
    r.max_tokens = max_tokens;
    EXPECT_TRUE(eng.add_request(r).ok());
    run_result out;
    for (int i = 0; i < 1000 && eng.has_work(); ++i)
      for (auto& o : eng.step().outputs) {
        out.tokens.insert(out.tokens.end(), o.new_tokens.begin(), o.new_tokens.end());
        if (o.finish_reason) out.cached = o.usage_info.cached_tokens;
      }
    EXPECT_FALSE(eng.has_work()) << id;
    return out;
  }

  kv::pool_answer ask_manager(kv::pool_query q, std::vector<kv::block_hash> hashes = {}) {
    caf::scoped_actor self{*sys};
    kv::pool_call c;
    c.query = q;
    c.hashes = std::move(hashes);
    kv::pool_answer a;
    self->request(manager, std::chrono::seconds(10), g1_atom::value, c)
        .receive([&](kv::pool_answer& x) { a = std::move(x); },
                 [&](caf::error& e) { ADD_FAILURE() << caf::to_string(e); });
    return a;
  }

  // Every batch on the stream so far, replayed.
  kv::block_ledger stream_ledger(std::size_t at_least) {
    EXPECT_TRUE(events.wait_for(at_least));
    kv::block_ledger l;
    std::lock_guard<std::mutex> lock(events.mu);
    for (const auto& m : events.got) {
      auto b = msg::decode_auto<msg::kv_event_batch>(m.data, m.content_type);
      EXPECT_TRUE(b.ok());
      if (b) l.apply(b->events);
    }
    return l;
  }
};

TEST_F(g1_pool_client_test, an_engine_allocating_through_the_manager_serves_what_one_with_its_own_pool_serves) {
  backends::mock_engine local(options(64));
  backends::mock_engine remote(options(64));
  hand_over(remote);
  const std::string prompt = "the quick brown fox jumps";  // 25 tokens: 6 full blocks of 4
  auto a1 = run(local, "a", prompt, 6);
  auto b1 = run(remote, "a", prompt, 6);
  EXPECT_EQ(a1.tokens, b1.tokens);
  EXPECT_EQ(b1.cached, 0u);
  auto a2 = run(local, "b", prompt, 6);
  auto b2 = run(remote, "b", prompt, 6);
  EXPECT_EQ(a2.tokens, b2.tokens);
  EXPECT_GT(b2.cached, 0u) << "the second request hits the blocks the first committed through the manager";
  EXPECT_EQ(a2.cached, b2.cached);
  EXPECT_GT(client->calls(), 0u);

  // After a step the worker drains (the queued releases go with it); the engine drains nothing itself: the
  // manager publishes its pool's events on the stream.
  EXPECT_TRUE(remote.drain_kv_events().empty());
  // The blocks are the manager's: its pool answers for every full prompt block.
  const auto hashes = kv::hash_blocks(*remote.tokenize(prompt), 4);
  ASSERT_EQ(hashes.size(), 6u);
  EXPECT_EQ(ask_manager(kv::pool_query::match_prefix, hashes).count, 6u);
  // Both requests ended: the manager holds only the grant the engine has not used yet.
  EXPECT_EQ(ask_manager(kv::pool_query::sync).num_referenced, client->spare_blocks());
  EXPECT_EQ(remote.load().active_kv_blocks, 0u);
  auto ledger = stream_ledger(2);  // batch 0 [cleared], then the stores
  for (auto h : hashes) EXPECT_TRUE(ledger.holds(1, h));
}

// A decode grows its sequence by a block every 4 tokens: the grant the client keeps pays for most of those
// blocks, so the engine asks the manager far less often than once per block.
TEST_F(g1_pool_client_test, a_growing_decode_spends_its_grant_without_asking) {
  backends::mock_engine eng(options(2048));  // a grant of 32 blocks
  hand_over(eng);
  run(eng, "warm", "abcdefgh", 2);
  const auto before = client->calls();
  auto r = run(eng, "long", "abcdefgh", 200);  // 50 new blocks
  EXPECT_EQ(r.tokens.size(), 200u);
  const auto asked = client->calls() - before;
  EXPECT_LT(asked, 10u) << "one question per new block would be 50";
  EXPECT_GT(asked, 0u);
}

TEST_F(g1_pool_client_test, blocks_the_manager_evicts_reach_the_engines_sink_with_their_bytes_and_leave_the_stream) {
  auto mo = options(8);  // 8 blocks of 4 tokens: the third prompt evicts the first's
  mo.tiers.host_blocks = 64;
  auto made = backends::mock_engine::create(mo);
  ASSERT_TRUE(made.ok()) << made.err().describe();
  auto& eng = **made;
  std::vector<std::pair<kv::block_hash, std::size_t>> sunk;  // (hash, bytes) in eviction order
  auto store = eng.release_tiers([&](kv::block_hash h, std::span<const std::byte> b) { sunk.emplace_back(h, b.size()); });
  ASSERT_NE(store, nullptr);
  hand_over(eng);
  std::set<kv::block_hash> first;
  for (int s = 0; s < 4; ++s) {
    const std::string p(13, static_cast<char>('a' + s));  // 3 full blocks + 1 token
    if (s == 0)
      for (auto h : kv::hash_blocks(*eng.tokenize(p), 4)) first.insert(h);
    run(eng, "p" + std::to_string(s), p, 2);
  }
  eng.drain_kv_events();  // the manager publishes what its pool did
  ASSERT_FALSE(sunk.empty()) << "G1 ran full: the manager evicted blocks and the engine copied them out";
  for (const auto& [h, bytes] : sunk) {
    EXPECT_EQ(bytes, eng.kv_block_bytes());
    EXPECT_TRUE(ask_manager(kv::pool_query::block_of, {h}).blocks.empty()) << "an evicted block left the manager's pool";
  }
  std::size_t of_first = 0;
  for (const auto& [h, bytes] : sunk) of_first += first.count(h);
  EXPECT_GT(of_first, 0u) << "the least recently used (the first prompt's) went first";
  auto ledger = stream_ledger(2);  // batch 0 [cleared], then the one drain
  for (const auto& [h, bytes] : sunk) EXPECT_FALSE(ledger.holds(1, h)) << "removed on the stream";
}

TEST_F(g1_pool_client_test, a_manager_that_is_gone_grants_nothing_and_the_engine_does_not_hang) {
  backends::mock_engine eng(options(64));
  hand_over(eng);
  run(eng, "warm", "abcdefgh", 2);
  caf::anon_send_exit(manager, caf::exit_reason::kill);
  manager = nullptr;
  backends::engine_request r;
  r.request_id = "after";
  r.prompt = *eng.tokenize("abcdefgh");
  r.max_tokens = 2;
  ASSERT_TRUE(eng.add_request(r).ok());
  // Each step asks the manager, gets no answer it can use and admits nothing; it returns.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(eng.step().outputs.empty());
  auto l = eng.load();
  EXPECT_EQ(l.active_kv_blocks, l.total_kv_blocks) << "its KV reported full: routers send it nothing";
}

}  // namespace
}  // namespace yard::actors
