// kv/tests/tier_manager_test.cpp — tier_manager: G1 -> G2 -> G3 cascade, prefix
// lookup, byte-identical onboarding, salt isolation, onboard planning, events, restart.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "kv/block_hash.hpp"
#include "kv/block_pool.hpp"
#include "kv/tiers/tier_manager.hpp"

namespace yard::kv::tiers {
namespace {
namespace fs = std::filesystem;

constexpr std::size_t block_bytes = 2048;

bytes make_block(std::uint64_t seed) {
  bytes b(block_bytes);
  std::mt19937_64 rng(seed);
  for (auto& x : b) x = static_cast<std::byte>(rng());
  return b;
}

struct temp_dir {
  fs::path path = fs::temp_directory_path() / ("yard_tiermgr_test_" + std::to_string(::getpid()));
  temp_dir() { fs::remove_all(path); }
  ~temp_dir() { std::error_code ec; fs::remove_all(path, ec); }
};

std::unique_ptr<tier_manager> make(const fs::path& dir, std::size_t g2_cap, std::size_t g3_cap) {
  tier_manager_options o;
  o.g2.capacity_blocks = g2_cap;
  disk_tier_options d;
  d.dir = dir;
  d.capacity_blocks = g3_cap;
  o.g3 = d;
  auto r = tier_manager::create(o);
  EXPECT_TRUE(r.ok());
  return std::move(r.value());
}

std::vector<token_id> tokens(std::size_t n, token_id base) {
  std::vector<token_id> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = base + static_cast<token_id>(i);
  return t;
}

// Waits for G3's asynchronous writes (cascades are fire-and-forget).
void settle(tier_manager& m, std::size_t expect_g3) {
  for (int i = 0; i < 2000 && m.g3()->size() < expect_g3; ++i) ::usleep(1000);
}

TEST(tier_manager, g1_eviction_cascades_to_g2_then_g3_and_onboards_identical_bytes) {
  temp_dir d;
  auto m = make(d.path, 4, 100);
  // A real G1: pool of 4 blocks; evictions come out as "removed" events.
  block_pool g1({.num_blocks = 4, .block_size = 16});
  auto prompt = tokens(16 * 12, 1000);
  auto hashes = hash_blocks(prompt, 16);
  ASSERT_EQ(hashes.size(), 12u);
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    std::vector<block_id> b;
    ASSERT_TRUE(g1.allocate(1, b));
    g1.commit(b[0], hashes[i], i ? std::optional(hashes[i - 1]) : std::nullopt);
    g1.release(b[0]);
    for (auto& e : g1.drain_events())
      if (e.kind == msg::kv_event_kind::removed)
        for (auto h : e.block_hashes) m->offload(h, make_block(h));  // engine copies G1 bytes out
  }
  settle(*m, 4);
  // G1 holds the last 4, G2 the 4 before, G3 the first 4.
  EXPECT_EQ(g1.match_prefix(std::span(hashes).subspan(8)), 4u);
  auto hit = m->lookup_prefix(hashes);
  EXPECT_EQ(hit.g3, 4u);
  EXPECT_EQ(hit.g2, 4u);
  EXPECT_EQ(hit.total(), 8u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_TRUE(m->g3()->contains(hashes[i]));
  for (std::size_t i = 4; i < 8; ++i) EXPECT_TRUE(m->g2().contains(hashes[i]));

  std::vector<bytes> bufs(8, bytes(block_bytes));
  std::vector<std::span<std::byte>> out(bufs.begin(), bufs.end());
  EXPECT_EQ(m->onboard(hashes, 8, out), 8u);
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(bufs[i], make_block(hashes[i])) << i;

  // Events: tier 2 stored/removed and tier 3 stored, in order.
  auto ev = m->drain_events();
  std::size_t s2 = 0, r2 = 0, s3 = 0;
  for (auto& e : ev) {
    if (e.kind == msg::kv_event_kind::stored && e.tier == 2) s2 += e.block_hashes.size();
    if (e.kind == msg::kv_event_kind::removed && e.tier == 2) r2 += e.block_hashes.size();
    if (e.kind == msg::kv_event_kind::stored && e.tier == 3) s3 += e.block_hashes.size();
  }
  EXPECT_EQ(s2, 8u);
  EXPECT_EQ(r2, 4u);
  EXPECT_EQ(s3, 4u);
  EXPECT_TRUE(m->drain_events().empty());
}

TEST(tier_manager, another_salt_never_reads_a_tenants_blocks) {
  temp_dir d;
  auto m = make(d.path, 2, 100);
  auto prompt = tokens(64, 7);
  auto a = hash_blocks(prompt, 16, std::string_view("tenant-a"));
  auto b = hash_blocks(prompt, 16, std::string_view("tenant-b"));
  for (auto h : a) m->offload(h, make_block(h));  // 2 in G2, 2 cascade to G3
  settle(*m, 2);
  EXPECT_EQ(m->lookup_prefix(a).total(), 4u);
  EXPECT_EQ(m->lookup_prefix(b).total(), 0u);
  std::vector<bytes> bufs(4, bytes(block_bytes));
  std::vector<std::span<std::byte>> out(bufs.begin(), bufs.end());
  EXPECT_EQ(m->onboard(b, 4, out), 0u);
  for (auto& x : bufs) EXPECT_EQ(x, bytes(block_bytes));
  for (auto h : b) EXPECT_FALSE(m->g3()->get(h).ok());
}

TEST(tier_manager, restart_recovers_g3_and_republishes_tier3_events) {
  temp_dir d;
  std::vector<block_hash> hs = hash_blocks(tokens(16 * 6, 3), 16);
  std::uint64_t off5 = 0;
  {
    auto m = make(d.path, 0, 100);  // no G2: straight to G3
    for (auto h : hs) m->offload(h, make_block(h));
    settle(*m, hs.size());
    off5 = *m->g3()->slot_offset_for_testing(hs[5]);
  }
  {  // block 5's slot torn: part of its payload overwritten
    std::fstream f(d.path / "blocks.ykvs", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(off5 + 200));
    f << std::string(64, '\x7f');
  }
  auto m = make(d.path, 4, 100);
  auto rec = m->recover();
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->size(), 5u);
  auto ev = m->drain_events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, msg::kv_event_kind::stored);
  EXPECT_EQ(ev[0].tier, 3);
  EXPECT_EQ(ev[0].block_hashes.size(), 5u);
  EXPECT_EQ(m->lookup_prefix(hs).g3, 5u);
  std::vector<bytes> bufs(5, bytes(block_bytes));
  std::vector<std::span<std::byte>> out(bufs.begin(), bufs.end());
  EXPECT_EQ(m->onboard(hs, 5, out), 5u);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(bufs[i], make_block(hs[i]));
}

TEST(tier_manager, disk_failure_degrades_without_crash) {
  temp_dir d;
  auto m = make(d.path, 1, 100);
  m->g3()->fail_writes_for_testing(true);
  for (block_hash h = 1; h <= 5; ++h) m->offload(h, make_block(h));
  for (int i = 0; i < 2000 && !m->g3()->disabled(); ++i) ::usleep(1000);
  EXPECT_TRUE(m->g3()->disabled());
  m->offload(6, make_block(6));
  EXPECT_TRUE(m->g2().contains(6));  // G2 keeps working
  std::vector<block_hash> hs{6};
  EXPECT_EQ(m->lookup_prefix(hs).g2, 1u);
}

TEST(tier_manager, a_slow_disk_drops_cascaded_blocks_instead_of_queueing_without_bound) {
  temp_dir d;
  tier_manager_options o;
  o.g2.capacity_blocks = 1;
  disk_tier_options dk;
  dk.dir = d.path;
  dk.capacity_blocks = 100;
  dk.io_threads = 1;
  dk.max_pending_writes = 2;
  o.g3 = dk;
  auto m = std::move(tier_manager::create(o).value());
  m->g3()->hold_writes_for_testing(true);  // the disk stalls
  // Offloading 1..7 through a 1-block G2 cascades 1..6 to G3; only 2 writes may wait.
  for (block_hash h = 1; h <= 7; ++h) m->offload(h, make_block(h));
  EXPECT_EQ(m->g3()->pending_writes(), 2u);
  EXPECT_EQ(m->g3()->stats().dropped, 4u);
  m->g3()->hold_writes_for_testing(false);
  settle(*m, 2);
  EXPECT_EQ(m->g3()->size(), 2u);
  EXPECT_TRUE(m->g3()->contains(1));
  EXPECT_TRUE(m->g3()->contains(2));
  EXPECT_FALSE(m->g3()->contains(3));
  // Only what G3 accepted was announced as stored in tier 3.
  std::size_t stored3 = 0;
  for (const auto& e : m->drain_events())
    if (e.kind == msg::kv_event_kind::stored && e.tier == 3) stored3 += e.block_hashes.size();
  EXPECT_EQ(stored3, 2u);
  // Once the disk keeps up again, offloads reach G3 again.
  m->offload(8, make_block(8));  // cascades 7
  settle(*m, 3);
  EXPECT_TRUE(m->g3()->contains(7));
  EXPECT_FALSE(m->g3()->disabled());
}

TEST(tier_manager, plan_onboard_only_when_faster_than_recompute) {
  onboard_cost_model cm;
  cm.block_bytes = 2 << 20;
  cm.block_tokens = 64;
  cm.prefill_ms = [](std::size_t t) { return 4.209989e-7 * double(t) * t + 1.518344e-2 * double(t) + 16.50142; };
  cm.g2_bytes_per_ms = 10e6;  // 10 GB/s: 0.2 ms per block vs ~1 ms to recompute 64 tokens
  cm.g3_bytes_per_ms = 0.2e6; // 0.2 GB/s: 10 ms per block, slower than recompute
  prefix_hit g2only{.g2 = 30, .g3 = 0};
  EXPECT_EQ(tier_manager::plan_onboard(64 * 32, 0, g2only, cm), 30u);
  EXPECT_TRUE(tier_manager::should_onboard(64 * 32, 0, g2only, cm));
  prefix_hit g3only{.g2 = 0, .g3 = 30};
  EXPECT_EQ(tier_manager::plan_onboard(64 * 32, 0, g3only, cm), 0u);
  EXPECT_FALSE(tier_manager::should_onboard(64 * 32, 0, g3only, cm));
  prefix_hit mixed{.g2 = 10, .g3 = 20};
  EXPECT_EQ(tier_manager::plan_onboard(64 * 32, 0, mixed, cm), 10u);  // take G2, recompute the rest
  prefix_hit g3_first{.g2 = 1, .g3 = 1, .tier_of = {3, 2}};  // slow G3 block leads the chain
  EXPECT_EQ(tier_manager::plan_onboard(64 * 32, 0, g3_first, cm), 0u);
  cm.g3_bytes_per_ms = 5e6;
  EXPECT_EQ(tier_manager::plan_onboard(64 * 32, 0, mixed, cm), 30u);
  EXPECT_FALSE(tier_manager::should_onboard(64 * 32, 64 * 32, mixed, cm));  // all in G1 already
}

// With I/O overlapping the prefill, a tier slower than recompute per block is
// still worth onboarding up to where the copy outlasts the remaining prefill;
// blocks already in G1 inside the run cost nothing.
TEST(tier_manager, plan_onboard_with_overlap_and_g1_blocks_in_the_run) {
  onboard_cost_model cm;
  cm.block_bytes = 2 << 20;
  cm.block_tokens = 64;
  cm.prefill_ms = [](std::size_t t) { return 1.0 * double(t) / 64; };  // 1 ms per block
  cm.g2_bytes_per_ms = 1e9;
  cm.g3_bytes_per_ms = (2 << 20) / 2.0;  // 2 ms per block: twice recompute
  prefix_hit g3{.g2 = 0, .g3 = 30};
  EXPECT_EQ(tier_manager::plan_onboard(64 * 31, 0, g3, cm), 0u);
  cm.overlap = true;
  // k blocks: max(31 - k, 2k) is smallest at k = 10 (max(21, 20) = 21 ms vs 31 ms).
  EXPECT_EQ(tier_manager::plan_onboard(64 * 31, 0, g3, cm), 10u);
  cm.overlap = false;
  prefix_hit with_g1{.g2 = 0, .g3 = 1, .tier_of = {1, 1, 1, 3}};
  EXPECT_EQ(with_g1.total(), 4u);
  EXPECT_EQ(tier_manager::plan_onboard(64 * 31, 0, with_g1, cm), 3u);  // the free G1 blocks, not the slow G3 one
}

}  // namespace
}  // namespace yard::kv::tiers
