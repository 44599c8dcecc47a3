// actors/tests/recent_cancels_test.cpp — the memory of cancels that came before their request: an attempt-less
// cancel covers every attempt, a named attempt only itself, each is taken once, and old or surplus ones go.
#include "actors/recent_cancels.hpp"

#include <gtest/gtest.h>

namespace yard::actors {
namespace {

using namespace std::chrono_literals;

TEST(recent_cancels, matches_by_id_and_attempt_once) {
  recent_cancels rc;
  auto t = recent_cancels::clock::now();
  rc.remember("a", std::nullopt, t);
  rc.remember("b", 2u, t);
  EXPECT_FALSE(rc.take("c", 0, t));
  EXPECT_FALSE(rc.take("b", 3, t));  // another attempt of b
  EXPECT_TRUE(rc.take("b", 2, t));
  EXPECT_FALSE(rc.take("b", 2, t));  // taken once
  EXPECT_TRUE(rc.take("a", 7, t));   // no attempt named: any
  EXPECT_EQ(rc.size(), 0u);
}

TEST(recent_cancels, old_and_surplus_entries_are_forgotten) {
  recent_cancels rc(2000ms, 3);
  auto t = recent_cancels::clock::now();
  rc.remember("old", std::nullopt, t);
  EXPECT_FALSE(rc.take("old", 0, t + 2001ms));
  for (const char* id : {"1", "2", "3", "4"}) rc.remember(id, std::nullopt, t + 3s);
  EXPECT_EQ(rc.size(), 3u);
  EXPECT_FALSE(rc.take("1", 0, t + 3s));  // the oldest made room
  EXPECT_TRUE(rc.take("4", 0, t + 3s));
}

}  // namespace
}  // namespace yard::actors
