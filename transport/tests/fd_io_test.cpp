// transport/tests/fd_io_test.cpp — whole-buffer pipe I/O: round trip, EOF and timeout fail cleanly.
#include <gtest/gtest.h>

#include <unistd.h>

#include <string>
#include <thread>

#include "transport/fd_io.hpp"

namespace {

using yard::transport::read_all;
using yard::transport::write_all;

TEST(fd_io, round_trips_a_buffer_written_in_pieces) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string msg(100000, 'x');  // over a pipe's buffer: the writer blocks until the reader drains it
  for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<char>('a' + i % 26);
  std::thread writer([&] { EXPECT_TRUE(write_all(fds[1], msg.data(), msg.size())); });
  std::string got(msg.size(), '\0');
  EXPECT_TRUE(read_all(fds[0], got.data(), got.size(), 5000));
  writer.join();
  EXPECT_EQ(got, msg);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(fd_io, eof_before_the_whole_buffer_fails) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_TRUE(write_all(fds[1], "abc", 3));
  ::close(fds[1]);
  char buf[8];
  EXPECT_FALSE(read_all(fds[0], buf, sizeof buf, 5000));
  ::close(fds[0]);
}

TEST(fd_io, a_silent_peer_times_out) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  char b;
  EXPECT_FALSE(read_all(fds[0], &b, 1, 50));
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
