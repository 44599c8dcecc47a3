// actors/tests/chunk_queue_test.cpp — the hand-off from the frontend actor to an HTTP
// connection: a streamed response is woken per batch of chunks, a whole one only by
// final chunks; nothing is lost either way.
#include <gtest/gtest.h>

#include "actors/chunk_queue.hpp"

namespace {

using yard::actors::chunk_queue;
using yard::msg::token_chunk;

token_chunk chunk(std::uint64_t seq, bool final_chunk = false) {
  token_chunk c;
  c.request_id = "r";
  c.seq = seq;
  c.token_ids = {static_cast<yard::msg::token_id>(seq)};
  if (final_chunk) c.finish_reason = yard::msg::finish_kind::stop;
  return c;
}

TEST(chunk_queue, a_streamed_response_is_woken_when_the_queue_becomes_non_empty) {
  chunk_queue q;
  int wakes = 0;
  q.set_notify([&] { ++wakes; });
  q.push(chunk(0));
  q.push(chunk(1));  // already non-empty: the pending wake covers it
  EXPECT_EQ(wakes, 1);
  EXPECT_EQ(q.take_all().size(), 2u);
  q.push(chunk(2, true));
  EXPECT_EQ(wakes, 2);
  auto rest = q.take_all();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].seq, 2u);
}

TEST(chunk_queue, a_whole_response_is_woken_only_by_final_chunks_and_gets_every_chunk) {
  chunk_queue q;
  int wakes = 0;
  q.set_notify([&] { ++wakes; }, /*finals_only=*/true);
  for (std::uint64_t i = 0; i < 5; ++i) q.push(chunk(i));
  EXPECT_EQ(wakes, 0);
  q.push(chunk(5, true));
  EXPECT_EQ(wakes, 1);
  auto all = q.take_all();
  ASSERT_EQ(all.size(), 6u);
  for (std::uint64_t i = 0; i < 6; ++i) EXPECT_EQ(all[i].seq, i);
  // An error chunk is final too (the frontend sets finish_reason "error").
  auto err = chunk(6, true);
  err.finish_reason = yard::msg::finish_kind::error;
  q.push(std::move(err));
  EXPECT_EQ(wakes, 2);
}

TEST(chunk_queue, no_notify_after_it_is_cleared) {
  chunk_queue q;
  int wakes = 0;
  q.set_notify([&] { ++wakes; });
  q.set_notify(nullptr);
  q.push(chunk(0, true));
  EXPECT_EQ(wakes, 0);
  EXPECT_EQ(q.take_all().size(), 1u);
}

}  // namespace
