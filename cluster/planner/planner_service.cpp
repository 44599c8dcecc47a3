// cluster/planner/planner_service.cpp — collecting windows and sending scale requests.
#include "cluster/planner/planner_service.hpp"

#include <limits>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "actors/worker_registry.hpp"
#include "common/log.hpp"
#include "messages/cluster_subjects.hpp"
#include "messages/codec.hpp"

namespace yard::cluster {
namespace {

std::uint64_t mono_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace

std::optional<double> percentile90(std::vector<float> samples) {
  if (samples.empty()) return std::nullopt;
  std::sort(samples.begin(), samples.end());
  auto rank = static_cast<std::size_t>(std::ceil(0.9 * static_cast<double>(samples.size())));
  return samples[std::max<std::size_t>(rank, 1) - 1];
}

planner_service::planner_service(planner_service_options opts) : opts_(std::move(opts)), planner_(opts_.planner) {}

result<std::unique_ptr<planner_service>> planner_service::start(planner_service_options opts,
                                                                 transport::nats_connection* nc) {
  std::unique_ptr<planner_service> s(new planner_service(std::move(opts)));
  s->nc_ = nc;
  if (nc) {
    auto* raw = s.get();
    const std::string& ns = s->opts_.ns;
    struct want {
      std::string subject;
      void (planner_service::*fn)(const transport::nats_message&);
    };
    for (const want& w : {want{subjects::latency_metrics(ns), &planner_service::on_latency},
                          want{subjects::heartbeat_all(ns), &planner_service::on_heartbeat},
                          want{subjects::agent_status(ns), &planner_service::on_agent}}) {
      auto sub = nc->subscribe(w.subject, [raw, fn = w.fn](transport::nats_message m) { (raw->*fn)(m); });
      if (!sub) return error(sub.err().code, "planner: cannot subscribe to " + w.subject + ": " + sub.err().message);
      s->subs_.push_back(std::move(*sub));
    }
  }
  if (s->opts_.run_thread) s->thread_ = std::thread([raw = s.get()] { raw->loop(); });
  return s;
}

planner_service::~planner_service() {
  stop_ = true;
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  subs_.clear();
}

void planner_service::on_latency(const transport::nats_message& m) {
  auto r = msg::decode_auto<msg::latency_report>(m.data, m.content_type);
  if (!r) {
    component_logger("planner")->warn("planner: dropped a bad latency_report: {}", r.err().message);
    return;
  }
  std::lock_guard<std::mutex> lk(mu_);
  ttft_.insert(ttft_.end(), r->ttft_ms.begin(), r->ttft_ms.end());
  itl_.insert(itl_.end(), r->itl_ms.begin(), r->itl_ms.end());
  arrivals_ += r->arrivals;
}

void planner_service::on_heartbeat(const transport::nats_message& m) {
  auto r = msg::decode_auto<msg::heartbeat>(m.data, m.content_type);
  if (!r || r->component != msg::component_kind::worker) return;
  if (r->instance_id != subjects::last_token(m.subject)) return;  // a heartbeat speaks only for its own subject
  std::lock_guard<std::mutex> lk(mu_);
  const actors::registry_limits lim;  // the same bounds the routers and frontends apply
  if (workers_.size() >= lim.max_workers && !workers_.count(r->instance_id)) return;  // bounded against invented ids
  std::uint32_t lease = std::clamp(r->lease_ms, lim.min_lease_ms, lim.max_lease_ms);
  workers_[r->instance_id] = worker_seen{r->role, mono_ms(), lease, r->draining};
}

void planner_service::on_agent(const transport::nats_message& m) {
  auto r = msg::decode_auto<msg::agent_status>(m.data, m.content_type);
  if (!r) {
    component_logger("planner")->warn("planner: dropped a bad agent_status: {}", r.err().message);
    return;
  }
  std::string node = r->node;  // before the move below
  std::lock_guard<std::mutex> lk(mu_);
  agents_[node] = agent_seen{std::move(*r), mono_ms()};
}

std::vector<scale_decision> planner_service::tick(std::uint64_t now_ms) {
  planner_observation obs;
  {
    std::lock_guard<std::mutex> lk(mu_);
    obs.now_ms = now_ms;
    // The first window (or one after a clock jump) counts as one interval.
    obs.window_s = window_start_ms_ == 0 || now_ms <= window_start_ms_
                       ? opts_.interval_ms / 1000.0
                       : static_cast<double>(now_ms - window_start_ms_) / 1000.0;
    obs.arrivals = arrivals_;
    obs.ttft_p90_ms = percentile90(std::move(ttft_));
    obs.itl_p90_ms = percentile90(std::move(itl_));
    ttft_.clear();
    itl_.clear();
    arrivals_ = 0;
    window_start_ms_ = now_ms;
    // Worker counts: what live agents run (includes workers still starting,
    // so an order is not placed twice); heartbeats when no agent reports.
    std::map<msg::worker_role, std::uint32_t> per_role;
    bool any_agent = false;
    for (const auto& [node, a] : agents_) {
      if (now_ms - std::min(now_ms, a.seen_ms) > opts_.agent_timeout_ms || a.status.draining) continue;
      any_agent = true;
      for (const auto& r : a.status.roles) per_role[r.role] += r.running;
    }
    if (!any_agent)
      for (const auto& [id, w] : workers_)
        if (!w.draining && now_ms - std::min(now_ms, w.seen_ms) <= w.lease_ms) per_role[w.role] += 1;
    for (const auto& [role, n] : per_role) obs.workers.emplace_back(role, n);
    last_obs_ = obs;
  }
  auto decisions = planner_.step(obs);
  windows_++;
  for (const auto& d : decisions) {
    decisions_.add({std::string(msg::wire_name(d.role)), d.delta() > 0 ? "up" : "down"});
    {
      std::lock_guard<std::mutex> lk(mu_);
      targets_[d.role] = d.to;
    }
    apply(d, now_ms);
  }
  return decisions;
}

void planner_service::render_metrics(prom::exposition& out) const {
  planner_observation obs;
  std::map<msg::worker_role, std::uint32_t> targets;
  {
    std::lock_guard<std::mutex> lk(mu_);
    obs = last_obs_;
    targets = targets_;
  }
  std::vector<std::vector<std::string>> always;
  for (const auto& pool : planner_.options().pools)
    for (const char* dir : {"up", "down"}) always.push_back({std::string(msg::wire_name(pool.role)), dir});
  decisions_.render(out, "yard_planner_decisions_total", "Scale decisions, by role and direction.", {}, always);
  out.counter("yard_planner_windows_total", "Observation windows planned.", {}, double(windows_.load()));
  // NaN: the last window had no sample.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  out.gauge("yard_planner_observed_ttft_p90_seconds", "TTFT p90 of the last window (NaN: no sample).", {},
            obs.ttft_p90_ms ? *obs.ttft_p90_ms / 1000.0 : nan);
  out.gauge("yard_planner_observed_itl_p90_seconds", "Inter-token latency p90 of the last window (NaN: no sample).", {},
            obs.itl_p90_ms ? *obs.itl_p90_ms / 1000.0 : nan);
  out.gauge("yard_planner_arrival_rate", "Requests per second in the last window.", {},
            obs.window_s > 0 ? obs.arrivals / obs.window_s : 0.0);
  out.family("yard_planner_workers", "gauge", "Workers serving per role in the last window.");
  for (const auto& [role, n] : obs.workers)
    out.sample("yard_planner_workers", {{"role", std::string(msg::wire_name(role))}}, n);
  out.family("yard_planner_target_workers", "gauge", "Workers per role the last decision asked for.");
  for (const auto& [role, n] : targets)
    out.sample("yard_planner_target_workers", {{"role", std::string(msg::wire_name(role))}}, n);
}

planner_observation planner_service::last_observation() const {
  std::lock_guard<std::mutex> lk(mu_);
  return last_obs_;
}

void planner_service::apply(const scale_decision& d, std::uint64_t now_ms) {
  auto log = component_logger("planner");
  const std::string role(msg::wire_name(d.role));
  log->info("planner: {} {} -> {} ({})", role, d.from, d.to, d.reason);
  if (opts_.dry_run || !nc_) return;
  // Spread the change over live agents: (subject, running, min, max) per agent.
  struct slot {
    std::string node, subject;
    std::uint32_t running, min, max;
    std::int32_t delta = 0;
  };
  std::vector<slot> slots;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& [node, a] : agents_) {
      if (now_ms - std::min(now_ms, a.seen_ms) > opts_.agent_timeout_ms || a.status.draining) continue;
      for (const auto& r : a.status.roles)
        if (r.role == d.role) slots.push_back({node, a.status.control_subject, r.running, r.min_count, r.max_count});
    }
  }
  if (slots.empty()) {
    log->warn("planner: no live agent runs role {}; cannot apply {} -> {}", role, d.from, d.to);
    return;
  }
  // The decision's `from` is the last window's view, which may be older than the agents' latest status (an agent
  // that reported after the window was read, a scale still in flight). Sending to - from on top of what agents run
  // now would overshoot, so the change is what brings the agents' current count to `to`, in the decision's
  // direction only.
  std::int64_t running = 0;
  for (const auto& s : slots) running += s.running;
  std::int64_t want = static_cast<std::int64_t>(d.to) - running;
  if ((d.delta() > 0 && want < 0) || (d.delta() < 0 && want > 0)) want = 0;
  auto left = static_cast<std::int32_t>(want);
  if (left == 0) {
    log->info("planner: agents already run {} {} workers: nothing to send for {} -> {}", running, role, d.from, d.to);
    return;
  }
  while (left != 0) {
    slot* best = nullptr;
    for (auto& s : slots) {
      std::int64_t now_n = static_cast<std::int64_t>(s.running) + s.delta;
      if (left > 0 && now_n < s.max && (!best || now_n < static_cast<std::int64_t>(best->running) + best->delta)) best = &s;
      if (left < 0 && now_n > s.min && (!best || now_n > static_cast<std::int64_t>(best->running) + best->delta)) best = &s;
    }
    if (!best) {
      log->warn("planner: agents' bounds leave {} of {} {} workers unplaced", std::abs(left), role,
                left > 0 ? "added" : "removed");
      break;
    }
    best->delta += left > 0 ? 1 : -1;
    left += left > 0 ? -1 : 1;
  }
  for (const auto& s : slots) {
    if (s.delta == 0) continue;
    msg::scale_request req;
    req.request_id = "plan-" + std::to_string(now_ms) + "-" + s.node + "-" + role;
    req.role = d.role;
    req.delta = s.delta;
    req.reason = d.reason;
    auto rep = nc_->request(s.subject, msg::encode(req), static_cast<int>(opts_.request_timeout_ms));
    if (!rep) {
      log->warn("planner: scale_request to {} failed: {}", s.node, rep.err().describe());
      continue;
    }
    auto r = msg::decode_auto<msg::scale_reply>(rep->data, rep->content_type);
    if (!r)
      log->warn("planner: bad scale_reply from {}: {}", s.node, r.err().message);
    else if (!r->ok)
      log->warn("planner: agent {} refused {} {:+d}: {}", s.node, role, s.delta, r->message);
    else
      log->info("planner: agent {}: {}", s.node, r->message);
  }
}

void planner_service::loop() {
  std::unique_lock<std::mutex> lk(wake_mu_);
  while (!stop_) {
    wake_.wait_for(lk, std::chrono::milliseconds(opts_.interval_ms), [&] { return stop_.load(); });
    if (stop_) break;
    lk.unlock();
    tick(mono_ms());
    lk.lock();
  }
}

}  // namespace yard::cluster
