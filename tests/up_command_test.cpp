// `yard up`, the main job, as a user runs it: one process that starts its own
// nats-server, workers, a router and the HTTP API, serves completions, gives
// each worker its own G3 directory, reports tier state in /metrics (offloads, then onboarding when the
// evicted prompts come back), and stops
// cleanly on SIGTERM.
#include <httplib.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include <fstream>

#include "messages/codec.hpp"
#include "messages/subjects.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
namespace ts = yard::test_support;
namespace fs = std::filesystem;

namespace {

TEST(up_command, serves_with_an_embedded_nats_and_one_g3_dir_per_worker) {
  auto dir = fs::temp_directory_path() / ("yard-up-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  int port = transport::free_loopback_port();
  ts::yard_process up({"up", "--workers", "2", "--http-port", std::to_string(port), "--http-host", "127.0.0.1",
                       "--num-blocks", "8", "--block-size", "16", "--kv-host-blocks", "8", "--kv-disk-dir", dir.string(), "--kv-disk-blocks",
                       "64", "--log-level", "warn"});
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(1);
  ASSERT_TRUE(ts::eventually([&] {
    auto r = cli.Get("/health");
    return r && r->status == 200;
  }, 20000)) << "yard up never became healthy on port " << port;

  nlohmann::json body = {{"model", "mock"}, {"prompt", std::string(100, 'x')}, {"max_tokens", 4}};
  for (int i = 0; i < 2; ++i) {
    auto r = cli.Post("/v1/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    auto j = nlohmann::json::parse(r->body);
    EXPECT_EQ(j["choices"][0]["text"].get<std::string>(), ts::mock_expected_text(std::string(100, 'x'), 4));
  }
  // Three more distinct 7-block prompts into 8-block pools: some worker evicts, and the blocks go down a tier.
  for (char c : {'a', 'b', 'c'}) {
    nlohmann::json b2 = {{"model", "mock"}, {"prompt", std::string(100, c)}, {"max_tokens", 4}};
    auto r = cli.Post("/v1/completions", b2.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
  }
  // The workers' heartbeats carry their tier state to the frontend's /metrics.
  auto sum = [&](const std::string& body, const std::string& series) {
    double total = 0;
    for (std::size_t p = body.find("\n" + series + "{"); p != std::string::npos; p = body.find("\n" + series + "{", p + 1))
      total += std::stod(body.substr(body.find("} ", p) + 2));
    return total;
  };
  std::string metrics;
  EXPECT_TRUE(ts::eventually([&] {
    auto r = cli.Get("/metrics");
    if (!r || r->status != 200) return false;
    metrics = r->body;
    return sum(metrics, "yard_worker_kv_offloaded_blocks_total") > 0 && sum(metrics, "yard_worker_kv_blocks_g2") > 0;
  }, 5000)) << metrics;
  // The same four prompts again: the router finds the evicted ones below G1 on the worker that holds them, whose
  // kv_block_manager reads them back for the engine (onboarding), and the text is still the mock's.
  for (char c : {'x', 'a', 'b', 'c'}) {
    const std::string p(100, c);
    nlohmann::json again = {{"model", "mock"}, {"prompt", p}, {"max_tokens", 4}};
    auto r = cli.Post("/v1/completions", again.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(nlohmann::json::parse(r->body)["choices"][0]["text"].get<std::string>(), ts::mock_expected_text(p, 4));
  }
  EXPECT_TRUE(ts::eventually([&] {
    auto r = cli.Get("/metrics");
    if (!r || r->status != 200) return false;
    metrics = r->body;
    return sum(metrics, "yard_worker_kv_onboarded_blocks_total") > 0;
  }, 5000)) << metrics;
  EXPECT_EQ(sum(metrics, "yard_worker_kv_blocks_capacity"), 16);  // 2 workers x 8 blocks
  EXPECT_EQ(sum(metrics, "yard_worker_g3_disabled"), 0);
  EXPECT_TRUE(fs::is_directory(dir / "worker-0"));
  EXPECT_TRUE(fs::is_directory(dir / "worker-1"));

  up.signal(SIGTERM);
  EXPECT_EQ(up.wait_exit(15000), 0);
  fs::remove_all(dir);
}

// The embedded nats-server never runs anonymous: without credentials yard up
// generates one user per component; with a password file, that password is required.
TEST(up_command, the_embedded_bus_refuses_anonymous_connections) {
  auto dir = fs::temp_directory_path() / ("yard-up-auth-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream(dir / "pw") << "correct horse\n";
  }
  for (bool given : {false, true}) {
    int port = transport::free_loopback_port();
    int nats_port = transport::free_loopback_port();
    std::vector<std::string> args = {"up", "--workers", "1", "--http-port", std::to_string(port), "--nats-port",
                                     std::to_string(nats_port), "--log-level", "warn"};
    if (given) args.insert(args.end(), {"--nats-user", "alice", "--nats-password-file", (dir / "pw").string()});
    ts::yard_process up(args);
    httplib::Client cli("127.0.0.1", port);
    cli.set_connection_timeout(1);
    ASSERT_TRUE(ts::eventually([&] {
      auto r = cli.Get("/health");
      return r && r->status == 200;
    }, 20000)) << "yard up never became healthy";
    transport::nats_options anon;
    anon.servers = {"nats://127.0.0.1:" + std::to_string(nats_port)};
    anon.connect_timeout_ms = 1000;
    EXPECT_FALSE(transport::nats_connection::connect(anon).ok()) << (given ? "given" : "generated") << " credentials";
    if (given) {
      auto alice = anon;
      alice.user = "alice";
      alice.password = "correct horse";
      alice.inbox_prefix = "_INBOX_alice";
      auto c = transport::nats_connection::connect(alice);
      ASSERT_TRUE(c.ok()) << c.err().describe();
      auto inbox = (*c)->new_inbox();
      std::atomic<bool> done{false};
      auto sub = (*c)->subscribe(inbox, [&](transport::nats_message m) {
        auto ch = msg::decode_auto<msg::token_chunk>(m.data, m.content_type);
        if (ch && ch->finish_reason) done = true;
      });
      ASSERT_TRUE(sub.ok());
      (*c)->flush();
      (*c)->publish(subjects::router_generate("default"), R"({"prompt":"hi","max_tokens":2})", inbox);
      EXPECT_TRUE(ts::eventually([&] { return done.load(); }, 5000));
    }
    up.signal(SIGTERM);
    EXPECT_EQ(up.wait_exit(15000), 0);
  }
  fs::remove_all(dir);
}

}  // namespace
