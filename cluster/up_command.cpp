// cluster/up_command.cpp — `yard up`: a whole cluster in one command.
//
// Owns: the main job. Starts an embedded nats-server child on a free (or
// given) loopback port unless --nats names a server, then the frontend (HTTP),
// a router and N workers in this process, all talking over NATS; prints where
// to send requests and stops cleanly on Ctrl-C/SIGTERM (the nats-server child
// is stopped, and dies with us even on a crash).
// The embedded server never runs anonymous: with no credentials given, each
// component gets its own generated user with its role's permissions
// (cluster/bus_permissions: frontend, router, one user per worker limited to
// its own subjects) and a `client` user whose password is written to a 0600
// file for the operator; with --nats-user/--nats-password(-file) or a token,
// those are required of everyone and used by every component.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <fstream>

#include "cluster/bus_permissions.hpp"
#include "cluster/agent_flags.hpp"
#include "cluster/disagg_flags.hpp"
#include "cluster/http_flags.hpp"
#include "cluster/node_runtime.hpp"
#include "kv/policy_flags.hpp"
#include "messages/subjects.hpp"
#include "tools/commands.hpp"
#include "transport/nats_server_process.hpp"

namespace yard::cmd {

namespace {

// The embedded server's users: generated per run unless the operator gave credentials.
struct embedded_auth {
  std::string config;                                   // the authorization block
  std::map<std::string, transport::nats_options> ids;   // component identity -> its own options
  std::string client_password_file;                     // where the operator finds the client password
};

result<embedded_auth> make_embedded_auth(cluster::process_options& proc, const std::vector<std::string>& worker_ids) {
  embedded_auth out;
  if (!proc.nats.token.empty()) {
    out.config = "authorization { token: \"" + proc.nats.token + "\" }\n";
    return out;
  }
  if (!proc.nats.user.empty()) {
    // Given credentials: every component uses them; the user may do what all of yard up does.
    out.config = cluster::render_authorization({{proc.nats.user, proc.nats.password, cluster::bus_role::node, ""}}, proc.ns);
    return out;
  }
  std::vector<cluster::bus_user> users;
  auto add = [&](const std::string& name, cluster::bus_role role, const std::string& instance) -> status {
    auto pw = cluster::random_password();
    if (!pw) return pw.err();
    users.push_back({name, *pw, role, instance});
    return status::success();
  };
  if (auto s = add("node", cluster::bus_role::node, ""); !s) return s.err();
  if (auto s = add("frontend", cluster::bus_role::frontend, ""); !s) return s.err();
  if (auto s = add("router", cluster::bus_role::router, ""); !s) return s.err();
  if (auto s = add("client", cluster::bus_role::client, ""); !s) return s.err();
  for (const auto& id : worker_ids)
    if (auto s = add(id, cluster::bus_role::worker, id); !s) return s.err();
  out.config = cluster::render_authorization(users, proc.ns);
  for (const auto& u : users) {
    auto o = proc.nats;
    o.user = u.name;
    o.password = u.password;
    o.inbox_prefix = cluster::inbox_prefix_for(u.name);
    if (u.name == "node") {
      proc.nats = o;
    } else if (u.name == "client") {
      char dir[] = "/tmp/yard-up-XXXXXX";
      if (::mkdtemp(dir) == nullptr) return make_error(errc::io_error, "cannot create a private run directory");
      out.client_password_file = std::string(dir) + "/client.password";
      std::ofstream f(out.client_password_file);
      f << u.password << "\n";
      if (!f) return make_error(errc::io_error, "cannot write " + out.client_password_file);
      ::chmod(out.client_password_file.c_str(), 0600);
    } else {
      out.ids[u.name] = std::move(o);
    }
  }
  return out;
}

}  // namespace

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
  cluster::add_agent_flags(app, wtemplate);
  kv::policy_config policy_cfg;
  kv::add_router_policy_flags(app, policy_cfg);
  app.add_option("--nats-port", nats_port, "port for the embedded nats-server (0 = a free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cluster::http_flag_state http_st;
  cluster::add_http_flags(app, http, http_st);
  app.add_option("--router-policy", policy, "random|round_robin|least_loaded|approx|dynamo|ttft")->capture_default_str();
  app.add_flag("--router-approximate", approximate, "route without KV events (assume routed = cached)");
  app.add_option("--ready-timeout", ready_timeout_s, "seconds to wait for the workers to register")->capture_default_str();
  cluster::metrics_flags metrics;
  cluster::add_metrics_flags(app, metrics, cluster::default_up_metrics_port, "127.0.0.1");
  CLI11_PARSE(app, argc, argv);
  cluster::finish_process_options(proc, "yard-up");
  auto log = component_logger("up");
  if (auto s = cluster::finish_http_flags(http, http_st); !s) {
    log->error("{}", s.err().describe());
    return 2;
  }

  std::vector<std::string> worker_ids;
  for (int i = 0; i < workers + prefill_workers; ++i)
    worker_ids.push_back(i >= workers ? "prefill-" + std::to_string(i - workers) : "worker-" + std::to_string(i));
  std::unique_ptr<transport::nats_server_process> server;
  embedded_auth auth;
  // The client's password file and its private directory go on every way out, a failed start included.
  struct remove_run_dir {
    const embedded_auth& auth;
    ~remove_run_dir() {
      if (auth.client_password_file.empty()) return;
      std::remove(auth.client_password_file.c_str());
      ::rmdir(std::filesystem::path(auth.client_password_file).parent_path().c_str());
    }
  } run_dir_guard{auth};
  if (proc.nats_urls.empty()) {
    auto a = make_embedded_auth(proc, worker_ids);
    if (!a) {
      log->error("cannot set up the embedded nats-server's users: {}", a.err().describe());
      return 1;
    }
    auth = std::move(*a);
    transport::nats_server_options so;
    so.port = nats_port;
    so.config_extra = auth.config;
    auto s = transport::nats_server_process::start(so);
    if (!s) {
      log->error("cannot start the embedded nats-server: {}", s.err().describe());
      return 1;
    }
    server = std::move(*s);
    proc.nats.servers = {server->url()};
    for (auto& [id, o] : auth.ids) o.servers = proc.nats.servers;
  }
  auto rt = cluster::node_runtime::create_in_namespace(proc.nats, proc.ns);
  if (!rt) {
    log->error("{}", rt.err().describe());
    return 1;
  }
  auto& node = **rt;
  for (const auto& [id, o] : auth.ids) node.set_identity(id, o);
  for (int i = 0; i < workers + prefill_workers; ++i) {
    actors::worker_config wc = wtemplate;
    wc.ns = proc.ns;
    bool prefill = i >= workers;
    wc.id = worker_ids[static_cast<std::size_t>(i)];
    wc.role = prefill_workers == 0 ? msg::worker_role::both : prefill ? msg::worker_role::prefill : msg::worker_role::decode;
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
  auto tok = cluster::make_prompt_tokenizer(eng);  // the tokenizer only: no weights, KV, G3 or GPU
  if (!tok) {
    // Without the model's tokenizer the router would hash bytes: KV overlap would silently be zero.
    log->error("router tokenizer ({}): {}", eng.model.empty() ? eng.engine : eng.model, tok.err().describe());
    return 1;
  }
  rc.tokenizer = std::move(*tok);
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
  if (auto s = node.serve_metrics(metrics); !s) {
    // An explicit port must be served; the default one may be taken by another local cluster.
    if (cluster::metrics_port_given(app)) {
      log->error("{}", s.err().describe());
      return 1;
    }
    log->warn("{}: metrics off (choose a port with --metrics-port)", s.err().describe());
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
  const char* scheme = http.tls_cert_file.empty() ? "http" : "https";
  std::string key_header = http.tenants ? " -H 'Authorization: Bearer $KEY'" : "";
  std::printf("  OpenAI API : %s://127.0.0.1:%d/v1  (try: curl -N%s %s://127.0.0.1:%d/v1/chat/completions%s -H 'Content-Type: application/json' -d '{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}')\n",
              scheme, node.http_port(), http.tls_cert_file.empty() ? "" : "k", scheme, node.http_port(), key_header.c_str(),
              cluster::served_model_name(eng).c_str());
  if (http.tenants)
    std::printf("  API keys   : required on /v1/ (%zu keys, listening on %s)\n", http.tenants->keys(), http.host.c_str());
  if (node.metrics_port() > 0)
    std::printf("  Metrics    : http://%s:%d/metrics (Prometheus text: frontend, router, workers)\n", metrics.host.c_str(),
                node.metrics_port());
  std::printf("  NATS       : %s\n", transport::redact_url(proc.nats.servers.front()).c_str());
  if (!auth.client_password_file.empty())
    std::printf("  NATS auth  : user 'client', password in %s, inbox prefix %s (no anonymous access)\n",
                auth.client_password_file.c_str(), cluster::inbox_prefix_for("client").c_str());
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
