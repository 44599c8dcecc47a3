// Every benchmark still runs end to end and prints its one summary line
// (tiny sizes: this checks the programs, not the numbers).
#include <cstdio>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace {

// Runs `yard ARGS`, returns its last stdout line (empty on failure).
std::string last_line(const std::string& args) {
  const char* bin = std::getenv("YARD_BIN");
  std::string cmd = std::string(bin ? bin : "build/bin/yard") + " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out, line;
  char buf[4096];
  while (fgets(buf, sizeof buf, p)) {
    line = buf;
    if (!line.empty() && line.back() == '\n') line.pop_back();
    if (!line.empty()) out = line;
  }
  int rc = pclose(p);
  return rc == 0 ? out : "exit " + std::to_string(rc) + ": " + out;
}

TEST(bench_smoke, overhead_prints_its_summary) {
  auto l = last_line("bench overhead --iterations 20 --warmup 5");
  EXPECT_EQ(l.rfind("overhead: rtt_ratio=", 0), 0u) << l;
  EXPECT_NE(l.find("failures=0"), std::string::npos) << l;
}

TEST(bench_smoke, edge_prints_its_summary) {
  auto l = last_line("bench edge --quick");
  EXPECT_EQ(l.rfind("edge: idle_streams=200 ", 0), 0u) << l;
  EXPECT_NE(l.find(" rtt_ratio="), std::string::npos) << l;
  EXPECT_NE(l.find("failures=0"), std::string::npos) << l;
}

TEST(bench_smoke, indexer_prints_its_summary) {
  auto l = last_line("bench indexer --quick");
  EXPECT_EQ(l.rfind("indexer: ingest_events_per_s=", 0), 0u) << l;
}

TEST(bench_smoke, tiers_prints_its_summary) {
  auto l = last_line("bench tiers --quick");
  EXPECT_EQ(l.rfind("tiers: ttft_p50_speedup=", 0), 0u) << l;
  EXPECT_NE(l.find("disk_write_ratio="), std::string::npos) << l;
}

// Also a behaviour check: both pools produce the same tokens in the same steps (the bench exits 1 otherwise).
TEST(bench_smoke, g1_prints_its_summary) {
  auto l = last_line("bench g1 --requests 8 --prompt 64 --shared 32 --output 8 --reps 1");
  EXPECT_EQ(l.rfind("g1: local_us_per_step=", 0), 0u) << l;
  EXPECT_NE(l.find("outputs=identical"), std::string::npos) << l;
}

}  // namespace
