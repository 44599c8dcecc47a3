// sim/tests/simulator_test.cpp — the event loop, metrics, determinism, outputs, and the real policies on tiny traces.
#include "sim/simulator.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <zlib.h>

#include "sim/report.hpp"
#include "sim/synthetic.hpp"

namespace yard::sim {
namespace {

// Round-robin test router that records what the simulator feeds it.
struct recording_router : router_bridge {
  std::uint32_t workers, next = 0;
  std::uint64_t stored = 0, loads = 0, finished = 0, firsts = 0;
  std::map<std::string, std::uint32_t> routed;
  explicit recording_router(std::uint32_t w) : workers(w) {}
  result<std::uint32_t> route(const route_query& q) override {
    auto w = next++ % workers;
    routed[std::string(q.request_id)] = w;
    return w;
  }
  void on_kv_events(std::uint32_t, std::vector<msg::kv_event> ev, double) override {
    for (auto& e : ev)
      if (e.kind == msg::kv_event_kind::stored) stored += e.block_hashes.size();
  }
  void on_load(std::uint32_t, const msg::load_report&, double) override { ++loads; }
  void on_first_token(std::string_view, std::uint32_t, double) override { ++firsts; }
  void on_finished(std::string_view, std::uint32_t, double) override { ++finished; }
};

trace tiny_trace() {
  // Two prompt families repeated over time, written the way a Mooncake file is.
  std::string text;
  for (int i = 0; i < 24; ++i) {
    int fam = i % 2;
    std::string ids = fam ? "[10, 11, 12]" : "[20, 21]";
    int len = fam ? 1400 : 900;
    text += "{\"timestamp\": " + std::to_string(i * 150) + ", \"input_length\": " + std::to_string(len) +
            ", \"output_length\": " + std::to_string(8 + i % 5) + ", \"hash_ids\": " + ids + "}\n";
  }
  auto t = parse_trace(text);
  EXPECT_TRUE(t.ok());
  return t.value();
}

sim_options opts_with(recording_router** out, std::uint32_t workers) {
  sim_options o;
  o.workers = workers;
  o.policy = "test_rr";
  o.profile = backends::default_profile();
  o.router_factory = [out, workers] {
    auto r = std::make_unique<recording_router>(workers);
    if (out) *out = r.get();
    return std::unique_ptr<router_bridge>(std::move(r));
  };
  return o;
}

TEST(simulator, unloaded_ttft_is_the_prefill_time) {
  trace t;
  trace_request r;
  r.input_length = 1000;
  r.output_length = 3;
  r.hash_ids = {1, 2};
  r.line = 1;
  t.requests.push_back(r);
  auto pt = prepare_trace(t, 64);
  auto res = run_simulation(pt, opts_with(nullptr, 1));
  ASSERT_TRUE(res.ok()) << res.err().describe();
  EXPECT_EQ(res->completed, 1u);
  EXPECT_NEAR(res->ttft_ms.p50, backends::prefill_ms(backends::default_profile(), 1000, 0), 1e-6);
  // Two decode steps at near-zero utilisation.
  EXPECT_NEAR(res->itl_ms.p50, backends::decode_ms(backends::default_profile(), 1001.0 / (16384.0 * 64)), 1e-3);
}

TEST(simulator, feeds_router_real_events_and_measures_cache_hits) {
  auto t = tiny_trace();
  auto pt = prepare_trace(t, 64);
  EXPECT_GT(pt.ideal_hit_rate, 0.5);
  recording_router* rr = nullptr;
  auto res = run_simulation(pt, opts_with(&rr, 2));
  ASSERT_TRUE(res.ok()) << res.err().describe();
  ASSERT_NE(rr, nullptr);
  EXPECT_EQ(res->completed, 24u);
  EXPECT_EQ(rr->finished, 24u);
  EXPECT_EQ(rr->firsts, 24u);
  EXPECT_GT(rr->stored, 0u);
  EXPECT_GT(rr->loads, 0u);
  // Round robin over 2 workers with 2 alternating families: each family always
  // lands on the same worker, so all repeats hit.
  EXPECT_GT(res->hit_rate, 0.5);
  EXPECT_LE(res->hit_rate, pt.ideal_hit_rate + 1e-9);
  EXPECT_GT(res->ttft_ms.p50, 0);
  EXPECT_GE(res->ttft_ms.p99, res->ttft_ms.p90);
  EXPECT_GE(res->imbalance, 1.0);
  EXPECT_FALSE(res->hit_rate_series.empty());
}

TEST(simulator, rate_scale_compresses_arrivals_and_raises_latency) {
  auto t = tiny_trace();
  auto pt = prepare_trace(t, 64);
  auto slow = run_simulation(pt, opts_with(nullptr, 1));
  auto o = opts_with(nullptr, 1);
  o.rate_scale = 50;
  auto fast = run_simulation(pt, o);
  ASSERT_TRUE(slow.ok() && fast.ok());
  EXPECT_LT(fast->makespan_ms, slow->makespan_ms);
  EXPECT_GT(fast->ttft_ms.p90, slow->ttft_ms.p90);
}

TEST(simulator, bad_options_are_errors) {
  auto t = tiny_trace();
  auto pt = prepare_trace(t, 64);
  auto o = opts_with(nullptr, 0);
  EXPECT_FALSE(run_simulation(pt, o).ok());
  o = opts_with(nullptr, 1);
  o.rate_scale = 0;
  EXPECT_FALSE(run_simulation(pt, o).ok());
  o = opts_with(nullptr, 1);
  o.profile.block_size = 16;  // trace prepared for 64
  EXPECT_FALSE(run_simulation(pt, o).ok());
  sim_options p;
  p.policy = "no_such_policy";
  p.profile = backends::default_profile();
  EXPECT_FALSE(run_simulation(pt, p).ok());
}

TEST(simulator, same_seed_gives_byte_identical_csv_for_every_policy) {
  synthetic_options so;
  so.sessions = 30;
  so.session_rate_per_s = 20;
  so.turns_per_session = 3;
  so.output_tokens = 20;
  auto t = generate_synthetic(so);
  auto pt = prepare_trace(t, 64);
  auto run_all = [&](std::uint64_t seed) {
    std::vector<sim_result> rows;
    for (const auto& p : policy_names()) {
      sim_options o;
      o.workers = 4;
      o.policy = p;
      o.seed = seed;
      o.rate_scale = 4;
      o.profile = backends::default_profile();
      auto r = run_simulation(pt, o);
      if (!r.ok()) return std::optional<std::string>();
      rows.push_back(r.value());
    }
    return std::optional<std::string>(format_csv(rows));
  };
  auto a = run_all(7);
  if (!a) GTEST_SKIP() << "router policies not available in this build";
  auto b = run_all(7);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(a->find("round_robin"), std::string::npos);
  EXPECT_NE(a->find("ttft"), std::string::npos);
}

TEST(simulator, csv_has_the_documented_columns_and_is_stable) {
  auto t = tiny_trace();
  auto pt = prepare_trace(t, 64);
  auto r1 = run_simulation(pt, opts_with(nullptr, 2));
  auto r2 = run_simulation(pt, opts_with(nullptr, 2));
  ASSERT_TRUE(r1.ok() && r2.ok());
  auto c1 = format_csv({r1.value()}), c2 = format_csv({r2.value()});
  EXPECT_EQ(c1, c2);
  auto header = c1.substr(0, c1.find('\n'));
  for (const char* col : {"policy", "requests", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms",
                          "e2e_p90_ms", "hit_rate", "ideal_hit_rate", "imbalance"})
    EXPECT_NE(header.find(col), std::string::npos) << col;
  EXPECT_NE(format_table({r1.value()}).find("test_rr"), std::string::npos);
}

TEST(simulator, writes_a_valid_png_plot) {
  auto t = tiny_trace();
  auto pt = prepare_trace(t, 64);
  auto r = run_simulation(pt, opts_with(nullptr, 2));
  ASSERT_TRUE(r.ok());
  auto dir = std::filesystem::temp_directory_path() / "yard_sim_plot_test";
  std::filesystem::create_directories(dir);
  auto path = (dir / "p.png").string();
  ASSERT_TRUE(write_plot(path, {r.value()}, "TEST").ok());
  std::ifstream f(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  ASSERT_GT(bytes.size(), 100u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  // Inflate the IDAT and check its size: height * (1 + width * 3).
  auto u32 = [&](std::size_t at) {
    return (std::uint32_t(std::uint8_t(bytes[at])) << 24) | (std::uint32_t(std::uint8_t(bytes[at + 1])) << 16) |
           (std::uint32_t(std::uint8_t(bytes[at + 2])) << 8) | std::uint32_t(std::uint8_t(bytes[at + 3]));
  };
  std::uint32_t w = u32(16), h = u32(20);
  std::size_t idat = bytes.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  std::uint32_t len = u32(idat - 4);
  std::vector<unsigned char> raw(std::size_t(h) * (1 + w * 3));
  uLongf rawlen = raw.size();
  ASSERT_EQ(uncompress(raw.data(), &rawlen, reinterpret_cast<const Bytef*>(bytes.data() + idat + 4), len), Z_OK);
  EXPECT_EQ(rawlen, raw.size());
  std::filesystem::remove_all(dir);
  EXPECT_FALSE(write_plot("/nonexistent/dir/p.png", {r.value()}, "X").ok());
}

// Agent hints: with a 20/80 interactive/batch mix under a queue, interactive TTFT p90 is
// lower when the workers see the classes (batch yields) than when they do not.
TEST(simulator, latency_class_hints_lower_interactive_ttft) {
  std::string text;
  for (int i = 0; i < 240; ++i)
    text += "{\"timestamp\": " + std::to_string(i * 4) + ", \"input_length\": " + std::to_string(1500 + (i * 397) % 2500) +
            ", \"output_length\": " + std::to_string(16 + i % 24) + ", \"hash_ids\": [" + std::to_string(1000 + i) + "]}\n";
  auto t = parse_trace(text);
  ASSERT_TRUE(t.ok());
  auto pt = prepare_trace(t.value(), 64);
  auto run = [&](bool hints) {
    auto o = opts_with(nullptr, 2);
    o.interactive_fraction = 0.2;
    o.hints = hints;
    auto r = run_simulation(pt, o);
    EXPECT_TRUE(r.ok());
    return r.value();
  };
  auto off = run(false), on = run(true);
  off.policy += "-hints";  // as yard sim --hints-ab names the hints-off run
  EXPECT_EQ(off.interactive_requests, on.interactive_requests);  // the same draw
  EXPECT_GT(on.interactive_requests, 20u);
  EXPECT_LT(on.interactive_requests, 80u);
  EXPECT_LT(on.ttft_interactive_ms.p90, off.ttft_interactive_ms.p90);
  EXPECT_GT(on.ttft_batch_ms.p90, on.ttft_interactive_ms.p90);
  EXPECT_NE(format_hint_table({off, on}).find("interactive_ttft_p90_off"), std::string::npos);
}

TEST(simulator, real_conversation_trace_prefix_when_present) {
  auto dir = shared_data_dir();
  std::string path = dir + "/data/mooncake/conversation_trace.jsonl";
  if (dir.empty() || !std::filesystem::exists(path)) GTEST_SKIP() << "shared Mooncake data not found";
  trace_load_options lo;
  lo.limit = 300;
  auto t = load_trace(path, lo);
  ASSERT_TRUE(t.ok()) << t.err().describe();
  EXPECT_EQ(t->requests.size(), 300u);
  EXPECT_TRUE(t->issues.empty());
  auto pt = prepare_trace(t.value(), 64);
  auto r = run_simulation(pt, opts_with(nullptr, 4));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->completed, 300u);
  EXPECT_GT(pt.ideal_hit_rate, 0.0);
}

}  // namespace
}  // namespace yard::sim
