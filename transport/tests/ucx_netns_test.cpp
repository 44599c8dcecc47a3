// transport/tests/ucx_netns_test.cpp — UCX pulls across two network namespaces (label: netns).
//
// Owns: the multi-host tests of ucx_data_plane: a server process in namespace A and a
// puller process in namespace B, joined only by a veth pair made by tools/netns.sh
// (192.0.2.1 <-> 192.0.2.2, addresses that exist only inside those namespaces), so
// UCX's tcp transport crosses a real (virtual) network as between two machines. The
// descriptor travels as msgpack bytes over a pipe, as it would over NATS.
// Cases: byte-exact checksummed pull; the link cut mid-session; the server killed.
// Skips cleanly when not root or when `ip netns add` / veth are not permitted.
// Must not touch: anything outside the namespaces it creates (named yx<pid>_a/_b).
// Thread-safety: n/a (test). Children are forked before any UCX call in the parent,
// each child enters its namespace with setns() and exits with _exit().
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "messages/codec.hpp"
#include "messages/kv_transfer.hpp"
#include "transport/fd_io.hpp"
#include "transport/ucx/ucx_data_plane.hpp"

using namespace yard;
using namespace yard::transport;
using clk = std::chrono::steady_clock;

namespace {

constexpr std::size_t kBlock = 256 * 1024;
constexpr std::size_t kBlocks = 16;

std::vector<char> pattern(std::size_t n) {
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<char>((i * 151 + (i >> 11)) & 0xff);
  return v;
}

std::string repo_root() {
  if (const char* d = std::getenv("YARD_SOURCE_DIR"); d != nullptr && *d != '\0') return d;
  std::string f = __FILE__;  // <root>/transport/tests/ucx_netns_test.cpp
  for (int i = 0; i < 3; ++i) f = f.substr(0, f.rfind('/'));
  return f;
}

bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }



bool send_line(int fd, const std::string& s) {
  std::string l = s + "\n";
  return write_all(fd, l.data(), l.size());
}

// In a forked child: move into namespace NAME_side and point UCX's tcp at its veth.
bool enter_namespace(const std::string& name, char side) {
  std::string path = "/var/run/netns/" + name + "_" + side;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::setns(fd, CLONE_NEWNET) == 0;
  ::close(fd);
  // UCX lists network devices from /sys/class/net, which follows the mount, not the
  // network namespace: remount sysfs in a private mount namespace, as `ip netns exec` does.
  ok = ok && ::unshare(CLONE_NEWNS) == 0 && ::mount("", "/", nullptr, MS_SLAVE | MS_REC, nullptr) == 0 &&
       ::umount2("/sys", MNT_DETACH) == 0 && ::mount(name.c_str(), "/sys", "sysfs", 0, nullptr) == 0;
  ::setenv("UCX_NET_DEVICES", (name + "_v" + side).c_str(), 1);
  ::setenv("UCX_TLS", "tcp", 1);
  return ok;
}

// Server, namespace A: registers the pattern, sends its descriptor, serves until `ctl` closes.
[[noreturn]] void serve(const std::string& name, int desc_out, int ctl_in) {
  ::alarm(60);
  if (!enter_namespace(name, 'a')) _exit(10);
  auto plane = ucx_data_plane::create({"tcp", true});
  if (!plane.ok()) _exit(11);
  auto src = pattern(kBlock * kBlocks);
  auto reg = (*plane)->register_region(src.data(), src.size());
  if (!reg.ok()) _exit(12);
  auto desc = (*plane)->local_descriptor(*reg);
  if (!desc.ok()) _exit(13);
  std::string wire = msg::encode(*desc);
  auto len = static_cast<std::uint32_t>(wire.size());
  if (!write_all(desc_out, &len, 4) || !write_all(desc_out, wire.data(), wire.size())) _exit(14);
  char b;
  while (::read(ctl_in, &b, 1) > 0) {
  }  // EOF: the parent is done
  plane->reset();
  _exit(0);
}

// Puller, namespace B: one verified pull, reports "pull1 ...", and when `faulted` waits
// for the parent's go byte, then pulls again and reports "pull2 ...".
[[noreturn]] void pull(const std::string& name, int desc_in, int ctl_in, int res_out, bool faulted) {
  ::alarm(60);
  if (!enter_namespace(name, 'b')) _exit(20);
  std::uint32_t len = 0;
  if (!read_all(desc_in, &len, 4, 20000) || len > (1u << 20)) _exit(21);
  std::string wire(len, '\0');
  if (!read_all(desc_in, wire.data(), len, 5000)) _exit(22);
  auto desc = msg::decode<msg::kv_region_descriptor>(wire, msg::wire_format::msgpack);
  if (!desc.ok()) _exit(23);
  auto plane = ucx_data_plane::create({"tcp", false});
  if (!plane.ok()) _exit(24);
  const auto expect = pattern(kBlock * kBlocks);
  std::vector<char> dst(kBlock * kBlocks, 0);
  auto reg = (*plane)->register_region(dst.data(), dst.size());
  if (!reg.ok()) _exit(25);
  // Blocks land in reverse order, as a decode worker's free slots would be scattered.
  std::vector<block_copy> blocks;
  std::vector<std::uint64_t> sums;
  for (std::size_t i = 0; i < kBlocks; ++i) {
    blocks.push_back({i * kBlock, (kBlocks - 1 - i) * kBlock, kBlock});
    sums.push_back(ucx_data_plane::checksum(expect.data() + i * kBlock, kBlock));
  }
  auto report = [&](const char* tag, const result<transfer_stats>& r, double secs) {
    if (r.ok()) {
      bool exact = true;
      for (std::size_t i = 0; i < kBlocks; ++i) {
        exact = exact && std::memcmp(dst.data() + (kBlocks - 1 - i) * kBlock, expect.data() + i * kBlock, kBlock) == 0;
      }
      send_line(res_out, std::string(tag) + (exact ? " ok " : " wrong_bytes ") + std::to_string(r->bytes));
    } else {
      send_line(res_out, std::string(tag) + " err " + std::string(to_string(r.err().code)) + " " +
                             std::to_string(secs) + " " + r.err().message);
    }
  };
  auto t0 = clk::now();
  auto r1 = (*plane)->pull(*desc, blocks, *reg, 10000, sums);
  report("pull1", r1, std::chrono::duration<double>(clk::now() - t0).count());
  if (faulted) {
    char go = 0;
    if (!read_all(ctl_in, &go, 1, 30000)) _exit(26);
    std::fill(dst.begin(), dst.end(), 0);
    t0 = clk::now();
    auto r2 = (*plane)->pull(*desc, blocks, *reg, 2000, sums);
    report("pull2", r2, std::chrono::duration<double>(clk::now() - t0).count());
  }
  plane->reset();
  _exit(0);
}

int reap(pid_t pid, int timeout_ms) {
  auto deadline = clk::now() + std::chrono::milliseconds(timeout_ms);
  int st = 0;
  while (clk::now() < deadline) {
    if (::waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &st, 0);
  return -1;
}

enum class fault { none, link_down, server_killed };

class ucx_netns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "netns tests need root (ip netns add)";
    script_ = repo_root() + "/tools/netns.sh";
    if (!sh("bash " + script_ + " check >/dev/null 2>&1")) GTEST_SKIP() << "ip netns add / veth not permitted here";
    name_ = "yx" + std::to_string(::getpid() % 100000000);
    ASSERT_TRUE(sh("bash " + script_ + " up " + name_)) << "netns.sh up failed";
    up_ = true;
  }
  void TearDown() override {
    if (up_) sh("bash " + script_ + " down " + name_);
  }

  // Runs server (A) and puller (B); returns the puller's report lines.
  std::vector<std::string> run(fault f) {
    int desc[2], sctl[2], cctl[2], res[2];
    EXPECT_EQ(0, ::pipe(desc));
    EXPECT_EQ(0, ::pipe(sctl));
    EXPECT_EQ(0, ::pipe(cctl));
    EXPECT_EQ(0, ::pipe(res));
    pid_t srv = ::fork();
    if (srv == 0) {
      ::close(desc[0]), ::close(sctl[1]), ::close(cctl[0]), ::close(cctl[1]), ::close(res[0]), ::close(res[1]);
      serve(name_, desc[1], sctl[0]);
    }
    pid_t cli = ::fork();
    if (cli == 0) {
      ::close(desc[1]), ::close(sctl[0]), ::close(sctl[1]), ::close(cctl[1]), ::close(res[0]);
      pull(name_, desc[0], cctl[0], res[1], f != fault::none);
    }
    ::close(desc[0]), ::close(desc[1]), ::close(sctl[0]), ::close(cctl[0]), ::close(res[1]);

    std::vector<std::string> lines;
    std::string buf;
    auto deadline = clk::now() + std::chrono::seconds(40);
    bool faulted = false;
    while (clk::now() < deadline) {
      char c;
      if (!read_all(res[0], &c, 1, 1000)) {
        // Nothing within the second, or the end. A line may also have arrived just after the wait: readable then
        // is data as often as EOF (this read said which; treating readable as EOF lost a late "pull2" line).
        pollfd pfd{res[0], POLLIN, 0};
        if (::poll(&pfd, 1, 0) <= 0) continue;
        if (::read(res[0], &c, 1) != 1) break;  // EOF
      }
      if (c != '\n') {
        buf += c;
        continue;
      }
      lines.push_back(buf);
      buf.clear();
      if (f != fault::none && !faulted && lines.back().rfind("pull1", 0) == 0) {
        faulted = true;
        if (f == fault::link_down) {
          EXPECT_TRUE(sh("ip -n " + name_ + "_a link set " + name_ + "_va down"));
        } else {
          ::kill(srv, SIGKILL);
        }
        char go = 'g';
        write_all(cctl[1], &go, 1);
      }
    }
    ::close(cctl[1]);
    ::close(res[0]);
    int cli_rc = reap(cli, 15000);
    ::close(sctl[1]);  // the server's cue to exit
    reap(srv, 5000);
    EXPECT_EQ(cli_rc, 0) << "puller child failed early (exit code names the step)";
    return lines;
  }

  std::string script_, name_;
  bool up_ = false;
};

}  // namespace

TEST_F(ucx_netns, pull_crosses_the_veth_byte_exact_with_checksums) {
  auto lines = run(fault::none);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "pull1 ok " + std::to_string(kBlock * kBlocks));
}

TEST_F(ucx_netns, cut_link_is_a_clean_error_within_the_timeout) {
  auto lines = run(fault::link_down);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "pull1 ok " + std::to_string(kBlock * kBlocks));
  // No RST crosses a downed link: the pull must end by its own 2 s timeout (or an
  // endpoint error), never hang. The bound below is generous: it catches hangs only.
  EXPECT_TRUE(lines[1].rfind("pull2 err timeout", 0) == 0 || lines[1].rfind("pull2 err unavailable", 0) == 0)
      << lines[1];
  double secs = std::atof(lines[1].substr(lines[1].find(' ', 10)).c_str());
  EXPECT_LT(secs, 12.0) << lines[1];
}

TEST_F(ucx_netns, killed_server_is_a_clean_error) {
  auto lines = run(fault::server_killed);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "pull1 ok " + std::to_string(kBlock * kBlocks));
  EXPECT_TRUE(lines[1].rfind("pull2 err timeout", 0) == 0 || lines[1].rfind("pull2 err unavailable", 0) == 0)
      << lines[1];
}
