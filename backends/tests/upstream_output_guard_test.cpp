// backends/tests/upstream_output_guard_test.cpp — the budget and stop strings an external worker keeps itself.
#include "backends/external/upstream_output_guard.hpp"

#include <gtest/gtest.h>

using namespace yard;
using yard::backends::external::upstream_output_guard;

namespace {

std::string bytes(const std::vector<msg::token_id>& ids) { return std::string(ids.begin(), ids.end()); }
std::vector<msg::token_id> ids(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace

TEST(upstream_output_guard, the_budget_cuts_inside_a_delta_and_counts_resume_tokens) {
  backends::engine_request r;
  r.prompt = {1, 2, 3};
  r.max_tokens = 6;
  r.resume_tokens = ids("ab");  // two already delivered: four left
  upstream_output_guard g(r, 2048);
  auto v = g.apply(ids("cd"), "cd", false, true, bytes);
  EXPECT_FALSE(v.end);
  EXPECT_EQ(v.text, "cd");
  v = g.apply(ids("efgh"), "efgh", false, true, bytes);
  EXPECT_EQ(v.tokens, ids("ef"));
  EXPECT_EQ(v.text, "ef");
  ASSERT_TRUE(v.end);
  EXPECT_EQ(*v.end, msg::finish_kind::length);
  EXPECT_EQ(g.produced(), 6u);
}

TEST(upstream_output_guard, the_budget_is_the_context_left_when_max_tokens_is_absent) {
  backends::engine_request r;
  r.prompt = std::vector<msg::token_id>(10, 7);
  r.max_tokens = 0;
  upstream_output_guard g(r, 14);
  EXPECT_EQ(g.budget(), 4u);
  // The server's own finish on the budget's last token keeps its reason (nothing is cut).
  auto v = g.apply(ids("wxyz"), "wxyz", true, true, bytes);
  EXPECT_FALSE(v.end);
  EXPECT_EQ(v.text, "wxyz");
}

TEST(upstream_output_guard, stop_strings_cut_hold_back_and_wait_for_min_tokens) {
  backends::engine_request r;
  r.prompt = {1};
  r.max_tokens = 100;
  r.stop = {"END"};
  upstream_output_guard g(r, 2048);
  auto v = g.apply(ids("abcE"), "abcE", false, true, bytes);
  EXPECT_EQ(v.text, "abc") << "'E' may start END: held";
  v = g.apply(ids("Nx"), "Nx", false, true, bytes);
  EXPECT_EQ(v.text, "ENx") << "'ENx' is not END: released";
  v = g.apply(ids("yEN"), "yEN", false, true, bytes);
  EXPECT_EQ(v.text, "y");
  EXPECT_FALSE(v.end);
  v = g.apply(ids("D!"), "D!", false, true, bytes);
  ASSERT_TRUE(v.end);
  EXPECT_EQ(*v.end, msg::finish_kind::stop);
  EXPECT_EQ(v.text, "") << "the held 'EN' was the stop string's start";

  backends::engine_request m = r;
  m.sampling.min_tokens = 5;
  upstream_output_guard early(m, 2048);
  v = early.apply(ids("END"), "END", false, true, bytes);
  EXPECT_FALSE(v.end) << "three outputs, min_tokens 5: END passes";
  EXPECT_EQ(v.text, "END");
}

// A server that sends no ids: our tokenizer's reading of a delta may count more tokens than the server generated,
// so each non-empty delta counts as one and passes or is dropped whole.
TEST(upstream_output_guard, deltas_without_server_ids_count_one_each) {
  backends::engine_request r;
  r.prompt = {1};
  r.max_tokens = 2;
  upstream_output_guard g(r, 2048);
  auto v = g.apply(ids("hello"), "hello", false, false, bytes);
  EXPECT_EQ(v.text, "hello");
  EXPECT_FALSE(v.end);
  v = g.apply(ids(" world"), " world", false, false, bytes);
  EXPECT_EQ(v.text, " world");
  ASSERT_TRUE(v.end) << "the budget's last delta, and the server does not end here";
  EXPECT_EQ(*v.end, msg::finish_kind::length);
  v = g.apply(ids("!"), "!", false, false, bytes);
  EXPECT_TRUE(v.tokens.empty());
  EXPECT_EQ(v.text, "");
}
