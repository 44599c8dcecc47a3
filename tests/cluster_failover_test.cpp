// Failover without migration magic: leases (a frozen worker), drain on
// SIGTERM, and a 3-server NATS cluster losing one server under load.
#include <httplib.h>

#include <atomic>

#include <nlohmann/json.hpp>

#include "backends/mock/mock_engine.hpp"
#include "messages/codec.hpp"
#include "messages/subjects.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
using nlohmann::json;
namespace ts = yard::test_support;

namespace {

std::string expected_text(const std::string& prompt, std::size_t n) { return ts::mock_expected_text(prompt, n); }

std::vector<std::string> worker_args(const std::string& url, const std::string& id, const std::string& delay = "2") {
  return {"worker", "--nats", url, "--id", id, "--heartbeat-ms", "100", "--lease-ms", "800", "--token-delay-ms", delay,
          "--log-level", "warn"};
}

// The worker that acknowledges a one-token request sent on the generate subject.
// `timeout_ms` is generous where the answer must come (a loaded CI machine stalls).
std::string serving_worker(transport::nats_connection& conn, const std::string& id, int timeout_ms = 3000) {
  msg::generate_request r;
  r.request_id = id;
  r.prompt = "who";
  r.max_tokens = 1;
  auto rep = conn.request(subjects::router_generate("default"), msg::encode(r), timeout_ms);
  if (!rep) return "error: " + rep.err().describe();
  auto c = msg::decode<msg::token_chunk>(rep->data, msg::wire_format::msgpack);
  return c ? c->worker_id : "undecodable";
}

std::unique_ptr<transport::nats_connection> connect(const std::string& urls) {
  transport::nats_options no;
  no.servers = transport::split_servers(urls);
  no.reconnect_wait_ms = 100;
  auto c = transport::nats_connection::connect(no);
  return c ? std::move(*c) : nullptr;
}

TEST(lease, frozen_worker_leaves_routing_within_the_bound_and_rejoins) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto node = ts::start_cluster(nats->url(), {.workers = 0});
  ASSERT_NE(node, nullptr);
  ts::yard_process a(worker_args(nats->url(), "lw0")), b(worker_args(nats->url(), "lw1"));
  ASSERT_TRUE(ts::eventually([&] { return node->live_workers() == 2; }));
  auto client = connect(nats->url());
  ASSERT_NE(client, nullptr);
  b.signal(SIGSTOP);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(ts::eventually([&] { return node->live_workers() == 1; }, 5000));
  auto gone_after = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  std::printf("lease: frozen worker left routing after %lld ms (lease 800 ms)\n", static_cast<long long>(gone_after));
  EXPECT_LE(gone_after, 800 + 500) << "lease bound (lease + one tick + heartbeat period) exceeded";
  // Wait for the router to drop it too (its lease check runs on its own tick, so it may
  // lag the frontend's view by one tick): then every request lands on the live worker.
  ASSERT_TRUE(ts::eventually([&] {
    auto s = node->router_stats();
    return s && s->workers == 1;
  }, 5000));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(serving_worker(*client, "lease-" + std::to_string(i), 15000), "lw0");
  b.signal(SIGCONT);
  EXPECT_TRUE(ts::eventually([&] { return node->live_workers() == 2; }, 5000)) << "the worker did not rejoin";
}

TEST(drain, sigterm_finishes_in_flight_work_and_new_work_goes_elsewhere) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto node = ts::start_cluster(nats->url(), {.workers = 0});
  ASSERT_NE(node, nullptr);
  ts::yard_process a(worker_args(nats->url(), "dw0", "10"));
  ts::yard_process b(worker_args(nats->url(), "dw1", "10"));
  ASSERT_TRUE(ts::eventually([&] { return node->live_workers() == 2; }));
  constexpr int n = 8;
  constexpr int max_tokens = 60;  // ~600 ms of generation each
  std::atomic<int> exact{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i) {
    clients.emplace_back([&, i] {
      httplib::Client cli("127.0.0.1", node->http_port());
      std::string prompt = "drain " + std::to_string(i);
      json body = {{"prompt", prompt}, {"max_tokens", max_tokens}};
      auto r = cli.Post("/v1/completions", body.dump(), "application/json");
      if (r && r->status == 200 && json::parse(r->body)["choices"][0]["text"] == expected_text(prompt, max_tokens)) exact++;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // requests are in flight on both workers
  b.signal(SIGTERM);
  auto client = connect(nats->url());
  ASSERT_NE(client, nullptr);
  // While dw1 drains, new requests go to dw0 (once its draining heartbeat is seen).
  ts::eventually([&] { return serving_worker(*client, "drain-probe") == "dw0"; }, 2000);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(serving_worker(*client, "drain-new-" + std::to_string(i), 15000), "dw0");
  for (auto& t : clients) t.join();
  EXPECT_EQ(exact.load(), n) << "in-flight requests must complete exactly";
  EXPECT_EQ(b.wait_exit(10000), 0) << "a drained worker exits 0";
}

// Every worker gone at once (a crash, a rolling restart of a one-worker pool): a
// request sent during the outage waits for the worker to come back instead of
// failing with 503, through the HTTP front door.
TEST(outage, a_request_during_a_total_outage_waits_for_the_restarted_worker) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto node = ts::start_cluster(nats->url(), {.workers = 0, .with_frontend = false});
  ASSERT_NE(node, nullptr);
  // The outage outlasts every ack timeout the frontend would spend attempts on (2 x 300 ms).
  actors::frontend_config fc;
  fc.ack_timeout_ms = 300;
  fc.max_attempts = 2;
  ASSERT_TRUE(node->add_frontend(fc, ts::loopback_http()).ok());
  auto w = std::make_unique<ts::yard_process>(worker_args(nats->url(), "ow0"));
  ASSERT_TRUE(ts::eventually([&] { return node->live_workers() == 1; }));
  w.reset();  // SIGKILL
  ASSERT_TRUE(ts::eventually([&] { return node->live_workers() == 0; }, 5000));
  // The client runs on its own thread; the worker restarts from this one (a child
  // dies with the thread that forked it: PR_SET_PDEATHSIG).
  int status = 0;
  std::string text, raw;
  std::thread client([&] {
    httplib::Client cli("127.0.0.1", node->http_port());
    cli.set_read_timeout(30, 0);
    json body = {{"prompt", "outage"}, {"max_tokens", 6}};
    auto res = cli.Post("/v1/completions", body.dump(), "application/json");
    if (!res) return;
    status = res->status;
    raw = res->body;
    auto j = json::parse(res->body, nullptr, false);
    if (!j.is_discarded() && j.contains("choices")) text = j["choices"][0]["text"].get<std::string>();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  w = std::make_unique<ts::yard_process>(worker_args(nats->url(), "ow0"));
  client.join();
  EXPECT_EQ(status, 200) << raw;
  EXPECT_EQ(text, expected_text("outage", 6)) << raw;
}

// A cluster that never had a worker still answers 503 (after the router's start-up wait), not a hang.
TEST(outage, no_worker_ever_is_a_503) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto node = ts::start_cluster(nats->url(), {.workers = 0});
  ASSERT_NE(node, nullptr);
  httplib::Client cli("127.0.0.1", node->http_port());
  cli.set_read_timeout(30, 0);
  json body = {{"prompt", "nobody"}, {"max_tokens", 2}};
  auto res = cli.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_NE(res->body.find("no worker available"), std::string::npos) << res->body;
}

TEST(nats_cluster, losing_one_of_three_servers_under_load_loses_no_request) {
  int p[3], c[3];
  for (int i = 0; i < 3; ++i) {
    p[i] = transport::free_loopback_port();
    c[i] = transport::free_loopback_port();
  }
  std::vector<std::unique_ptr<transport::nats_server_process>> servers;
  for (int i = 0; i < 3; ++i) {
    transport::nats_server_options o;
    o.port = p[i];
    std::string routes;
    for (int j = 0; j < 3; ++j)
      if (j != i) routes += (routes.empty() ? "" : ",") + std::string("nats://127.0.0.1:") + std::to_string(c[j]);
    o.extra_args = {"--cluster_name", "yard-test", "--cluster", "nats://127.0.0.1:" + std::to_string(c[i]), "--routes", routes};
    auto s = transport::nats_server_process::start(o);
    ASSERT_TRUE(s.ok()) << s.err().describe();
    servers.push_back(std::move(*s));
  }
  // Each component starts on a different server, knowing all three.
  auto urls = [&](int first) {
    std::string u;
    for (int k = 0; k < 3; ++k) u += (k ? "," : "") + servers[(first + k) % 3]->url();
    return u;
  };
  ts::yard_process w0(worker_args(urls(1), "nw0", "3")), w1(worker_args(urls(2), "nw1", "3"));
  ts::yard_process router({"router", "--nats", urls(2), "--log-level", "warn"});
  auto node = ts::start_cluster(servers[0]->url(), {.workers = 0, .with_router = false, .with_frontend = false});
  ASSERT_NE(node, nullptr);
  actors::frontend_config fc;
  fc.ack_timeout_ms = 1500;
  fc.max_attempts = 6;
  ASSERT_TRUE(node->add_frontend(fc, ts::loopback_http()).ok());
  ASSERT_TRUE(ts::eventually([&] { return node->live_workers() == 2; }, 15000)) << "routes between servers not up";
  // Wait for the router process too.
  httplib::Client probe("127.0.0.1", node->http_port());
  ASSERT_TRUE(ts::eventually([&] {
    auto r = probe.Post("/v1/completions", R"({"prompt":"p","max_tokens":1})", "application/json");
    return r && r->status == 200;
  }, 15000));
  constexpr int n = 60;
  std::atomic<int> next{0}, exact{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&] {
      httplib::Client cli("127.0.0.1", node->http_port());
      cli.set_read_timeout(60, 0);
      for (int i = next++; i < n; i = next++) {
        std::string prompt = "nats cluster " + std::to_string(i);
        json body = {{"prompt", prompt}, {"max_tokens", 20}, {"stream", true}};
        auto r = cli.Post("/v1/completions", body.dump(), "application/json");
        if (!r || r->status != 200) continue;
        std::string text;
        bool bad = false;
        for (const auto& ev : ts::sse_data(r->body)) {
          if (ev == "[DONE]") break;
          auto j = json::parse(ev, nullptr, false);
          if (j.is_discarded() || j.contains("error")) bad = true;
          else text += j["choices"][0]["text"].get<std::string>();
        }
        if (!bad && text == expected_text(prompt, 20)) exact++;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  servers[2]->kill_hard();  // the router's and nw1's first server
  for (auto& t : clients) t.join();
  std::printf("nats cluster: %d/%d requests exact after killing one of three servers\n", exact.load(), n);
  EXPECT_EQ(exact.load(), n);
}

}  // namespace
