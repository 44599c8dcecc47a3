// cluster/tests/agent_metrics_test.cpp — the agent's and the planner's metrics text, metrics ports in the
// agent config and in the workers' argv, and the metrics endpoint itself (real HTTP on loopback).
#include <httplib.h>

#include <gtest/gtest.h>

#include "cluster/agent/agent_config.hpp"
#include "cluster/agent/agent_metrics.hpp"
#include "cluster/agent/node_agent.hpp"
#include "cluster/metrics_endpoint.hpp"
#include "cluster/planner/planner_service.hpp"

namespace yard::cluster {
namespace {

TEST(agent_metrics, exit_codes_follow_the_shell_convention) {
  EXPECT_EQ(exit_code_of("exit 0"), 0);
  EXPECT_EQ(exit_code_of("exit 70"), 70);
  EXPECT_EQ(exit_code_of("signal 9"), 137);
  EXPECT_EQ(exit_code_of(""), -1);
}

TEST(agent_metrics, children_by_group_and_state_with_restarts_and_last_exit) {
  std::vector<child_info> kids(3);
  kids[0] = {"n1-decode-0", "decode", child_state::running, 100, 2, "signal 9"};
  kids[1] = {"n1-decode-1", "decode", child_state::backoff, -1, 1, "exit 70"};
  kids[2] = {"n1-prefill-0", "prefill", child_state::running, 102, 0, ""};
  prom::exposition out;
  render_agent_children(out, "n1", kids);
  auto t = out.text();
  EXPECT_NE(t.find("yard_agent_children{node=\"n1\",group=\"decode\",state=\"running\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("yard_agent_children{node=\"n1\",group=\"decode\",state=\"backoff\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("yard_agent_children{node=\"n1\",group=\"prefill\",state=\"failed\"} 0\n"), std::string::npos) << t;
  EXPECT_NE(t.find("yard_agent_child_restarts_total{node=\"n1\",child=\"n1-decode-0\",group=\"decode\"} 2\n"),
            std::string::npos);
  EXPECT_NE(t.find("yard_agent_child_last_exit_code{node=\"n1\",child=\"n1-decode-0\",group=\"decode\"} 137\n"),
            std::string::npos);
  EXPECT_NE(t.find("yard_agent_child_last_exit_code{node=\"n1\",child=\"n1-decode-1\",group=\"decode\"} 70\n"),
            std::string::npos);
  EXPECT_NE(t.find("yard_agent_child_up{node=\"n1\",child=\"n1-decode-1\",group=\"decode\"} 0\n"), std::string::npos);
  EXPECT_NE(t.find("yard_agent_child_last_exit_code{node=\"n1\",child=\"n1-prefill-0\",group=\"prefill\"} -1\n"),
            std::string::npos);
}

TEST(agent_metrics, config_metrics_ports_reach_the_workers_argv) {
  auto cfg = parse_agent_config(
      "[agent]\nnode = \"n1\"\nnats = \"nats://127.0.0.1:4222\"\nmetrics_port = 9400\n"
      "[[workers]]\nrole = \"decode\"\nengine = \"mock\"\nmodel = \"m\"\ncount = 2\nmetrics_port = 9500\n",
      "a.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.err().describe();
  EXPECT_EQ(cfg->metrics_port, 9400u);
  EXPECT_EQ(cfg->workers[0].metrics_port, 9500u);
  node_agent_options o;
  o.config = *cfg;
  o.worker_binary = "/bin/yard";
  auto argv = worker_argv(o, o.config.workers[0], "n1-decode-3");
  auto it = std::find(argv.begin(), argv.end(), "--metrics-port");
  ASSERT_NE(it, argv.end());
  EXPECT_EQ(*(it + 1), "9503") << "instance 3 of the group";
  auto bad = parse_agent_config(
      "[agent]\nnode = \"n1\"\nnats = \"nats://127.0.0.1:4222\"\nmetrics_port = 70000\n"
      "[[workers]]\nrole = \"decode\"\nengine = \"mock\"\nmodel = \"m\"\n",
      "a.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("agent.metrics_port"), std::string::npos) << bad.err().message;
}

TEST(metrics_endpoint, serves_every_collector_on_metrics_and_404_elsewhere) {
  auto reg = std::make_shared<metrics_registry>();
  reg->add([](prom::exposition& out) { out.gauge("yard_a", "A.", {{"w", "1"}}, 1); });
  reg->add([](prom::exposition& out) { out.gauge("yard_a", "A.", {{"w", "2"}}, 2); });
  auto ep = metrics_endpoint::start(reg, "127.0.0.1", 0);
  ASSERT_TRUE(ep.ok()) << ep.err().describe();
  ASSERT_GT((*ep)->port(), 0);
  httplib::Client cli("127.0.0.1", (*ep)->port());
  auto r = cli.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_EQ(r->body, "# HELP yard_a A.\n# TYPE yard_a gauge\nyard_a{w=\"1\"} 1\nyard_a{w=\"2\"} 2\n");
  auto missing = cli.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  // A taken port is an error naming the address, not a crash.
  auto again = metrics_endpoint::start(reg, "127.0.0.1", (*ep)->port());
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.err().message.find("127.0.0.1:" + std::to_string((*ep)->port())), std::string::npos);
  (*ep)->stop();
}

TEST(planner_metrics, decisions_and_the_last_window_are_exported) {
  planner_service_options so;
  so.run_thread = false;
  so.dry_run = true;
  so.interval_ms = 1000;
  so.planner.pools = default_pools(false);
  so.planner.pools[0].min_workers = 1;
  so.planner.pools[0].max_workers = 4;
  so.planner.up_cooldown_ms = 0;
  auto svc = planner_service::start(so, nullptr);
  ASSERT_TRUE(svc.ok()) << svc.err().describe();
  auto decided = (*svc)->tick(1000);  // no workers seen: below the pool's minimum
  int ups = 0;
  for (const auto& d : decided) ups += d.delta() > 0 ? 1 : 0;
  ASSERT_GE(ups, 1) << "an empty pool under its minimum scales up";
  prom::exposition out;
  (*svc)->render_metrics(out);
  auto t = out.text();
  EXPECT_NE(t.find("yard_planner_windows_total 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("yard_planner_decisions_total{role=\"both\",direction=\"up\"} " + std::to_string(ups) + "\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("yard_planner_decisions_total{role=\"both\",direction=\"down\"} 0\n"), std::string::npos) << t;
  EXPECT_NE(t.find("yard_planner_target_workers{role=\"both\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("# TYPE yard_planner_arrival_rate gauge\n"), std::string::npos) << t;
}

}  // namespace
}  // namespace yard::cluster
