// cluster/tests/supervisor_test.cpp — the one-for-one supervisor with small
// shell children: backoff, max restarts in a window, SIGTERM propagation,
// SIGKILL of stragglers, no orphans (grandchildren, supervisor death).
// Assertions are on events and process state, never on speed; waits are
// bounded polls.
#include <gtest/gtest.h>

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/agent/supervisor.hpp"

using namespace yard::cluster;
using namespace std::chrono_literals;

namespace {

// Records events from the monitor thread.
struct recorder {
  std::mutex mu;
  std::vector<child_event> events;
  supervisor_options options() {
    supervisor_options o;
    o.tick_ms = 5;
    o.on_event = [this](const child_event& e) {
      std::lock_guard<std::mutex> lk(mu);
      events.push_back(e);
    };
    return o;
  }
  std::vector<child_event> of(const std::string& kind) {
    std::lock_guard<std::mutex> lk(mu);
    std::vector<child_event> out;
    for (auto& e : events)
      if (e.kind == kind) out.push_back(e);
    return out;
  }
  bool wait_for(const std::string& kind, std::size_t n, std::chrono::milliseconds limit = 10s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (of(kind).size() >= n) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
};

child_spec shell(const std::string& name, const std::string& script, restart_policy p = {}) {
  child_spec s;
  s.name = name;
  s.group = "test";
  s.argv = {"/bin/sh", "-c", script};
  s.policy = p;
  return s;
}

// Non-zombie processes whose process group is `pgid` (read from /proc).
int live_in_group(pid_t pgid) {
  int n = 0;
  DIR* d = opendir("/proc");
  if (!d) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    auto rp = line.rfind(')');
    if (rp == std::string::npos) continue;
    char state = 0;
    int ppid = 0, pgrp = 0;
    if (std::sscanf(line.c_str() + rp + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') ++n;
  }
  closedir(d);
  return n;
}

bool pid_alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto rp = line.rfind(')');
  return rp != std::string::npos && line.size() > rp + 2 && line[rp + 2] != 'Z' && line[rp + 2] != 'X';
}

template <class F> bool eventually(F f, std::chrono::milliseconds limit = 10s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

std::string temp_path(const std::string& name) {
  return testing::TempDir() + "supervisor_test_" + std::to_string(getpid()) + "_" + name;
}

}  // namespace

TEST(supervisor, crashing_child_backs_off_exponentially_then_gives_up) {
  recorder rec;
  supervisor sup(rec.options());
  restart_policy p;
  p.max_restarts = 4;
  p.window_ms = 60000;
  p.backoff_initial_ms = 20;
  p.backoff_max_ms = 80;
  ASSERT_TRUE(sup.start_child(shell("crasher", "exit 3", p)).ok());
  ASSERT_TRUE(rec.wait_for("gave_up", 1));
  auto restarting = rec.of("restarting");
  ASSERT_EQ(restarting.size(), 4u);
  // Doubling from 20 ms, capped at 80 ms.
  EXPECT_EQ(restarting[0].detail, "in 20 ms (restart 1)");
  EXPECT_EQ(restarting[1].detail, "in 40 ms (restart 2)");
  EXPECT_EQ(restarting[2].detail, "in 80 ms (restart 3)");
  EXPECT_EQ(restarting[3].detail, "in 80 ms (restart 4)");
  EXPECT_EQ(rec.of("started").size(), 5u);  // first start + 4 restarts
  EXPECT_EQ(rec.of("exited").size(), 5u);
  EXPECT_EQ(rec.of("exited")[0].detail, "exit 3");
  auto kids = sup.children();
  ASSERT_EQ(kids.size(), 1u);
  EXPECT_EQ(kids[0].state, child_state::failed);
  EXPECT_EQ(kids[0].restarts, 4u);
  EXPECT_EQ(kids[0].pid, -1);
  EXPECT_EQ(kids[0].last_exit, "exit 3");
  // The supervisor keeps working after giving up on one child.
  ASSERT_TRUE(sup.start_child(shell("other", "sleep 30")).ok());
  EXPECT_TRUE(eventually([&] { return sup.live_pids().size() == 1; }));
}

TEST(supervisor, restarts_outside_the_window_do_not_count) {
  recorder rec;
  supervisor sup(rec.options());
  restart_policy p;
  p.max_restarts = 1;
  p.window_ms = 100;  // each run lasts 250 ms, so the window never holds two restarts
  p.backoff_initial_ms = 5;
  p.backoff_max_ms = 5;
  ASSERT_TRUE(sup.start_child(shell("slow_crasher", "sleep 0.25; exit 1", p)).ok());
  ASSERT_TRUE(rec.wait_for("restarting", 3));
  EXPECT_TRUE(rec.of("gave_up").empty());
  EXPECT_NE(sup.children()[0].state, child_state::failed);
}

TEST(supervisor, killed_engine_is_restarted_and_supervisor_survives) {
  recorder rec;
  supervisor sup(rec.options());
  restart_policy p;
  p.backoff_initial_ms = 10;
  ASSERT_TRUE(sup.start_child(shell("engine", "sleep 30", p)).ok());
  ASSERT_TRUE(eventually([&] { return sup.live_pids().size() == 1; }));
  pid_t first = sup.live_pids()[0];
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_TRUE(rec.wait_for("started", 2));
  ASSERT_TRUE(eventually([&] { return sup.live_pids().size() == 1 && sup.live_pids()[0] != first; }));
  EXPECT_EQ(rec.of("exited")[0].detail, "signal 9");
  EXPECT_EQ(sup.children()[0].restarts, 1u);
  EXPECT_EQ(sup.children()[0].state, child_state::running);
}

TEST(supervisor, exec_failure_follows_the_restart_policy) {
  recorder rec;
  supervisor sup(rec.options());
  restart_policy p;
  p.max_restarts = 1;
  p.backoff_initial_ms = 5;
  child_spec s;
  s.name = "missing";
  s.argv = {"/nonexistent/yard-worker"};
  s.policy = p;
  ASSERT_TRUE(sup.start_child(s).ok());
  ASSERT_TRUE(rec.wait_for("gave_up", 1));
  EXPECT_EQ(rec.of("exited")[0].detail, "exit 127");
}

TEST(supervisor, sigterm_lets_the_child_drain) {
  recorder rec;
  supervisor sup(rec.options());
  std::string marker = temp_path("drained");
  std::remove(marker.c_str());
  // The child acknowledges SIGTERM by writing a marker and exiting 0 (what a
  // draining worker does after finishing its in-flight work).
  ASSERT_TRUE(sup.start_child(shell("drainer", "trap 'echo drained > " + marker +
                                                   "; exit 0' TERM; while :; do sleep 0.02; done"))
                  .ok());
  ASSERT_TRUE(eventually([&] { return sup.live_pids().size() == 1; }));
  std::this_thread::sleep_for(100ms);  // let sh install its trap
  pid_t pid = sup.live_pids()[0];
  ASSERT_TRUE(sup.stop_child("drainer", 5000).ok());
  ASSERT_TRUE(sup.wait_gone("drainer", 10000));
  ASSERT_TRUE(rec.wait_for("stopped", 1));
  EXPECT_EQ(rec.of("stopped")[0].detail, "exit 0");
  EXPECT_TRUE(rec.of("killed").empty());
  EXPECT_TRUE(rec.of("restarting").empty());  // a requested stop is not a crash
  std::ifstream in(marker);
  std::string word;
  in >> word;
  EXPECT_EQ(word, "drained");
  std::remove(marker.c_str());
  EXPECT_TRUE(sup.children().empty());
  EXPECT_TRUE(eventually([&] { return live_in_group(pid) == 0; }));
}

TEST(supervisor, straggler_gets_sigkill_after_the_timeout) {
  recorder rec;
  supervisor sup(rec.options());
  ASSERT_TRUE(sup.start_child(shell("stubborn", "trap '' TERM; while :; do sleep 0.02; done")).ok());
  ASSERT_TRUE(eventually([&] { return sup.live_pids().size() == 1; }));
  std::this_thread::sleep_for(100ms);
  pid_t pid = sup.live_pids()[0];
  sup.stop_all(200);
  EXPECT_TRUE(sup.children().empty());
  ASSERT_TRUE(rec.wait_for("stopped", 1));
  ASSERT_EQ(rec.of("killed").size(), 1u);
  EXPECT_EQ(rec.of("stopped")[0].detail, "signal 9");
  EXPECT_TRUE(eventually([&] { return live_in_group(pid) == 0; }));
}

TEST(supervisor, stop_all_reaches_grandchildren) {
  recorder rec;
  supervisor sup(rec.options());
  ASSERT_TRUE(sup.start_child(shell("a", "sleep 30 & sleep 30 & wait")).ok());
  ASSERT_TRUE(sup.start_child(shell("b", "sleep 30 & wait")).ok());
  ASSERT_TRUE(eventually([&] { return sup.live_pids().size() == 2; }));
  auto pids = sup.live_pids();
  ASSERT_TRUE(eventually([&] { return live_in_group(pids[0]) >= 2 && live_in_group(pids[1]) >= 2; }));
  sup.stop_all(2000);
  EXPECT_TRUE(sup.children().empty());
  for (pid_t p : pids) EXPECT_TRUE(eventually([&] { return live_in_group(p) == 0; })) << "group " << p;
}

TEST(supervisor, crashed_child_leaves_no_orphans) {
  recorder rec;
  supervisor sup(rec.options());
  restart_policy p;
  p.max_restarts = 0;  // give up at once, so only one generation runs
  ASSERT_TRUE(sup.start_child(shell("leaky", "sleep 30 & sleep 0.1; exit 2", p)).ok());
  ASSERT_TRUE(rec.wait_for("gave_up", 1));
  pid_t pid = rec.of("exited")[0].pid;
  EXPECT_TRUE(eventually([&] { return live_in_group(pid) == 0; }));
}

TEST(supervisor, children_die_with_the_supervising_process) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t agent = ::fork();
  ASSERT_GE(agent, 0);
  if (agent == 0) {
    ::close(fds[0]);
    {
      supervisor sup;
      // Exec'd directly, like a worker (PDEATHSIG covers direct children; the
      // group kill on exit covers grandchildren while the supervisor lives).
      child_spec spec;
      spec.name = "orphan_candidate";
      spec.argv = {"/bin/sleep", "30"};
      if (!sup.start_child(spec).ok()) ::_exit(1);
      for (int i = 0; i < 500 && sup.live_pids().empty(); ++i) std::this_thread::sleep_for(10ms);
      pid_t child = sup.live_pids().empty() ? -1 : sup.live_pids()[0];
      if (::write(fds[1], &child, sizeof child) != sizeof child) ::_exit(1);
      ::kill(::getpid(), SIGKILL);  // an agent crash: no destructor runs
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  pid_t child = -1;
  ASSERT_EQ(::read(fds[0], &child, sizeof child), static_cast<ssize_t>(sizeof child));
  ::close(fds[0]);
  int st = 0;
  ASSERT_EQ(::waitpid(agent, &st, 0), agent);
  ASSERT_GT(child, 0);
  EXPECT_TRUE(eventually([&] { return !pid_alive(child); })) << "child " << child << " outlived its agent";
}

TEST(supervisor, rejects_bad_requests) {
  supervisor sup;
  child_spec empty;
  empty.name = "x";
  EXPECT_EQ(sup.start_child(empty).err().code, yard::errc::bad_request);
  ASSERT_TRUE(sup.start_child(shell("dup", "sleep 30")).ok());
  auto again = sup.start_child(shell("dup", "sleep 30"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.err().code, yard::errc::conflict);
  EXPECT_EQ(sup.stop_child("nobody", 100).err().code, yard::errc::not_found);
  auto pid = sup.live_pids();
  ASSERT_EQ(pid.size(), 1u);
  ASSERT_TRUE(sup.stop_child("dup", 2000).ok());
  ASSERT_TRUE(sup.wait_gone("dup", 5000));
  // The name is free again once the child is gone.
  EXPECT_TRUE(sup.start_child(shell("dup", "sleep 30")).ok());
}
