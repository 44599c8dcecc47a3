// cluster/up_command.cpp — `yard up`: a whole cluster in one command.
//
// Owns: the main job. Starts an embedded nats-server child on a free (or
// given) loopback port unless --nats names a server, then the frontend (HTTP),
// a router and N workers in this process, all talking over NATS; prints where
// to send requests and stops cleanly on Ctrl-C/SIGTERM (the nats-server child
// is stopped, and dies with us even on a crash).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cluster/disagg_flags.hpp"
#include "cluster/http_flags.hpp"
#include "cluster/node_runtime.hpp"
#include "kv/policy_flags.hpp"
#include "messages/subjects.hpp"
#include "tools/commands.hpp"
#include "transport/nats_server_process.hpp"

namespace yard::cmd {

int run_up(int argc, char** argv) {
  cluster::block_stop_signals();
  CLI::App app{"yard up: start a local Switchyard cluster"};
  cluster::process_options proc;
  cluster::engine_options eng;
  int workers = 2;
  int nats_port = 0;
  actors::http_options http;
  std::string policy = "ttft";
  bool approximate = false;
  int ready_timeout_s = 20;
  cluster::add_process_flags(app, proc, false);
  cluster::add_engine_flags(app, eng);
  app.add_option("--workers", workers, "number of workers (decode workers when --prefill-workers > 0)")->check(CLI::Range(1, 4096))->capture_default_str();
  int prefill_workers = 0;
  app.add_option("--prefill-workers", prefill_workers, "disaggregated serving: this many prefill-only workers")
      ->check(CLI::Range(0, 4096))->capture_default_str();
  actors::worker_config wtemplate;
  cluster::add_disagg_flags(app, wtemplate);
  kv::policy_config policy_cfg;
  kv::add_router_policy_flags(app, policy_cfg);
  app.add_option("--nats-port", nats_port, "port for the embedded nats-server (0 = a free port)")->capture_default_str();
  cluster::add_http_flags(app, http);
  app.add_option("--router-policy", policy, "random|round_robin|least_loaded|approx|dynamo|ttft")->capture_default_str();
  app.add_flag("--router-approximate", approximate, "route without KV events (assume routed = cached)");
  app.add_option("--ready-timeout", ready_timeout_s, "seconds to wait for the workers to register")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  cluster::finish_process_options(proc, "yard-up");
  auto log = component_logger("up");

  std::unique_ptr<transport::nats_server_process> server;
  if (proc.nats_urls.empty()) {
    transport::nats_server_options so;
    so.port = nats_port;
    auto s = transport::nats_server_process::start(so);
    if (!s) {
      log->error("cannot start the embedded nats-server: {}", s.err().describe());
      return 1;
    }
    server = std::move(*s);
    proc.nats.servers = {server->url()};
  }
  auto rt = cluster::node_runtime::create(proc.nats);
  if (!rt) {
    log->error("{}", rt.err().describe());
    return 1;
  }
  auto& node = **rt;
  for (int i = 0; i < workers + prefill_workers; ++i) {
    actors::worker_config wc = wtemplate;
    wc.ns = proc.ns;
    bool prefill = i >= workers;
    wc.id = (prefill ? "prefill-" + std::to_string(i - workers) : "worker-" + std::to_string(i));
    wc.role = prefill_workers == 0 ? "both" : prefill ? "prefill" : "decode";
    auto weng = eng;
    // One G3 directory per worker (<dir>/<worker id>): each recovers its own blocks after a restart.
    if (!weng.tiers.disk_dir.empty()) weng.tiers.disk_dir = (std::filesystem::path(eng.tiers.disk_dir) / wc.id).string();
    if (auto w = node.add_worker(weng, wc); !w) {
      log->error("worker {}: {}", wc.id, w.err().describe());
      return 1;
    }
  }
  actors::router_config rc;
  rc.ns = proc.ns;
  rc.policy = policy;
  rc.policy_cfg = policy_cfg;
  rc.use_kv_events = !approximate;
  auto tok_eng = eng;
  tok_eng.tiers = {};  // the router's tokenizer copy holds no KV and must not open the workers' G3
  if (auto tok = cluster::make_engine(tok_eng)) rc.tokenizer = std::shared_ptr<const backends::engine>(std::move(*tok));
  if (auto r = node.add_router(rc); !r) {
    log->error("router: {}", r.err().describe());
    return 1;
  }
  actors::frontend_config fc;
  fc.ns = proc.ns;
  http.default_model = cluster::served_model_name(eng);
  if (auto s = node.add_frontend(fc, http); !s) {
    log->error("frontend: {}", s.err().describe());
    return 1;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(ready_timeout_s);
  while (node.live_workers() < static_cast<std::size_t>(workers) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (node.live_workers() < static_cast<std::size_t>(workers))
    log->warn("only {} of {} workers registered in {} s", node.live_workers(), workers, ready_timeout_s);
  if (prefill_workers > 0)
    std::printf("Switchyard is up: %d decode + %d prefill %s worker(s) (KV over UCX), model '%s'\n", workers,
                prefill_workers, eng.engine.c_str(), cluster::served_model_name(eng).c_str());
  else
    std::printf("Switchyard is up: %d %s worker(s), model '%s'\n", workers, eng.engine.c_str(),
                cluster::served_model_name(eng).c_str());
  std::printf("  OpenAI API : http://127.0.0.1:%d/v1  (try: curl -N http://127.0.0.1:%d/v1/chat/completions -H 'Content-Type: application/json' -d '{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}')\n",
              node.http_port(), node.http_port(), cluster::served_model_name(eng).c_str());
  std::printf("  NATS       : %s\n", proc.nats.servers.front().c_str());
  std::printf("  generate   : %s (JSON or msgpack body, reply inbox gets token chunks)\n",
              subjects::router_generate(proc.ns).c_str());
  std::printf("  Ctrl-C to stop\n");
  std::fflush(stdout);
  int sig = cluster::wait_for_stop_signal();
  log->info("signal {}: shutting down", sig);
  node.drain_workers(2000);
  node.shutdown();
  rt->reset();
  server.reset();
  log->info("stopped");
  return 0;
}

}  // namespace yard::cmd
