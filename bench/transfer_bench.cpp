// bench/transfer_bench.cpp — `yard bench transfer`: UCX KV pull throughput beside ucx_perftest.
//
// Owns: the benchmark workload and its report. Must not touch: the data plane's
// internals (it uses transport/ucx/ucx_data_plane.hpp only).
// Thread-safety: single-threaded; child processes are forked/exec'd and always
// reaped (each has a deadline, then SIGKILL).
//
// In one run, on loopback, with the same UCX_TLS (default tcp):
//  For each size (1, 16, 64, 256 MiB, up to --max-mib), --rounds times, back to back:
//  1. A forked child process registers a buffer and sends its descriptor (msgpack)
//     over a pipe; the parent pulls the size in blocks of --block-kib, every block
//     issued at once per pull, and times it. The first pull is checksum-verified
//     (outside the timing).
//  2. `ucx_perftest -t ucp_get -s <bytes> -n <iters>` as server + client children.
// The best round of each side is reported (the machine is shared and noisy).
// Throughput is reported in gigabits per second (1e9 bit/s); perftest's MB/s is
// MiB/s. The ratio is ours / perftest's at 64 MiB.
#include <CLI/CLI.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "messages/codec.hpp"
#include "messages/kv_transfer.hpp"
#include "tools/commands.hpp"
#include "transport/fd_io.hpp"
#include "transport/nats_server_process.hpp"
#include "transport/ucx/ucx_data_plane.hpp"

namespace yard::cmd {

namespace {

using transport::read_all;
using transport::write_all;

using clk = std::chrono::steady_clock;
constexpr std::size_t kMiB = 1024 * 1024;



void fill(std::vector<char>& v) {
  std::uint64_t s = 0x12345;
  for (auto& ch : v) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    ch = static_cast<char>(s >> 56);
  }
}

// Child: serve `bytes` of memory until the parent writes a byte (or 300 s pass).
[[noreturn]] void serve(const std::string& tls, std::size_t bytes, int to_parent, int from_parent) {
  ::alarm(300);
  transport::ucx_options opts{tls, true};
  if (tls.find("tcp") == std::string::npos) opts.idle_spin_us = 20000;  // shm does not wake the event fd
  auto plane = transport::ucx_data_plane::create(opts);
  if (!plane.ok()) {
    std::fprintf(stderr, "transfer server: %s\n", plane.err().describe().c_str());
    _exit(2);
  }
  // Memory from the plane (as a KV pool would get it): exportable over posix shm too.
  auto reg = (*plane)->allocate_region(bytes);
  if (!reg.ok()) _exit(3);
  std::vector<char> pattern(bytes);
  fill(pattern);
  std::memcpy(reg->second, pattern.data(), bytes);
  auto desc = (*plane)->local_descriptor(reg->first);
  if (!desc.ok()) _exit(3);
  std::string wire = msg::encode(*desc);
  std::uint32_t len = static_cast<std::uint32_t>(wire.size());
  if (!write_all(to_parent, &len, 4) || !write_all(to_parent, wire.data(), wire.size())) _exit(4);
  // The plane's progress thread answers reads and sleeps on the worker's event fd when
  // idle, so this side does not steal a core from the puller (as ucx_perftest's
  // one-sided server does not either). Block until the parent writes a byte or exits.
  char b = 0;
  (void)read_all(from_parent, &b, 1, 300000);
  plane->reset();
  _exit(0);
}

// Waits for `pid` until `deadline`, then SIGKILLs it. Returns the exit status or -1.
int reap(pid_t pid, clk::time_point deadline) {
  int st = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (r < 0) return -1;
    if (clk::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}


pid_t spawn(const std::vector<std::string>& args, const std::string& tls, const std::string& out_path) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::setenv("UCX_TLS", tls.c_str(), 1);
  FILE* f = std::freopen(out_path.c_str(), "w", stdout);
  if (f != nullptr) ::dup2(STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> av;
  for (auto& a : args) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  ::execvp(av[0], av.data());
  _exit(127);
}

// Runs ucx_perftest server+client for one size; returns MiB/s or a negative value.
double perftest_mib_s(const std::string& tls, std::size_t bytes, int iters, std::string& why) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    int port = transport::free_loopback_port();
    std::string srv_out = "/tmp/yard_perftest_srv_" + std::to_string(::getpid()) + ".log";
    std::string cli_out = "/tmp/yard_perftest_cli_" + std::to_string(::getpid()) + ".log";
    pid_t srv = spawn({"ucx_perftest", "-p", std::to_string(port)}, tls, srv_out);
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + 300 * attempt));
    pid_t cli = spawn({"ucx_perftest", "127.0.0.1", "-p", std::to_string(port), "-t", "ucp_get", "-s",
                       std::to_string(bytes), "-n", std::to_string(iters)},
                      tls, cli_out);
    int rc = reap(cli, clk::now() + std::chrono::seconds(60));
    reap(srv, clk::now() + std::chrono::seconds(3));
    std::ifstream in(cli_out);
    std::string line;
    double mib_s = -1;
    while (std::getline(in, line)) {
      if (line.rfind("Final:", 0) != 0) continue;
      std::istringstream ss(line);
      std::string tok;
      std::vector<std::string> toks;
      while (ss >> tok) toks.push_back(tok);
      if (toks.size() >= 7) mib_s = std::atof(toks[6].c_str());  // bandwidth overall
    }
    std::remove(srv_out.c_str());
    std::remove(cli_out.c_str());
    if (mib_s > 0) return mib_s;
    why = "ucx_perftest client rc=" + std::to_string(rc) + ", no 'Final:' line";
  }
  return -1;
}

double gbps(double bytes, double secs) { return secs > 0 ? bytes * 8.0 / secs / 1e9 : 0.0; }


// Pulls `bytes` in `block`-sized blocks from a freshly forked child `iters` times
// (after one verified warm-up pull). Returns Gbit/s or an error.
result<double> measure_ours(const std::string& tls, std::size_t bytes, std::size_t block, int iters, int timeout_ms,
                            const std::vector<char>& expect) {
  int c2p[2], p2c[2];
  if (::pipe(c2p) != 0) return make_error(errc::internal, "pipe failed");
  if (::pipe(p2c) != 0) {
    ::close(c2p[0]);
    ::close(c2p[1]);
    return make_error(errc::internal, "pipe failed");
  }
  pid_t child = ::fork();
  if (child < 0) return make_error(errc::internal, "fork failed");
  if (child == 0) {
    ::close(c2p[0]);
    ::close(p2c[1]);
    serve(tls, bytes, c2p[1], p2c[0]);
  }
  ::close(c2p[1]);
  ::close(p2c[0]);
  struct child_guard {
    pid_t pid;
    int to_child, from_child;
    ~child_guard() {
      char b = 'q';
      (void)write_all(to_child, &b, 1);
      ::close(to_child);
      reap(pid, clk::now() + std::chrono::seconds(5));
      ::close(from_child);
    }
  } guard{child, p2c[1], c2p[0]};

  std::uint32_t len = 0;
  std::string wire;
  if (!read_all(c2p[0], &len, 4, 20000) || len > (1u << 20)) {
    return make_error(errc::unavailable, "server child sent no descriptor");
  }
  wire.resize(len);
  if (!read_all(c2p[0], wire.data(), len, 5000)) return make_error(errc::unavailable, "truncated descriptor");
  auto desc = msg::decode<msg::kv_region_descriptor>(wire, msg::wire_format::msgpack);
  if (!desc.ok()) return desc.err();
  auto plane = transport::ucx_data_plane::create({tls, false});
  if (!plane.ok()) return plane.err();
  auto alloc = (*plane)->allocate_region(bytes);
  if (!alloc.ok()) return alloc.err();
  std::memset(alloc->second, 0, bytes);  // fault the pages in before timing
  result<transport::region_handle> reg = alloc->first;
  if (!reg.ok()) return reg.err();
  std::vector<transport::block_copy> blocks;
  std::vector<std::uint64_t> sums;
  for (std::size_t off = 0; off < bytes; off += block) {
    std::size_t n = std::min(block, bytes - off);
    blocks.push_back({off, off, n});
    sums.push_back(transport::ucx_data_plane::checksum(expect.data() + off, n));
  }
  auto first = (*plane)->pull(*desc, blocks, *reg, timeout_ms, sums);  // warm-up + verification
  if (!first.ok()) return first.err();
  double secs = 0;
  for (int i = 0; i < iters; ++i) {
    auto r = (*plane)->pull(*desc, blocks, *reg, timeout_ms);
    if (!r.ok()) return r.err();
    secs += r->seconds;
  }
  return gbps(static_cast<double>(bytes) * iters, secs);
}

}  // namespace

int run_bench_transfer(int argc, char** argv) {
  CLI::App app{"UCX KV transfer throughput vs ucx_perftest"};
  std::string tls = "tcp";
  int max_mib = 256;
  int block_kib = 1024;
  int timeout_ms = 30000;
  int rounds = 2;
  app.add_option("--tls", tls, "UCX transports for both sides (UCX_TLS syntax)");
  app.add_option("--max-mib", max_mib, "largest transfer in MiB (1..1024)")->check(CLI::Range(1, 1024));
  app.add_option("--block-kib", block_kib, "KV block size in KiB")->check(CLI::Range(4, 65536));
  app.add_option("--timeout-ms", timeout_ms, "per-pull timeout");
  app.add_option("--rounds", rounds, "ours/perftest pairs per size; the best of each is reported")
      ->check(CLI::Range(1, 10));
  CLI11_PARSE(app, argc, argv);

  std::vector<std::size_t> sizes_mib;
  for (std::size_t m : {1, 16, 64, 256, 1024}) {
    if (m <= static_cast<std::size_t>(max_mib)) sizes_mib.push_back(m);
  }
  if (sizes_mib.back() != static_cast<std::size_t>(max_mib)) sizes_mib.push_back(static_cast<std::size_t>(max_mib));
  const std::size_t block = static_cast<std::size_t>(block_kib) * 1024;
  auto iters_for = [](std::size_t bytes) {
    std::size_t n = (512 * kMiB) / bytes;
    return static_cast<int>(std::clamp<std::size_t>(n, 3, 50));
  };
  std::vector<char> expect(static_cast<std::size_t>(max_mib) * kMiB);
  fill(expect);  // what serve() puts in the child's buffer, for checksums

  // Each size: ours then ucx_perftest, back to back, `rounds` times (shared, noisy machine).
  std::map<std::size_t, double> ours, perf;
  for (std::size_t mib : sizes_mib) {
    std::size_t bytes = mib * kMiB;
    int iters = iters_for(bytes);
    for (int round = 0; round < rounds; ++round) {
      auto o = measure_ours(tls, bytes, block, iters, timeout_ms, expect);
      if (!o.ok()) {
        std::fprintf(stderr, "transfer: %zu MiB pull failed: %s\n", mib, o.err().describe().c_str());
        return 1;
      }
      std::string why;
      double mib_s = perftest_mib_s(tls, bytes, iters, why);
      double p = mib_s > 0 ? mib_s * kMiB * 8.0 / 1e9 : 0.0;
      ours[mib] = std::max(ours[mib], *o);
      perf[mib] = std::max(perf[mib], p);
      std::printf("%5zu MiB round %d: ours %.2f Gbit/s (%zu blocks, %d iters, verified)  perftest %s\n", mib, round,
                  *o, (bytes + block - 1) / block, iters,
                  mib_s > 0 ? (std::to_string(p) + " Gbit/s").c_str() : ("failed: " + why).c_str());
      std::fflush(stdout);
    }
  }

  auto get = [](const std::map<std::size_t, double>& m, std::size_t k) {
    auto it = m.find(k);
    return it == m.end() ? 0.0 : it->second;
  };
  double o64 = get(ours, 64), p64 = get(perf, 64);
  double ratio = p64 > 0 ? o64 / p64 : 0.0;
  std::printf("transfer: gbps_64mib=%.2f perftest_gbps_64mib=%.2f ratio_vs_perftest=%.2f gbps_1mib=%.2f "
              "gbps_256mib=%.2f",
              o64, p64, ratio, get(ours, 1), get(ours, 256));
  if (max_mib >= 1024) std::printf(" gbps_1024mib=%.2f perftest_gbps_1024mib=%.2f", get(ours, 1024), get(perf, 1024));
  std::printf(" tls=%s\n", tls.c_str());
  return p64 > 0 && o64 > 0 ? 0 : 1;
}

}  // namespace yard::cmd
