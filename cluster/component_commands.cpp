// cluster/component_commands.cpp — `yard worker`, `yard router`, `yard frontend`:
// the pieces of `yard up`, one per process, against a given --nats URL.
//
// Owns: their flags and lifecycle. SIGTERM/SIGINT on a worker drains it: it
// stops taking work (its heartbeat says draining), finishes in-flight
// requests (up to --drain-timeout-ms), then exits 0.
#include <cstdio>

#include "cluster/agent_flags.hpp"
#include "cluster/disagg_flags.hpp"
#include "cluster/http_flags.hpp"
#include "cluster/metrics_flags.hpp"
#include "cluster/node_runtime.hpp"
#include "cluster/process_options.hpp"
#include "kv/policy_flags.hpp"
#include "tools/commands.hpp"

namespace yard::cmd {

namespace {

int fail(const std::shared_ptr<spdlog::logger>& log, const std::string& what, const error& e) {
  log->error("{}: {}", what, e.describe());
  return 1;
}

}  // namespace

int run_worker(int argc, char** argv) {
  cluster::block_stop_signals();
  CLI::App app{"yard worker: one engine worker"};
  cluster::process_options proc;
  cluster::engine_options eng;
  actors::worker_config wc;
  int drain_timeout_ms = 30000;
  cluster::add_process_flags(app, proc, true);
  cluster::add_engine_flags(app, eng);
  app.add_option("--id", wc.id, "unique worker id ([A-Za-z0-9_-], a subject token)")->required()->check(cluster::subject_token_check());
  app.add_option_function<std::string>(
         "--role", [&wc](const std::string& r) { msg::wire_enum_from(r, wc.role); }, "both | prefill | decode (default both)")
      ->check(CLI::IsMember({"both", "prefill", "decode"}));
  app.add_option("--heartbeat-ms", wc.heartbeat_ms, "heartbeat period")->check(CLI::Range(10, 600000))->capture_default_str();
  app.add_option("--lease-ms", wc.lease_ms, "lease: peers drop this worker after this silence (longer than the period)")
      ->check(CLI::Range(20, 3600000))
      ->capture_default_str();
  app.add_option("--drain-timeout-ms", drain_timeout_ms, "max wait for in-flight requests on SIGTERM")->capture_default_str();
  cluster::add_disagg_flags(app, wc);
  cluster::add_agent_flags(app, wc);
  cluster::metrics_flags mf;
  cluster::add_metrics_flags(app, mf);
  CLI11_PARSE(app, argc, argv);
  cluster::finish_process_options(proc, "yard-worker-" + wc.id);
  wc.ns = proc.ns;
  auto log = component_logger("worker");
  auto rt = cluster::node_runtime::create_in_namespace(proc.nats, proc.ns);
  if (!rt) return fail(log, "cannot start", rt.err());
  if (auto w = (*rt)->add_worker(eng, wc); !w) return fail(log, "worker " + wc.id, w.err());
  if (auto s = (*rt)->serve_metrics(mf); !s) return fail(log, "metrics", s.err());
  log->info("worker {} serving '{}' ({} engine, role {})", wc.id, cluster::served_model_name(eng), eng.engine, msg::wire_name(wc.role));
  cluster::wait_for_stop_signal();
  auto left = (*rt)->drain_workers(drain_timeout_ms);
  if (left > 0) log->warn("{} requests still running after the drain timeout", left);
  (*rt)->shutdown();
  return 0;
}

int run_router(int argc, char** argv) {
  cluster::block_stop_signals();
  CLI::App app{"yard router: route requests to workers"};
  cluster::process_options proc;
  cluster::engine_options eng;
  actors::router_config rc;
  bool approximate = false;
  cluster::add_process_flags(app, proc, true);
  app.add_option("--id", rc.id, "router instance id")->check(cluster::subject_token_check())->capture_default_str();
  kv::add_router_policy_flags(app, rc.policy_cfg);
  app.add_option("--policy", rc.policy, "random|round_robin|least_loaded|approx|dynamo|ttft")->capture_default_str();
  app.add_flag("--approximate", approximate, "route without KV events (assume routed = cached)");
  app.add_option("--seed", rc.seed, "policy RNG seed")->capture_default_str();
  app.add_option("--startup-wait-ms", rc.startup_wait_ms, "after start, hold requests no worker can take this long")
      ->capture_default_str();
  app.add_option("--outage-wait-ms", rc.outage_wait_ms, "after a worker went away, hold requests no worker can take this long")
      ->capture_default_str();
  app.add_option("--engine", eng.engine, "tokenize prompts like this engine: mock | native | openai")->capture_default_str();
  app.add_option("--model", eng.model, "model folder whose tokenizer to use (native, openai; openai 'mock' = bytes)");
  cluster::metrics_flags mf;
  cluster::add_metrics_flags(app, mf);
  CLI11_PARSE(app, argc, argv);
  rc.use_kv_events = !approximate;
  cluster::finish_process_options(proc, "yard-router-" + rc.id);
  rc.ns = proc.ns;
  auto log = component_logger("router");
  if (auto v = actors::validate_router_config(rc); !v) return fail(log, "router", v.err());
  auto tok = cluster::make_prompt_tokenizer(eng);  // the tokenizer only: a router never loads weights
  if (!tok) return fail(log, "tokenizer", tok.err());
  rc.tokenizer = std::move(*tok);
  auto rt = cluster::node_runtime::create_in_namespace(proc.nats, proc.ns);
  if (!rt) return fail(log, "cannot start", rt.err());
  if (auto r = (*rt)->add_router(rc); !r) return fail(log, "router", r.err());
  if (auto s = (*rt)->serve_metrics(mf); !s) return fail(log, "metrics", s.err());
  log->info("router {} up ({})", rc.id, rc.policy);
  cluster::wait_for_stop_signal();
  (*rt)->shutdown();
  return 0;
}

int run_frontend(int argc, char** argv) {
  cluster::block_stop_signals();
  CLI::App app{"yard frontend: the OpenAI-compatible HTTP API"};
  cluster::process_options proc;
  actors::frontend_config fc;
  actors::http_options http;
  cluster::add_process_flags(app, proc, true);
  app.add_option("--id", fc.id, "frontend instance id")->check(cluster::subject_token_check())->capture_default_str();
  cluster::http_flag_state http_st;
  cluster::add_http_flags(app, http, http_st);
  app.add_option("--stream-timeout-ms", fc.stream_timeout_ms, "silence before a stream is migrated")->capture_default_str();
  app.add_option("--max-attempts", fc.max_attempts, "dispatches per request, first included")->capture_default_str();
  cluster::metrics_flags mf;
  cluster::add_metrics_flags(app, mf);
  CLI11_PARSE(app, argc, argv);
  cluster::finish_process_options(proc, "yard-frontend-" + fc.id);
  fc.ns = proc.ns;
  auto log = component_logger("frontend");
  if (auto s = cluster::finish_http_flags(http, http_st); !s) return fail(log, "frontend", s.err());
  auto rt = cluster::node_runtime::create_in_namespace(proc.nats, proc.ns);
  if (!rt) return fail(log, "cannot start", rt.err());
  if (auto s = (*rt)->add_frontend(fc, http); !s) return fail(log, "frontend", s.err());
  if (auto s = (*rt)->serve_metrics(mf); !s) return fail(log, "metrics", s.err());
  std::printf("frontend listening on http://%s:%d/v1\n", http.host.c_str(), (*rt)->http_port());
  std::fflush(stdout);
  cluster::wait_for_stop_signal();
  (*rt)->shutdown();
  return 0;
}

}  // namespace yard::cmd
