// Drain through the node agent: SIGTERM to `yard agent` under load lets its
// workers finish in-flight requests while new ones go to other nodes, then the
// agent exits 0 with no orphan worker.
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "messages/codec.hpp"
#include "messages/subjects.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
using nlohmann::json;
namespace ts = yard::test_support;

TEST(agent_drain, sigterm_to_an_agent_under_load_finishes_in_flight_and_moves_new_work) {
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto cfg_path = std::filesystem::temp_directory_path() / ("yard-agent-drain-" + std::to_string(getpid()) + ".toml");
  {
    std::ofstream f(cfg_path);
    f << "[agent]\nnode = \"n1\"\nnats = \"" << nats->url() << "\"\n\n"
      << "[restart]\nshutdown_timeout_ms = 10000\n\n"
      << "[[workers]]\nrole = \"both\"\nengine = \"mock\"\nmodel = \"mock\"\ncount = 1\n"
      << "args = [\"--token-delay-ms\", \"10\", \"--heartbeat-ms\", \"100\", \"--lease-ms\", \"800\", \"--log-level\", \"warn\"]\n";
  }
  ts::yard_process agent({"agent", "--config", cfg_path.string(), "--log-level", "warn"});
  ts::yard_process other({"worker", "--nats", nats->url(), "--id", "other", "--token-delay-ms", "10", "--heartbeat-ms",
                          "100", "--lease-ms", "800", "--log-level", "warn"});
  auto node = ts::start_cluster(nats->url(), {.workers = 0});
  ASSERT_NE(node, nullptr);
  ASSERT_TRUE(ts::eventually([&] { return node->live_workers() == 2; }, 15000)) << "the agent's worker did not register";

  constexpr int n = 8;
  constexpr int max_tokens = 60;  // ~600 ms each
  std::atomic<int> exact{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i) {
    clients.emplace_back([&, i] {
      httplib::Client cli("127.0.0.1", node->http_port());
      cli.set_read_timeout(30, 0);
      std::string prompt = "agent drain " + std::to_string(i);
      json body = {{"prompt", prompt}, {"max_tokens", max_tokens}};
      auto r = cli.Post("/v1/completions", body.dump(), "application/json");
      if (r && r->status == 200 && json::parse(r->body)["choices"][0]["text"] == ts::mock_expected_text(prompt, max_tokens))
        exact++;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  agent.signal(SIGTERM);
  transport::nats_options no;
  no.servers = {nats->url()};
  auto client = std::move(*transport::nats_connection::connect(no));
  auto serving = [&](const std::string& id) {
    msg::generate_request r;
    r.request_id = id;
    r.prompt = "who";
    r.max_tokens = 1;
    auto rep = client->request(subjects::router_generate("default"), msg::encode(r), 3000);
    if (!rep) return std::string("error");
    auto c = msg::decode<msg::token_chunk>(rep->data, msg::wire_format::msgpack);
    return c ? c->worker_id : std::string("undecodable");
  };
  // The drain is seen once the frontend's view (fed by the same heartbeats as the router) stops offering
  // the agent's worker; a probe answered by "other" alone proves nothing, since load alone can pick it.
  ASSERT_TRUE(ts::eventually([&] { return node->live_workers() == 1; }, 10000)) << "the drain never reached the heartbeats";
  ASSERT_TRUE(ts::eventually([&] { return serving("probe-a") == "other" && serving("probe-b") == "other"; }, 5000));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(serving("new-" + std::to_string(i)), "other") << "new work went to a draining node";
  for (auto& t : clients) t.join();
  EXPECT_EQ(exact.load(), n) << "in-flight requests must complete exactly";
  EXPECT_EQ(agent.wait_exit(15000), 0) << "the agent exits 0 after draining";
  EXPECT_TRUE(ts::eventually([&] { return node->live_workers() == 1; }, 3000)) << "the agent's worker is still alive";
  std::filesystem::remove(cfg_path);
}
