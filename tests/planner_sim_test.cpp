// The SLO planner inside the simulator: the production cluster::slo_planner
// drives the simulated fleet (same code as `yard planner` against a live
// cluster). A trace with a 4x load step: the planner adds workers, TTFT p90
// comes back under the target within a bounded time, then it scales down.
#include <gtest/gtest.h>

#include <random>

#include "backends/timing_model.hpp"
#include "cluster/planner/slo_planner.hpp"
#include "sim/simulator.hpp"

using namespace yard;

namespace {

// Poisson arrivals: `base` req/s for 60 s, 4x for 90 s, `base` again for 150 s.
// Unique 2048-token prompts (no cache help), 32-token answers.
sim::trace step_trace(double base) {
  sim::trace t;
  std::mt19937_64 rng(11);
  double now = 0;
  auto rate_at = [&](double ms) { return (ms >= 60000 && ms < 150000) ? 4 * base : base; };
  std::uint64_t line = 0;
  while (now < 300000) {
    std::exponential_distribution<double> gap(rate_at(now) / 1000.0);
    now += gap(rng);
    sim::trace_request r;
    r.arrival_ms = now;
    r.input_length = 2048;
    r.output_length = 32;
    r.line = ++line;
    t.requests.push_back(r);
  }
  return t;
}

TEST(planner_sim, load_step_scales_up_meets_the_target_then_scales_down) {
  const double target_ms = 150;
  auto t = step_trace(10.0);
  auto profile = backends::default_profile();
  auto prepared = sim::prepare_trace(t, profile.block_size);

  cluster::planner_options po;
  po.ttft_p90_target_ms = target_ms;
  cluster::pool_options pool;
  pool.role = msg::worker_role::both;
  pool.watch_ttft = true;
  pool.min_workers = 2;
  pool.max_workers = 16;
  pool.capacity_rps = 6;
  po.pools = {pool};
  po.horizon_ms = 5000;
  po.up_cooldown_ms = 5000;
  po.down_cooldown_ms = 15000;
  cluster::slo_planner planner(po);

  sim::sim_options o;
  o.workers = 2;
  o.policy = "ttft";
  o.profile = profile;
  o.max_workers = 16;
  o.startup_ms = 2000;
  o.autoscale_period_ms = 1000;
  std::uint32_t target = o.workers;  // the planner's latest decision stands until the next one
  o.autoscaler = [&](const sim::autoscale_window& w) {
    cluster::planner_observation obs;
    obs.now_ms = static_cast<std::uint64_t>(w.now_ms);
    obs.window_s = std::max(1e-3, w.window_ms / 1000.0);
    obs.arrivals = w.arrivals;
    if (!w.ttft_ms.empty()) {
      auto v = w.ttft_ms;
      std::sort(v.begin(), v.end());
      obs.ttft_p90_ms = v[std::min(v.size() - 1, static_cast<std::size_t>(0.9 * v.size()))];
    }
    obs.workers = {{msg::worker_role::both, w.serving}};
    for (const auto& d : planner.step(obs)) target = d.to;
    return target;
  };
  auto r = sim::run_simulation(prepared, o);
  ASSERT_TRUE(r.ok()) << r.err().describe();
  const auto& s = r->scale_series;
  ASSERT_GT(s.size(), 250u);

  std::uint32_t before = 0, peak = 0, at_end = s.back().serving;
  double last_violation = -1;  // last window of the high phase over the target
  for (const auto& p : s) {
    if (p.t_s < 60) before = p.serving;  // serving when the step hits
    if (p.t_s >= 60 && p.t_s < 150) {
      peak = std::max(peak, p.serving);
      if (p.ttft_p90_ms > target_ms) last_violation = p.t_s;
    }
  }
  double recovered_at = last_violation < 0 ? 60 : last_violation;
  if (std::getenv("PLANNER_SIM_TRACE"))
    for (const auto& p : s) std::printf("t=%.0f serving=%u p90=%.0f\n", p.t_s, p.serving, p.ttft_p90_ms);
  std::printf("planner_sim: workers before=%u peak=%u end=%u; TTFT p90 under %.0f ms for good from t=%.0f s (step at 60 s)\n",
              before, peak, at_end, target_ms, recovered_at);
  EXPECT_GT(peak, before) << "the planner never added workers for the 4x step";
  EXPECT_LE(recovered_at, 60 + 40) << "TTFT p90 was still over the target 40 s after the step";
  EXPECT_LT(at_end, peak) << "the planner did not scale back down after the step";
}

}  // namespace
