// kv/tests/indexer_test.cpp — kv_indexer: add/remove/clear, matching, sequence gaps, snapshots, removal, concurrency.
#include "kv/indexer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <array>
#include <map>
#include <random>
#include <set>

namespace yard::kv {
namespace {

msg::kv_event stored(std::vector<std::uint64_t> h, std::uint8_t tier = 1) {
  msg::kv_event e;
  e.kind = msg::kv_event_kind::stored;
  e.block_hashes = std::move(h);
  e.tier = tier;
  return e;
}
msg::kv_event removed(std::vector<std::uint64_t> h, std::uint8_t tier = 1) {
  auto e = stored(std::move(h), tier);
  e.kind = msg::kv_event_kind::removed;
  return e;
}
msg::kv_event cleared() {
  msg::kv_event e;
  e.kind = msg::kv_event_kind::cleared;
  return e;
}

overlap of(const std::vector<overlap>& v, worker_index w) {
  for (auto o : v)
    if (o.worker == w) return o;
  return overlap{w, 0, 0};
}

// A naive index: per worker, per tier, a set of hashes.
using naive_index = std::vector<std::array<std::set<std::uint64_t>, 3>>;

// find_matches computed the slow way from `naive`, compared field by field.
void expect_same_matches(const kv_indexer& ix, const naive_index& naive, const std::vector<block_hash>& q,
                         int step) {
  std::map<worker_index, overlap> want;
  for (worker_index v = 0; v < naive.size(); ++v) {
    overlap e{v, 0, 0, 0, 0};
    bool t1 = true;
    for (auto h : q) {
      int best = 0;
      for (int t = 3; t >= 1; --t)
        if (naive[v][t - 1].count(h)) best = t;
      if (best == 0) break;
      ++e.blocks_any;
      t1 = t1 && best == 1;
      if (t1) ++e.blocks;
      if (best == 2) ++e.blocks_g2;
      if (best == 3) ++e.blocks_g3;
    }
    if (e.blocks_any) want[v] = e;
  }
  auto got = ix.find_matches(q);
  ASSERT_EQ(got.size(), want.size()) << "step " << step;
  for (const auto& g : got) {
    auto it = want.find(g.worker);
    ASSERT_NE(it, want.end()) << "worker " << g.worker << " step " << step;
    EXPECT_EQ(g.blocks, it->second.blocks) << "worker " << g.worker << " step " << step;
    EXPECT_EQ(g.blocks_any, it->second.blocks_any) << "worker " << g.worker << " step " << step;
    EXPECT_EQ(g.blocks_g2, it->second.blocks_g2) << "worker " << g.worker << " step " << step;
    EXPECT_EQ(g.blocks_g3, it->second.blocks_g3) << "worker " << g.worker << " step " << step;
  }
}

indexer_options small() {
  indexer_options o;
  o.shards = 4;
  o.max_workers = 64;
  o.initial_capacity = 16;  // forces growth in the tests
  return o;
}

TEST(kv_indexer, prefix_match_per_worker) {
  kv_indexer ix(small());
  ix.apply_events(0, std::vector{stored({1, 2, 3, 4})});
  ix.apply_events(1, std::vector{stored({1, 2})});
  ix.apply_events(2, std::vector{stored({2, 3, 4})});  // no block 1: no prefix
  std::vector<block_hash> q{1, 2, 3, 4, 5};
  auto m = ix.find_matches(q);
  EXPECT_EQ(of(m, 0).blocks, 4u);
  EXPECT_EQ(of(m, 1).blocks, 2u);
  EXPECT_EQ(of(m, 2).blocks, 0u);
  EXPECT_EQ(m.size(), 2u);  // only workers with a match are listed
  EXPECT_EQ(ix.num_blocks(), 4u);
  EXPECT_EQ(ix.worker_blocks(0), 4u);
}

TEST(kv_indexer, match_must_be_consecutive) {
  kv_indexer ix(small());
  ix.apply_events(0, std::vector{stored({1, 2, 4})});
  auto m = ix.find_matches(std::vector<block_hash>{1, 2, 3, 4});
  EXPECT_EQ(of(m, 0).blocks, 2u);
}

TEST(kv_indexer, remove_and_clear) {
  kv_indexer ix(small());
  ix.apply_events(0, std::vector{stored({1, 2, 3})});
  ix.apply_events(1, std::vector{stored({1, 2, 3})});
  ix.apply_events(0, std::vector{removed({2})});
  std::vector<block_hash> q{1, 2, 3};
  EXPECT_EQ(of(ix.find_matches(q), 0).blocks, 1u);
  EXPECT_EQ(of(ix.find_matches(q), 1).blocks, 3u);
  ix.apply_events(1, std::vector{cleared()});
  EXPECT_EQ(of(ix.find_matches(q), 1).blocks, 0u);
  EXPECT_EQ(ix.worker_blocks(1), 0u);
  EXPECT_EQ(ix.num_blocks(), 2u);  // worker 0 still has 1 and 3
  // Removing what is not there changes nothing.
  ix.apply_events(0, std::vector{removed({99, 2})});
  EXPECT_EQ(ix.worker_blocks(0), 2u);
}

TEST(kv_indexer, events_in_one_batch_apply_in_order) {
  kv_indexer ix(small());
  ix.apply_events(0, std::vector{stored({1, 2}), removed({2}), cleared(), stored({7}), removed({7}), stored({7, 8})});
  auto m = ix.find_matches(std::vector<block_hash>{7, 8});
  EXPECT_EQ(of(m, 0).blocks, 2u);
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{1}), 0).blocks, 0u);
  EXPECT_EQ(ix.worker_blocks(0), 2u);
}

TEST(kv_indexer, tiers_count_separately) {
  kv_indexer ix(small());
  ix.apply_events(0, std::vector{stored({1, 2}, 1), stored({3, 4}, 2)});
  auto o = of(ix.find_matches(std::vector<block_hash>{1, 2, 3, 4}), 0);
  EXPECT_EQ(o.blocks, 2u);
  EXPECT_EQ(o.blocks_any, 4u);
  ix.apply_events(0, std::vector{removed({3}, 2)});
  o = of(ix.find_matches(std::vector<block_hash>{1, 2, 3, 4}), 0);
  EXPECT_EQ(o.blocks_any, 2u);
  // The same hash in two tiers is two entries; removing one tier keeps the other.
  ix.apply_events(0, std::vector{stored({1}, 3), removed({1}, 1)});
  o = of(ix.find_matches(std::vector<block_hash>{1, 2}), 0);
  EXPECT_EQ(o.blocks, 0u);
  EXPECT_EQ(o.blocks_any, 2u);
}

// Lower-tier hits are counted by the best tier a worker holds each block in,
// so a router can weight them (kv/routing_policy.hpp weighted_overlap_blocks).
TEST(kv_indexer, lower_tier_blocks_counted_by_best_tier) {
  kv_indexer ix(small());
  ix.apply_events(0, std::vector{stored({1}, 1), stored({2, 3}, 2), stored({3, 4, 5}, 3), stored({5}, 1)});
  ix.apply_events(1, std::vector{stored({1, 2}, 3)});
  auto m = ix.find_matches(std::vector<block_hash>{1, 2, 3, 4, 5, 6});
  auto o = of(m, 0);
  EXPECT_EQ(o.blocks, 1u);
  EXPECT_EQ(o.blocks_any, 5u);
  EXPECT_EQ(o.blocks_g2, 2u);  // 2, 3 (3 is also in tier 3: the best tier counts)
  EXPECT_EQ(o.blocks_g3, 1u);  // 4; 5 is in tier 1 past the gap
  auto o1 = of(m, 1);
  EXPECT_EQ(o1.blocks, 0u);
  EXPECT_EQ(o1.blocks_any, 2u);
  EXPECT_EQ(o1.blocks_g2, 0u);
  EXPECT_EQ(o1.blocks_g3, 2u);
}

TEST(kv_indexer, many_holders_overflow_and_shrink) {
  kv_indexer ix(small());
  for (worker_index w = 0; w < 20; ++w) ix.apply_events(w, std::vector{stored({42, 43})});
  auto m = ix.find_matches(std::vector<block_hash>{42, 43});
  EXPECT_EQ(m.size(), 20u);
  for (worker_index w = 0; w < 18; ++w) ix.apply_events(w, std::vector{removed({42})});
  m = ix.find_matches(std::vector<block_hash>{42, 43});
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(of(m, 18).blocks, 2u);
  EXPECT_EQ(of(m, 19).blocks, 2u);
}

TEST(kv_indexer, growth_and_deletion_keep_every_key_findable) {
  kv_indexer ix(small());
  std::vector<std::uint64_t> hs;
  for (std::uint64_t i = 0; i < 5000; ++i) hs.push_back(i * 0x10001 + 1);
  ix.apply_events(3, std::vector{stored(hs)});
  EXPECT_EQ(ix.num_blocks(), 5000u);
  std::vector<std::uint64_t> odd;
  for (std::size_t i = 1; i < hs.size(); i += 2) odd.push_back(hs[i]);
  ix.apply_events(3, std::vector{removed(odd)});
  EXPECT_EQ(ix.num_blocks(), 2500u);
  for (std::size_t i = 0; i < hs.size(); ++i) {
    auto m = ix.find_matches(std::vector<block_hash>{hs[i]});
    EXPECT_EQ(of(m, 3).blocks, i % 2 == 0 ? 1u : 0u) << i;
  }
}

TEST(kv_indexer, hash_zero_is_a_valid_block) {
  kv_indexer ix(small());
  ix.apply_events(0, std::vector{stored({0, 5})});
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{0, 5}), 0).blocks, 2u);
}

TEST(kv_indexer, in_order_batches_need_nothing) {
  kv_indexer ix(small());
  EXPECT_EQ(ix.apply_batch(0, 0, std::vector{stored({1})}), batch_action::none);
  EXPECT_EQ(ix.apply_batch(0, 1, std::vector{stored({2})}), batch_action::none);
  EXPECT_FALSE(ix.needs_resync(0));
  EXPECT_EQ(ix.stats().batches, 2u);
}

TEST(kv_indexer, gap_requests_snapshot_until_applied) {
  kv_indexer ix(small());
  EXPECT_EQ(ix.apply_batch(0, 0, std::vector{stored({1, 2})}), batch_action::none);
  // Batch 1 lost: batch 2 is applied but the index may be wrong.
  EXPECT_EQ(ix.apply_batch(0, 2, std::vector{stored({9})}), batch_action::request_snapshot);
  EXPECT_TRUE(ix.needs_resync(0));
  EXPECT_EQ(ix.stats().gaps, 1u);
  // Late batch 1 arrives: stale, dropped.
  EXPECT_EQ(ix.apply_batch(0, 1, std::vector{stored({3})}), batch_action::ignored_stale);
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{3}), 0).blocks, 0u);
  // Still resyncing: later batches keep asking.
  EXPECT_EQ(ix.apply_batch(0, 3, std::vector<msg::kv_event>{}), batch_action::request_snapshot);
  // Snapshot as of seq 3 replaces the worker's set.
  ix.apply_snapshot(0, 3, std::vector{stored({1, 2, 3})});
  EXPECT_FALSE(ix.needs_resync(0));
  auto o = of(ix.find_matches(std::vector<block_hash>{1, 2, 3, 9}), 0);
  EXPECT_EQ(o.blocks, 3u);
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{9}), 0).blocks, 0u);
  EXPECT_EQ(ix.apply_batch(0, 4, std::vector{stored({4})}), batch_action::none);
}

// Streams: A (an engine incarnation) then B (the next). A's late answers must
// not bring its blocks back once B has begun.
TEST(kv_indexer, a_dead_streams_late_snapshot_and_batches_are_dropped) {
  kv_indexer ix(small());
  const std::uint64_t a = 1000, b = 2000;
  EXPECT_EQ(ix.apply_batch(0, 0, std::vector{cleared(), stored({1, 2})}, a), batch_action::none);
  EXPECT_EQ(ix.apply_batch(0, 0, std::vector{cleared(), stored({5})}, b), batch_action::none);
  EXPECT_EQ(ix.stats().new_streams, 1u);
  EXPECT_FALSE(ix.apply_snapshot(0, 1, std::vector{stored({1, 2})}, a));
  EXPECT_EQ(ix.apply_batch(0, 1, std::vector{stored({3})}, a), batch_action::ignored_stale);
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{1}), 0).blocks, 0u);
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{3}), 0).blocks, 0u);
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{5}), 0).blocks, 1u);
  EXPECT_TRUE(ix.stale_stream(0, a));
  EXPECT_FALSE(ix.stale_stream(0, b));
  EXPECT_FALSE(ix.stale_stream(0, 0));  // a sender without streams: sequence numbers decide
  // B goes on in order; B's own snapshot applies.
  EXPECT_EQ(ix.apply_batch(0, 1, std::vector{stored({6})}, b), batch_action::none);
  EXPECT_TRUE(ix.apply_snapshot(0, 1, std::vector{stored({5, 6})}, b));
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{5, 6}), 0).blocks, 2u);
}

TEST(kv_indexer, a_newer_stream_seen_mid_way_asks_for_a_snapshot) {
  kv_indexer ix(small());
  EXPECT_EQ(ix.apply_batch(0, 0, std::vector{cleared(), stored({1})}, 10), batch_action::none);
  EXPECT_EQ(ix.apply_batch(0, 1, std::vector{stored({2})}, 10), batch_action::none);
  // Stream 20's batch 0 was lost; its batch 1 is not A's batch 2.
  EXPECT_EQ(ix.apply_batch(0, 1, std::vector{stored({7})}, 20), batch_action::request_snapshot);
  EXPECT_TRUE(ix.apply_snapshot(0, 1, std::vector{stored({7})}, 20));
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{1}), 0).blocks, 0u);
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{7}), 0).blocks, 1u);
  EXPECT_FALSE(ix.needs_resync(0));
}

TEST(kv_indexer, a_stream_opening_with_a_smaller_id_is_still_taken) {
  // The sender's clock stepped back across a restart: its new stream's id is
  // smaller, but batch 0 opening with [cleared] always starts the newest stream.
  kv_indexer ix(small());
  EXPECT_EQ(ix.apply_batch(0, 0, std::vector{cleared(), stored({1})}, 500), batch_action::none);
  EXPECT_EQ(ix.apply_batch(0, 0, std::vector{cleared(), stored({2})}, 300), batch_action::none);
  EXPECT_EQ(ix.apply_batch(0, 1, std::vector{stored({3})}, 300), batch_action::none);
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{2, 3}), 0).blocks, 2u);
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{1}), 0).blocks, 0u);
  EXPECT_FALSE(ix.apply_snapshot(0, 0, std::vector{stored({1})}, 200));
}

TEST(kv_indexer, first_batch_not_at_zero_requests_snapshot) {
  kv_indexer ix(small());
  EXPECT_EQ(ix.apply_batch(5, 17, std::vector{stored({1})}), batch_action::request_snapshot);
  EXPECT_TRUE(ix.needs_resync(5));
}

TEST(kv_indexer, duplicate_batch_is_dropped) {
  kv_indexer ix(small());
  ix.apply_batch(0, 0, std::vector{stored({1})});
  ix.apply_batch(0, 1, std::vector{removed({1})});
  EXPECT_EQ(ix.apply_batch(0, 0, std::vector{stored({1})}), batch_action::ignored_stale);
  EXPECT_EQ(ix.worker_blocks(0), 0u);
  EXPECT_EQ(ix.stats().stale, 1u);
}

// A restarted worker's stream starts over at batch 0 with "cleared": the old blocks go and the
// new numbering is followed (an old-style batch 0 without cleared is still a stale duplicate).
TEST(kv_indexer, batch_zero_opening_with_cleared_starts_a_new_stream) {
  kv_indexer ix(small());
  ix.apply_batch(0, 0, std::vector{cleared()});
  ix.apply_batch(0, 1, std::vector{stored({1, 2})});
  ix.apply_batch(0, 2, std::vector{stored({3})});
  EXPECT_EQ(ix.apply_batch(0, 0, std::vector{cleared()}), batch_action::none);
  EXPECT_EQ(ix.worker_blocks(0), 0u);
  EXPECT_EQ(ix.stats().new_streams, 1u);
  EXPECT_EQ(ix.apply_batch(0, 1, std::vector{stored({7})}), batch_action::none);
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{7}), 0).blocks, 1u);
  EXPECT_EQ(ix.apply_batch(0, 0, std::vector{stored({9})}), batch_action::ignored_stale);
  EXPECT_FALSE(ix.needs_resync(0));
}

TEST(kv_indexer, malformed_events_skipped_and_resynced) {
  kv_indexer ix(small());
  msg::kv_event bad_kind = stored({5});
  bad_kind.kind = static_cast<msg::kv_event_kind>(7);  // the decoder refuses unknown names; in-process values are still checked
  msg::kv_event bad_tier = stored({6}, 0);
  msg::kv_event bad_tier2 = stored({7}, 9);
  EXPECT_EQ(ix.apply_batch(0, 0, std::vector{stored({1}), bad_kind, bad_tier, bad_tier2, stored({2})}),
            batch_action::request_snapshot);
  EXPECT_EQ(ix.stats().malformed, 3u);
  EXPECT_EQ(of(ix.find_matches(std::vector<block_hash>{1, 2}), 0).blocks, 2u);  // good events still applied
  EXPECT_EQ(ix.num_blocks(), 2u);
  // Out-of-range worker index: dropped, never a crash.
  EXPECT_EQ(ix.apply_batch(1000, 0, std::vector{stored({1})}), batch_action::ignored_stale);
  EXPECT_FALSE(ix.apply_events(1000, std::vector{stored({1})}));
}

TEST(kv_indexer, remove_worker_drops_blocks_and_sequence) {
  kv_indexer ix(small());
  ix.apply_batch(0, 0, std::vector{stored({1, 2, 3})});
  ix.apply_batch(1, 0, std::vector{stored({1, 2})});
  ix.remove_worker(0);
  auto m = ix.find_matches(std::vector<block_hash>{1, 2, 3});
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].worker, 1u);
  EXPECT_EQ(ix.num_blocks(), 2u);
  // The index may be reused by a new worker starting at seq 0.
  EXPECT_EQ(ix.apply_batch(0, 0, std::vector{stored({8})}), batch_action::none);
}

TEST(kv_indexer, empty_query_and_empty_index) {
  kv_indexer ix(small());
  EXPECT_TRUE(ix.find_matches(std::vector<block_hash>{}).empty());
  EXPECT_TRUE(ix.find_matches(std::vector<block_hash>{1, 2}).empty());
}

// The index against the obvious implementation (per worker, one hash set per tier), on
// random stores, removes and clears over few hashes (so holders pile up past the inline
// slots) and random queries along chains and off them: every result field must agree.
TEST(kv_indexer, randomized_equivalence_with_a_naive_index) {
  for (bool shared : {false, true}) {
    indexer_options o = small();
    o.initial_capacity = 16;  // growth and backward-shift deletion get exercised
    o.shared_readers = shared;
    kv_indexer ix(o);
    const std::uint32_t workers = 24;
    naive_index naive(workers);
    std::mt19937_64 rng(shared ? 11 : 5);
    auto pick = [&](std::uint64_t n) { return rng() % n; };
    for (int step = 0; step < 4000; ++step) {
      auto w = static_cast<worker_index>(pick(workers));
      std::uint8_t tier = static_cast<std::uint8_t>(1 + pick(3));
      std::uint64_t r = pick(100);
      if (r < 2) {
        ix.apply_events(w, std::vector{cleared()});
        for (auto& t : naive[w]) t.clear();
        continue;
      }
      std::vector<std::uint64_t> hs;
      std::uint64_t start = pick(64), len = 1 + pick(12);
      for (std::uint64_t k = 0; k < len; ++k) hs.push_back(1 + (start + k) % 64);
      if (r < 70) {
        ix.apply_events(w, std::vector{stored(hs, tier)});
        naive[w][tier - 1].insert(hs.begin(), hs.end());
      } else {
        ix.apply_events(w, std::vector{removed(hs, tier)});
        for (auto h : hs) naive[w][tier - 1].erase(h);
      }
      if (step % 10 != 0) continue;
      std::vector<block_hash> q;
      std::uint64_t qs = pick(64), ql = 1 + pick(40);
      for (std::uint64_t k = 0; k < ql; ++k) q.push_back(pick(8) == 0 ? 1000 + pick(5) : 1 + (qs + k) % 64);
      expect_same_matches(ix, naive, q, step);
    }
  }
}

// Shaped like a serving fleet: workers store whole prefix chains from block 0,
// evict from the tail, and move blocks between tiers (offload: tier 1 -> 2 -> 3),
// so long runs of consecutive blocks share one holder set, which find_matches
// skips over, and the sets that differ often differ only by a tier. 300 workers
// on 40 chains put hundreds of holders on the shared roots (the out-of-line
// holder lists grow and shrink through every size class).
TEST(kv_indexer, randomized_equivalence_on_prefix_chains) {
  indexer_options o = small();
  o.max_workers = 300;
  o.initial_capacity = 16;
  kv_indexer ix(o);
  const std::uint32_t workers = 300, chains = 40, len = 48;
  naive_index naive(workers);
  std::mt19937_64 rng(23);
  auto pick = [&](std::uint64_t n) { return rng() % n; };
  // Chain c shares its first (c % 4) * 8 blocks with chain c - c % 4 (a family), then goes its own way.
  auto hash_at = [&](std::uint64_t c, std::uint64_t i) -> std::uint64_t {
    std::uint64_t root = c - c % 4, shared = (c % 4) * 8;
    return i < shared ? 1 + root * 1000 + i : 1 + c * 1000 + i;
  };
  std::vector<std::vector<std::uint32_t>> held(workers, std::vector<std::uint32_t>(chains, 0));  // tier-1 length
  for (int step = 0; step < 6000; ++step) {
    auto w = static_cast<worker_index>(pick(workers));
    auto c = pick(chains);
    std::uint64_t r = pick(100);
    std::vector<std::uint64_t> hs;
    if (r < 55) {  // store a chain prefix in tier 1
      std::uint32_t n = 1 + static_cast<std::uint32_t>(pick(len));
      for (std::uint32_t i = 0; i < n; ++i) hs.push_back(hash_at(c, i));
      ix.apply_events(w, std::vector{stored(hs, 1)});
      naive[w][0].insert(hs.begin(), hs.end());
      held[w][c] = std::max(held[w][c], n);
    } else if (r < 75) {  // evict a tail
      std::uint32_t n = held[w][c];
      if (!n) continue;
      std::uint32_t keep = static_cast<std::uint32_t>(pick(n));
      for (std::uint32_t i = keep; i < n; ++i) hs.push_back(hash_at(c, i));
      auto tier = static_cast<std::uint8_t>(1 + pick(3));
      ix.apply_events(w, std::vector{removed(hs, tier)});
      for (auto h : hs) naive[w][tier - 1].erase(h);
      if (tier == 1) held[w][c] = keep;
    } else if (r < 97) {  // move a stretch one tier down (offload) or back up (onboard)
      std::uint32_t a = static_cast<std::uint32_t>(pick(len)), b = a + 1 + static_cast<std::uint32_t>(pick(len - a));
      for (std::uint32_t i = a; i < b; ++i) hs.push_back(hash_at(c, i));
      auto from = static_cast<std::uint8_t>(1 + pick(3));
      auto to = static_cast<std::uint8_t>(from == 3 ? 2 : from + 1);
      if (pick(2)) std::swap(from, to);
      ix.apply_events(w, std::vector{removed(hs, from), stored(hs, to)});
      for (auto h : hs) naive[w][from - 1].erase(h);
      naive[w][to - 1].insert(hs.begin(), hs.end());
    } else {
      ix.apply_events(w, std::vector{cleared()});
      for (auto& t : naive[w]) t.clear();
      for (auto& h : held[w]) h = 0;
      continue;
    }
    if (step % 7 != 0) continue;
    std::vector<block_hash> q;
    auto qc = pick(chains);
    std::uint32_t ql = 1 + static_cast<std::uint32_t>(pick(len + 8));
    for (std::uint32_t i = 0; i < ql; ++i) q.push_back(i < len ? hash_at(qc, i) : 999999 + i);
    expect_same_matches(ix, naive, q, step);
    if (HasFatalFailure()) return;
  }
}

TEST(kv_indexer, readers_see_consistent_state_while_a_writer_floods) {
  // Worker 0's prefix {1..8} never changes; worker 1 floods stores/removes of
  // other hashes. Every concurrent match must still see worker 0's 8 blocks.
  indexer_options o = small();
  o.max_events_per_lock = 16;
  o.shared_readers = true;
  kv_indexer ix(o);
  std::vector<std::uint64_t> stable{1, 2, 3, 4, 5, 6, 7, 8};
  ix.apply_events(0, std::vector{stored(stable)});
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::vector<std::uint64_t> hs;
    for (std::uint64_t i = 0; i < 2000; ++i) hs.push_back(1000 + i);
    for (int round = 0; round < 50; ++round) {
      ix.apply_events(1, std::vector{stored(hs)});
      ix.apply_events(1, std::vector{removed(hs)});
    }
    stop = true;
  });
  std::vector<block_hash> q(stable.begin(), stable.end());
  std::vector<overlap> out;
  std::uint64_t checks = 0;
  while (!stop || checks < 100) {
    ix.find_matches(q, out);
    ASSERT_EQ(of(out, 0).blocks, 8u);
    ++checks;
  }
  writer.join();
  EXPECT_EQ(ix.worker_blocks(1), 0u);
  EXPECT_EQ(ix.num_blocks(), 8u);
}

}  // namespace
}  // namespace yard::kv
