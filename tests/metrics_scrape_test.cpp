// Metrics from every process: a router, a worker, a frontend, a node agent
// (and the worker it runs) and a planner, each a separate `yard` process with
// --metrics-port, serve Prometheus text that `promtool check metrics` accepts
// and that a real Prometheus server (started here on a free port, with a
// generated config) scrapes: every target up, and the series the issue names
// arrive with the values the traffic sent here implies.
#include <httplib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/cluster_fixture.hpp"

using namespace yard;
using nlohmann::json;
namespace ts = yard::test_support;
namespace fs = std::filesystem;

namespace {

int free_port() { return transport::free_loopback_port(); }

bool have(const char* tool) { return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0; }

std::string scrape(int port) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(2, 0);
  cli.set_read_timeout(5, 0);
  auto r = cli.Get("/metrics");
  return r && r->status == 200 ? r->body : std::string();
}

// Sum of every sample of `series` whose label text contains all of `with` (e.g. {"tier=\"g1\""}).
double sum_of(const std::string& text, const std::string& series, const std::vector<std::string>& with = {}) {
  double total = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series, 0) != 0) continue;
    auto rest = line.substr(series.size());
    if (rest.empty() || (rest[0] != '{' && rest[0] != ' ')) continue;  // a longer name
    bool all = true;
    for (const auto& w : with) all = all && rest.find(w) != std::string::npos;
    if (!all) continue;
    total += std::stod(rest.substr(rest.rfind(' ') + 1));
  }
  return total;
}

bool has_series(const std::string& text, const std::string& series) {
  return text.find("\n" + series + "{") != std::string::npos || text.find("\n" + series + " ") != std::string::npos ||
         text.rfind(series, 0) == 0;
}

// `promtool check metrics` on `text`: "" when it passes, else what it printed.
std::string promtool_check(const std::string& text, const fs::path& dir, const std::string& name) {
  auto in = dir / (name + ".prom");
  auto out = dir / (name + ".promtool");
  std::ofstream(in) << text;
  int rc = std::system(("promtool check metrics < " + in.string() + " > " + out.string() + " 2>&1").c_str());
  if (rc == 0) return "";
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  return "exit " + std::to_string(rc) + ": " + ss.str();
}

json prom_query(int port, const std::string& q) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(5, 0);
  auto r = cli.Get(("/api/v1/query?query=" + httplib::detail::encode_query_param(q)).c_str());
  if (!r || r->status != 200) return json();
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") return json();
  return j["data"]["result"];
}

double prom_scalar(int port, const std::string& q) {
  auto r = prom_query(port, q);
  if (!r.is_array() || r.empty()) return -1;
  return std::stod(r[0]["value"][1].get<std::string>());
}

}  // namespace

TEST(metrics_scrape, every_process_serves_valid_metrics_that_a_real_prometheus_scrapes) {
  if (!have("prometheus") || !have("promtool"))
    GTEST_SKIP() << "prometheus/promtool not installed (Debian package prometheus; tools/bootstrap.sh installs it)";
  auto nats = ts::start_nats();
  ASSERT_NE(nats, nullptr);
  auto dir = fs::temp_directory_path() / ("yard-metrics-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const int router_port = free_port(), worker_port = free_port(), frontend_port = free_port(), http_port = free_port(),
            agent_port = free_port(), agent_worker_port = free_port(), planner_port = free_port(), prom_port = free_port();
  auto cfg_path = dir / "agent.toml";
  std::ofstream(cfg_path) << "[agent]\nnode = \"n1\"\nnats = \"" << nats->url() << "\"\nmetrics_port = " << agent_port
                          << "\n\n[[workers]]\nrole = \"both\"\nengine = \"mock\"\nmodel = \"mock\"\ncount = 1\n"
                          << "metrics_port = " << agent_worker_port << "\n"
                          << "args = [\"--token-delay-ms\", \"2\", \"--heartbeat-ms\", \"100\", \"--log-level\", \"warn\"]\n";
  const std::string url = nats->url();
  auto quiet = std::vector<std::string>{"--log-level", "warn"};
  auto with = [&](std::vector<std::string> a) {
    a.insert(a.end(), quiet.begin(), quiet.end());
    return a;
  };
  ts::yard_process router(with({"router", "--nats", url, "--metrics-port", std::to_string(router_port)}));
  ts::yard_process worker(with({"worker", "--nats", url, "--id", "wa", "--token-delay-ms", "2", "--heartbeat-ms", "100",
                                "--metrics-port", std::to_string(worker_port)}));
  ts::yard_process frontend(with({"frontend", "--nats", url, "--http-host", "127.0.0.1", "--http-port",
                                  std::to_string(http_port), "--metrics-port", std::to_string(frontend_port)}));
  ts::yard_process agent({"agent", "--config", cfg_path.string(), "--log-level", "warn"});
  ts::yard_process planner(with({"planner", "--nats", url, "--aggregated", "--interval-ms", "300", "--dry-run",
                                 "--metrics-port", std::to_string(planner_port)}));

  // Both workers (the agent's "n1-both-0" and "wa") routable through the frontend.
  httplib::Client http("127.0.0.1", http_port);
  http.set_read_timeout(20, 0);
  ASSERT_TRUE(ts::eventually(
      [&] {
        auto t = scrape(router_port);
        return sum_of(t, "yard_router_workers") == 2 && !scrape(frontend_port).empty() && !scrape(agent_worker_port).empty();
      },
      20000))
      << "router sees " << sum_of(scrape(router_port), "yard_router_workers") << " workers";
  constexpr int n = 8;
  for (int i = 0; i < n; ++i) {
    json body = {{"model", "mock"}, {"prompt", std::string(64, 'a' + i % 3) + std::to_string(i)}, {"max_tokens", 8}};
    auto r = http.Post("/v1/completions", body.dump(), "application/json");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : std::string("no response"));
  }

  // Each process's own text: the named series, values that follow from the traffic, and promtool's lint.
  std::map<std::string, int> ports = {{"router", router_port},   {"worker", worker_port},
                                      {"frontend", frontend_port}, {"agent", agent_port},
                                      {"agent_worker", agent_worker_port}, {"planner", planner_port}};
  std::map<std::string, std::string> text;
  ASSERT_TRUE(ts::eventually(
      [&] {
        for (const auto& [name, port] : ports) text[name] = scrape(port);
        // Observed TTFT comes from the frontend's once-a-second latency report; planner windows every 300 ms.
        return sum_of(text["router"], "yard_router_observed_ttft_seconds_count") >= n &&
               sum_of(text["planner"], "yard_planner_windows_total") >= 2 &&
               sum_of(text["worker"], "yard_worker_kv_blocks_capacity") > 0;
      },
      15000))
      << text["router"];
  const auto& rt = text["router"];
  EXPECT_EQ(sum_of(rt, "yard_router_decisions_total", {"policy=\"ttft\"", "pool=\"decode\""}), n) << rt;
  EXPECT_EQ(sum_of(rt, "yard_router_overlap_blocks_count"), n);
  EXPECT_EQ(sum_of(rt, "yard_router_predicted_ttft_seconds_count"), n);
  EXPECT_GT(sum_of(rt, "yard_router_kv_event_batches_total"), 0) << "workers publish KV events as they cache prompts";
  EXPECT_GT(sum_of(rt, "yard_router_kv_event_lag_seconds_count"), 0);
  EXPECT_GT(sum_of(rt, "yard_router_indexed_blocks"), 0);
  EXPECT_GE(sum_of(rt, "yard_router_kv_resyncs_total"), 2) << "each joining worker is asked for a snapshot";
  for (auto s : {"yard_router_approximate_workers", "yard_router_tokenizer_mismatches_total", "yard_router_kv_events_queued",
                 "yard_router_request_failures_total", "yard_actor_restarts_total"})
    EXPECT_TRUE(has_series(rt, s)) << s;
  EXPECT_EQ(sum_of(rt, "yard_router_tokenizer_mismatches_total"), 0);

  double admitted = 0, steps = 0;
  for (auto w : {"worker", "agent_worker"}) {
    const auto& t = text[w];
    admitted += sum_of(t, "yard_worker_requests_admitted_total");
    steps += sum_of(t, "yard_worker_step_duration_seconds_count");
    for (auto s : {"yard_worker_batch_size_bucket", "yard_worker_queued_requests", "yard_worker_kv_blocks",
                   "yard_worker_kv_offloaded_blocks_total", "yard_worker_remote_prefills_total",
                   "yard_worker_local_prefill_fallbacks_total", "yard_worker_kv_transfer_bytes_total",
                   "yard_worker_kv_transfer_duration_seconds_count", "yard_worker_migrations_received_total"})
      EXPECT_TRUE(has_series(t, s)) << w << ": " << s;
    EXPECT_TRUE(has_series(t, "yard_worker_kv_blocks") && t.find("tier=\"g1\"") != std::string::npos) << t;
    EXPECT_EQ(sum_of(t, "yard_worker_local_prefill_fallbacks_total", {"cause=\"timeout\""}), 0) << t;
  }
  EXPECT_EQ(admitted, n) << "every request admitted by exactly one worker";
  EXPECT_GE(steps, n * 8) << "at least one step per generated token";
  EXPECT_EQ(sum_of(text["frontend"], "yard_requests_total"), n);
  EXPECT_EQ(sum_of(text["agent"], "yard_agent_children", {"group=\"both\"", "state=\"running\""}), 1) << text["agent"];
  EXPECT_EQ(sum_of(text["agent"], "yard_agent_child_restarts_total"), 0);
  EXPECT_EQ(sum_of(text["agent"], "yard_agent_child_last_exit_code"), -1) << "no exit yet";
  EXPECT_TRUE(has_series(text["planner"], "yard_planner_decisions_total"));
  for (const auto& [name, t] : text) EXPECT_EQ(promtool_check(t, dir, name), "") << name << ":\n" << t;
  // The OpenAI port's own /metrics (frontend series plus per-worker gauges from heartbeats) passes too.
  auto api_metrics = scrape(http_port);
  EXPECT_NE(api_metrics.find("yard_worker_kv_blocks_capacity{worker=\"wa\""), std::string::npos) << api_metrics;
  EXPECT_EQ(promtool_check(api_metrics, dir, "frontend_http"), "") << api_metrics;

  // The Grafana dashboard in docs/ asks only for series some process exports.
  std::string all;
  for (const auto& [name, t] : text) all += t;
  const char* src = std::getenv("YARD_SOURCE_DIR");
  std::ifstream dash_file(fs::path(src ? src : ".") / "docs/grafana/switchyard-dashboard.json");
  ASSERT_TRUE(dash_file.good()) << "docs/grafana/switchyard-dashboard.json";
  auto dash = json::parse(dash_file, nullptr, false);
  ASSERT_FALSE(dash.is_discarded());
  std::set<std::string> asked;
  const std::regex series_re("yard_[a-z0-9_]+");
  for (const auto& panel : dash["panels"])
    for (const auto& target : panel.value("targets", json::array())) {
      auto expr = target.value("expr", std::string());
      for (auto it = std::sregex_iterator(expr.begin(), expr.end(), series_re); it != std::sregex_iterator(); ++it)
        asked.insert(it->str());
    }
  EXPECT_GT(asked.size(), 20u);
  for (const auto& name : asked) {
    std::string base = name;
    for (std::string suffix : {"_bucket", "_count", "_sum"})
      if (base.size() > suffix.size() && base.compare(base.size() - suffix.size(), suffix.size(), suffix) == 0 &&
          all.find("# TYPE " + base.substr(0, base.size() - suffix.size()) + " histogram") != std::string::npos)
        base = base.substr(0, base.size() - suffix.size());
    EXPECT_NE(all.find("# TYPE " + base + " "), std::string::npos) << "the dashboard asks for " << name;
  }

  // A real Prometheus scrapes all six targets.
  auto prom_cfg = dir / "prometheus.yml";
  {
    std::ofstream f(prom_cfg);
    f << "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n";
    for (const auto& [name, port] : ports)
      f << "  - job_name: " << name << "\n    static_configs:\n      - targets: ['127.0.0.1:" << port << "']\n";
  }
  ASSERT_EQ(std::system(("promtool check config " + prom_cfg.string() + " > /dev/null").c_str()), 0);
  ts::yard_process prometheus({"/bin/sh", "-c",
                               "exec prometheus --config.file=" + prom_cfg.string() + " --storage.tsdb.path=" +
                                   (dir / "tsdb").string() + " --web.listen-address=127.0.0.1:" +
                                   std::to_string(prom_port) + " --log.level=warn > " + (dir / "prometheus.log").string() +
                                   " 2>&1"},
                              false);
  EXPECT_TRUE(ts::eventually([&] { return prom_scalar(prom_port, "count(up == 1)") == double(ports.size()); }, 30000))
      << "targets up: " << prom_query(prom_port, "up").dump();
  EXPECT_TRUE(ts::eventually([&] { return prom_scalar(prom_port, "sum(yard_router_decisions_total)") == n; }, 10000));
  EXPECT_EQ(prom_scalar(prom_port, "sum(yard_worker_requests_admitted_total)"), n);
  EXPECT_EQ(prom_scalar(prom_port, "sum(yard_requests_total)"), n);
  EXPECT_EQ(prom_scalar(prom_port, "sum(yard_agent_children{state=\"running\"})"), 1);
  EXPECT_GT(prom_scalar(prom_port, "sum(yard_planner_windows_total)"), 0);
  EXPECT_GT(prom_scalar(prom_port, "sum(yard_worker_step_duration_seconds_count)"), 0);
  EXPECT_GE(prom_scalar(prom_port, "histogram_quantile(0.9, sum by (le) (yard_router_observed_ttft_seconds_bucket))"), 0);
  agent.signal(SIGTERM);
  EXPECT_EQ(agent.wait_exit(20000), 0);
  fs::remove_all(dir);
}
