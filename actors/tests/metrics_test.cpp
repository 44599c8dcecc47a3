// actors/tests/metrics_test.cpp — Prometheus text of the per-worker gauges:
// one HELP/TYPE pair per series, one line per worker with its labels, label
// values escaped, tier fields carried from the load report.
#include <gtest/gtest.h>

#include "actors/metrics.hpp"

namespace {

using yard::actors::render_worker_metrics;
using yard::actors::worker_status;

TEST(worker_metrics, one_line_per_worker_and_series_with_tier_fields) {
  worker_status a{"w-0", "both", "mock", false, {}};
  a.load.pending_prefill_tokens = 1234;
  a.load.total_kv_blocks = 64;
  a.load.tiers.g2_kv_blocks = 7;
  a.load.tiers.g3_kv_blocks = 9;
  a.load.tiers.kv_offloaded_blocks = 16;
  a.load.tiers.g3_dropped_writes = 2;
  worker_status b{"w-1", "decode", "mock", true, {}};
  b.load.tiers.g3_disabled = true;
  std::string out;
  render_worker_metrics(out, {a, b});
  EXPECT_NE(out.find("# TYPE yard_worker_kv_blocks_g2 gauge\n"), std::string::npos);
  EXPECT_NE(out.find("# TYPE yard_worker_kv_offloaded_blocks_total counter\n"), std::string::npos);
  EXPECT_NE(out.find("yard_worker_pending_prefill_tokens{worker=\"w-0\",role=\"both\",model=\"mock\"} 1234\n"),
            std::string::npos);
  EXPECT_NE(out.find("yard_worker_kv_blocks_g2{worker=\"w-0\",role=\"both\",model=\"mock\"} 7\n"), std::string::npos);
  EXPECT_NE(out.find("yard_worker_kv_blocks_g3{worker=\"w-0\",role=\"both\",model=\"mock\"} 9\n"), std::string::npos);
  EXPECT_NE(out.find("yard_worker_g3_dropped_writes_total{worker=\"w-0\",role=\"both\",model=\"mock\"} 2\n"),
            std::string::npos);
  EXPECT_NE(out.find("yard_worker_g3_disabled{worker=\"w-1\",role=\"decode\",model=\"mock\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("yard_worker_draining{worker=\"w-1\",role=\"decode\",model=\"mock\"} 1\n"), std::string::npos);
  // Every sample line names a series that has its HELP and TYPE.
  std::size_t pos = 0;
  while ((pos = out.find('\n', pos)) != std::string::npos && pos + 1 < out.size()) {
    auto line = out.substr(pos + 1, out.find('\n', pos + 1) - pos - 1);
    ++pos;
    if (line.empty() || line[0] == '#') continue;
    auto name = line.substr(0, line.find('{'));
    EXPECT_NE(out.find("# TYPE " + name + " "), std::string::npos) << line;
  }
}

TEST(worker_metrics, label_values_are_escaped) {
  worker_status w{"odd\"id\\x", "both", "m\nodel", false, {}};
  std::string out;
  render_worker_metrics(out, {w});
  EXPECT_NE(out.find("worker=\"odd\\\"id\\\\x\",role=\"both\",model=\"m\\nodel\""), std::string::npos) << out;
}

}  // namespace
