// The multi-node walkthrough (docs/multi-node.md), step by step, on three
// "hosts" — network namespaces on one virtual switch (tools/netns_cluster.sh),
// 192.0.2.11-13 — with the commands and files the walkthrough gives:
//   1. a permissioned bus: `yard bus-config` users, one nats-server per host,
//      clustered (3 routes);
//   2. one `yard agent` per host from its TOML file (node1: a prefill worker;
//      node2, node3: decode workers), each agent and worker serving /metrics;
//   3. two routers (node1, node2) and a frontend (node1), each with its own
//      NATS user and --metrics-port;
//   4. a long prompt through the frontend: exact mock text, prefilled on
//      node1 and pulled over UCX (cached tokens), whichever decode host serves;
//   5. Prometheus on node1 scrapes all nine endpoints: every target up, the
//      remote prefills and the routers' decisions show.
// Label netns; skips cleanly without root / namespace permission.
// Must not touch: anything outside the namespaces it creates (ym<pid>_*).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/cluster_fixture.hpp"
#include "tests/support/netns_support.hpp"

using namespace yard;
namespace ts = yard::test_support;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int hosts = 3;
std::string ip(int host) { return "192.0.2." + std::to_string(10 + host); }

class multi_node : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "netns tests need root (ip netns add)";
    if (!ts::sh("bash " + ts::repo_root() + "/tools/netns.sh check >/dev/null 2>&1"))
      GTEST_SKIP() << "ip netns add / veth not permitted here";
    script_ = ts::repo_root() + "/tools/netns_cluster.sh";
    name_ = "ym" + std::to_string(::getpid() % 1000000);
    ASSERT_TRUE(ts::sh("bash " + script_ + " up " + name_ + " " + std::to_string(hosts))) << "netns_cluster.sh up failed";
    up_ = true;
    dir_ = fs::temp_directory_path() / ("yard-multinode-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    procs_.clear();
    if (up_) ts::sh("bash " + script_ + " down " + name_);
    // Logs and configs stay for a failure, or when YARD_KEEP_TEST_FILES is set.
    if (!dir_.empty() && !HasFailure() && std::getenv("YARD_KEEP_TEST_FILES") == nullptr) fs::remove_all(dir_);
    else if (!dir_.empty()) std::fprintf(stderr, "multi-node test files kept in %s\n", dir_.c_str());
  }
  ts::ns_process& start(int host, std::vector<std::string> cmd) {
    procs_.push_back(std::make_unique<ts::ns_process>(
        std::vector<std::string>{"/bin/bash", script_, "exec", name_, std::to_string(host)}, cmd));
    return *procs_.back();
  }
  // A command on one host (its output); each argument is passed as is.
  std::string on(int host, const std::vector<std::string>& args) {
    std::string cmd = "bash " + quote(script_) + " exec " + name_ + " " + std::to_string(host);
    for (const auto& a : args) cmd += " " + quote(a);
    return ts::run_capture(cmd);
  }
  static std::string quote(const std::string& a) {
    std::string q = "'";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  }
  fs::path file(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    std::ofstream(p) << text;
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
    return p;
  }
  json complete(const std::string& prompt, int max_tokens) {
    json body = {{"prompt", prompt}, {"max_tokens", max_tokens}};
    auto out = on(1, {"curl", "-s", "-m", "20", "-H", "Content-Type: application/json", "-d", body.dump(),
                      "http://" + ip(1) + ":8000/v1/completions"});
    auto j = json::parse(out, nullptr, false);
    return j.is_discarded() ? json{{"raw_output", out}} : j;
  }
  double prom(const std::string& query) {
    auto out = on(1, {"curl", "-s", "-m", "5", "-G", "--data-urlencode", "query=" + query,
                      "http://" + ip(1) + ":9090/api/v1/query"});
    auto j = json::parse(out, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success" || j["data"]["result"].empty()) return -1;
    return std::stod(j["data"]["result"][0]["value"][1].get<std::string>());
  }

  std::string script_, name_;
  fs::path dir_;
  bool up_ = false;
  std::vector<std::unique_ptr<ts::ns_process>> procs_;
};

std::string secret() {
  std::random_device rd;
  // nats-server reads a variable's value like a config value: one starting with a digit would parse as a number.
  std::string s = "p";
  for (int i = 0; i < 32; ++i) s += "0123456789abcdef"[rd() % 16];
  return s;
}

}  // namespace

TEST_F(multi_node, walkthrough_three_nodes_permissioned_bus_agents_two_routers_disaggregated_prometheus) {
  const std::string yard = ts::yard_bin();
  if (std::system("command -v prometheus >/dev/null 2>&1") != 0) GTEST_SKIP() << "prometheus not installed";

  // Step 1: users and passwords (`yard bus-config`), one nats-server per host, clustered.
  std::vector<std::pair<std::string, std::string>> users = {{"client", "client"},       {"frontend", "frontend"},
                                                            {"router", "router"},       {"worker", "worker"},
                                                            {"agent-node1", "agent:node1"}, {"agent-node2", "agent:node2"},
                                                            {"agent-node3", "agent:node3"}};
  std::string bus_config = yard + " bus-config";
  std::string server_env;
  for (const auto& [user, role] : users) {
    auto pw = secret();
    file(user + ".password", pw + "\n");
    bus_config += " --user " + user + ":" + role;
    std::string var = "YARD_" + user + "_PASSWORD";
    for (auto& c : var) c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    server_env += var + "=" + pw + " ";
  }
  ASSERT_TRUE(ts::sh(bus_config + " > " + (dir_ / "auth.conf").string()));
  std::string nats_urls;
  for (int h = 1; h <= hosts; ++h) nats_urls += (h > 1 ? "," : "") + std::string("nats://") + ip(h) + ":4222";
  for (int h = 1; h <= hosts; ++h) {
    std::string routes;
    for (int o = 1; o <= hosts; ++o)
      if (o != h) routes += (routes.empty() ? "" : ", ") + std::string("\"nats-route://") + ip(o) + ":6222\"";
    file("nats-node" + std::to_string(h) + ".conf",
         "server_name: node" + std::to_string(h) + "\nlisten: " + ip(h) + ":4222\ncluster {\n  name: yard\n  listen: " +
             ip(h) + ":6222\n  routes: [" + routes + "]\n}\ninclude \"auth.conf\"\n");
    start(h, {"/bin/sh", "-c",
              "exec env " + server_env + "nats-server -c " + (dir_ / ("nats-node" + std::to_string(h) + ".conf")).string() +
                  " > " + (dir_ / ("nats-node" + std::to_string(h) + ".log")).string() + " 2>&1"});
  }
  // The three servers form a full mesh (each sees two routes).
  for (int h = 1; h <= hosts; ++h)
    ASSERT_TRUE(ts::eventually(
        [&] {
          auto out = ts::run_capture("grep -c 'Route connection created' " +
                                     (dir_ / ("nats-node" + std::to_string(h) + ".log")).string() + " 2>/dev/null");
          return !out.empty() && std::stoi(out) >= hosts - 1;
        },
        15000))
        << "node" << h << " has not joined the NATS cluster";

  // Step 2: one agent per host, from its config file.
  for (int h = 1; h <= hosts; ++h) {
    const std::string node = "node" + std::to_string(h);
    const bool prefill = h == 1;
    std::string urls;
    for (int o = 1; o <= hosts; ++o) urls += (o > 1 ? ", " : "") + std::string("\"nats://") + ip(o) + ":4222\"";
    auto cfg = file(node + ".toml",
                    "[agent]\nnode = \"" + node + "\"\nnats = [" + urls + "]\nmetrics_port = 9400\nworker_binary = \"" +
                        yard + "\"\n\n[auth]\nuser = \"agent-" + node + "\"\npassword_file = \"" +
                        (dir_ / ("agent-" + node + ".password")).string() + "\"\nworker_user = \"worker\"\n" +
                        "worker_password_file = \"" + (dir_ / "worker.password").string() + "\"\n\n[[workers]]\nrole = \"" +
                        (prefill ? "prefill" : "decode") + "\"\nengine = \"mock\"\nmodel = \"mock\"\ncount = 1\n" +
                        "metrics_port = 9500\nargs = [\"--token-delay-ms\", \"1\", \"--heartbeat-ms\", \"200\"" +
                        (prefill ? "" : ", \"--remote-prefill-min-tokens\", \"64\"") + "]\n");
    ASSERT_TRUE(ts::sh(yard + " agent --config " + cfg.string() + " --check > /dev/null")) << cfg;
    start(h, {"/bin/sh", "-c",
              "exec " + yard + " agent --config " + cfg.string() + " --worker-log-level info > " +
                  (dir_ / (node + "-agent.log")).string() + " 2>&1"});
  }

  // Step 3: two routers and a frontend, each with its own user and a metrics port.
  auto component = [&](int host, const std::string& what, const std::string& user, const std::string& flags) {
    start(host, {"/bin/sh", "-c",
                 "exec " + yard + " " + what + " --nats " + nats_urls + " --nats-user " + user + " --nats-password-file " +
                     (dir_ / (user + ".password")).string() + " " + flags + " > " +
                     (dir_ / (what + "-node" + std::to_string(host) + ".log")).string() + " 2>&1"});
  };
  component(1, "router", "router", "--id router-1 --metrics-port 9402");
  component(2, "router", "router", "--id router-2 --metrics-port 9402");
  component(1, "frontend", "frontend", "--http-host " + ip(1) + " --http-port 8000 --metrics-port 9401");

  // Step 4: a long prompt, exact, prefilled on node1 and pulled over UCX.
  std::string prompt(300, 'x');
  for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<char>('a' + (i * 7) % 26);
  json r;
  ASSERT_TRUE(ts::eventually(
      [&] {
        r = complete(prompt, 8);
        return r.contains("choices");
      },
      30000))
      << r.dump();
  EXPECT_EQ(r["choices"][0]["text"].get<std::string>(), ts::mock_expected_text(prompt, 8));
  auto r2 = ts::until_prefilled_remotely([&](const std::string& p, int n) { return complete(p, n); }, prompt, 288,
                                        "ZYXWVU");
  EXPECT_GE(r2["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 288)
      << "the prompt's 18 full blocks should have come over UCX from node1: " << r2.dump();

  // Step 5: Prometheus on node1 scrapes every endpoint of the three hosts.
  std::string targets;
  auto target = [&](int h, int port) { targets += std::string(targets.empty() ? "" : ", ") + "'" + ip(h) + ":" + std::to_string(port) + "'"; };
  for (int h = 1; h <= hosts; ++h) {
    target(h, 9400);  // agent
    target(h, 9500);  // its worker
  }
  target(1, 9401);  // frontend
  target(1, 9402);  // router-1
  target(2, 9402);  // router-2
  auto prom_cfg = file("prometheus.yml", "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n"
                                         "  - job_name: switchyard\n    static_configs:\n      - targets: [" +
                                             targets + "]\n");
  start(1, {"/bin/sh", "-c",
            "exec prometheus --config.file=" + prom_cfg.string() + " --storage.tsdb.path=" + (dir_ / "tsdb").string() +
                " --web.listen-address=" + ip(1) + ":9090 > " + (dir_ / "prometheus.log").string() + " 2>&1"});
  EXPECT_TRUE(ts::eventually([&] { return prom("count(up == 1)") == 9; }, 40000))
      << "targets up: " << on(1, {"curl", "-s", "http://" + ip(1) + ":9090/api/v1/query?query=up"});
  EXPECT_TRUE(ts::eventually([&] { return prom("sum(yard_worker_remote_prefills_served_total)") >= 1; }, 10000));
  EXPECT_GE(prom("sum(yard_worker_remote_prefills_total)"), 1);
  EXPECT_GE(prom("sum(yard_worker_kv_transfer_bytes_total)"), 1);
  EXPECT_GE(prom("sum(yard_router_decisions_total{pool=\"decode\"})"), 2);
  EXPECT_EQ(prom("count(yard_router_workers)"), 2) << "both routers are scraped";
  EXPECT_EQ(prom("sum(yard_agent_children{state=\"running\"})"), 3);
}
