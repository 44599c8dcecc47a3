// backends/tests/stop_strings_test.cpp — stop strings: truncation at the match, hold-back of a partial match.
#include "backends/stop_strings.hpp"

#include <gtest/gtest.h>

namespace yard::backends {
namespace {

TEST(stop_strings, without_stops_text_passes_through) {
  stop_strings s;
  EXPECT_TRUE(s.empty());
  auto c = s.feed("hello", false);
  EXPECT_EQ(c.text, "hello");
  EXPECT_FALSE(c.matched);
  EXPECT_TRUE(stop_strings({"", ""}).empty());  // empty stop strings are ignored
}

TEST(stop_strings, a_match_inside_one_delta_truncates_before_it) {
  stop_strings s({"END"});
  auto c = s.feed("abcENDxyz", false);
  EXPECT_TRUE(c.matched);
  EXPECT_EQ(c.text, "abc");
}

TEST(stop_strings, a_partial_match_is_held_back_then_released_when_it_fails) {
  stop_strings s({"END"});
  auto a = s.feed("abcE", false);
  EXPECT_EQ(a.text, "abc");  // "E" may start "END"
  auto b = s.feed("N", false);
  EXPECT_EQ(b.text, "");     // "EN" still may
  auto c = s.feed("x", false);
  EXPECT_FALSE(c.matched);
  EXPECT_EQ(c.text, "ENx");  // it did not: everything goes out
}

TEST(stop_strings, a_match_across_deltas_sends_nothing_of_the_stop) {
  stop_strings s({"END"});
  std::string sent;
  sent += s.feed("xxE", false).text;
  sent += s.feed("N", false).text;
  auto c = s.feed("Dtail", false);
  sent += c.text;
  EXPECT_TRUE(c.matched);
  EXPECT_EQ(sent, "xx");
}

TEST(stop_strings, the_earliest_of_several_stops_wins_and_the_longest_partial_is_held) {
  stop_strings s({"world", "lo w"});
  auto a = s.feed("hel", false);
  EXPECT_EQ(a.text, "he");  // "l" may start "lo w"
  auto b = s.feed("lo world", false);
  EXPECT_TRUE(b.matched);
  EXPECT_EQ(a.text + b.text, "hel");  // "lo w" starts before "world"
}

TEST(stop_strings, the_last_delta_releases_a_held_tail) {
  stop_strings s({"END"});
  EXPECT_EQ(s.feed("abE", false).text, "ab");
  auto c = s.feed("N", true);
  EXPECT_FALSE(c.matched);
  EXPECT_EQ(c.text, "EN");
}

TEST(stop_strings, unarmed_text_passes_and_long_streams_keep_a_bounded_tail) {
  stop_strings s({"STOP"});
  EXPECT_EQ(s.feed("STOP", false, /*armed=*/false).text, "STOP");  // before min_tokens
  std::string sent;
  for (int i = 0; i < 10000; ++i) sent += s.feed("ab", false).text;
  EXPECT_EQ(sent.size(), 20000u);
  auto c = s.feed("STO", false);
  EXPECT_EQ(c.text, "");
  auto d = s.feed("P", false);
  EXPECT_TRUE(d.matched);
  EXPECT_EQ(d.text, "");
}

}  // namespace
}  // namespace yard::backends
