// sim/tests/sim_command_test.cpp — `yard sim` end to end on a trace file the test writes: byte-identical CSV
// for the same seed (whatever --jobs), PNG written, bad lines skipped or rejected by flag, bad flags refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace yard::cmd {
int run_sim(int argc, char** argv);
}

namespace {

namespace fs = std::filesystem;

int run(std::vector<std::string> args) {
  args.insert(args.begin(), "sim");
  args.push_back("--no-progress");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return yard::cmd::run_sim(static_cast<int>(argv.size()), argv.data());
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class sim_command : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("yard_sim_cmd_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream f(dir_ / "t.jsonl");
    for (int i = 0; i < 60; ++i) {
      int fam = i % 3;
      f << "{\"timestamp\": " << i * 40 << ", \"input_length\": " << 700 + 300 * fam << ", \"output_length\": " << 5 + i % 7
        << ", \"hash_ids\": [" << fam << ", " << 10 + fam << "]}\n";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(sim_command, same_seed_gives_byte_identical_csv) {
  auto t = (dir_ / "t.jsonl").string();
  ASSERT_EQ(run({"--trace", t, "--workers", "3", "--policy", "all", "--seed", "5", "--csv", (dir_ / "a.csv").string(),
                 "--plot", (dir_ / "a.png").string(), "--jobs", "2"}),
            0);
  ASSERT_EQ(run({"--trace", t, "--workers", "3", "--policy", "all", "--seed", "5", "--csv", (dir_ / "b.csv").string(), "--jobs", "1"}), 0);
  auto a = slurp(dir_ / "a.csv"), b = slurp(dir_ / "b.csv");
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  EXPECT_EQ(std::count(a.begin(), a.end(), '\n'), 7);  // header + 6 policies
  EXPECT_EQ(slurp(dir_ / "a.png").substr(1, 3), "PNG");
}

TEST_F(sim_command, sweep_writes_one_row_per_point_and_policy) {
  auto t = (dir_ / "t.jsonl").string();
  ASSERT_EQ(run({"--trace", t, "--workers", "2", "--policy", "round_robin,ttft", "--sweep", "rate=1,4", "--csv",
                 (dir_ / "s.csv").string(), "--plot", (dir_ / "s.png").string()}),
            0);
  auto s = slurp(dir_ / "s.csv");
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 5);
  EXPECT_TRUE(fs::exists(dir_ / "s.png"));
  EXPECT_NE(run({"--trace", t, "--sweep", "speed=1,2"}), 0);
  EXPECT_NE(run({"--trace", t, "--sweep", "workers=99999999999"}), 0);  // was a bad_alloc
  EXPECT_NE(run({"--trace", t, "--sweep", "workers=2.5"}), 0);
}

// Output paths that cannot be written are refused before the run, not after it.
TEST_F(sim_command, an_unwritable_output_is_refused_up_front) {
  auto t = (dir_ / "t.jsonl").string();
  EXPECT_EQ(run({"--trace", t, "--workers", "2", "--policy", "round_robin", "--csv", "/nonexistent-dir/x.csv"}), 2);
  EXPECT_EQ(run({"--trace", t, "--workers", "2", "--policy", "round_robin", "--plot", dir_.string()}), 2);
  EXPECT_NE(run({"--trace", t, "--rate-scale", "inf"}), 0);
}

TEST_F(sim_command, bad_lines_skip_by_default_and_fail_with_flag) {
  auto p = dir_ / "bad.jsonl";
  {
    std::ofstream f(p);
    f << "{\"timestamp\": 0, \"input_length\": 100, \"output_length\": 3, \"hash_ids\": [1]}\n"
      << "{\"timestamp\": 1, \"output_length\": 3, \"hash_ids\": [1]}\n"
      << "{\"timestamp\": 2, \"input_length\": 100, \"output_length\": 3, \"hash_ids\": [1]}\n";
  }
  EXPECT_EQ(run({"--trace", p.string(), "--workers", "1", "--policy", "round_robin"}), 0);
  EXPECT_NE(run({"--trace", p.string(), "--workers", "1", "--policy", "round_robin", "--reject-bad-lines"}), 0);
  EXPECT_NE(run({"--trace", (dir_ / "missing.jsonl").string()}), 0);
  EXPECT_NE(run({"--trace", p.string(), "--policy", "no_such_policy"}), 0);
  EXPECT_NE(run({"--workers", "2"}), 0);  // no trace
}

TEST_F(sim_command, synthetic_generator_runs) {
  EXPECT_EQ(run({"--synthetic", "--syn-sessions", "10", "--workers", "2", "--policy", "dynamo", "--csv", (dir_ / "y.csv").string()}), 0);
  EXPECT_TRUE(fs::exists(dir_ / "y.csv"));
}

}  // namespace

namespace {

TEST_F(sim_command, policy_knobs_reach_the_simulated_router_and_bad_ones_are_refused) {
  auto t = (dir_ / "t.jsonl").string();
  ASSERT_EQ(run({"--trace", t, "--workers", "3", "--policy", "dynamo", "--csv", (dir_ / "k0.csv").string()}), 0);
  ASSERT_EQ(run({"--trace", t, "--workers", "3", "--policy", "dynamo", "--temperature", "1000", "--overlap-weight", "0",
                 "--csv", (dir_ / "k1.csv").string()}),
            0);
  auto a = slurp(dir_ / "k0.csv"), b = slurp(dir_ / "k1.csv");
  ASSERT_FALSE(a.empty());
  EXPECT_NE(a, b) << "--temperature/--overlap-weight changed nothing in the simulated routing";
  EXPECT_NE(run({"--trace", t, "--tier2-weight", "1.5"}), 0);
  EXPECT_NE(run({"--trace", t, "--temperature", "-1"}), 0);
}

}  // namespace
