// cluster/agent/agent_command.cpp — `yard agent --config FILE`.
//
// Owns: the agent process's lifecycle: load and validate the config (exit 2
// with "<file>:<line>: <field>: <what>" on a bad one), connect to NATS, start
// the node_agent, wait for SIGTERM/SIGINT, drain the workers, exit 0.
// Must not touch: worker internals.
#include <unistd.h>

#include <cstdio>

#include <CLI/CLI.hpp>

#include "cluster/agent/agent_metrics.hpp"
#include "cluster/metrics_flags.hpp"
#include "cluster/agent/node_agent.hpp"
#include "cluster/bus_permissions.hpp"
#include "cluster/nats_secrets.hpp"
#include "cluster/process_options.hpp"
#include "common/log.hpp"
#include "messages/cluster_subjects.hpp"
#include "tools/commands.hpp"

namespace yard::cmd {

namespace {

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "/proc/self/exe";
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace

int run_agent(int argc, char** argv) {
  cluster::block_stop_signals();
  CLI::App app{"yard agent: start and supervise this node's workers (one agent per node)"};
  std::string config_path;
  log_options log_opts;
  std::string worker_log_level;
  bool check_only = false;
  app.add_option("--config", config_path, "agent config file (TOML)")->required();
  app.add_option("--log-level", log_opts.level, "trace|debug|info|warn|error|off")->capture_default_str();
  app.add_flag("--log-json", log_opts.json, "log one JSON object per line");
  app.add_option("--worker-log-level", worker_log_level, "--log-level passed to workers (default: theirs)");
  app.add_flag("--check", check_only, "validate the config file and exit");
  cluster::metrics_flags mf;
  cluster::add_metrics_flags(app, mf);
  CLI11_PARSE(app, argc, argv);
  configure_logging(log_opts);
  auto log = component_logger("agent");

  auto cfg = cluster::load_agent_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "yard agent: %s\n", cfg.err().message.c_str());
    return 2;
  }
  if (check_only) {
    // What the run would meet first: the files it reads and the program it starts (a run found them missing only
    // as a child's "exit 127" or its own exit 2).
    std::vector<std::string> problems;
    const auto& au = cfg->auth;
    for (const auto* f : {&au.password_file, &au.token_file, &au.creds, &au.tls_ca, &au.tls_cert, &au.tls_key,
                          &au.worker_password_file, &au.worker_creds})
      if (!f->empty() && ::access(f->c_str(), R_OK) != 0) problems.push_back("[auth] file " + *f + " cannot be read");
    if (!cfg->worker_binary.empty() && ::access(cfg->worker_binary.c_str(), X_OK) != 0)
      problems.push_back("agent.worker_binary " + cfg->worker_binary + " is not an executable file");
    if (!problems.empty()) {
      for (const auto& p : problems) std::fprintf(stderr, "yard agent: %s: %s\n", config_path.c_str(), p.c_str());
      return 2;
    }
    std::printf("%s: ok (node %s, namespace %s, %zu worker groups)\n", config_path.c_str(), cfg->node.c_str(),
                cfg->ns.c_str(), cfg->workers.size());
    return 0;
  }
  // Auth: [auth] in the config, credentials inside URLs, then YARD_NATS_*; none of it is logged or put in argv.
  transport::nats_options nopts;
  nopts.name = "yard-agent-" + cfg->node;
  nopts.servers.clear();  // exactly the config's servers, not the default 127.0.0.1 before them
  for (const auto& u : cfg->nats) {
    auto c = cluster::strip_url_credentials(u);
    nopts.servers.push_back(c.url);
    if (nopts.user.empty() && !c.user.empty()) {
      nopts.user = c.user;
      nopts.password = c.password;
    }
    if (nopts.token.empty() && !c.token.empty()) nopts.token = c.token;
    if (c.url.rfind("tls://", 0) == 0) nopts.tls = true;
  }
  const auto& a = cfg->auth;
  if (!a.user.empty()) nopts.user = a.user;
  nopts.creds_file = a.creds;
  nopts.tls = nopts.tls || a.tls;
  nopts.tls_ca_file = a.tls_ca;
  nopts.tls_cert_file = a.tls_cert;
  nopts.tls_key_file = a.tls_key;
  if (auto s = cluster::resolve_nats_secrets(nopts, {a.password_file, a.token_file}); !s) {
    std::fprintf(stderr, "yard agent: %s\n", s.err().message.c_str());
    return 2;
  }
  transport::nats_options child = nopts;  // the workers' auth: their own user when configured
  if (!a.worker_user.empty() || !a.worker_creds.empty()) {
    child.user = a.worker_user;
    child.password.clear();
    child.token.clear();
    child.creds_file = a.worker_creds;
    child.inbox_prefix.clear();
    if (!a.worker_password_file.empty()) {
      auto pw = cluster::read_secret_file(a.worker_password_file);
      if (!pw) {
        std::fprintf(stderr, "yard agent: %s\n", pw.err().message.c_str());
        return 2;
      }
      child.password = *pw;
    }
    if (!child.user.empty()) child.inbox_prefix = cluster::inbox_prefix_for(child.user);
  }
  log->info("agent {}: NATS {}{}", cfg->node, transport::redact_urls(nopts.servers),
            nopts.user.empty() ? "" : " as user " + nopts.user);
  auto nc = transport::nats_connection::connect(nopts);
  if (!nc) {
    log->error("agent {}: cannot connect to NATS: {}", cfg->node, nc.err().describe());
    return 1;
  }
  cluster::node_agent_options opts;
  opts.worker_binary = cfg->worker_binary.empty() ? self_exe() : cfg->worker_binary;
  opts.worker_log_level = worker_log_level;
  opts.worker_auth_env = cluster::nats_auth_env(child);
  opts.config = std::move(*cfg);
  std::string node = opts.config.node;
  if (!cluster::metrics_port_given(app)) mf.port = static_cast<int>(opts.config.metrics_port);
  auto agent = cluster::node_agent::start(std::move(opts), nc->get());
  if (!agent) {
    log->error("agent {}: {}", node, agent.err().describe());
    return 1;
  }
  auto registry = std::make_shared<cluster::metrics_registry>();
  registry->add([a = agent->get(), node](prom::exposition& out) {
    cluster::render_agent_children(out, node, a->processes().children());
    out.counter("yard_agent_scale_requests_total", "Scale requests this agent answered.", {{"node", node}},
                double(a->scale_requests()));
  });
  auto endpoint = cluster::serve_metrics(mf, registry);
  if (!endpoint) {
    log->error("agent {}: {}", node, endpoint.err().describe());
    (*agent)->shutdown();
    return 1;
  }
  log->info("agent {} up: {} workers, control {}", node, (*agent)->processes().live_pids().size(),
            subjects::agent_control((*agent)->options().config.ns, node));
  int sig = cluster::wait_for_stop_signal();
  log->info("agent {}: signal {}, draining", node, sig);
  if (*endpoint) (*endpoint)->stop();
  (*agent)->shutdown();
  agent->reset();
  return 0;
}

}  // namespace yard::cmd
