// kv/tests/block_ledger_test.cpp — block_ledger: events in, the same set out as a snapshot;
// a ledger fed a block pool's events always equals the pool's own snapshot.
#include "kv/block_ledger.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <tuple>

#include "kv/block_pool.hpp"

namespace yard::kv {
namespace {

msg::kv_event ev(msg::kv_event_kind k, std::vector<std::uint64_t> hs, std::optional<std::uint64_t> parent = std::nullopt,
                 std::uint8_t tier = 1) {
  return msg::kv_event{k, std::move(hs), parent, tier};
}

using entry = std::tuple<std::uint8_t, std::uint64_t, std::optional<std::uint64_t>>;
std::set<entry> as_set(const std::vector<msg::kv_event>& events) {
  std::set<entry> out;
  for (const auto& e : events) {
    std::optional<std::uint64_t> parent = e.parent_hash;
    for (auto h : e.block_hashes) {
      out.emplace(e.tier, h, parent);
      parent = h;
    }
  }
  return out;
}

TEST(block_ledger, stored_chains_keep_parents_removed_drops_cleared_empties_every_tier) {
  block_ledger l;
  EXPECT_EQ(l.apply(std::vector{ev(msg::kv_event_kind::stored, {1, 2, 3}), ev(msg::kv_event_kind::stored, {9}, 3, 3)}), 0u);
  EXPECT_EQ(l.size(), 4u);
  EXPECT_EQ(l.size(3), 1u);
  auto snap = l.snapshot();
  ASSERT_EQ(snap.size(), 4u);
  EXPECT_EQ(as_set(snap), (std::set<entry>{{1, 1, std::nullopt}, {1, 2, 1}, {1, 3, 2}, {3, 9, 3}}));
  l.apply(std::vector{ev(msg::kv_event_kind::removed, {2, 77})});  // an unknown hash is no error
  EXPECT_FALSE(l.holds(1, 2));
  EXPECT_TRUE(l.holds(3, 9));
  l.apply(std::vector{ev(msg::kv_event_kind::cleared, {})});
  EXPECT_EQ(l.size(), 0u);
  EXPECT_TRUE(l.snapshot().empty());
}

TEST(block_ledger, a_tier_outside_1_to_3_is_counted_and_skipped) {
  block_ledger l;
  EXPECT_EQ(l.apply(std::vector{ev(msg::kv_event_kind::stored, {5}, std::nullopt, 0),
                                ev(msg::kv_event_kind::stored, {6}, std::nullopt, 4), ev(msg::kv_event_kind::stored, {7})}),
            2u);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_TRUE(l.holds(1, 7));
}

// Random allocation, commits, releases and evictions on a small pool: whatever the
// pool did, the ledger built from its events equals the pool's own snapshot.
TEST(block_ledger, fed_a_pools_events_it_equals_the_pools_snapshot) {
  block_pool_options o;
  o.num_blocks = 24;
  o.block_size = 4;
  block_pool pool(o);
  block_ledger ledger;
  std::mt19937_64 rng(7);
  std::vector<std::vector<block_id>> held;
  std::uint64_t next_hash = 1;
  for (int step = 0; step < 2000; ++step) {
    if (rng() % 3 != 0 || held.empty()) {
      std::vector<block_id> blocks;
      std::size_t n = 1 + rng() % 4;
      if (!pool.allocate(n, blocks)) {
        pool.release_all(held.front());
        held.erase(held.begin());
        continue;
      }
      std::optional<block_hash> parent;
      for (auto b : blocks) {
        block_hash h = next_hash++;
        pool.commit(b, h, parent);
        parent = h;
      }
      held.push_back(std::move(blocks));
    } else {
      std::size_t i = rng() % held.size();
      pool.release_all(held[i]);
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (step % 7 == 0) ledger.apply(pool.drain_events());
    if (step % 97 == 0) pool.evict_all_unreferenced();
  }
  ledger.apply(pool.drain_events());
  EXPECT_GT(pool.stats().evicted_blocks, 0u) << "the test must exercise eviction";
  EXPECT_EQ(as_set(ledger.snapshot()), as_set(pool.snapshot()));
}

}  // namespace
}  // namespace yard::kv
