// Sim-to-real: the same small trace through the simulator and through a live
// cluster of profile-mode mock workers on real NATS (time sped up), for two
// policies. The live cluster must reproduce the simulator's verdicts: which
// policy gets more prefix hits and which has the lower TTFT, with hit rates
// close to the simulated ones.
#include <atomic>
#include <map>
#include <mutex>

#include "backends/timing_model.hpp"
#include "messages/codec.hpp"
#include "messages/subjects.hpp"
#include "sim/simulator.hpp"
#include "sim/synthetic.hpp"
#include "tests/support/cluster_fixture.hpp"

using namespace yard;
namespace ts = yard::test_support;

namespace {

constexpr double speedup = 2.0;
constexpr int n_workers = 4;

sim::trace small_trace() {
  sim::synthetic_options o;
  o.sessions = 12;
  o.turns_per_session = 3;
  o.prefix_groups = 3;
  o.prefix_blocks = 2;
  o.turn_blocks = 1;
  o.output_tokens = 12;
  o.session_rate_per_s = 3.0;
  o.think_time_ms = 1200;
  o.seed = 5;
  return sim::generate_synthetic(o);
}

struct outcome {
  double hit_rate = 0;
  double ttft_p50_ms = 0;  // model time (wall × speedup for the live run)
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

outcome simulate(const sim::trace& t, const std::string& policy) {
  auto prepared = sim::prepare_trace(t, backends::default_profile().block_size);
  sim::sim_options o;
  o.workers = n_workers;
  o.policy = policy;
  o.profile = backends::default_profile();
  auto r = sim::run_simulation(prepared, o);
  EXPECT_TRUE(r.ok());
  return {r->hit_rate, r->ttft_ms.p50};
}

outcome run_live(const sim::trace& t, const std::string& policy) {
  auto nats = ts::start_nats();
  auto node = ts::start_cluster(nats->url(), {.workers = 0, .with_router = false, .with_frontend = false});
  cluster::engine_options eng;
  eng.token_delay_ms = 0;  // profile timing (default profile), as in the simulator
  eng.speedup = speedup;
  for (int i = 0; i < n_workers; ++i) {
    actors::worker_config wc;
    wc.id = "sw" + std::to_string(i);
    wc.heartbeat_ms = 50;
    EXPECT_TRUE(node->add_worker(eng, wc).ok());
  }
  actors::router_config rc;
  rc.policy = policy;
  EXPECT_TRUE(node->add_router(rc).ok());
  transport::nats_options no;
  no.servers = {nats->url()};
  auto client = std::move(*transport::nats_connection::connect(no));
  // Wait until the router has seen every worker (a probe lands on each eventually).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  struct live_req {
    std::chrono::steady_clock::time_point sent, first;
    bool got_first = false, done = false;
    std::uint32_t prompt = 0, cached = 0;
  };
  std::mutex mu;
  std::vector<live_req> reqs(t.requests.size());
  auto inbox = client->new_inbox();
  auto sub = client->subscribe(inbox + ".*", [&](transport::nats_message m) {
    auto c = msg::decode<msg::token_chunk>(m.data, msg::wire_format::msgpack);
    if (!c) return;
    auto idx = std::stoul(m.subject.substr(inbox.size() + 1));
    std::lock_guard<std::mutex> lock(mu);
    auto& r = reqs[idx];
    if (!c->token_ids.empty() && !r.got_first) {
      r.got_first = true;
      r.first = std::chrono::steady_clock::now();
    }
    if (c->finish_reason) {
      r.done = true;
      if (c->usage_info) {
        r.prompt = c->usage_info->prompt_tokens;
        r.cached = c->usage_info->cached_tokens;
      }
    }
  });
  client->flush();
  auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < t.requests.size(); ++i) {
    const auto& tr = t.requests[i];
    std::this_thread::sleep_until(start + std::chrono::microseconds(static_cast<std::int64_t>(tr.arrival_ms * 1000 / speedup)));
    msg::generate_request g;
    g.request_id = "s2r-" + std::to_string(i);
    g.token_ids = sim::expand_tokens(tr);
    g.max_tokens = tr.output_length;
    {
      std::lock_guard<std::mutex> lock(mu);
      reqs[i].sent = std::chrono::steady_clock::now();
    }
    client->publish(subjects::router_generate("default"), msg::encode(g), inbox + "." + std::to_string(i));
  }
  EXPECT_TRUE(ts::eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& r : reqs)
      if (!r.done) return false;
    return true;
  }, 60000));
  std::lock_guard<std::mutex> lock(mu);
  double prompt = 0, cached = 0;
  std::vector<double> ttft;
  for (auto& r : reqs) {
    prompt += r.prompt;
    cached += r.cached;
    if (r.got_first) ttft.push_back(std::chrono::duration<double, std::milli>(r.first - r.sent).count() * speedup);
  }
  return {prompt > 0 ? cached / prompt : 0, median(ttft)};
}

TEST(sim_to_real, live_cluster_agrees_with_the_simulator_on_policy_ordering) {
  auto t = small_trace();
  ASSERT_GT(t.requests.size(), 20u);
  auto sim_rr = simulate(t, "round_robin"), sim_ttft = simulate(t, "ttft");
  // Hit rates depend on routing and caching, not on timing noise: every live run must agree. The live TTFT is wall
  // clock on a shared machine: one stalled run (another test's burst on two cores) can invert a 30% gap, so a live
  // pair whose TTFT ordering disagrees is run again, and the test fails when three pairs in a row disagree.
  bool ttft_agrees = false;
  for (int attempt = 1; attempt <= 3 && !ttft_agrees; ++attempt) {
    auto live_rr = run_live(t, "round_robin"), live_ttft = run_live(t, "ttft");
    std::printf("sim_to_real (live pair %d): hit rate  sim rr=%.3f ttft=%.3f | live rr=%.3f ttft=%.3f\n", attempt,
                sim_rr.hit_rate, sim_ttft.hit_rate, live_rr.hit_rate, live_ttft.hit_rate);
    std::printf("sim_to_real (live pair %d): TTFT p50  sim rr=%.1f ttft=%.1f | live rr=%.1f ttft=%.1f (model ms)\n",
                attempt, sim_rr.ttft_p50_ms, sim_ttft.ttft_p50_ms, live_rr.ttft_p50_ms, live_ttft.ttft_p50_ms);
    EXPECT_EQ(sim_ttft.hit_rate > sim_rr.hit_rate, live_ttft.hit_rate > live_rr.hit_rate);
    EXPECT_NEAR(live_rr.hit_rate, sim_rr.hit_rate, 0.15);
    EXPECT_NEAR(live_ttft.hit_rate, sim_ttft.hit_rate, 0.15);
    ttft_agrees = (sim_ttft.ttft_p50_ms < sim_rr.ttft_p50_ms) == (live_ttft.ttft_p50_ms < live_rr.ttft_p50_ms);
  }
  EXPECT_TRUE(ttft_agrees) << "three live pairs in a row disagreed with the simulator on which policy has the lower TTFT p50";
}

}  // namespace
