// bench/edge_bench.cpp — `yard bench edge`: what the HTTP edge holds and costs.
//
// Owns: one run against one frontend (a child `yard frontend` process, so its
// RSS is its own), one router and two mock workers in this process on an
// embedded nats-server: model "mock" answers at once (token delay ~0), model
// "hold" admits and acknowledges requests but never steps (its model time per
// step is hours), so its SSE streams stay open and idle. Measures, from this
// process's own client threads over plain sockets:
//   p50 of a 4-token completion (one keep-alive client) with no streams open
//   and while `--streams` idle SSE streams are held; the frontend's RSS delta
//   per held stream; requests/s of 64 concurrent keep-alive clients
//   (non-streamed 4-token completions); a bare nats.c request/reply
//   (send-asap) to an echo responder on the same server, interleaved with the
//   idle HTTP round trips.
// Ends with `edge: idle_streams=.. rss_kib_per_stream=.. p50_us_idle=..
// p50_us_with_streams=.. rps_c64=.. bare_rtt_p50_us=.. rtt_ratio=.. failures=..`.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "bench/bench_baseline.hpp"
#include "bench/http_probe.hpp"
#include "cluster/node_runtime.hpp"
#include "tools/commands.hpp"
#include "transport/nats_server_process.hpp"

namespace yard::cmd {

namespace {

using clock = std::chrono::steady_clock;

// The frontend as a child process; killed with us.
struct frontend_child {
  pid_t pid = -1;
  int port = 0;
  ~frontend_child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  bool start(const std::string& nats_url, std::size_t max_connections) {
    int out[2];
    if (pipe(out) != 0) return false;
    // Everything the child needs is built before fork (threads are running).
    std::string maxc = std::to_string(max_connections);
    pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(out[1], 1);
      ::close(out[0]);
      const char* argv[] = {"/proc/self/exe", "frontend", "--nats", nats_url.c_str(), "--http-port", "0",
                            "--http-max-connections", maxc.c_str(), "--stream-timeout-ms", "86400000",
                            "--log-level", "warn", nullptr};
      execv("/proc/self/exe", const_cast<char**>(argv));
      _exit(127);
    }
    ::close(out[1]);
    std::string text;
    char buf[256];
    while (text.find('\n') == std::string::npos) {
      auto n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    auto colon = text.rfind(':');  // "frontend listening on http://127.0.0.1:PORT/v1"
    if (colon == std::string::npos) return false;
    port = std::atoi(text.c_str() + colon + 1);
    return port > 0;
  }
  long rss_kib() const {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    return -1;
  }
  int stop() {
    ::kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
};

void raise_fd_limit() {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  auto old = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  std::printf("RLIMIT_NOFILE raised from %llu to %llu (hard limit)\n", static_cast<unsigned long long>(old),
              static_cast<unsigned long long>(rl.rlim_cur));
}

}  // namespace

int run_bench_edge(int argc, char** argv) {
  CLI::App app{"yard bench edge: idle SSE streams held, latency with them, RPS at 64 clients, vs bare NATS"};
  int streams = 10000, iterations = 500, warmup = 50, clients = 64;
  double rps_seconds = 3.0;
  bool quick = false;
  app.add_option("--streams", streams, "idle SSE streams to hold")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  app.add_option("--iterations", iterations, "measured round trips per p50")->check(CLI::Range(1, 1 << 24))->capture_default_str();
  app.add_option("--clients", clients, "concurrent keep-alive clients for the RPS phase")
      ->check(CLI::Range(1, 65536))->capture_default_str();
  app.add_option("--rps-seconds", rps_seconds, "length of the RPS phase")->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  app.add_flag("--quick", quick, "smoke size: 200 streams, 50 iterations, 1 s of RPS");
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    streams = std::min(streams, 200);
    iterations = std::min(iterations, 50);
    warmup = 10;
    rps_seconds = 1.0;
  }
  configure_logging({"warn", false});
  raise_fd_limit();

  auto server = transport::nats_server_process::start({});
  if (!server) {
    std::fprintf(stderr, "bench edge: %s\n", server.err().describe().c_str());
    return 1;
  }
  transport::nats_options no;
  no.servers = {(*server)->url()};
  no.send_asap = true;  // the bare baseline and our own hops alike
  auto rt = cluster::node_runtime::create(no);
  if (!rt) return 1;
  auto& node = **rt;
  cluster::engine_options instant;
  instant.token_delay_ms = 0.001;  // effectively instant (0 would select profile timing)
  cluster::engine_options hold;
  hold.model = "hold";
  hold.token_delay_ms = 3.6e6;  // one step an hour: admitted, acknowledged, silent
  hold.num_blocks = static_cast<std::uint32_t>(std::max(16384, 8 * streams));  // 5 blocks of 16 tokens a request
  actors::worker_config wi, wh;
  wi.id = "edge-instant";
  wh.id = "edge-hold";
  if (!node.add_worker(instant, wi) || !node.add_worker(hold, wh) || !node.add_router({})) return 1;

  frontend_child fe;
  if (!fe.start((*server)->url(), static_cast<std::size_t>(streams) + 1024)) {
    std::fprintf(stderr, "bench edge: the frontend child did not start\n");
    return 1;
  }
  bench::http_probe probe(fe.port);
  for (int i = 0; i < 400 && probe.get("/health") != 200; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));

  auto client = transport::nats_connection::connect(no);
  if (!client) return 1;
  auto& conn = **client;
  bench::bare_nats_rtt baseline;
  if (!baseline.start(conn, "bench.edge.echo")) return 1;

  const std::string small = bench::post_request("/v1/completions", R"({"model":"mock","prompt":"x","max_tokens":4})");
  int failures = 0;
  auto http_rtt = [&](bench::http_probe& p) -> double {
    auto t0 = clock::now();
    int st = p.request(small);
    auto dt = std::chrono::duration<double, std::micro>(clock::now() - t0).count();
    return st == 200 ? dt : -1;
  };
  auto measure = [&](bool with_bare, std::vector<double>& http, std::vector<double>& bare) {
    for (int i = 0; i < warmup + iterations; ++i) {
      double a = http_rtt(probe), b = with_bare ? baseline.measure_us() : 0;
      if (a < 0 || b < 0) {
        ++failures;
        continue;
      }
      if (i < warmup) continue;
      http.push_back(a);
      if (with_bare) bare.push_back(b);
    }
  };

  // 1. Idle: one client, interleaved with the bare NATS round trip.
  std::vector<double> idle, bare, loaded, unused;
  measure(true, idle, bare);

  // 2. RPS: `clients` keep-alive clients, non-streamed 4-token completions.
  std::atomic<std::uint64_t> done{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  auto t_rps = clock::now();
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&] {
      bench::http_probe p(fe.port);
      while (!stop.load(std::memory_order_relaxed)) (p.request(small) == 200 ? done : failed)++;
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(rps_seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double rps = static_cast<double>(done.load()) / std::chrono::duration<double>(clock::now() - t_rps).count();
  failures += static_cast<int>(failed.load());

  // 3. Hold `streams` idle SSE streams; RSS delta of the frontend per stream.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  long rss_before = fe.rss_kib();
  const std::string hold_req = bench::post_request("/v1/completions", R"({"model":"hold","prompt":"x","max_tokens":64,"stream":true})");
  std::vector<int> held;
  held.reserve(static_cast<std::size_t>(streams));
  for (int i = 0; i < streams; ++i) {
    int fd = bench::connect_loopback(fe.port);
    if (fd < 0 || !bench::send_all(fd, hold_req)) {
      ++failures;
      if (fd >= 0) ::close(fd);
      continue;
    }
    held.push_back(fd);
  }
  auto in_flight = [&] { return probe.metric("yard_requests_in_flight"); };
  auto deadline = clock::now() + std::chrono::seconds(120);
  while (in_flight() < static_cast<double>(held.size()) && clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  long rss_after = fe.rss_kib();
  double held_now = in_flight();
  double rss_per_stream = held.empty() ? 0 : static_cast<double>(rss_after - rss_before) / static_cast<double>(held.size());

  // 4. The same single-client p50 while they are held.
  measure(false, loaded, unused);
  std::printf("held %.0f of %d streams open; frontend RSS %ld -> %ld KiB\n", held_now, streams, rss_before, rss_after);
  for (int fd : held) ::close(fd);
  deadline = clock::now() + std::chrono::seconds(60);
  while (in_flight() > 0 && clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int fe_exit = fe.stop();
  node.shutdown();
  if (idle.empty() || loaded.empty() || bare.empty()) {
    std::fprintf(stderr, "bench edge: every round trip failed\n");
    return 1;
  }
  if (held_now < static_cast<double>(streams)) ++failures;
  if (fe_exit != 0) ++failures;
  double p_idle = bench::pct(idle, 0.5), p_loaded = bench::pct(loaded, 0.5), p_bare = bench::pct(bare, 0.5);
  std::printf("p99_us_idle=%.1f p99_us_with_streams=%.1f bare_rtt_p99_us=%.1f frontend_exit=%d\n", bench::pct(idle, 0.99),
              bench::pct(loaded, 0.99), bench::pct(bare, 0.99), fe_exit);
  std::printf("edge: idle_streams=%d rss_kib_per_stream=%.2f p50_us_idle=%.1f p50_us_with_streams=%.1f rps_c64=%.0f "
              "bare_rtt_p50_us=%.1f rtt_ratio=%.2f failures=%d\n",
              static_cast<int>(held_now), rss_per_stream, p_idle, p_loaded, rps, p_bare, p_idle / p_bare, failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace yard::cmd
