// `yard up`, the main job, as a user runs it: one process that starts its own
// nats-server, workers, a router and the HTTP API, serves a completion, gives
// each worker its own G3 directory, and stops cleanly on SIGTERM.
#include <httplib.h>

#include <filesystem>

#include <nlohmann/json.hpp>

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
                       "--kv-host-blocks", "8", "--kv-disk-dir", dir.string(), "--kv-disk-blocks",
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
  EXPECT_TRUE(fs::is_directory(dir / "worker-0"));
  EXPECT_TRUE(fs::is_directory(dir / "worker-1"));

  up.signal(SIGTERM);
  EXPECT_EQ(up.wait_exit(15000), 0);
  fs::remove_all(dir);
}

}  // namespace
