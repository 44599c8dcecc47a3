// Sampler: greedy, temperature, top-k, top-p, seeds, logprobs.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "backends/native/sampler.hpp"

namespace yard::backends::native {
namespace {

const std::vector<float> logits = {1.0f, 3.0f, 2.5f, -1.0f, 3.0f, 0.0f};

double log_softmax(int i) {
  double z = 0;
  for (float l : logits) z += std::exp(l);
  return logits[i] - std::log(z);
}

TEST(native_sampling, greedy_picks_first_max_with_logprob) {
  std::mt19937_64 rng(1);
  msg::sampling_params p;
  auto r = sample(logits.data(), 6, p, rng);
  EXPECT_EQ(r.token, 1);  // tie with id 4 goes to the lower id
  EXPECT_NEAR(r.logprob, log_softmax(1), 1e-5);
  p.temperature = 5.0;
  p.top_k = 1;
  EXPECT_EQ(sample(logits.data(), 6, p, rng).token, 1);
}

TEST(native_sampling, top_k_and_top_p_restrict_the_candidates) {
  msg::sampling_params p;
  p.temperature = 10.0;  // nearly uniform
  p.top_k = 3;
  std::set<int> seen;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 400; ++i) seen.insert(sample(logits.data(), 6, p, rng).token);
  EXPECT_EQ(seen, (std::set<int>{1, 2, 4}));
  p.top_k = 0;
  p.temperature = 0.5;
  p.top_p = 0.1;  // only the top token's mass is needed
  seen.clear();
  for (int i = 0; i < 100; ++i) seen.insert(sample(logits.data(), 6, p, rng).token);
  EXPECT_EQ(seen, (std::set<int>{1}));
}

TEST(native_sampling, temperature_follows_the_distribution_and_seeds_repeat) {
  msg::sampling_params p;
  p.temperature = 1.0;
  std::mt19937_64 rng(3);
  std::vector<int> count(6);
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++count[sample(logits.data(), 6, p, rng).token];
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(count[i] / double(n), std::exp(log_softmax(i)), 0.02) << i;
  std::mt19937_64 a(99), b(99);
  for (int i = 0; i < 50; ++i) {
    auto x = sample(logits.data(), 6, p, a), y = sample(logits.data(), 6, p, b);
    EXPECT_EQ(x.token, y.token);
    EXPECT_NEAR(x.logprob, log_softmax(x.token), 1e-5);
  }
}

}  // namespace
}  // namespace yard::backends::native
