// bench/overhead_bench.cpp — `yard bench overhead`: what our layers cost.
//
// Owns: one run that measures, side by side on the same nats-server, the
// round trip of a trivial request (1 token, mock engine with zero delay)
//   (a) HTTP -> frontend -> router -> worker -> frontend -> HTTP,
//   (b) NATS request on the generate subject -> router -> worker -> inbox,
//   (c) a bare NATS request/reply to an echo responder,
// interleaved round-robin so machine noise hits all three alike. Ends with
// `overhead: rtt_ratio=(a/c) subject_rtt_ratio=(b/c) ...` (p50 based).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <httplib.h>

#include "bench/bench_baseline.hpp"
#include "cluster/node_runtime.hpp"
#include "messages/codec.hpp"
#include "messages/subjects.hpp"
#include "tools/commands.hpp"
#include "transport/nats_server_process.hpp"

namespace yard::cmd {

namespace {

using clock = std::chrono::steady_clock;

}  // namespace

int run_bench_overhead(int argc, char** argv) {
  CLI::App app{"yard bench overhead: frontend->router->worker round trip vs bare NATS request/reply"};
  int iterations = 2000;
  int warmup = 200;
  std::string nats_url;
  app.add_option("--iterations", iterations, "measured round trips per path")->capture_default_str();
  app.add_option("--warmup", warmup, "unmeasured round trips per path")->capture_default_str();
  app.add_option("--nats", nats_url, "use this NATS server instead of an embedded one");
  CLI11_PARSE(app, argc, argv);
  configure_logging({"warn", false});

  std::unique_ptr<transport::nats_server_process> server;
  if (nats_url.empty()) {
    auto s = transport::nats_server_process::start({});
    if (!s) {
      std::fprintf(stderr, "bench overhead: %s\n", s.err().describe().c_str());
      return 1;
    }
    server = std::move(*s);
    nats_url = server->url();
  }
  transport::nats_options no;
  no.servers = {nats_url};
  no.send_asap = true;  // the bare baseline writes each request at once (as does `yard bench edge`)
  auto rt = cluster::node_runtime::create(no);
  if (!rt) {
    std::fprintf(stderr, "bench overhead: %s\n", rt.err().describe().c_str());
    return 1;
  }
  auto& node = **rt;
  cluster::engine_options eng;
  eng.token_delay_ms = 0.001;  // effectively instant (0 would select profile timing)
  actors::worker_config wc;
  wc.id = "bench-worker";
  if (!node.add_worker(eng, wc) || !node.add_router({})) return 1;
  actors::http_options http;
  http.host = "127.0.0.1";
  http.port = 0;
  if (!node.add_frontend({}, http)) return 1;
  for (int i = 0; i < 200 && node.live_workers() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));

  // Client side: its own NATS connection, like an outside client.
  auto client = transport::nats_connection::connect(no);
  if (!client) return 1;
  auto& conn = **client;
  bench::bare_nats_rtt baseline;
  if (!baseline.start(conn, "bench.echo")) return 1;
  httplib::Client http_client("127.0.0.1", node.http_port());
  http_client.set_keep_alive(true);
  http_client.set_tcp_nodelay(true);

  msg::generate_request req;
  req.request_id = "bench";
  req.prompt = "x";
  req.max_tokens = 1;
  const std::string body_http = R"({"prompt":"x","max_tokens":1})";
  std::uint64_t n = 0;

  auto http_rtt = [&]() -> double {
    auto t0 = clock::now();
    auto r = http_client.Post("/v1/completions", body_http, "application/json");
    auto dt = std::chrono::duration<double, std::micro>(clock::now() - t0).count();
    return (r && r->status == 200) ? dt : -1;
  };
  // The generate subject streams an admission ack and then the tokens: the
  // round trip ends at the chunk that carries finish_reason.
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t finished_for = 0;
  auto inbox = conn.new_inbox();
  auto stream_sub = conn.subscribe(inbox + ".*", [&](transport::nats_message m) {
    auto c = msg::decode<msg::token_chunk>(m.data, msg::wire_format::msgpack);
    if (!c || !(c->finish_reason || c->error)) return;
    std::lock_guard<std::mutex> lock(mu);
    finished_for = std::stoull(m.subject.substr(inbox.size() + 1)) + (c->error ? 1ull << 62 : 0);
    cv.notify_all();
  });
  if (!stream_sub) return 1;
  conn.flush();
  auto subject_rtt = [&]() -> double {
    auto id = ++n;
    req.request_id = "bench-" + std::to_string(id);
    auto bytes = msg::encode(req);
    auto t0 = clock::now();
    conn.publish(subjects::router_generate("default"), bytes, inbox + "." + std::to_string(id), "application/msgpack");
    std::unique_lock<std::mutex> lock(mu);
    bool ok = cv.wait_for(lock, std::chrono::seconds(5), [&] { return (finished_for & ~(1ull << 62)) == id; });
    auto dt = std::chrono::duration<double, std::micro>(clock::now() - t0).count();
    return ok && !(finished_for >> 62) ? dt : -1;
  };

  std::vector<double> a, b, c;
  int failures = 0;
  for (int i = 0; i < warmup + iterations; ++i) {
    double x = http_rtt(), y = subject_rtt(), z = baseline.measure_us();
    if (x < 0 || y < 0 || z < 0) {
      ++failures;
      continue;
    }
    if (i < warmup) continue;
    a.push_back(x);
    b.push_back(y);
    c.push_back(z);
  }
  node.shutdown();
  if (a.empty()) {
    std::fprintf(stderr, "bench overhead: every round trip failed\n");
    return 1;
  }
  double a50 = bench::pct(a, 0.5), b50 = bench::pct(b, 0.5), c50 = bench::pct(c, 0.5);
  std::printf("path                         p50_us    p99_us\n");
  std::printf("http->frontend->router->worker %8.1f %9.1f\n", a50, bench::pct(a, 0.99));
  std::printf("nats subject->router->worker   %8.1f %9.1f\n", b50, bench::pct(b, 0.99));
  std::printf("bare nats request/reply        %8.1f %9.1f\n", c50, bench::pct(c, 0.99));
  std::printf("overhead: rtt_ratio=%.2f subject_rtt_ratio=%.2f http_p50_us=%.1f subject_p50_us=%.1f bare_nats_p50_us=%.1f "
              "http_p99_us=%.1f bare_nats_p99_us=%.1f iterations=%zu failures=%d\n",
              a50 / c50, b50 / c50, a50, b50, c50, bench::pct(a, 0.99), bench::pct(c, 0.99), a.size(), failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace yard::cmd
