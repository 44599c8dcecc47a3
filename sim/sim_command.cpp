// sim/sim_command.cpp — `yard sim`: replay a trace through N simulated workers for one or every policy.
//
// Owns: flag parsing, running the (policy × sweep point) grid on --jobs threads
// (each run is independent and deterministic; results are printed in grid
// order, so thread timing never changes the output), the stderr progress bar,
// and writing the table, CSV and plot.
// Must not touch: simulation internals (simulator.hpp).
// Thread-safety: the runs share only the read-only prepared traces.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_set>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "common/log.hpp"
#include "kv/policy_flags.hpp"
#include "sim/report.hpp"
#include "sim/simulator.hpp"
#include "sim/synthetic.hpp"
#include "sim/trace.hpp"

namespace yard::cmd {

namespace {

struct progress_bar {
  bool enabled = false;
  std::uint64_t total = 0;
  std::atomic<std::uint64_t> done{0};
  std::mutex mu;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now(), last{};
  void add(std::uint64_t n) {
    auto d = done += n;
    if (!enabled) return;
    std::lock_guard<std::mutex> lk(mu);
    auto now = std::chrono::steady_clock::now();
    if (d < total && now - last < std::chrono::milliseconds(200)) return;
    last = now;
    double f = total ? double(d) / double(total) : 1.0;
    int w = 40, fill = static_cast<int>(f * w);
    double el = std::chrono::duration<double>(now - start).count();
    std::fprintf(stderr, "\r[%s%s] %3.0f%% %llu/%llu requests  %.1fs", std::string(fill, '#').c_str(),
                 std::string(w - fill, ' ').c_str(), f * 100, (unsigned long long)d, (unsigned long long)total, el);
    if (d >= total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }
};

std::vector<double> parse_list(const std::string& s) {
  std::vector<double> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      v.push_back(std::stod(item));
    } catch (...) {
      return {};
    }
  }
  return v;
}

}  // namespace

int run_sim(int argc, char** argv) {
  CLI::App app{"Deterministic discrete-event simulation of a mock-worker fleet behind the real router policies"};
  std::string trace_path, policy = "all", csv_path, plot_path, profile_path, sweep;
  std::uint32_t workers = 16, block_size = 0, num_blocks = 0, jobs = 0;
  std::uint64_t limit = 0, seed = 1;
  double rate_scale = 1.0;
  bool reject_bad = false, no_progress = false, progress = false;
  sim::synthetic_options syn;
  bool synthetic = false;
  // KV tiers (issue 6): each policy runs with tiers off and on.
  bool kv_tiers = false;
  double g1_frac = 0, host_frac = 0.2, disk_frac = 1.0;
  std::string kv_dir;
  backends::kv_tier_options tier_opts;
  std::size_t bytes_per_token = 131072;
  app.add_option("--trace", trace_path, "Mooncake JSONL trace (timestamp ms, input_length, output_length, hash_ids)");
  app.add_flag("--synthetic", synthetic, "use the built-in synthetic generator instead of --trace");
  app.add_option("--syn-sessions", syn.sessions, "synthetic: conversations");
  app.add_option("--syn-turns", syn.turns_per_session, "synthetic: turns per conversation");
  app.add_option("--syn-groups", syn.prefix_groups, "synthetic: shared-prefix groups");
  app.add_option("--syn-rate", syn.session_rate_per_s, "synthetic: conversation starts per second");
  app.add_option("--workers", workers, "simulated workers")->check(CLI::Range(1u, 1u << 20));
  app.add_option("--policy", policy, "random|round_robin|least_loaded|approx|dynamo|ttft|all (comma list allowed)");
  app.add_option("--limit", limit, "use only the first N requests");
  app.add_option("--rate-scale", rate_scale, "divide trace timestamps by X (X>1 = more load)")->check(CLI::Range(1e-6, 1e6));
  app.add_option("--csv", csv_path, "write one CSV row per policy (and sweep point)");
  app.add_option("--plot", plot_path, "write a PNG: TTFT CDF per policy and hit rate over time");
  app.add_option("--seed", seed, "seed for routing randomness and sampling");
  kv::policy_config policy_cfg;
  kv::add_router_policy_flags(app, policy_cfg);
  app.add_option("--block-size", block_size, "KV block size in tokens (default: profile, 64)");
  app.add_option("--num-blocks", num_blocks, "KV cache blocks per worker (default: profile, 16384)");
  app.add_option("--profile", profile_path, "engine profile JSON (default: built-in = profiles/default.json)");
  app.add_flag("--reject-bad-lines", reject_bad, "fail on the first bad trace line instead of skipping it");
  app.add_option("--sweep", sweep, "rate=1,2,4 or workers=8,16,32: run every policy at each point");
  app.add_option("--jobs", jobs, "parallel simulation runs (default: hardware threads)");
  app.add_flag("--progress", progress, "force the progress bar (default: when stderr is a terminal)");
  app.add_flag("--no-progress", no_progress, "no progress bar");
  app.add_flag("--kv-tiers", kv_tiers, "run every policy with KV tiers off and on (G2 host, G3 disk); prints the tier hit mix");
  app.add_option("--g1-frac", g1_frac,
                 "G1 per worker = this fraction of the trace's distinct blocks / workers (default: --num-blocks)");
  app.add_option("--kv-host-frac", host_frac, "with --kv-tiers: G2 per worker, same units as --g1-frac (default 0.2)");
  app.add_option("--kv-disk-frac", disk_frac, "with --kv-tiers: G3 per worker, same units (default 1.0)");
  app.add_option("--kv-dir", kv_dir, "with --kv-tiers: G3 base directory (default a temp dir, removed at the end)");
  app.add_option("--kv-bytes-per-token", bytes_per_token,
                 "modelled KV bytes per token for onboarding time (default 131072: Llama-3-8B fp16)");
  app.add_option("--kv-g2-gbps", tier_opts.g2_gbps, "modelled G2->G1 bandwidth GB/s (default 25)");
  app.add_option("--kv-g3-gbps", tier_opts.g3_gbps, "modelled G3->G1 bandwidth GB/s (default 8)");
  double interactive_fraction = -1;
  bool hints_ab = false;
  app.add_option("--interactive-fraction", interactive_fraction,
                 "make each request interactive with this probability, the rest batch (default: the trace's classes)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--hints-ab", hints_ab,
               "run every policy with agent hints off and on (latency class, priority, session); prints TTFT per class");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto log = component_logger("sim");
  // Output paths are opened now (an unwritable one failed only after the whole run). The file is then written at
  // the end; an empty one stays if the run fails.
  for (const auto* out : {&csv_path, &plot_path}) {
    if (out->empty()) continue;
    std::ofstream probe(*out, std::ios::app);
    if (!probe) {
      std::cerr << "yard sim: cannot write " << *out << "\n";
      return 2;
    }
  }

  // Trace.
  sim::trace tr;
  if (synthetic) {
    syn.seed = seed;
    tr = sim::generate_synthetic(syn);
    if (limit && tr.requests.size() > limit) tr.requests.resize(limit);
  } else {
    if (trace_path.empty()) {
      std::cerr << "yard sim: --trace FILE or --synthetic is required\n";
      return 2;
    }
    sim::trace_load_options lo;
    lo.reject_bad_lines = reject_bad;
    lo.limit = limit;
    auto t = sim::load_trace(trace_path, lo);
    if (!t) {
      std::cerr << "yard sim: " << t.err().describe() << "\n";
      return 1;
    }
    tr = std::move(t.value());
    if (!tr.issues.empty()) std::cerr << "yard sim: skipped " << tr.issues.size() << " bad trace line(s) (first: line " << tr.issues[0].line << ": " << tr.issues[0].reason << ")\n";
  }
  if (tr.requests.empty()) {
    std::cerr << "yard sim: the trace has no usable requests\n";
    return 1;
  }

  // Profile.
  backends::engine_profile prof = backends::default_profile();
  if (!profile_path.empty()) {
    auto p = backends::load_profile(profile_path);
    if (!p) {
      std::cerr << "yard sim: " << p.err().describe() << "\n";
      return 1;
    }
    prof = p.value();
  }
  if (block_size) prof.block_size = block_size;
  if (num_blocks) prof.num_blocks = num_blocks;

  // Policies and sweep grid.
  std::vector<std::string> policies;
  if (policy == "all") policies = sim::policy_names();
  else {
    std::stringstream ss(policy);
    std::string p;
    while (std::getline(ss, p, ',')) policies.push_back(p);
  }
  std::vector<std::pair<double, std::uint32_t>> points{{rate_scale, workers}};  // (rate_scale, workers)
  if (!sweep.empty()) {
    auto eq = sweep.find('=');
    auto vals = eq == std::string::npos ? std::vector<double>{} : parse_list(sweep.substr(eq + 1));
    std::string what = eq == std::string::npos ? sweep : sweep.substr(0, eq);
    if (vals.empty() || (what != "rate" && what != "workers")) {
      std::cerr << "yard sim: --sweep wants rate=X,Y,... or workers=N,M,...\n";
      return 2;
    }
    points.clear();
    for (double v : vals) {
      if (!(v > 0) || (what == "workers" && (v > (1u << 20) || v != static_cast<double>(static_cast<std::uint32_t>(v))))) {
        std::cerr << "yard sim: sweep values must be positive" << (what == "workers" ? " whole numbers up to 1048576 (as --workers)" : "") << "\n";
        return 2;
      }
      if (what == "rate") points.push_back({v, workers});
      else points.push_back({rate_scale, static_cast<std::uint32_t>(v)});
    }
  }
  auto prepared = sim::prepare_trace(tr, prof.block_size);
  std::size_t working_set = 0;  // distinct blocks of the trace
  if (g1_frac > 0 || kv_tiers) {
    std::unordered_set<kv::block_hash> seen;
    for (const auto& h : prepared.hashes) seen.insert(h.begin(), h.end());
    working_set = seen.size();
  }
  auto per_worker = [&](double frac, std::uint32_t w) {
    return static_cast<std::size_t>(frac * double(working_set) / double(std::max(1u, w)));
  };
  if (g1_frac > 0) prof.num_blocks = static_cast<std::uint32_t>(std::max<std::size_t>(16, per_worker(g1_frac, workers)));
  std::filesystem::path tier_base;
  bool own_tier_base = false;
  if (kv_tiers) {
    tier_base = kv_dir.empty() ? std::filesystem::temp_directory_path() / ("yard_sim_tiers_" + std::to_string(::getpid()))
                               : std::filesystem::path(kv_dir);
    own_tier_base = kv_dir.empty();
    tier_opts.modelled_block_bytes = bytes_per_token * prof.block_size;
  }
  struct dir_cleanup {
    std::filesystem::path p;
    bool own;
    ~dir_cleanup() {
      std::error_code ec;
      if (own) std::filesystem::remove_all(p, ec);
    }
  } tier_cleanup{tier_base, own_tier_base};

  struct task {
    std::string policy;
    double rate;
    std::uint32_t workers;
    bool tiers = false;
    bool hints = true;
  };
  std::vector<task> tasks;
  for (auto& pt : points)
    for (auto& p : policies) {
      if (hints_ab) tasks.push_back({p, pt.first, pt.second, false, false});
      tasks.push_back({p, pt.first, pt.second});
      if (kv_tiers) tasks.push_back({p, pt.first, pt.second, true});
    }
  const std::size_t per = policies.size() * (1 + (kv_tiers ? 1 : 0) + (hints_ab ? 1 : 0));  // rows per sweep point
  std::vector<std::optional<result<sim::sim_result>>> results(tasks.size());
  progress_bar bar;
  bar.enabled = !no_progress && (progress || isatty(2));
  bar.total = tasks.size() * tr.requests.size();
  if (!jobs) jobs = std::max(1u, std::thread::hardware_concurrency());
  jobs = std::min<std::uint32_t>(jobs, static_cast<std::uint32_t>(tasks.size()));
  std::atomic<std::size_t> next{0};
  auto t0 = std::chrono::steady_clock::now();
  auto worker_fn = [&] {
    for (std::size_t i; (i = next++) < tasks.size();) {
      sim::sim_options so;
      so.policy = tasks[i].policy;
      so.policy_cfg = policy_cfg;
      so.workers = tasks[i].workers;
      so.rate_scale = tasks[i].rate;
      so.profile = prof;
      so.seed = seed;
      so.interactive_fraction = interactive_fraction;
      so.hints = tasks[i].hints;
      if (tasks[i].tiers) {
        so.tiers = tier_opts;
        so.tiers.host_blocks = std::max<std::size_t>(1, per_worker(host_frac, tasks[i].workers));
        so.tiers.disk_blocks = per_worker(disk_frac, tasks[i].workers);
        if (so.tiers.disk_blocks > 0) {
          so.tiers.disk_dir = (tier_base / ("run" + std::to_string(i))).string();
          std::error_code ec;
          std::filesystem::remove_all(so.tiers.disk_dir, ec);  // a fresh G3 per run
        }
      }
      std::uint64_t reported = 0;
      results[i] = sim::run_simulation(prepared, so, [&](std::uint64_t done, std::uint64_t) {
        bar.add(done - reported);
        reported = done;
      });
      if (reported < tr.requests.size()) bar.add(tr.requests.size() - reported);
      if (tasks[i].tiers && results[i]->ok()) (*results[i])->policy += "+tiers";
      if (!tasks[i].hints && results[i]->ok()) (*results[i])->policy += "-hints";
      if (tasks[i].tiers && !so.tiers.disk_dir.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(so.tiers.disk_dir, ec);
      }
    }
  };
  std::vector<std::thread> threads;
  for (std::uint32_t j = 1; j < jobs; ++j) threads.emplace_back(worker_fn);
  worker_fn();
  for (auto& t : threads) t.join();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::vector<sim::sim_result> rows;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    auto& r = *results[i];
    if (!r) {
      std::cerr << "yard sim: policy '" << tasks[i].policy << "': " << r.err().describe() << "\n";
      return 1;
    }
    rows.push_back(std::move(r.value()));
  }
  // Table per sweep point.
  for (std::size_t k = 0; k < points.size(); ++k) {
    std::cout << "trace=" << (synthetic ? std::string("synthetic") : trace_path) << " requests=" << tr.requests.size()
              << " workers=" << points[k].second << " rate_scale=" << points[k].first << " block_size=" << prof.block_size
              << " cache_blocks=" << prof.num_blocks << " seed=" << seed << "\n";
    std::vector<sim::sim_result> part(rows.begin() + k * per, rows.begin() + (k + 1) * per);
    std::cout << sim::format_table(part) << "\n";
    if (kv_tiers) {
      std::cout << "kv tiers: working_set_blocks=" << working_set << " g1_blocks_per_worker=" << prof.num_blocks
                << " g2_blocks_per_worker=" << std::max<std::size_t>(1, per_worker(host_frac, points[k].second))
                << " g3_blocks_per_worker=" << per_worker(disk_frac, points[k].second)
                << " modelled_block_bytes=" << tier_opts.modelled_block_bytes << " g2_gbps=" << tier_opts.g2_gbps
                << " g3_gbps=" << tier_opts.g3_gbps << "\n";
      std::cout << sim::format_tier_table(part) << "\n";
    }
    if (hints_ab || interactive_fraction >= 0) std::cout << sim::format_hint_table(part) << "\n";
  }
  std::cout << "sim: runs=" << tasks.size() << " requests=" << tr.requests.size() << " wall_s=" << wall << " jobs=" << jobs << "\n";
  if (!csv_path.empty()) {
    auto st = sim::write_text(csv_path, sim::format_csv(rows));
    if (!st) {
      std::cerr << "yard sim: " << st.err().describe() << "\n";
      return 1;
    }
  }
  if (!plot_path.empty() && points.size() > 1) {
    std::vector<double> xs;
    bool by_rate = sweep.rfind("rate", 0) == 0;
    for (auto& p : points) xs.push_back(by_rate ? p.first : p.second);
    auto st = sim::write_sweep_plot(plot_path, rows, per, xs, by_rate ? "RATE SCALE" : "WORKERS",
                                    std::string("YARD SIM SWEEP ") + (synthetic ? "SYNTHETIC" : "TRACE"));
    if (!st) {
      std::cerr << "yard sim: " << st.err().describe() << "\n";
      return 1;
    }
  } else if (!plot_path.empty()) {
    std::vector<sim::sim_result> last(rows.end() - per, rows.end());
    std::ostringstream title;
    title << "YARD SIM " << (synthetic ? std::string("SYNTHETIC") : std::string("TRACE")) << " WORKERS " << points.back().second
          << " RATE X" << points.back().first;
    auto st = sim::write_plot(plot_path, last, title.str());
    if (!st) {
      std::cerr << "yard sim: " << st.err().describe() << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace yard::cmd
