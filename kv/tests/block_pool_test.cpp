// kv/tests/block_pool_test.cpp — block_pool: allocation, prefix cache, LRU eviction, events.
#include "kv/block_pool.hpp"

#include <gtest/gtest.h>

namespace yard::kv {
namespace {

block_pool_options small(std::uint32_t n) {
  block_pool_options o;
  o.num_blocks = n;
  o.block_size = 4;
  return o;
}

TEST(block_pool, allocate_and_release_counts) {
  block_pool p(small(4));
  std::vector<block_id> a;
  EXPECT_TRUE(p.allocate(3, a));
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(p.num_free(), 1u);
  EXPECT_FALSE(p.allocate(2, a));  // all-or-nothing
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(p.stats().failed_allocations, 1u);
  p.release_all(a);
  EXPECT_EQ(p.num_free(), 4u);
  EXPECT_EQ(p.num_referenced(), 0u);
}

TEST(block_pool, commit_then_prefix_hit_shares_block) {
  block_pool p(small(8));
  std::vector<block_id> a;
  ASSERT_TRUE(p.allocate(2, a));
  p.commit(a[0], 11, std::nullopt);
  p.commit(a[1], 12, 11);
  std::vector<block_hash> hs{11, 12, 13};
  EXPECT_EQ(p.match_prefix(hs), 2u);
  std::vector<block_id> b;
  p.acquire_cached(hs, 2, 3, b);
  EXPECT_EQ(b, a);
  EXPECT_EQ(p.ref_count(a[0]), 2u);
  EXPECT_EQ(p.stats().hit_blocks, 2u);
  EXPECT_EQ(p.stats().lookup_blocks, 3u);
  // One chained "stored" event for both blocks.
  auto ev = p.drain_events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, msg::kv_event_kind::stored);
  EXPECT_EQ(ev[0].block_hashes, (std::vector<std::uint64_t>{11, 12}));
  EXPECT_FALSE(ev[0].parent_hash.has_value());
  EXPECT_EQ(ev[0].tier, 1);
  EXPECT_TRUE(p.drain_events().empty());
}

TEST(block_pool, released_cached_blocks_stay_until_evicted_lru_first) {
  block_pool p(small(3));
  std::vector<block_id> a, b;
  ASSERT_TRUE(p.allocate(1, a));
  p.commit(a[0], 1, std::nullopt);
  ASSERT_TRUE(p.allocate(1, b));
  p.commit(b[0], 2, std::nullopt);
  p.release(a[0]);  // oldest evictable
  p.release(b[0]);
  EXPECT_EQ(p.num_cached(), 2u);
  EXPECT_EQ(p.num_free(), 3u);
  p.drain_events();
  std::vector<block_id> c;
  ASSERT_TRUE(p.allocate(2, c));  // one never-used block, then evict hash 1 (LRU)
  EXPECT_EQ(p.num_cached(), 1u);
  std::vector<block_hash> h2{2};
  EXPECT_EQ(p.match_prefix(h2), 1u);
  auto ev = p.drain_events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, msg::kv_event_kind::removed);
  EXPECT_EQ(ev[0].block_hashes, (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(p.stats().evicted_blocks, 1u);
}

TEST(block_pool, prefix_hit_refreshes_lru_position) {
  block_pool p(small(2));
  std::vector<block_id> a;
  ASSERT_TRUE(p.allocate(2, a));
  p.commit(a[0], 1, std::nullopt);
  p.commit(a[1], 2, std::nullopt);
  p.release(a[0]);
  p.release(a[1]);
  std::vector<block_hash> h1{1};
  std::vector<block_id> b;
  p.acquire_cached(h1, 1, 1, b);  // touch 1
  p.release(b[0]);                 // now 2 is older
  std::vector<block_id> c;
  ASSERT_TRUE(p.allocate(1, c));
  EXPECT_EQ(p.match_prefix(h1), 1u);
  std::vector<block_hash> h2{2};
  EXPECT_EQ(p.match_prefix(h2), 0u);
}

TEST(block_pool, referenced_blocks_are_never_evicted) {
  block_pool p(small(2));
  std::vector<block_id> a;
  ASSERT_TRUE(p.allocate(2, a));
  p.commit(a[0], 5, std::nullopt);
  std::vector<block_id> b;
  EXPECT_FALSE(p.allocate(1, b));
  std::vector<block_hash> h{5};
  EXPECT_EQ(p.match_prefix(h), 1u);
}

TEST(block_pool, duplicate_hash_keeps_first_block) {
  block_pool p(small(4));
  std::vector<block_id> a;
  ASSERT_TRUE(p.allocate(2, a));
  p.commit(a[0], 9, std::nullopt);
  p.commit(a[1], 9, std::nullopt);  // same content computed twice
  EXPECT_EQ(p.num_cached(), 1u);
  EXPECT_EQ(p.hash_of(a[1]), std::nullopt);
  p.release(a[1]);  // unhashed: straight back to free, no event
  auto ev = p.drain_events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].block_hashes.size(), 1u);
}

TEST(block_pool, no_prefix_caching_means_no_hits_no_events) {
  auto o = small(4);
  o.enable_prefix_caching = false;
  block_pool p(o);
  std::vector<block_id> a;
  ASSERT_TRUE(p.allocate(1, a));
  p.commit(a[0], 1, std::nullopt);
  std::vector<block_hash> h{1};
  EXPECT_EQ(p.match_prefix(h), 0u);
  EXPECT_TRUE(p.drain_events().empty());
}

TEST(block_pool, snapshot_and_evict_all) {
  block_pool p(small(4));
  std::vector<block_id> a;
  ASSERT_TRUE(p.allocate(2, a));
  p.commit(a[0], 1, std::nullopt);
  p.commit(a[1], 2, 1);
  auto snap = p.snapshot();
  EXPECT_EQ(snap.size(), 2u);
  p.drain_events();
  p.release_all(a);
  p.evict_all_unreferenced();
  EXPECT_EQ(p.num_cached(), 0u);
  auto ev = p.drain_events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, msg::kv_event_kind::removed);
  EXPECT_EQ(ev[0].block_hashes.size(), 2u);
}

// The eviction hook sees each cached block (id, hash, parent) before it is
// reused, while it is still cached; pinned blocks are never evicted.
TEST(block_pool, evict_callback_before_reuse_and_pins_protect) {
  block_pool p(small(3));
  struct seen {
    block_id b;
    block_hash h;
    std::optional<block_hash> parent;
    bool still_cached;
  };
  std::vector<seen> ev;
  p.set_evict_callback([&](block_id b, block_hash h, std::optional<block_hash> par) {
    ev.push_back({b, h, par, p.block_of(h).has_value()});
  });
  std::vector<block_id> a;
  ASSERT_TRUE(p.allocate(3, a));
  p.commit(a[0], 10, std::nullopt);
  p.commit(a[1], 11, 10);
  p.commit(a[2], 12, 11);
  p.release_all(a);  // LRU order: 12, 11, 10
  std::vector<block_id> pin;
  const std::vector<block_hash> chain{10, 11, 12};
  p.pin_cached(chain, 1, pin);  // hold 10
  EXPECT_EQ(p.stats().hit_blocks, 0u);  // pins are not prefix hits
  std::vector<block_id> b;
  ASSERT_TRUE(p.allocate(2, b));
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].h, 12u);
  EXPECT_EQ(ev[0].parent, std::optional<block_hash>(11));
  EXPECT_EQ(ev[0].b, a[2]);
  EXPECT_TRUE(ev[0].still_cached);
  EXPECT_EQ(ev[1].h, 11u);
  EXPECT_FALSE(p.allocate(1, b));  // 10 is pinned
  p.release_all(pin);
  p.release_all(b);
  p.evict_all_unreferenced();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[2].h, 10u);
  EXPECT_EQ(ev[2].parent, std::nullopt);
}

TEST(block_pool, memory_grows_lazily) {
  block_pool_options o;
  o.num_blocks = 1u << 30;  // would be GBs if eagerly allocated
  block_pool p(o);
  std::vector<block_id> a;
  ASSERT_TRUE(p.allocate(3, a));
  EXPECT_EQ(p.num_free(), (1u << 30) - 3);
}

}  // namespace
}  // namespace yard::kv
