// kv/tests/pool_call_test.cpp — serve(): a call's writes land before its question, in order; an allocation
// that evicts names each evicted block (hash, parent) in the answer while the pool keeps no callback; a drain's
// events go to the owner, not into the answer; writes naming a block that is out of range or not held are
// skipped and counted, never applied; a pin of more hashes than are cached takes what is cached; the counts
// come back after the call; and a pool driven through calls ends in the state a direct caller leaves.
#include <gtest/gtest.h>

#include <random>

#include "kv/pool_call.hpp"

namespace yard::kv {
namespace {

pool_call query(pool_query q, std::vector<block_hash> hashes = {}, std::size_t n = 0) {
  pool_call c;
  c.query = q;
  c.hashes = std::move(hashes);
  c.n = n;
  return c;
}

pool_write commit(block_id b, block_hash h, std::optional<block_hash> parent) {
  return pool_write{pool_write::kind::commit, b, h, parent};
}
pool_write release(block_id b) { return pool_write{pool_write::kind::release, b, 0, std::nullopt}; }

TEST(pool_call, writes_land_before_the_question_and_a_drain_goes_to_the_owner) {
  block_pool pool({4, 4, true, true});
  std::vector<msg::kv_event> drained;
  auto a = serve(pool, query(pool_query::allocate, {}, 2), drained);
  ASSERT_TRUE(a.ok);
  ASSERT_EQ(a.blocks.size(), 2u);
  EXPECT_EQ(a.num_free, 2u);
  EXPECT_EQ(a.num_referenced, 2u);
  auto c = query(pool_query::match_prefix, {11, 12});
  c.writes = {commit(a.blocks[0], 11, std::nullopt), commit(a.blocks[1], 12, 11), release(a.blocks[1]),
              release(a.blocks[0])};
  auto m = serve(pool, c, drained);
  EXPECT_EQ(m.count, 2u);  // the commits were applied first
  EXPECT_EQ(m.num_referenced, 0u);
  EXPECT_EQ(m.num_free, 4u);
  EXPECT_TRUE(drained.empty());
  auto d = serve(pool, query(pool_query::drain_events), drained);
  EXPECT_TRUE(d.events.empty());
  ASSERT_EQ(drained.size(), 1u);
  EXPECT_EQ(drained[0].kind, msg::kv_event_kind::stored);
  EXPECT_EQ(drained[0].block_hashes, (std::vector<block_hash>{11, 12}));
  auto s = serve(pool, query(pool_query::snapshot), drained);
  EXPECT_EQ(s.events.size(), 2u);
  auto b = serve(pool, query(pool_query::block_of, {12}), drained);
  EXPECT_EQ(b.blocks, (std::vector<block_id>{a.blocks[1]}));
  EXPECT_TRUE(serve(pool, query(pool_query::block_of, {99}), drained).blocks.empty());
}

TEST(pool_call, an_allocation_that_evicts_names_every_evicted_block_in_order) {
  block_pool pool({2, 4, true, true});
  std::vector<msg::kv_event> drained;
  auto a = serve(pool, query(pool_query::allocate, {}, 2), drained);
  auto c = query(pool_query::sync);
  c.writes = {commit(a.blocks[0], 21, std::nullopt), commit(a.blocks[1], 22, 21), release(a.blocks[0]),
              release(a.blocks[1])};
  serve(pool, c, drained);
  auto e = serve(pool, query(pool_query::allocate, {}, 2), drained);
  ASSERT_TRUE(e.ok);
  ASSERT_EQ(e.evicted.size(), 2u);
  EXPECT_EQ(e.evicted[0].block, a.blocks[0]);  // the LRU head first
  EXPECT_EQ(e.evicted[0].hash, 21u);
  EXPECT_FALSE(e.evicted[0].parent.has_value());
  EXPECT_EQ(e.evicted[1].hash, 22u);
  EXPECT_EQ(e.evicted[1].parent, std::optional<block_hash>(21));
  // The pool keeps no callback of its own once the call is answered.
  EXPECT_FALSE(static_cast<bool>(pool.take_evict_callback()));
  // Nothing is free now: an allocation is refused and changes nothing.
  auto f = serve(pool, query(pool_query::allocate, {}, 1), drained);
  EXPECT_FALSE(f.ok);
  EXPECT_TRUE(f.blocks.empty());
  EXPECT_EQ(f.num_referenced, 2u);
}

TEST(pool_call, writes_on_blocks_not_held_are_refused_and_pins_take_only_what_is_cached) {
  block_pool pool({4, 4, true, true});
  std::vector<msg::kv_event> drained;
  auto a = serve(pool, query(pool_query::allocate, {}, 1), drained);
  auto c = query(pool_query::sync);
  c.writes = {release(7), release(0xffffffffu), commit(3, 5, std::nullopt), commit(a.blocks[0], 31, std::nullopt),
              release(a.blocks[0]), release(a.blocks[0])};  // the second release: no reference left
  auto r = serve(pool, c, drained);
  EXPECT_EQ(r.refused, 4u);
  EXPECT_EQ(r.num_referenced, 0u);
  EXPECT_EQ(pool.match_prefix(std::vector<block_hash>{31}), 1u);
  auto p = serve(pool, query(pool_query::pin_cached, {31, 32, 33}, 3), drained);
  EXPECT_EQ(p.blocks.size(), 1u);  // only 31 is cached
  EXPECT_EQ(p.num_referenced, 1u);
  auto q = query(pool_query::acquire_cached, {31, 40}, 2);
  q.lookup = 2;
  EXPECT_EQ(serve(pool, q, drained).blocks.size(), 1u);
  EXPECT_EQ(pool.stats().lookup_blocks, 2u);
  EXPECT_EQ(pool.stats().hit_blocks, 1u);
}

// A random mix of calls through serve() leaves the pool as the same calls made directly do.
TEST(pool_call, served_calls_match_direct_calls) {
  block_pool served({16, 4, true, true}), direct({16, 4, true, true});
  std::vector<block_id> held_s, held_d;
  std::vector<msg::kv_event> drained, direct_events;
  std::mt19937 rng(7);
  block_hash next_hash = 1;
  for (int i = 0; i < 2000; ++i) {
    const int op = static_cast<int>(rng() % 4);
    if (op == 0) {
      const std::size_t n = 1 + rng() % 3;
      auto a = serve(served, query(pool_query::allocate, {}, n), drained);
      std::vector<block_id> got;
      ASSERT_EQ(a.ok, direct.allocate(n, got));
      ASSERT_EQ(a.blocks, got);
      held_s.insert(held_s.end(), a.blocks.begin(), a.blocks.end());
      held_d.insert(held_d.end(), got.begin(), got.end());
    } else if (op == 1 && !held_s.empty()) {
      const std::size_t k = rng() % held_s.size();
      const block_hash h = next_hash++;
      auto c = query(pool_query::sync);
      c.writes = {commit(held_s[k], h, std::nullopt)};
      serve(served, c, drained);
      direct.commit(held_d[k], h, std::nullopt);
    } else if (op == 2 && !held_s.empty()) {
      const std::size_t k = rng() % held_s.size();
      auto c = query(pool_query::sync);
      c.writes = {release(held_s[k])};
      serve(served, c, drained);
      direct.release(held_d[k]);
      held_s.erase(held_s.begin() + static_cast<std::ptrdiff_t>(k));
      held_d.erase(held_d.begin() + static_cast<std::ptrdiff_t>(k));
    } else {
      serve(served, query(pool_query::drain_events), drained);
      for (auto& e : direct.drain_events()) direct_events.push_back(std::move(e));
    }
    ASSERT_EQ(served.num_free(), direct.num_free());
  }
  serve(served, query(pool_query::drain_events), drained);
  for (auto& e : direct.drain_events()) direct_events.push_back(std::move(e));
  ASSERT_EQ(drained.size(), direct_events.size());
  for (std::size_t i = 0; i < drained.size(); ++i) {
    EXPECT_EQ(drained[i].kind, direct_events[i].kind);
    EXPECT_EQ(drained[i].block_hashes, direct_events[i].block_hashes);
  }
}

}  // namespace
}  // namespace yard::kv
