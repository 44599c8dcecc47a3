// kv/tests/policy_flags_test.cpp — the routing policies' command-line knobs
// fill policy_config, keep its defaults when absent, and refuse bad values.
#include <gtest/gtest.h>

#include "kv/policy_flags.hpp"

namespace {

using yard::kv::policy_config;

bool parse(std::vector<std::string> args, policy_config& pc) {
  CLI::App app{"test"};
  yard::kv::add_router_policy_flags(app, pc);
  args.insert(args.begin(), "test");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
    return true;
  } catch (const CLI::ParseError&) {
    return false;
  }
}

TEST(policy_flags, absent_flags_keep_the_documented_defaults) {
  policy_config pc;
  ASSERT_TRUE(parse({}, pc));
  policy_config d;
  EXPECT_EQ(pc.overlap_weight, d.overlap_weight);
  EXPECT_EQ(pc.tier2_hit_weight, 0.7);
  EXPECT_EQ(pc.tier3_hit_weight, 0.1);
}

TEST(policy_flags, values_land_in_the_config) {
  policy_config pc;
  ASSERT_TRUE(parse({"--overlap-weight", "2.5", "--temperature", "0.3", "--balance-abs", "8", "--balance-rel", "1.2",
                     "--tier2-weight", "0.5", "--tier3-weight", "0"},
                    pc));
  EXPECT_EQ(pc.overlap_weight, 2.5);
  EXPECT_EQ(pc.temperature, 0.3);
  EXPECT_EQ(pc.balance_abs_threshold, 8u);
  EXPECT_EQ(pc.balance_rel_threshold, 1.2);
  EXPECT_EQ(pc.tier2_hit_weight, 0.5);
  EXPECT_EQ(pc.tier3_hit_weight, 0.0);
}

TEST(policy_flags, out_of_range_or_malformed_values_are_refused) {
  policy_config pc;
  EXPECT_FALSE(parse({"--tier2-weight", "1.5"}, pc));
  EXPECT_FALSE(parse({"--tier3-weight", "-0.1"}, pc));
  EXPECT_FALSE(parse({"--temperature", "-1"}, pc));
  EXPECT_FALSE(parse({"--balance-rel", "0.5"}, pc));
  EXPECT_FALSE(parse({"--overlap-weight", "lots"}, pc));
}

}  // namespace
