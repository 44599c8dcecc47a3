// backends/tests/kv_tiering_test.cpp — KV tiers wired into the engines (backends/kv_tiering.hpp):
// G1 evictions cascade G1 -> G2 -> G3 through a real engine, onboarding serves
// a later prefix with the right tokens, the mock charges modelled onboarding
// time, a restarted engine recovers G3 (dropping a torn file) and republishes
// it as tier-3 events, and the native engine's greedy output is identical with
// and without offload. Owns nothing outside this test; real files in a temp dir.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "backends/mock/mock_engine.hpp"
#include "backends/native/native_engine.hpp"
#include "backends/tests/engine_test_util.hpp"
#include "backends/tests/native_test_util.hpp"
#include "kv/block_hash.hpp"

namespace yard::backends {
namespace {

namespace fs = std::filesystem;
using native::testing::temp_dir;
using testing::prompt;
using testing::run_all;
using testing::run_out;

engine_request req(const std::string& id, std::vector<token_id> prompt, std::uint32_t max_tokens) {
  auto r = testing::req(id, std::move(prompt), max_tokens);
  r.sampling.seed = 7;
  return r;
}

std::vector<token_id> mock_expected(const std::vector<token_id>& p, std::size_t n) {
  std::vector<token_id> t;
  for (std::size_t i = 0; i < n; ++i) t.push_back(mock_engine::expected_token(p, 7, i));
  return t;
}

struct event_counts {
  std::map<std::pair<msg::kv_event_kind, int>, std::size_t> blocks;  // (kind, tier) -> block hashes
  std::size_t operator()(msg::kv_event_kind kind, int tier) const {
    auto it = blocks.find({kind, tier});
    return it == blocks.end() ? 0 : it->second;
  }
};
event_counts count(const std::vector<msg::kv_event>& ev) {
  event_counts c;
  for (const auto& e : ev) c.blocks[{e.kind, e.tier}] += e.block_hashes.size();
  return c;
}

mock_engine_options mock_opts(std::uint32_t g1_blocks, std::size_t g2_blocks, const std::string& g3_dir) {
  mock_engine_options o;
  o.per_token_delay_ms = 10;
  o.block_size = 16;
  o.num_blocks = g1_blocks;
  o.tiers.host_blocks = g2_blocks;
  o.tiers.disk_dir = g3_dir;
  o.tiers.disk_sync_writes = true;
  return o;
}

TEST(mock_tiers, eviction_cascades_g1_g2_g3_and_onboards_back) {
  temp_dir d;
  auto e = mock_engine::create(mock_opts(12, 4, d.sub("g3")));
  ASSERT_TRUE(e.ok()) << e.err().describe();
  auto& eng = **e;
  ASSERT_NE(eng.tiering(), nullptr);
  // Six 4-block prompts (+1 token) through a 12-block G1 and a 4-block G2.
  for (std::uint32_t s = 0; s < 6; ++s) {
    ASSERT_TRUE(eng.add_request(req("r" + std::to_string(s), prompt(65, s), 2)).ok());
    run_all(eng);
  }
  auto c = count(eng.drain_kv_events());
  EXPECT_GT(c(msg::kv_event_kind::removed, 1), 0u);  // G1 evicted ...
  EXPECT_EQ(c(msg::kv_event_kind::stored, 2), c(msg::kv_event_kind::removed, 1));  // ... every evicted block went to G2 ...
  EXPECT_GT(c(msg::kv_event_kind::removed, 2), 0u);  // ... G2 overflowed ...
  EXPECT_EQ(c(msg::kv_event_kind::stored, 3), c(msg::kv_event_kind::removed, 2));  // ... into G3
  EXPECT_GT(eng.tiering()->stats().offloaded_blocks, 0u);

  // The first prompt is gone from G1 and G2; it comes back from G3.
  auto p0 = prompt(65, 0);
  auto h0 = kv::hash_blocks(p0, 16);
  EXPECT_EQ(eng.cached_blocks(h0), 0u);
  ASSERT_TRUE(eng.add_request(req("again", p0, 4)).ok());
  EXPECT_EQ(eng.cached_blocks(h0), 0u);  // onboarding waits for admission
  auto out = run_all(eng)["again"];
  EXPECT_EQ(out.tokens, mock_expected(p0, 4));
  EXPECT_EQ(out.usage.cached_tokens, 64u);
  EXPECT_EQ(eng.tiering()->stats().g3_hit_blocks, 4u);  // verified synthetic bytes, served as prefix hits
  EXPECT_EQ(eng.cached_blocks(h0), 4u);
  EXPECT_EQ(count(eng.drain_kv_events())(msg::kv_event_kind::stored, 1), 4u);  // the onboarded blocks, as tier-1 stores
}

// A worker hands the tiers to its kv_block_manager actor: the engine then gives away evicted blocks'
// bytes instead of offloading them, stops onboarding inside step(), and imports what the owner read.
TEST(mock_tiers, released_tiers_take_evicted_blocks_and_onboard_through_the_engine_interface) {
  auto e = mock_engine::create(mock_opts(12, 24, ""));
  ASSERT_TRUE(e.ok()) << e.err().describe();
  auto& eng = **e;
  std::vector<std::pair<kv::block_hash, std::vector<std::byte>>> evicted;
  auto store = eng.release_tiers([&](kv::block_hash h, std::span<const std::byte> b) {
    evicted.emplace_back(h, std::vector<std::byte>(b.begin(), b.end()));
  });
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(eng.tiering(), nullptr);
  EXPECT_EQ(eng.release_tiers({}), nullptr);  // handed over once
  for (std::uint32_t s = 0; s < 6; ++s) {
    ASSERT_TRUE(eng.add_request(req("r" + std::to_string(s), prompt(65, s), 2)).ok());
    run_all(eng);
  }
  ASSERT_FALSE(evicted.empty());
  EXPECT_EQ(store->stats().offloaded_blocks, 0u);  // the engine no longer offloads by itself
  EXPECT_EQ(count(eng.drain_kv_events())(msg::kv_event_kind::stored, 2), 0u);  // its events are G1's only
  for (const auto& [h, b] : evicted) store->offload(h, b);
  EXPECT_EQ(count(store->drain_events())(msg::kv_event_kind::stored, 2), evicted.size());

  auto p0 = prompt(65, 0);
  auto h0 = kv::hash_blocks(p0, 16);
  auto ask = eng.onboard_question(h0, p0.size());
  EXPECT_EQ(ask.g1_blocks, 0u);
  ASSERT_EQ(ask.hashes.size(), 4u);
  auto f = store->fetch(ask);
  ASSERT_EQ(f.blocks(), 4u);
  const std::size_t bb = eng.kv_block_bytes();
  EXPECT_TRUE(f.data.empty()) << "G2 blocks are lent in place, not copied";
  ASSERT_EQ(f.lent.size(), 4u);
  for (std::size_t j = 0; j < 4; ++j) EXPECT_EQ(f.block(j, bb).size(), bb);

  // Bytes that are not the blocks' (a torn read, a bug) are refused, and nothing is cached.
  backends::onboard_fetch bad;
  bad.tier_of = f.tier_of;
  for (std::size_t j = 0; j < 4; ++j) bad.data.insert(bad.data.end(), f.block(j, bb).begin(), f.block(j, bb).end());
  bad.data[bad.data.size() / 2] ^= std::byte{0x5a};
  auto refused = eng.onboard_kv(ask, bad);
  EXPECT_FALSE(refused.ok());
  EXPECT_LT(eng.cached_blocks(h0), 4u);

  // The lent bytes stay the blocks' while G2 turns over under them (other prompts' blocks evicted into it).
  evicted.clear();
  for (std::uint32_t s = 10; s < 20; ++s) {
    ASSERT_TRUE(eng.add_request(req("churn" + std::to_string(s), prompt(65, s), 2)).ok());
    run_all(eng);
  }
  for (const auto& [h, b] : evicted) store->offload(h, b);
  ASSERT_FALSE(store->tiers().g2().contains(h0[0])) << "the churn pushed the lent blocks out of G2";
  auto r = eng.onboard_kv(ask, f);
  ASSERT_TRUE(r.ok()) << r.err().describe();
  EXPECT_EQ(*r, 4u);
  EXPECT_EQ(eng.cached_blocks(h0), 4u);
  ASSERT_TRUE(eng.add_request(req("again", p0, 4)).ok());
  auto out = run_all(eng)["again"];
  EXPECT_EQ(out.tokens, mock_expected(p0, 4));
  EXPECT_EQ(out.usage.cached_tokens, 64u);
  EXPECT_EQ(store->stats().g2_hit_blocks, 4u);
}

TEST(mock_tiers, onboarding_charges_modelled_time) {
  auto o = mock_opts(6, 64, "");
  o.block_size = 64;
  o.tiers.modelled_block_bytes = 1000000;  // 1 MB per block at 2 GB/s: 0.5 ms each
  o.tiers.g2_gbps = 2.0;
  o.tiers.overlap_onboarding = false;  // copy, then compute
  auto e = mock_engine::create(o);
  ASSERT_TRUE(e.ok());
  auto& eng = **e;
  auto a = prompt(257, 1), b = prompt(257, 2);  // 4 full blocks + 1 token each
  ASSERT_TRUE(eng.add_request(req("a", a, 1)).ok());
  run_all(eng);
  ASSERT_TRUE(eng.add_request(req("b", b, 1)).ok());  // evicts most of a's blocks into G2
  run_all(eng);
  const auto before = eng.tiering()->stats().g2_hit_blocks;
  ASSERT_TRUE(eng.add_request(req("a2", a, 2)).ok());
  auto out = run_all(eng)["a2"];
  const auto onboarded = eng.tiering()->stats().g2_hit_blocks - before;
  ASSERT_GT(onboarded, 0u);
  ASSERT_EQ(out.step_ms.size(), 2u);
  EXPECT_DOUBLE_EQ(out.step_ms[0], 10.0 + 0.5 * double(onboarded));  // first step pays the copy
  EXPECT_DOUBLE_EQ(out.step_ms[1], 10.0);
  EXPECT_EQ(out.tokens, mock_expected(a, 2));

  // The same sequence without tiers pays nothing extra (and recomputes).
  auto off = mock_opts(6, 0, "");
  off.block_size = 64;
  mock_engine plain(off);
  ASSERT_EQ(plain.tiering(), nullptr);
  for (auto* r : {"a", "b"}) {
    ASSERT_TRUE(plain.add_request(req(r, r[0] == 'a' ? a : b, 1)).ok());
    run_all(plain);
  }
  ASSERT_TRUE(plain.add_request(req("a2", a, 2)).ok());
  auto pout = run_all(plain)["a2"];
  EXPECT_DOUBLE_EQ(pout.step_ms[0], 10.0);
  EXPECT_LT(pout.usage.cached_tokens, out.usage.cached_tokens);
}

// With overlap (layer-wise loading under the prefill) a step costs the longer
// of its compute and the copy, not their sum.
TEST(mock_tiers, overlapped_onboarding_charges_the_longer_of_copy_and_compute) {
  for (double delay : {0.25, 10.0}) {
    auto o = mock_opts(6, 64, "");
    o.per_token_delay_ms = delay;
    o.block_size = 64;
    o.tiers.modelled_block_bytes = 1000000;
    o.tiers.g2_gbps = 2.0;
    ASSERT_TRUE(o.tiers.overlap_onboarding);  // the default
    mock_engine eng(o);
    auto a = prompt(257, 1), b = prompt(257, 2);
    for (auto* r : {"a", "b"}) {
      ASSERT_TRUE(eng.add_request(req(r, r[0] == 'a' ? a : b, 1)).ok());
      run_all(eng);
    }
    const auto before = eng.tiering()->stats().g2_hit_blocks;
    ASSERT_TRUE(eng.add_request(req("a2", a, 2)).ok());
    auto out = run_all(eng)["a2"];
    const double copy = 0.5 * double(eng.tiering()->stats().g2_hit_blocks - before);
    ASSERT_GT(copy, 0.0);
    EXPECT_DOUBLE_EQ(out.step_ms[0], std::max(delay, copy)) << "delay " << delay;
    EXPECT_DOUBLE_EQ(out.step_ms[1], delay);
  }
}

TEST(mock_tiers, restart_recovers_g3_drops_torn_file_and_republishes) {
  temp_dir d;
  const auto g3 = d.sub("g3");
  auto p0 = prompt(65, 10);
  auto h0 = kv::hash_blocks(p0, 16);
  {
    auto e = mock_engine::create(mock_opts(6, 0, g3));  // no G2: evictions go straight to G3
    ASSERT_TRUE(e.ok());
    for (std::uint32_t s = 10; s < 13; ++s) {
      ASSERT_TRUE((*e)->add_request(req("r" + std::to_string(s), prompt(65, s), 1)).ok());
      run_all(**e);
    }
    EXPECT_GT(count((*e)->drain_kv_events())(msg::kv_event_kind::stored, 3), 0u);
  }
  // Files of the previous one-file-per-block G3 layout: removed at recovery, the slab's blocks kept.
  { std::ofstream(g3 + "/00000000000000aa.ykvb.tmp.1") << "partial"; }
  { std::ofstream(g3 + "/00000000000000bb.ykvb") << "YKVB garbage that is not a block"; }

  auto e = mock_engine::create(mock_opts(6, 0, g3));
  ASSERT_TRUE(e.ok()) << e.err().describe();
  EXPECT_FALSE(fs::exists(g3 + "/00000000000000aa.ykvb.tmp.1"));
  EXPECT_FALSE(fs::exists(g3 + "/00000000000000bb.ykvb"));
  const auto recovered = (*e)->tiering()->stats().recovered_blocks;
  EXPECT_GE(recovered, 4u);
  // The restarted worker republishes what G3 holds (first batch) and answers snapshots with it.
  auto c = count((*e)->drain_kv_events());
  EXPECT_EQ(c(msg::kv_event_kind::stored, 3), recovered);
  EXPECT_EQ(c(msg::kv_event_kind::stored, 1), 0u);
  std::size_t snap3 = 0;
  for (const auto& ev : (*e)->kv_snapshot())
    if (ev.tier == 3) snap3 += ev.block_hashes.size();
  EXPECT_EQ(snap3, recovered);
  // And serves the old prefix from it.
  ASSERT_TRUE((*e)->add_request(req("again", p0, 3)).ok());
  auto out = run_all(**e)["again"];
  EXPECT_EQ(out.tokens, mock_expected(p0, 3));
  EXPECT_EQ(out.usage.cached_tokens, 64u);
  EXPECT_EQ((*e)->tiering()->stats().g3_hit_blocks, 4u);
}

TEST(mock_tiers, hot_prefix_is_written_through_to_g3_and_survives_a_restart_without_eviction) {
  temp_dir d;
  const auto g3 = d.sub("g3");
  auto p0 = prompt(65, 20);  // 4 full blocks
  auto h0 = kv::hash_blocks(p0, 16);
  {
    auto o = mock_opts(64, 8, g3);  // G1 big enough: nothing is ever evicted
    o.tiers.write_through_hits = 2;
    auto e = mock_engine::create(o);
    ASSERT_TRUE(e.ok());
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE((*e)->add_request(req("r" + std::to_string(i), p0, 1)).ok());
      run_all(**e);
    }
    // Hit twice (requests 2 and 3): its 4 blocks are on disk, announced as tier 3, still in G1.
    EXPECT_EQ((*e)->tiering()->stats().written_through, 4u);
    EXPECT_EQ((*e)->tiering()->stats().offloaded_blocks, 0u);
    EXPECT_EQ(count((*e)->drain_kv_events())(msg::kv_event_kind::stored, 3), 4u);
    for (auto h : h0) EXPECT_TRUE((*e)->cached_blocks(std::span(&h, 1)) == 1);
  }
  {
    // Without write-through the same run leaves G3 empty.
    temp_dir d2;
    auto e = mock_engine::create(mock_opts(64, 8, d2.sub("g3")));
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE((*e)->add_request(req("r" + std::to_string(i), p0, 1)).ok());
      run_all(**e);
    }
    EXPECT_EQ((*e)->tiering()->stats().written_through, 0u);
    EXPECT_EQ(count((*e)->drain_kv_events())(msg::kv_event_kind::stored, 3), 0u);
  }
  // The restarted worker recovers the hot prefix and serves it from G3.
  auto e = mock_engine::create(mock_opts(64, 8, g3));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->tiering()->stats().recovered_blocks, 4u);
  ASSERT_TRUE((*e)->add_request(req("again", p0, 3)).ok());
  auto out = run_all(**e)["again"];
  EXPECT_EQ(out.tokens, mock_expected(p0, 3));
  EXPECT_EQ(out.usage.cached_tokens, 64u);
  EXPECT_EQ((*e)->tiering()->stats().g3_hit_blocks, 4u);
}

TEST(mock_tiers, bad_key_file_is_an_error_value) {
  temp_dir d;
  auto o = mock_opts(8, 4, d.sub("g3"));
  o.tiers.disk_key_file = d.sub("missing.key");
  auto e = mock_engine::create(o);
  EXPECT_FALSE(e.ok());
  mock_engine fallback(o);  // the constructor logs and runs without tiers
  EXPECT_EQ(fallback.tiering(), nullptr);
}

class native_tiers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new temp_dir();
    model_ = native::testing::make_model(*dir_, "tiny");
  }
  static void TearDownTestSuite() { delete dir_; }
  std::unique_ptr<native_engine> open(native_engine_options o) {
    o.threads = 2;
    auto e = native_engine::open(model_, o);
    EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.err().describe());
    return e.ok() ? std::move(*e) : nullptr;
  }
  static temp_dir* dir_;
  static std::string model_;
};
temp_dir* native_tiers::dir_ = nullptr;
std::string native_tiers::model_;

// Greedy output of a prompt whose KV went G1 -> G2 -> G3 and came back equals
// the output of a run that never offloaded anything.
TEST_F(native_tiers, greedy_output_identical_with_and_without_offload) {
  auto p = prompt(50, 9);  // 3 full 16-token blocks and a 2-token tail
  native_engine_options big;
  auto ref = open(big);
  ASSERT_TRUE(ref);
  ASSERT_TRUE(ref->add_request(req("p", p, 8)).ok());
  auto want = run_all(*ref)["p"].tokens;
  ASSERT_FALSE(want.empty());

  temp_dir g3;
  native_engine_options small;
  small.num_blocks = 8;
  small.tiers.host_blocks = 2;
  small.tiers.disk_dir = g3.sub("g3");
  small.tiers.disk_sync_writes = true;
  auto e = open(small);
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->add_request(req("p", p, 8)).ok());
  EXPECT_EQ(run_all(*e)["p"].tokens, want);
  for (std::uint32_t s = 20; s < 24; ++s) {  // push p's blocks out of G1 and G2
    ASSERT_TRUE(e->add_request(req("o" + std::to_string(s), prompt(50, s), 4)).ok());
    run_all(*e);
  }
  auto h = kv::hash_blocks(p, 16);
  ASSERT_EQ(e->cached_blocks(h), 0u);
  ASSERT_TRUE(e->add_request(req("p2", p, 8)).ok());
  auto out = run_all(*e)["p2"];
  EXPECT_EQ(out.tokens, want);
  EXPECT_EQ(out.usage.cached_tokens, 48u);
  const auto& st = e->tiering()->stats();
  EXPECT_EQ(st.g2_hit_blocks + st.g3_hit_blocks, 3u);
  EXPECT_GT(st.g3_hit_blocks, 0u);
  ASSERT_EQ(e->cached_blocks(h), 3u);
  // The onboarded KV is byte-identical to the KV the reference run computed
  // (greedy tokens alone can survive small corruption in a tiny model).
  std::vector<std::byte> got(3 * e->kv_block_bytes()), ref_kv(3 * ref->kv_block_bytes());
  ASSERT_EQ(e->export_kv(h, got), 3u);
  ASSERT_EQ(ref->export_kv(h, ref_kv), 3u);
  EXPECT_TRUE(got == ref_kv);
}

}  // namespace
}  // namespace yard::backends
