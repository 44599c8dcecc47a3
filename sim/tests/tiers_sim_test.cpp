// sim/tests/tiers_sim_test.cpp — the simulator with KV tiers under every worker:
// a G1 too small for a multi-turn working set recomputes with tiers off and
// onboards from G2/G3 with tiers on (hit mix reported, TTFT lower), runs stay
// deterministic with a real G3 directory, and the tier table pairs off/on rows.
// The Mooncake conversation trace prefix runs too when the shared data is present.
// Owns nothing outside this test; G3 files live in a temp dir it removes.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "sim/report.hpp"
#include "sim/simulator.hpp"

namespace yard::sim {
namespace {

namespace fs = std::filesystem;

struct temp_dir {
  fs::path path;
  temp_dir() {
    char buf[] = "/tmp/yard_tiers_sim_XXXXXX";
    path = ::mkdtemp(buf);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// S sessions x T turns; turn t of a session repeats the session's hash ids
// 0..t (a growing conversation), arrivals spread so the fleet is not loaded.
trace multi_turn(int sessions, int turns) {
  std::string text;
  int ts = 0;
  for (int t = 0; t < turns; ++t)
    for (int s = 0; s < sessions; ++s) {
      std::string ids = "[";
      for (int k = 0; k <= 2 * t + 1; ++k) ids += (k ? ", " : "") + std::to_string(s * 100 + k);
      ids += "]";
      text += "{\"timestamp\": " + std::to_string(ts) + ", \"input_length\": " + std::to_string(512 * (2 * t + 2) - 100) +
              ", \"output_length\": 4, \"hash_ids\": " + ids + "}\n";
      ts += 400;
    }
  auto tr = parse_trace(text);
  EXPECT_TRUE(tr.ok());
  return tr.value();
}

sim_options base(std::uint32_t g1_blocks) {
  sim_options o;
  o.workers = 2;
  o.policy = "ttft";
  o.profile = backends::default_profile();
  o.profile.num_blocks = g1_blocks;
  return o;
}

sim_options with_tiers(std::uint32_t g1_blocks, const fs::path& dir) {
  auto o = base(g1_blocks);
  o.tiers.host_blocks = 64;
  o.tiers.disk_dir = dir.string();
  o.tiers.disk_blocks = 4096;
  o.tiers.modelled_block_bytes = 64 * 131072;
  return o;
}

TEST(tiers_sim, small_g1_recomputes_without_tiers_and_onboards_with_them) {
  auto tr = multi_turn(12, 5);
  auto pt = prepare_trace(tr, 64);
  auto off = run_simulation(pt, base(200));
  ASSERT_TRUE(off.ok()) << off.err().describe();
  temp_dir d;
  auto on = run_simulation(pt, with_tiers(200, d.path / "a"));
  ASSERT_TRUE(on.ok()) << on.err().describe();
  EXPECT_EQ(on->completed, tr.requests.size());
  EXPECT_FALSE(off->tiers);
  EXPECT_TRUE(on->tiers);
  EXPECT_EQ(off->g2_hit_tokens + off->g3_hit_tokens, 0u);
  EXPECT_GT(on->g2_hit_tokens, 0u);
  EXPECT_GT(on->g3_hit_tokens, 0u);  // G2 (64 blocks per worker) overflows into G3
  EXPECT_GT(on->hit_rate, off->hit_rate + 0.1);
  EXPECT_EQ(on->g1_hit_tokens + on->g2_hit_tokens + on->g3_hit_tokens,
            static_cast<std::uint64_t>(on->hit_rate * double(on->prompt_tokens) + 0.5));
  EXPECT_LT(on->ttft_ms.p50, off->ttft_ms.p50);
  EXPECT_LT(on->ttft_ms.mean, off->ttft_ms.mean);

  // Same run again into a fresh G3 directory: identical numbers.
  auto again = run_simulation(pt, with_tiers(200, d.path / "b"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(format_csv({on.value()}), format_csv({again.value()}));
  EXPECT_EQ(again->g3_hit_tokens, on->g3_hit_tokens);

  on->policy += "+tiers";
  auto table = format_tier_table({off.value(), on.value()});
  EXPECT_NE(table.find("tiers[ttft]: ttft_p50_off="), std::string::npos) << table;
}

TEST(tiers_sim, bad_g3_directory_is_an_error) {
  auto tr = multi_turn(2, 2);
  auto pt = prepare_trace(tr, 64);
  auto o = with_tiers(200, "/proc/no_such_dir_for_g3");
  EXPECT_FALSE(run_simulation(pt, o).ok());
}

TEST(tiers_sim, conversation_trace_prefix_when_present) {
  auto dir = shared_data_dir();
  std::string path = dir + "/data/mooncake/conversation_trace.jsonl";
  if (dir.empty() || !fs::exists(path)) GTEST_SKIP() << "shared Mooncake data not found";
  trace_load_options lo;
  lo.limit = 300;
  auto t = load_trace(path, lo);
  ASSERT_TRUE(t.ok()) << t.err().describe();
  auto pt = prepare_trace(t.value(), 512);
  temp_dir d;
  auto o = with_tiers(600, d.path);
  o.profile.block_size = 512;
  o.tiers.modelled_block_bytes = 512 * 131072;
  auto r = run_simulation(pt, o);
  ASSERT_TRUE(r.ok()) << r.err().describe();
  EXPECT_EQ(r->completed, 300u);
  EXPECT_GT(r->g1_hit_tokens + r->g2_hit_tokens + r->g3_hit_tokens, 0u);
}

}  // namespace
}  // namespace yard::sim
