// sim/simulator.cpp — see simulator.hpp.
//
// Event loop: the next event is the earlier of the next trace arrival and the
// earliest step completion (a step completion wins a tie, so the router sees a
// step's KV events before routing a request that arrives at the same instant).
// A worker's step is computed when it starts (engine.step()), its outputs and
// KV events are delivered when it ends (start + model time); the next step
// starts at that moment if the engine still has work.
#include "sim/simulator.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <cmath>
#include <queue>
#include <unordered_set>

#include "backends/mock/mock_engine.hpp"

namespace yard::sim {

prepared_trace prepare_trace(const trace& t, std::uint32_t block_size) {
  prepared_trace p;
  p.source = &t;
  p.block_size = block_size;
  p.hashes.resize(t.requests.size());
  std::unordered_set<kv::block_hash> seen;
  std::uint64_t prompt = 0, cached = 0;
  for (std::size_t i = 0; i < t.requests.size(); ++i) {
    auto toks = expand_tokens(t.requests[i]);
    p.hashes[i] = kv::hash_blocks(toks, block_size);
    // Ideal: one infinite cache shared by all workers; like the engine, the
    // last token is always computed.
    std::size_t usable = (toks.size() - 1) / block_size, hit = 0;
    while (hit < usable && seen.count(p.hashes[i][hit])) ++hit;
    for (auto h : p.hashes[i]) seen.insert(h);
    prompt += toks.size();
    cached += hit * block_size;
  }
  p.ideal_hit_rate = prompt ? double(cached) / double(prompt) : 0.0;
  return p;
}

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct worker_state {
  std::unique_ptr<backends::mock_engine> engine;
  backends::step_result pending;
  std::vector<msg::kv_event> pending_events;
  bool busy = false;
  double busy_ms = 0;
};

struct request_state {
  double arrival = 0;
  double first = -1;
  double last = 0;
  std::uint32_t worker = 0;
  std::uint32_t prompt = 0;
  std::uint32_t cached = 0;
  bool done = false;
};

struct step_event {
  double t;
  std::uint64_t seq;
  std::uint32_t worker;
  bool operator>(const step_event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

latency_summary summarize(std::vector<double>& v) {
  latency_summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[static_cast<std::size_t>(std::floor(q * double(v.size() - 1)))]; };
  s.p50 = at(0.50);
  s.p90 = at(0.90);
  s.p99 = at(0.99);
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / double(v.size());
  return s;
}

}  // namespace

result<sim_result> run_simulation(const prepared_trace& pt, const sim_options& opts, const progress_fn& progress) {
  if (!pt.source) return make_error(errc::bad_request, "no trace");
  if (opts.workers == 0) return make_error(errc::bad_request, "workers must be > 0");
  if (!(opts.rate_scale > 0)) return make_error(errc::bad_request, "rate scale must be > 0");
  if (pt.block_size != opts.profile.block_size)
    return make_error(errc::bad_request, "trace prepared for block size " + std::to_string(pt.block_size) + " but the profile uses " +
                                             std::to_string(opts.profile.block_size));
  const auto& reqs = pt.source->requests;
  // Worker slots: a fixed fleet, or every worker the autoscaler may bring up.
  const std::uint32_t slots = opts.autoscaler ? std::max(opts.workers, opts.max_workers) : opts.workers;
  std::unique_ptr<router_bridge> bridge;
  if (opts.router_factory) {
    bridge = opts.router_factory();
  } else {
    auto b = make_router_bridge(opts.policy, slots, opts.profile.block_size, opts.seed, opts.policy_cfg);
    if (!b) return b.err();
    bridge = std::move(b.value());
  }
  if (!bridge) return make_error(errc::internal, "no router");
  auto& router = *bridge;

  std::vector<worker_state> workers(slots);
  auto eo = backends::mock_options_from_profile(opts.profile);
  // Traces set every request's output length; real ones (Mooncake) have prompts past any profile's context.
  eo.max_context = 1u << 20;
  if (opts.tiers.enabled()) {
    eo.kv_block_bytes = 256;  // stand-in bytes (still verified); onboarding time uses tiers.modelled_block_bytes
    eo.tiers = opts.tiers;
    eo.tiers.disk_sync_writes = true;
  }
  for (std::uint32_t i = 0; i < slots; ++i) {
    auto wo = eo;
    if (!wo.tiers.disk_dir.empty()) wo.tiers.disk_dir += "/w" + std::to_string(i);
    auto e = backends::mock_engine::create(wo);
    if (!e) return e.err();
    workers[i].engine = std::move(e.value());
  }
  // Autoscaling state: slots [0, workers) serve first; later slots are fresh
  // workers brought up in order; removed ones are retired for good.
  std::vector<std::uint32_t> serving_stack;  // serving slots, most recent last
  for (std::uint32_t w = 0; w < opts.workers; ++w) serving_stack.push_back(w);
  for (std::uint32_t w = opts.workers; w < slots; ++w) router.set_serving(w, false);
  std::uint32_t next_fresh = opts.workers, starting = 0, cancelled_starts = 0;
  std::priority_queue<std::pair<double, std::uint32_t>, std::vector<std::pair<double, std::uint32_t>>, std::greater<>> activations;
  autoscale_window window;

  std::vector<request_state> rs(reqs.size());
  std::vector<double> ttft, itl, e2e, ttft_interactive, ttft_batch;
  ttft.reserve(reqs.size());
  // Each request's latency class: the trace's, or drawn per request (the same
  // draw whatever the policy or hints setting, so runs compare like for like).
  std::vector<msg::latency_class> class_of(reqs.size());
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (opts.interactive_fraction < 0) {
      class_of[i] = reqs[i].latency;
      continue;
    }
    const double u = double(splitmix64(opts.seed * 0x9e3779b97f4a7c15ULL + i) >> 11) * 0x1.0p-53;
    class_of[i] = u < opts.interactive_fraction ? msg::latency_class::interactive : msg::latency_class::batch;
  }
  e2e.reserve(reqs.size());
  sim_result out;
  out.policy = opts.policy;
  out.workers = opts.workers;
  out.rate_scale = opts.rate_scale;
  out.requests = reqs.size();
  out.ideal_hit_rate = pt.ideal_hit_rate;

  std::priority_queue<step_event, std::vector<step_event>, std::greater<>> steps;
  std::uint64_t seq = 0, finished = 0;
  double t_end = 0;
  auto arrival_of = [&](std::size_t i) { return reqs[i].arrival_ms / opts.rate_scale; };

  auto start_step = [&](std::uint32_t w, double now) {
    auto& ws = workers[w];
    ws.pending = ws.engine->step();
    ws.pending_events = ws.engine->drain_kv_events();
    double dt = std::max(ws.pending.model_time_ms, 1e-3);
    ws.busy = true;
    ws.busy_ms += dt;
    steps.push({now + dt, seq++, w});
  };

  auto finish_request = [&](std::size_t i, double now) {
    auto& r = rs[i];
    r.done = true;
    ++finished;
    t_end = std::max(t_end, now);
    if (progress && (finished % 256 == 0 || finished == reqs.size())) progress(finished, reqs.size());
  };

  auto end_step = [&](std::uint32_t w, double now) {
    auto& ws = workers[w];
    for (auto& o : ws.pending.outputs) {
      std::size_t i = 0;
      std::from_chars(o.request_id.data(), o.request_id.data() + o.request_id.size(), i);
      auto& r = rs[i];
      for (std::size_t k = 0; k < o.new_tokens.size(); ++k) {
        if (r.first < 0) {
          r.first = now;
          ttft.push_back(now - r.arrival);
          (class_of[i] == msg::latency_class::interactive ? ttft_interactive : ttft_batch).push_back(now - r.arrival);
          if (opts.autoscaler) window.ttft_ms.push_back(now - r.arrival);
          router.on_first_token(o.request_id, w, now);
        } else {
          itl.push_back(now - r.last);
          if (opts.autoscaler && window.itl_ms.size() < 100000) window.itl_ms.push_back(now - r.last);
        }
        r.last = now;
      }
      if (o.finish_reason) {
        r.cached = o.usage_info.cached_tokens;
        if (r.first >= 0) e2e.push_back(now - r.arrival);
        ++out.completed;
        router.on_finished(o.request_id, w, now);
        finish_request(i, now);
      }
    }
    ws.pending.outputs.clear();
    if (!ws.pending_events.empty()) router.on_kv_events(w, std::move(ws.pending_events), now);
    ws.pending_events.clear();
    ws.busy = false;
    router.on_load(w, ws.engine->load(), now);
    if (ws.engine->has_work()) start_step(w, now);
  };

  constexpr double never = std::numeric_limits<double>::infinity();
  double next_tick = opts.autoscaler && !reqs.empty() ? arrival_of(0) + opts.autoscale_period_ms : never;
  double window_start = reqs.empty() ? 0 : arrival_of(0);
  auto autoscale = [&](double now) {
    window.now_ms = now;
    window.window_ms = now - window_start;
    window.serving = static_cast<std::uint32_t>(serving_stack.size());
    std::vector<double> sorted = window.ttft_ms;
    std::sort(sorted.begin(), sorted.end());
    double p90 = sorted.empty() ? -1 : sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(0.9 * sorted.size()))];
    std::uint32_t want = std::clamp<std::uint32_t>(opts.autoscaler(window), 1, slots);
    std::uint32_t have = window.serving + starting - cancelled_starts;
    for (; have < want && next_fresh < slots; ++have, ++starting) activations.push({now + opts.startup_ms, next_fresh++});
    for (; have > want && starting > cancelled_starts; --have) ++cancelled_starts;  // not started yet: cancel those first
    while (have > want && !serving_stack.empty() && serving_stack.size() > 1) {
      router.set_serving(serving_stack.back(), false);  // drains: keeps stepping what it has
      serving_stack.pop_back();
      --have;
    }
    out.scale_series.push_back({now / 1000.0, static_cast<std::uint32_t>(serving_stack.size()), p90});
    window = autoscale_window{};
    window_start = now;
  };

  std::size_t next = 0;
  while (next < reqs.size() || !steps.empty()) {
    double t_step = steps.empty() ? never : steps.top().t;
    double t_arrival = next < reqs.size() ? arrival_of(next) : never;
    double t_activate = activations.empty() ? never : activations.top().first;
    if (t_activate <= std::min({t_step, t_arrival, next_tick})) {
      auto w = activations.top().second;
      activations.pop();
      --starting;
      if (cancelled_starts > 0) {
        --cancelled_starts;  // a start the autoscaler took back: the slot stays retired
        continue;
      }
      router.set_serving(w, true);
      serving_stack.push_back(w);
      continue;
    }
    if (next_tick <= std::min(t_step, t_arrival)) {
      autoscale(next_tick);
      next_tick += opts.autoscale_period_ms;
      continue;
    }
    bool take_step = t_step <= t_arrival;
    if (take_step) {
      auto ev = steps.top();
      steps.pop();
      end_step(ev.worker, ev.t);
      continue;
    }
    std::size_t i = next++;
    double now = arrival_of(i);
    const auto& tr = reqs[i];
    auto& r = rs[i];
    r.arrival = now;
    r.prompt = tr.input_length;
    window.arrivals++;
    std::string id = std::to_string(i);
    route_query q;
    q.request_id = id;
    q.hashes = pt.hashes[i];
    q.prompt_tokens = tr.input_length;
    q.max_tokens = tr.output_length;
    q.now_ms = now;
    if (opts.hints) q.session_id = tr.session_id;
    auto w = router.route(q);
    if (!w || w.value() >= slots) {
      ++out.rejected;
      finish_request(i, now);
      continue;
    }
    r.worker = w.value();
    backends::engine_request er;
    er.request_id = id;
    er.prompt = expand_tokens(tr);
    er.max_tokens = tr.output_length;
    er.sampling.seed = opts.seed + i;
    if (opts.hints) {
      er.priority = tr.priority;
      er.latency = class_of[i];
    }
    auto st = workers[r.worker].engine->add_request_prehashed(std::move(er), pt.hashes[i]);
    if (!st.ok()) {
      ++out.rejected;
      router.on_finished(id, r.worker, now);
      finish_request(i, now);
      continue;
    }
    if (!workers[r.worker].busy) start_step(r.worker, now);
  }

  // Metrics.
  out.ttft_ms = summarize(ttft);
  out.ttft_interactive_ms = summarize(ttft_interactive);
  out.ttft_batch_ms = summarize(ttft_batch);
  out.interactive_requests = static_cast<std::uint64_t>(
      std::count(class_of.begin(), class_of.end(), msg::latency_class::interactive));
  out.ttft_sorted_ms = ttft;  // sorted by summarize
  out.itl_ms = summarize(itl);
  out.e2e_ms = summarize(e2e);
  double t0 = reqs.empty() ? 0 : arrival_of(0);
  out.makespan_ms = std::max(0.0, t_end - t0);
  std::uint64_t out_tokens = 0, prompt = 0, cached = 0;
  for (std::size_t i = 0; i < rs.size(); ++i)
    if (rs[i].done && rs[i].first >= 0) {
      out_tokens += reqs[i].output_length;
      prompt += rs[i].prompt;
      cached += rs[i].cached;
    }
  if (out.makespan_ms > 0) {
    out.throughput_tok_s = double(out_tokens) / (out.makespan_ms / 1000.0);
    out.requests_per_s = double(out.completed) / (out.makespan_ms / 1000.0);
  }
  out.hit_rate = prompt ? double(cached) / double(prompt) : 0.0;
  out.tiers = opts.tiers.enabled();
  out.prompt_tokens = prompt;
  for (auto& w : workers)
    if (const auto* t = w.engine->tiering()) {
      out.g2_hit_tokens += t->stats().g2_hit_blocks * opts.profile.block_size;
      out.g3_hit_tokens += t->stats().g3_hit_blocks * opts.profile.block_size;
    }
  // Onboarded blocks show up in the engines' cached-token counts; the rest came from G1.
  out.g1_hit_tokens = cached > out.g2_hit_tokens + out.g3_hit_tokens ? cached - out.g2_hit_tokens - out.g3_hit_tokens : 0;
  double max_busy = 0, sum_busy = 0;
  for (auto& w : workers) {
    max_busy = std::max(max_busy, w.busy_ms);
    sum_busy += w.busy_ms;
    out.preempted += w.engine->sched().stats().preemptions;
  }
  out.imbalance = sum_busy > 0 ? max_busy / (sum_busy / double(workers.size())) : 0.0;
  // Hit rate over time, bucketed by arrival.
  std::uint32_t nb = std::max(1u, opts.hit_rate_buckets);
  double t_last = reqs.empty() ? 0 : arrival_of(reqs.size() - 1);
  double width = std::max(1e-9, (t_last - t0) / nb);
  std::vector<std::uint64_t> bp(nb, 0), bc(nb, 0);
  for (std::size_t i = 0; i < rs.size(); ++i) {
    if (!rs[i].done || rs[i].first < 0) continue;
    auto b = std::min<std::size_t>(nb - 1, static_cast<std::size_t>((rs[i].arrival - t0) / width));
    bp[b] += rs[i].prompt;
    bc[b] += rs[i].cached;
  }
  for (std::uint32_t b = 0; b < nb; ++b)
    if (bp[b]) out.hit_rate_series.emplace_back((t0 + (b + 0.5) * width) / 1000.0, double(bc[b]) / double(bp[b]));
  return out;
}

}  // namespace yard::sim
