// cluster/planner/slo_planner.cpp — forecast, capacity learning, decisions.
#include "cluster/planner/slo_planner.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace yard::cluster {

std::vector<pool_options> default_pools(bool disaggregated) {
  if (!disaggregated) {
    pool_options both;
    both.role = msg::worker_role::both;
    both.watch_ttft = both.watch_itl = true;
    return {both};
  }
  pool_options prefill, decode;
  prefill.role = msg::worker_role::prefill;
  prefill.watch_ttft = true;
  decode.role = msg::worker_role::decode;
  decode.watch_itl = true;
  decode.capacity_rps = 4.0;
  return {prefill, decode};
}

slo_planner::slo_planner(planner_options opts) : opts_(std::move(opts)) {
  if (opts_.pools.empty()) opts_.pools = default_pools(true);
  for (const auto& p : opts_.pools) {
    pool_state s;
    s.opts = p;
    s.opts.max_workers = std::max(p.max_workers, p.min_workers);
    s.capacity = p.capacity_rps > 0 ? p.capacity_rps : 1.0;
    pools_.push_back(s);
  }
}

double slo_planner::capacity(msg::worker_role role) const {
  for (const auto& p : pools_)
    if (p.opts.role == role) return p.capacity;
  return 0;
}

void slo_planner::forecast(const planner_observation& obs) {
  double dt = obs.window_s > 0 ? obs.window_s : 1.0;
  rate_ = std::max(0.0, obs.arrivals) / dt;
  if (!have_level_) {
    level_ = rate_;
    trend_ = 0;
    have_level_ = true;
  } else {
    double prev = level_;
    level_ = opts_.level_alpha * rate_ + (1 - opts_.level_alpha) * (level_ + trend_ * dt);
    trend_ = opts_.trend_beta * (level_ - prev) / dt + (1 - opts_.trend_beta) * trend_;
  }
  predicted_ = std::max(0.0, level_ + trend_ * (static_cast<double>(opts_.horizon_ms) / 1000.0));
}

bool slo_planner::steady_load() const {
  double drift = std::abs(trend_) * static_cast<double>(opts_.horizon_ms) / 1000.0;
  return drift <= 0.1 * level_ && std::abs(rate_ - level_) <= 0.2 * level_;
}

std::vector<scale_decision> slo_planner::step(const planner_observation& obs) {
  // A clock that goes backwards (a restarted source) must not freeze cool-downs.
  if (last_now_ms_ && obs.now_ms < *last_now_ms_)
    for (auto& p : pools_) p.last_change_ms.reset();
  last_now_ms_ = obs.now_ms;
  forecast(obs);
  std::vector<scale_decision> out;
  for (auto& p : pools_) {
    std::uint32_t current = 0;
    for (const auto& [role, n] : obs.workers)
      if (role == p.opts.role) current += n;
    if (auto d = decide(p, current, obs)) out.push_back(std::move(*d));
  }
  return out;
}

std::optional<scale_decision> slo_planner::decide(pool_state& p, std::uint32_t current,
                                                  const planner_observation& obs) {
  const auto& o = p.opts;
  auto over = [](const std::optional<double>& v, double limit) { return v && *v > limit; };
  auto under = [](const std::optional<double>& v, double limit) { return !v || *v < limit; };
  bool violated = (o.watch_ttft && over(obs.ttft_p90_ms, opts_.ttft_p90_target_ms)) ||
                  (o.watch_itl && over(obs.itl_p90_ms, opts_.itl_p90_target_ms));
  bool comfortable = (!o.watch_ttft || under(obs.ttft_p90_ms, opts_.down_ratio * opts_.ttft_p90_target_ms)) &&
                     (!o.watch_itl || under(obs.itl_p90_ms, opts_.down_ratio * opts_.itl_p90_target_ms));
  std::uint64_t since = p.last_change_ms ? obs.now_ms - *p.last_change_ms : std::numeric_limits<std::uint64_t>::max();
  // Latency reflects the current pool size only once the last change settled.
  bool settled = since >= opts_.up_cooldown_ms;

  double per_worker = current > 0 ? rate_ / current : 0;
  if (settled && per_worker > 0) {
    if (violated)
      p.capacity = std::min(p.capacity, per_worker * 0.9);
    else if (comfortable && per_worker > p.capacity && steady_load())
      // Met the SLO with room to spare at this load, so a worker handles more
      // than we thought. Raised slowly and only on a steady load: latency
      // lags arrivals, and a fresh surge must not read as spare capacity.
      p.capacity = std::min(per_worker, p.capacity * 1.1);
  }

  double load = std::max(predicted_, level_) * opts_.headroom;
  auto need = static_cast<std::uint32_t>(std::ceil(load / p.capacity - 1e-9));
  need = std::clamp(need, o.min_workers, o.max_workers);

  std::uint32_t target = current;
  std::string why;
  if (current < o.min_workers) {
    target = o.min_workers;
    why = "below min_workers";
  } else if (current > o.max_workers) {
    target = o.max_workers;
    why = "above max_workers";
  } else if (violated) {
    target = std::max(need, current + 1);
    why = "SLO missed";
  } else if (need > current) {
    target = need;
    why = "predicted load";
  } else if (need < current && comfortable) {
    target = std::max(need, current - (current - need + 1) / 2);  // halfway: no cliff
    why = "load fell";
  }
  target = std::clamp(target, o.min_workers, o.max_workers);
  if (target > current + opts_.max_step_up && current >= o.min_workers) target = current + opts_.max_step_up;
  if (target == current) return std::nullopt;
  bool bounds_fix = current < o.min_workers || current > o.max_workers;
  if (!bounds_fix) {
    if (target > current && since < opts_.up_cooldown_ms) return std::nullopt;
    if (target < current && since < opts_.down_cooldown_ms) return std::nullopt;
  }
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s: rate %.2f/s, predicted %.2f/s, capacity %.2f/s/worker, ttft_p90 %s, itl_p90 %s",
                why.c_str(), rate_, predicted_, p.capacity,
                obs.ttft_p90_ms ? std::to_string(static_cast<int>(*obs.ttft_p90_ms)).c_str() : "-",
                obs.itl_p90_ms ? std::to_string(static_cast<int>(*obs.itl_p90_ms)).c_str() : "-");
  p.last_change_ms = obs.now_ms;
  p.last_target = target;
  return scale_decision{o.role, current, target, buf};
}

}  // namespace yard::cluster
