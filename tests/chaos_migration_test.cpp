// Chaos: streamed requests while worker processes are SIGKILLed and restarted.
// Every request must finish with exactly the tokens an undisturbed run gives
// (the mock engine is deterministic), through request migration.
#include <httplib.h>

#include <atomic>
#include <random>

#include <nlohmann/json.hpp>

#include "backends/mock/mock_engine.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
using nlohmann::json;
namespace ts = yard::test_support;

namespace {

std::string expected_text(const std::string& prompt, std::size_t n) { return ts::mock_expected_text(prompt, n); }

std::vector<std::string> worker_args(const std::string& url, const std::string& id) {
  return {"worker", "--nats", url, "--id", id, "--heartbeat-ms", "100", "--lease-ms", "800", "--token-delay-ms", "4",
          "--log-level", "warn"};
}

TEST(chaos_migration, streams_survive_sigkilled_workers_token_exact) {
  constexpr int requests = 300;
  constexpr int clients = 12;
  constexpr int max_tokens = 24;
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto node = ts::start_cluster(nats->url(), {.workers = 0, .with_frontend = false});
  ASSERT_NE(node, nullptr);
  actors::frontend_config fc;
  fc.ack_timeout_ms = 1500;
  fc.max_attempts = 8;
  ASSERT_TRUE(node->add_frontend(fc, ts::loopback_http()).ok());

  constexpr int n_workers = 4;
  std::vector<std::unique_ptr<ts::yard_process>> workers;
  for (int i = 0; i < n_workers; ++i)
    workers.push_back(std::make_unique<ts::yard_process>(worker_args(nats->url(), "cw" + std::to_string(i))));
  ASSERT_TRUE(ts::eventually([&] { return node->live_workers() == n_workers; }, 15000));

  std::atomic<int> next{0}, ok{0}, wrong{0};
  std::atomic<bool> done{false};
  std::mutex fail_mu;
  std::vector<std::string> failures;
  auto client = [&] {
    httplib::Client cli("127.0.0.1", node->http_port());
    cli.set_read_timeout(60, 0);
    for (int i = next++; i < requests; i = next++) {
      std::string prompt = "chaos request " + std::to_string(i);
      json body = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"stream", true}};
      auto res = cli.Post("/v1/completions", body.dump(), "application/json");
      std::string text, finish, err;
      if (!res) err = "no response";
      else if (res->status != 200) err = "status " + std::to_string(res->status) + ": " + res->body;
      else {
        for (const auto& ev : ts::sse_data(res->body)) {
          if (ev == "[DONE]") break;
          auto j = json::parse(ev, nullptr, false);
          if (j.is_discarded() || j.contains("error")) {
            err = ev;
            break;
          }
          text += j["choices"][0]["text"].get<std::string>();
          if (!j["choices"][0]["finish_reason"].is_null()) finish = j["choices"][0]["finish_reason"];
        }
      }
      if (err.empty() && finish == "length" && text == expected_text(prompt, max_tokens)) {
        ok++;
      } else {
        wrong++;
        std::lock_guard<std::mutex> lock(fail_mu);
        failures.push_back(prompt + ": " + (err.empty() ? "got '" + text + "' finish '" + finish + "'" : err));
      }
    }
  };
  std::thread killer([&] {
    std::mt19937 rng(7);
    int kills = 0;
    while (!done) {
      std::this_thread::sleep_for(std::chrono::milliseconds(350));
      if (done) break;
      int victim = static_cast<int>(rng() % n_workers);
      workers[victim].reset();  // SIGKILL
      ++kills;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      workers[victim] = std::make_unique<ts::yard_process>(worker_args(nats->url(), "cw" + std::to_string(victim)));
    }
    std::printf("chaos: %d workers killed with SIGKILL and restarted\n", kills);
  });
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) threads.emplace_back(client);
  for (auto& t : threads) t.join();
  done = true;
  killer.join();
  auto migrated = node->metrics()->migrations_total.load();
  std::printf("chaos: %d/%d requests token-exact, %llu migrations\n", ok.load(), requests,
              static_cast<unsigned long long>(migrated));
  for (std::size_t i = 0; i < failures.size() && i < 10; ++i) ADD_FAILURE() << failures[i];
  EXPECT_EQ(ok.load(), requests);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(migrated, 0u) << "no request was ever migrated: the test did not exercise failover";
}

}  // namespace
