// cluster/planner/planner_command.cpp — `yard planner`.
//
// Owns: the planner process: flags -> planner_service_options, connect,
// run until SIGTERM/SIGINT. The decisions come from slo_planner; the
// samples from frontends' latency_report messages; the actions go to agents.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "cluster/metrics_flags.hpp"
#include "cluster/planner/planner_service.hpp"
#include "cluster/process_options.hpp"
#include "tools/commands.hpp"

namespace yard::cmd {

int run_planner(int argc, char** argv) {
  cluster::block_stop_signals();
  CLI::App app{"yard planner: scale prefill/decode workers to meet TTFT and ITL targets"};
  cluster::process_options proc;
  cluster::planner_service_options so;
  bool aggregated = false;
  std::uint32_t min_prefill = 1, max_prefill = 8, min_decode = 1, max_decode = 8;
  double prefill_cap = 2.0, decode_cap = 4.0;
  cluster::add_process_flags(app, proc, true);
  auto& p = so.planner;
  app.add_option("--ttft-p90-ms", p.ttft_p90_target_ms, "TTFT p90 target")->capture_default_str();
  app.add_option("--itl-p90-ms", p.itl_p90_target_ms, "inter-token latency p90 target")->capture_default_str();
  app.add_option("--interval-ms", so.interval_ms, "observation window")->check(CLI::Range(10, 3600000))->capture_default_str();
  app.add_option("--horizon-ms", p.horizon_ms, "load forecast horizon")->capture_default_str();
  app.add_option("--up-cooldown-ms", p.up_cooldown_ms, "wait after a change before adding")->capture_default_str();
  app.add_option("--down-cooldown-ms", p.down_cooldown_ms, "wait after a change before removing")->capture_default_str();
  app.add_option("--min-prefill", min_prefill, "prefill pool minimum (or the aggregated pool's)")->capture_default_str();
  app.add_option("--max-prefill", max_prefill, "prefill pool maximum (or the aggregated pool's)")->capture_default_str();
  app.add_option("--min-decode", min_decode, "decode pool minimum")->capture_default_str();
  app.add_option("--max-decode", max_decode, "decode pool maximum")->capture_default_str();
  app.add_option("--prefill-capacity-rps", prefill_cap, "initial guess, req/s per prefill worker")->capture_default_str();
  app.add_option("--decode-capacity-rps", decode_cap, "initial guess, req/s per decode worker")->capture_default_str();
  app.add_flag("--aggregated", aggregated, "one pool of role 'both' instead of prefill + decode");
  app.add_flag("--dry-run", so.dry_run, "log decisions without sending scale requests");
  cluster::metrics_flags mf;
  cluster::add_metrics_flags(app, mf);
  CLI11_PARSE(app, argc, argv);
  if (min_prefill > max_prefill || min_decode > max_decode) {
    std::fprintf(stderr, "yard planner: a pool's minimum is over its maximum (--min-prefill %u --max-prefill %u, "
                         "--min-decode %u --max-decode %u)\n", min_prefill, max_prefill, min_decode, max_decode);
    return 2;
  }
  if (!(p.ttft_p90_target_ms > 0) || !(p.itl_p90_target_ms > 0)) {
    std::fprintf(stderr, "yard planner: --ttft-p90-ms and --itl-p90-ms must be positive\n");
    return 2;
  }
  cluster::finish_process_options(proc, "yard-planner");
  so.ns = proc.ns;
  p.pools = cluster::default_pools(!aggregated);
  p.pools[0].min_workers = min_prefill;
  p.pools[0].max_workers = max_prefill;
  p.pools[0].capacity_rps = prefill_cap;
  if (!aggregated) {
    p.pools[1].min_workers = min_decode;
    p.pools[1].max_workers = max_decode;
    p.pools[1].capacity_rps = decode_cap;
  }
  auto log = component_logger("planner");
  auto nc = transport::nats_connection::connect(proc.nats);
  if (!nc) {
    log->error("planner: cannot connect to NATS: {}", nc.err().describe());
    return 1;
  }
  auto svc = cluster::planner_service::start(so, nc->get());
  if (!svc) {
    log->error("planner: {}", svc.err().describe());
    return 1;
  }
  auto registry = std::make_shared<cluster::metrics_registry>();
  registry->add([s = svc->get()](prom::exposition& out) { s->render_metrics(out); });
  auto endpoint = cluster::serve_metrics(mf, registry);
  if (!endpoint) {
    log->error("planner: {}", endpoint.err().describe());
    return 1;
  }
  log->info("planner up: ttft_p90 <= {} ms, itl_p90 <= {} ms, window {} ms{}", p.ttft_p90_target_ms,
            p.itl_p90_target_ms, so.interval_ms, so.dry_run ? " (dry run)" : "");
  cluster::wait_for_stop_signal();
  if (*endpoint) (*endpoint)->stop();
  svc->reset();
  return 0;
}

}  // namespace yard::cmd
