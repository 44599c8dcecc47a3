// Logits processing shared by the engines: penalties, logit_bias, min_tokens,
// top logprobs (unit), and their observable effect on the mock engine,
// plus the context-bounded default max_tokens.
#include <gtest/gtest.h>

#include <cmath>

#include "backends/mock/mock_engine.hpp"
#include "backends/sampling/logits_processor.hpp"
#include "backends/tests/engine_test_util.hpp"

using namespace yard;
using namespace yard::backends;
using yard::backends::testing::req;
using yard::backends::testing::run_all;

namespace {

std::vector<token_id> bytes(const std::string& s) { return std::vector<token_id>(s.begin(), s.end()); }

mock_engine_options fast() {
  mock_engine_options o;
  o.per_token_delay_ms = 1;
  return o;
}

}  // namespace

TEST(logits_processor, frequency_and_presence_penalties_follow_openai) {
  std::vector<float> l = {1, 1, 1, 1};
  msg::sampling_params p;
  p.frequency_penalty = 0.5;
  p.presence_penalty = 0.25;
  std::vector<token_id> out = {2, 2, 3};
  apply_logits_processors(l, p, {}, out, {});
  EXPECT_FLOAT_EQ(l[0], 1.0f);                    // not in the output
  EXPECT_FLOAT_EQ(l[2], 1.0f - 2 * 0.5f - 0.25f);  // twice
  EXPECT_FLOAT_EQ(l[3], 1.0f - 0.5f - 0.25f);      // once
}

TEST(logits_processor, repetition_penalty_divides_positive_and_multiplies_negative_logits) {
  std::vector<float> l = {4, -4, 4, -4};
  msg::sampling_params p;
  p.repetition_penalty = 2.0;
  std::vector<token_id> prompt = {0}, out = {1};
  apply_logits_processors(l, p, prompt, out, {});
  EXPECT_FLOAT_EQ(l[0], 2.0f);   // prompt token
  EXPECT_FLOAT_EQ(l[1], -8.0f);  // output token
  EXPECT_FLOAT_EQ(l[2], 4.0f);
  EXPECT_FLOAT_EQ(l[3], -4.0f);
}

TEST(logits_processor, logit_bias_and_min_tokens_ban) {
  std::vector<float> l = {0, 0, 0, 0};
  msg::sampling_params p;
  p.logit_bias = {{1, 100.0f}, {2, -100.0f}, {99, 5.0f}};  // 99 is outside the vocabulary: ignored
  p.min_tokens = 2;
  std::vector<token_id> out = {0}, stops = {3};
  apply_logits_processors(l, p, {}, out, stops);
  EXPECT_FLOAT_EQ(l[1], 100.0f);
  EXPECT_FLOAT_EQ(l[2], -100.0f);
  EXPECT_TRUE(std::isinf(l[3]) && l[3] < 0);  // stop token banned: 1 output < min_tokens 2
  std::vector<float> l2 = {0, 0, 0, 0};
  std::vector<token_id> out2 = {0, 0};
  apply_logits_processors(l2, p, {}, out2, stops);
  EXPECT_FLOAT_EQ(l2[3], 0.0f);  // allowed from the third token on
}

TEST(logits_processor, top_logprobs_are_sorted_normalised_and_skip_banned) {
  std::vector<float> l = {0.0f, 2.0f, 1.0f, -INFINITY};
  auto top = top_logprobs(l, 5);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].first, 1u);
  EXPECT_EQ(top[1].first, 2u);
  EXPECT_EQ(top[2].first, 0u);
  double mass = 0;
  for (auto& [t, lp] : top) mass += std::exp(lp);
  EXPECT_NEAR(mass, 1.0, 1e-5);
  EXPECT_NEAR(token_logprob(l, 1), top[0].second, 1e-6);
  EXPECT_FALSE(needs_logits_processing(msg::sampling_params{}));
}

TEST(mock_sampling, logit_bias_forces_and_bans_tokens) {
  mock_engine e(fast());
  auto p = bytes("hello");
  auto force = req("force", p, 6);
  force.sampling.logit_bias = {{'z', 100.0f}};
  auto ban = req("ban", p, 6);
  const token_id first = mock_engine::expected_token(p, 0, 0);
  ban.sampling.logit_bias = {{first, -100.0f}};
  ASSERT_TRUE(e.add_request(force).ok());
  ASSERT_TRUE(e.add_request(ban).ok());
  auto out = run_all(e);
  EXPECT_EQ(out["force"].text, "zzzzzz");
  ASSERT_EQ(out["ban"].tokens.size(), 6u);
  for (auto t : out["ban"].tokens) EXPECT_NE(t, first);
}

TEST(mock_sampling, penalties_change_the_stream_and_no_knobs_keep_it) {
  mock_engine e(fast());
  auto p = bytes("the same prompt");
  auto plain = req("plain", p, 64);
  auto freq = req("freq", p, 64);
  freq.sampling.frequency_penalty = 2.0;
  auto rep = req("rep", p, 64);
  rep.sampling.repetition_penalty = 2.0;
  for (auto* r : {&plain, &freq, &rep}) ASSERT_TRUE(e.add_request(*r).ok());
  auto out = run_all(e);
  std::string expected;
  for (int i = 0; i < 64; ++i) expected.push_back(static_cast<char>(mock_engine::expected_token(p, 0, i)));
  EXPECT_EQ(out["plain"].text, expected);
  EXPECT_NE(out["freq"].text, expected);
  EXPECT_NE(out["rep"].text, expected);
  // A frequency penalty spreads the output: no letter more often than in the plain stream's worst case.
  auto max_count = [](const std::string& s) {
    std::map<char, int> c;
    int m = 0;
    for (char x : s) m = std::max(m, ++c[x]);
    return m;
  };
  EXPECT_LE(max_count(out["freq"].text), max_count(expected));
}

TEST(mock_sampling, min_tokens_defers_stop_tokens_and_stop_strings) {
  mock_engine e(fast());
  auto p = bytes("abc");
  const token_id first = mock_engine::expected_token(p, 0, 0);
  auto stops_at_once = req("now", p, 10);
  stops_at_once.stop_token_ids = {first};
  auto later = req("later", p, 10);
  later.stop_token_ids = {first};
  later.sampling.min_tokens = 4;
  ASSERT_TRUE(e.add_request(stops_at_once).ok());
  ASSERT_TRUE(e.add_request(later).ok());
  auto out = run_all(e);
  EXPECT_EQ(out["now"].finish, "stop");
  EXPECT_EQ(out["now"].tokens.size(), 1u);
  EXPECT_GE(out["later"].tokens.size(), 5u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_NE(out["later"].tokens[i], first) << i;
}

TEST(mock_sampling, logprobs_carry_text_and_top_alternatives) {
  mock_engine e(fast());
  auto p = bytes("xyz");
  auto r = req("lp", p, 3);
  r.sampling.logprobs = true;
  r.sampling.top_logprobs = 3;
  ASSERT_TRUE(e.add_request(r).ok());
  auto out = run_all(e)["lp"];
  ASSERT_EQ(out.token_logprobs.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& t = out.token_logprobs[i];
    EXPECT_EQ(t.token, out.tokens[i]);
    EXPECT_EQ(t.text, std::string(1, static_cast<char>(out.tokens[i])));
    EXPECT_LT(t.logprob, 0.0f);
    ASSERT_EQ(t.top.size(), 3u);
    EXPECT_EQ(t.top[0].token, t.token);  // greedy: the chosen token is the most likely
    EXPECT_GE(t.top[0].logprob, t.top[1].logprob);
    EXPECT_GE(t.top[1].logprob, t.top[2].logprob);
  }
  EXPECT_EQ(out.text, std::string(out.tokens.begin(), out.tokens.end()));
}

TEST(mock_sampling, max_tokens_zero_runs_to_the_end_of_the_context) {
  auto o = fast();
  o.max_context = 40;
  mock_engine e(o);
  ASSERT_TRUE(e.add_request(req("ctx", bytes("0123456789"), 0)).ok());
  auto out = run_all(e)["ctx"];
  EXPECT_EQ(out.finish, "length");
  EXPECT_EQ(out.tokens.size(), 30u);
  EXPECT_EQ(out.usage.completion_tokens, 30u);
  // Asking for more than the context leaves is a 400 naming max_tokens (not clamped).
  auto too_many = e.add_request(req("big", bytes("0123456789"), 31));
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.err().code, errc::bad_request);
  EXPECT_NE(too_many.err().message.find("field 'max_tokens'"), std::string::npos);
  EXPECT_TRUE(e.add_request(req("fits", bytes("0123456789"), 30)).ok());
  EXPECT_EQ(e.max_context(), 40u);
}
