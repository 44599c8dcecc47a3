// cluster/tests/agent_test.cpp — node_agent with a stand-in worker (a shell
// script, so this does not depend on `yard worker`): configured workers
// start, scale requests clamp to bounds, a killed worker is restarted,
// shutdown drains every worker; over a real nats-server: the control subject
// answers scale_request (an unknown role is refused naming the field and the
// allowed roles), status is published, and planner_service's decisions reach
// the agent.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "cluster/agent/node_agent.hpp"
#include "cluster/planner/planner_service.hpp"
#include "messages/cluster_subjects.hpp"
#include "messages/codec.hpp"
#include "transport/nats_server_process.hpp"

using namespace yard;
using namespace yard::cluster;
using namespace std::chrono_literals;
using msg::worker_role;

namespace {

template <class F> bool eventually(F f, std::chrono::milliseconds limit = 10s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

struct fake_worker {
  std::string dir, script, log;
  fake_worker() {
    dir = testing::TempDir() + "agent_test_" + std::to_string(::getpid()) + "_" +
          testing::UnitTest::GetInstance()->current_test_info()->name();
    ::mkdir(dir.c_str(), 0755);
    script = dir + "/worker.sh";
    log = dir + "/events.log";
    std::remove(log.c_str());
    std::ofstream out(script);
    // $1 = "worker"; records its args and, on SIGTERM, that it drained.
    // The trap is set before "start" is logged, so a test that saw "start"
    // knows SIGTERM will be handled.
    out << "#!/bin/sh\nexec 2>/dev/null\ntrap 'echo drained >> " << log << "; exit 0' TERM\necho \"start $*\" >> "
        << log << "\nwhile :; do sleep 0.02; done\n";
    out.close();
    ::chmod(script.c_str(), 0755);
  }
  ~fake_worker() {
    std::remove(script.c_str());
    std::remove(log.c_str());
    ::rmdir(dir.c_str());
  }
  int count(const std::string& prefix) const {
    std::ifstream in(log);
    std::string line;
    int n = 0;
    while (std::getline(in, line))
      if (line.rfind(prefix, 0) == 0) ++n;
    return n;
  }
};

node_agent_options agent_options(const fake_worker& w) {
  std::string text = R"([agent]
node = "n1"
namespace = "t"
nats = ["nats://127.0.0.1:1", "nats://127.0.0.1:2"]
[resources]
devices = ["cuda:1"]
[restart]
backoff_initial_ms = 10
shutdown_timeout_ms = 3000
[[workers]]
role = "prefill"
engine = "mock"
model = "m"
count = 2
max_count = 4
device = "cuda:1"
args = ["--token-delay-ms", "1"]
[[workers]]
role = "decode"
engine = "mock"
model = "m"
count = 1
min_count = 1
)";
  auto cfg = parse_agent_config(text, "test.toml");
  EXPECT_TRUE(cfg.ok()) << (cfg ? "" : cfg.err().message);
  node_agent_options o;
  o.config = *cfg;
  o.worker_binary = w.script;
  o.status_interval_ms = 100;
  return o;
}

msg::scale_request scale_req(worker_role role, std::optional<std::int32_t> delta,
                             std::optional<std::uint32_t> target = std::nullopt) {
  msg::scale_request r;
  r.role = role;
  r.delta = delta;
  r.target = target;
  return r;
}

}  // namespace

TEST(node_agent, worker_argv_and_env) {
  fake_worker w;
  auto o = agent_options(w);
  auto argv = worker_argv(o, o.config.workers[0], "n1-prefill-0");
  std::ostringstream joined;
  for (auto& a : argv) joined << a << ' ';
  EXPECT_EQ(joined.str(), w.script +
                              " worker --nats nats://127.0.0.1:1,nats://127.0.0.1:2 --namespace t --id n1-prefill-0 "
                              "--engine mock --role prefill --model m --drain-timeout-ms 2000 --token-delay-ms 1 ");
  // An openai group's upstream server becomes the worker's --upstream.
  auto ext = o.config.workers[0];
  ext.engine = "openai";
  ext.upstream = "http://10.0.0.5:8000";
  std::ostringstream ext_joined;
  for (auto& a : worker_argv(o, ext, "n1-prefill-1")) ext_joined << a << ' ';
  EXPECT_NE(ext_joined.str().find("--engine openai --role prefill --model m --upstream http://10.0.0.5:8000 "), std::string::npos)
      << ext_joined.str();
  auto env = worker_env(o.config, o.config.workers[0]);
  EXPECT_NE(std::find(env.begin(), env.end(), "CUDA_VISIBLE_DEVICES=1"), env.end());
  EXPECT_NE(std::find(env.begin(), env.end(), "YARD_NODE=n1"), env.end());
}

TEST(node_agent, starts_workers_and_scales_within_bounds) {
  fake_worker w;
  auto a = node_agent::start(agent_options(w), nullptr);
  ASSERT_TRUE(a.ok());
  node_agent& agent = **a;
  ASSERT_TRUE(eventually([&] { return agent.processes().live_pids().size() == 3; }));
  ASSERT_TRUE(eventually([&] { return w.count("start worker") == 3; }));

  auto up = agent.scale(scale_req(worker_role::prefill, 5));
  EXPECT_TRUE(up.ok) << up.message;
  EXPECT_EQ(up.running, 4u);
  EXPECT_NE(up.message.find("clamped to [0, 4]"), std::string::npos) << up.message;
  ASSERT_TRUE(eventually([&] { return agent.processes().live_pids().size() == 5; }));
  ASSERT_TRUE(eventually([&] { return w.count("start worker") == 5; }));

  auto down = agent.scale(scale_req(worker_role::prefill, std::nullopt, 1));
  EXPECT_TRUE(down.ok) << down.message;
  EXPECT_EQ(down.running, 1u);
  // The three removed workers were asked to drain (SIGTERM) and did.
  ASSERT_TRUE(eventually([&] { return agent.processes().live_pids().size() == 2; }));
  EXPECT_TRUE(eventually([&] { return w.count("drained") == 3; }));

  auto floor = agent.scale(scale_req(worker_role::decode, -3));
  EXPECT_TRUE(floor.ok);
  EXPECT_EQ(floor.running, 1u);  // min_count = 1

  auto none = agent.scale(scale_req(worker_role::both, 1));
  EXPECT_FALSE(none.ok);
  EXPECT_EQ(none.message, "node n1 has no [[workers]] entry for role 'both'");
  auto both = agent.scale(scale_req(worker_role::prefill, 1, 2));
  EXPECT_FALSE(both.ok);
  EXPECT_EQ(both.message, "exactly one of delta and target must be set");
  auto neither = agent.scale(scale_req(worker_role::prefill, std::nullopt));
  EXPECT_FALSE(neither.ok);

  auto st = agent.status();
  EXPECT_EQ(st.node, "n1");
  EXPECT_EQ(st.control_subject, "yard.t.agent.n1.control");
  ASSERT_EQ(st.roles.size(), 2u);
  EXPECT_EQ(st.roles[0].role, worker_role::prefill);
  EXPECT_EQ(st.roles[0].running, 1u);
  EXPECT_EQ(st.roles[0].max_count, 4u);
  EXPECT_EQ(st.roles[1].role, worker_role::decode);
  // Each child carries its group's role (the supervisor's label parsed back).
  std::size_t prefill_kids = 0, decode_kids = 0;
  for (const auto& c : st.children) {
    std::string prefix = "n1-" + std::string(msg::wire_name(c.role)) + "-";
    EXPECT_EQ(c.id.rfind(prefix, 0), 0u) << c.id;
    if (c.role == worker_role::prefill) ++prefill_kids;
    if (c.role == worker_role::decode) ++decode_kids;
  }
  EXPECT_EQ(prefill_kids + decode_kids, st.children.size());
  EXPECT_GE(prefill_kids, 1u);
  EXPECT_EQ(decode_kids, 1u);
}

TEST(node_agent, crashed_worker_is_restarted_and_shutdown_drains_all) {
  fake_worker w;
  auto a = node_agent::start(agent_options(w), nullptr);
  ASSERT_TRUE(a.ok());
  node_agent& agent = **a;
  ASSERT_TRUE(eventually([&] { return agent.processes().live_pids().size() == 3; }));
  ASSERT_TRUE(eventually([&] { return w.count("start worker") == 3; }));
  pid_t victim = agent.processes().live_pids()[0];
  ASSERT_EQ(::kill(victim, SIGKILL), 0);  // an engine crash
  ASSERT_TRUE(eventually([&] {
    auto p = agent.processes().live_pids();
    return p.size() == 3 && std::find(p.begin(), p.end(), victim) == p.end();
  }));
  std::uint32_t restarts = 0;
  for (const auto& c : agent.status().children) restarts += c.restarts;
  EXPECT_EQ(restarts, 1u);
  EXPECT_EQ(agent.scale(scale_req(worker_role::prefill, 0)).running, 2u);

  ASSERT_TRUE(eventually([&] { return w.count("start worker") == 4; }));  // 3 + the restart
  agent.shutdown();
  EXPECT_TRUE(agent.processes().live_pids().empty());
  EXPECT_EQ(w.count("drained"), 3);
  auto late = agent.scale(scale_req(worker_role::prefill, 1));
  EXPECT_FALSE(late.ok);
  EXPECT_NE(late.message.find("draining"), std::string::npos);
  EXPECT_TRUE(agent.status().draining);
}

class node_agent_nats : public testing::Test {
 protected:
  void SetUp() override {
    auto srv = transport::nats_server_process::start({});
    if (!srv) GTEST_SKIP() << "no nats-server: " << srv.err().describe();
    server_ = std::move(*srv);
    transport::nats_options o;
    o.servers = {server_->url()};
    auto nc = transport::nats_connection::connect(o);
    ASSERT_TRUE(nc.ok()) << nc.err().describe();
    nc_ = std::move(*nc);
  }
  std::unique_ptr<transport::nats_server_process> server_;
  std::unique_ptr<transport::nats_connection> nc_;
};

TEST_F(node_agent_nats, control_subject_and_status) {
  fake_worker w;
  auto o = agent_options(w);
  o.config.nats = {server_->url()};
  auto a = node_agent::start(o, nc_.get());
  ASSERT_TRUE(a.ok()) << a.err().describe();

  std::mutex mu;
  std::vector<msg::agent_status> seen;
  auto sub = nc_->subscribe(subjects::agent_status("t"), [&](transport::nats_message m) {
    auto s = msg::decode_auto<msg::agent_status>(m.data, m.content_type);
    std::lock_guard<std::mutex> lk(mu);
    if (s) seen.push_back(*s);
  });
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> lk(mu);
    return !seen.empty() && seen.back().roles.size() == 2 && seen.back().roles[0].running == 2;
  }));

  // JSON in, JSON out.
  auto rep = nc_->request(subjects::agent_control("t", "n1"), R"({"role":"prefill","delta":1,"request_id":"r1"})", 3000);
  ASSERT_TRUE(rep.ok()) << rep.err().describe();
  auto r = msg::decode_auto<msg::scale_reply>(rep->data, rep->content_type);
  ASSERT_TRUE(r.ok()) << r.err().message << " in " << rep->data;
  EXPECT_TRUE(r->ok) << r->message;
  EXPECT_EQ(r->request_id, "r1");
  EXPECT_EQ(r->running, 3u);

  // A malformed request gets a clear refusal, and the agent keeps serving.
  auto bad = nc_->request(subjects::agent_control("t", "n1"), R"({"delta":1})", 3000);
  ASSERT_TRUE(bad.ok());
  auto br = msg::decode_auto<msg::scale_reply>(bad->data, bad->content_type);
  ASSERT_TRUE(br.ok());
  EXPECT_FALSE(br->ok);
  EXPECT_NE(br->message.find("missing required field 'role'"), std::string::npos) << br->message;
  // A role that is not a worker role is refused at decode, naming the field
  // and the allowed values; nothing is started or stopped.
  auto typo =
      nc_->request(subjects::agent_control("t", "n1"), R"({"role":"prefil","delta":1,"request_id":"r2"})", 3000);
  ASSERT_TRUE(typo.ok()) << typo.err().describe();
  auto tr = msg::decode_auto<msg::scale_reply>(typo->data, typo->content_type);
  ASSERT_TRUE(tr.ok()) << tr.err().message << " in " << typo->data;
  EXPECT_FALSE(tr->ok);
  EXPECT_NE(tr->message.find("field 'role' must be one of both, prefill, decode (got 'prefil')"), std::string::npos)
      << tr->message;
  EXPECT_EQ(tr->node, "n1");
  EXPECT_EQ((*a)->status().roles[0].running, 3u);
  auto again = nc_->request(subjects::agent_control("t", "n1"), msg::encode(scale_req(worker_role::prefill, -1)), 3000);
  ASSERT_TRUE(again.ok());
  auto ar = msg::decode_auto<msg::scale_reply>(again->data);
  ASSERT_TRUE(ar.ok()) << ar.err().message;
  EXPECT_TRUE(ar->ok) << ar->message;
  EXPECT_EQ(ar->role, worker_role::prefill);
  EXPECT_EQ(ar->running, 2u);

  (*a)->shutdown();
  EXPECT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> lk(mu);
    return !seen.empty() && seen.back().draining;
  }));
}

TEST_F(node_agent_nats, planner_decisions_reach_the_agent) {
  fake_worker w;
  auto o = agent_options(w);
  o.config.nats = {server_->url()};
  auto a = node_agent::start(o, nc_.get());
  ASSERT_TRUE(a.ok());

  planner_service_options so;
  so.ns = "t";
  so.run_thread = false;
  so.planner.pools = default_pools(true);
  so.planner.pools[0].min_workers = 2;     // what the agent runs: no scale-down while warming up
  so.planner.pools[0].max_workers = 10;
  so.planner.pools[0].capacity_rps = 100;  // so only the missed SLO drives the decision
  so.planner.pools[1].capacity_rps = 100;
  so.planner.up_cooldown_ms = 0;           // warm-up ticks must not hold back the decision
  so.interval_ms = 1000;
  auto svc = planner_service::start(so, nc_.get());
  ASSERT_TRUE(svc.ok()) << svc.err().describe();
  // The planner learns the agent's pools from its status messages.
  std::uint64_t now = 0;  // virtual clock, one window per tick
  ASSERT_TRUE(eventually([&] {
    (*svc)->tick(now += 1000);
    auto obs = (*svc)->last_observation();
    return obs.workers.size() == 2;
  }));

  // A frontend reports TTFT far over the 1 s target.
  msg::latency_report rep;
  rep.source = "fe";
  rep.arrivals = 10;
  rep.ttft_ms = {4000, 4200, 3900, 5000};
  rep.itl_ms = {10, 12};
  ASSERT_TRUE(nc_->publish(subjects::latency_metrics("t"), msg::encode(rep)).ok());
  ASSERT_TRUE(nc_->flush().ok());
  std::vector<scale_decision> ds;
  ASSERT_TRUE(eventually([&] {
    ds = (*svc)->tick(now += 1000);
    return !ds.empty() || (*svc)->last_observation().ttft_p90_ms.has_value();
  }));
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].role, worker_role::prefill);
  EXPECT_EQ(ds[0].from, 2u);
  EXPECT_GT(ds[0].to, 2u);
  // The request was synchronous; the agent's max_count (4) caps what it runs.
  EXPECT_EQ((*a)->status().roles[0].running, std::min<std::uint32_t>(ds[0].to, 4u));
}

TEST(planner_service, percentile90_nearest_rank) {
  EXPECT_FALSE(percentile90({}).has_value());
  EXPECT_DOUBLE_EQ(*percentile90({5}), 5);
  EXPECT_DOUBLE_EQ(*percentile90({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}), 9);
  EXPECT_DOUBLE_EQ(*percentile90({10, 1, 9, 2, 8, 3, 7, 4, 6, 5, 11}), 10);
}
