// kv/tests/approx_indexer_test.cpp — approx_indexer: record/match, TTL, LRU capacity, worker removal.
#include "kv/approx_indexer.hpp"

#include <gtest/gtest.h>

namespace yard::kv {
namespace {

std::uint32_t blocks_of(const std::vector<overlap>& v, worker_index w) {
  for (auto o : v)
    if (o.worker == w) return o.blocks;
  return 0;
}

TEST(approx_indexer, routed_prefix_matches) {
  approx_indexer ix;
  std::vector<block_hash> a{1, 2, 3, 4}, b{1, 2, 9};
  ix.record(0, a, 0);
  ix.record(1, b, 0);
  auto m = ix.find_matches(std::vector<block_hash>{1, 2, 3, 7}, 1);
  EXPECT_EQ(blocks_of(m, 0), 3u);
  EXPECT_EQ(blocks_of(m, 1), 2u);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(ix.size(), 7u);
  EXPECT_EQ(ix.worker_blocks(0), 4u);
}

TEST(approx_indexer, entries_expire_after_ttl_unless_routed_again) {
  approx_indexer ix({/*ttl_ms=*/100, /*capacity=*/1000});
  std::vector<block_hash> a{1, 2}, b{5, 6};
  ix.record(0, a, 0);
  ix.record(1, b, 0);
  ix.record(1, b, 80);  // refreshed
  EXPECT_EQ(blocks_of(ix.find_matches(a, 100), 0), 2u);  // exactly at the TTL: still there
  EXPECT_EQ(blocks_of(ix.find_matches(a, 101), 0), 0u);
  EXPECT_EQ(blocks_of(ix.find_matches(b, 150), 1), 2u);
  EXPECT_EQ(ix.size(), 2u);
  EXPECT_EQ(ix.worker_blocks(0), 0u);
}

TEST(approx_indexer, capacity_drops_least_recently_routed) {
  approx_indexer ix({1e9, /*capacity=*/4});
  std::vector<block_hash> a{1, 2}, b{3, 4}, c{5, 6};
  ix.record(0, a, 0);
  ix.record(0, b, 1);
  ix.record(0, a, 2);  // a is now the most recent
  ix.record(0, c, 3);  // evicts b
  EXPECT_EQ(ix.size(), 4u);
  EXPECT_EQ(blocks_of(ix.find_matches(a, 4), 0), 2u);
  EXPECT_EQ(blocks_of(ix.find_matches(b, 4), 0), 0u);
  EXPECT_EQ(blocks_of(ix.find_matches(c, 4), 0), 2u);
}

TEST(approx_indexer, remove_worker) {
  approx_indexer ix;
  std::vector<block_hash> a{1, 2};
  ix.record(0, a, 0);
  ix.record(1, a, 0);
  ix.remove_worker(0);
  auto m = ix.find_matches(a, 0);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].worker, 1u);
  EXPECT_EQ(ix.size(), 2u);
}

}  // namespace
}  // namespace yard::kv
