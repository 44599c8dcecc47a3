// cluster/agent/agent_command.cpp — `yard agent --config FILE`.
//
// Owns: the agent process's lifecycle: load and validate the config (exit 2
// with "<file>:<line>: <field>: <what>" on a bad one), connect to NATS, start
// the node_agent, wait for SIGTERM/SIGINT, drain the workers, exit 0.
// Must not touch: worker internals.
#include <unistd.h>

#include <cstdio>

#include <CLI/CLI.hpp>

#include "cluster/agent/node_agent.hpp"
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
  CLI11_PARSE(app, argc, argv);
  configure_logging(log_opts);
  auto log = component_logger("agent");

  auto cfg = cluster::load_agent_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "yard agent: %s\n", cfg.err().message.c_str());
    return 2;
  }
  if (check_only) {
    std::printf("%s: ok (node %s, namespace %s, %zu worker groups)\n", config_path.c_str(), cfg->node.c_str(),
                cfg->ns.c_str(), cfg->workers.size());
    return 0;
  }
  transport::nats_options nopts;
  nopts.servers = cfg->nats;
  nopts.name = "yard-agent-" + cfg->node;
  auto nc = transport::nats_connection::connect(nopts);
  if (!nc) {
    log->error("agent {}: cannot connect to NATS: {}", cfg->node, nc.err().describe());
    return 1;
  }
  cluster::node_agent_options opts;
  opts.worker_binary = cfg->worker_binary.empty() ? self_exe() : cfg->worker_binary;
  opts.worker_log_level = worker_log_level;
  opts.config = std::move(*cfg);
  std::string node = opts.config.node;
  auto agent = cluster::node_agent::start(std::move(opts), nc->get());
  if (!agent) {
    log->error("agent {}: {}", node, agent.err().describe());
    return 1;
  }
  log->info("agent {} up: {} workers, control {}", node, (*agent)->processes().live_pids().size(),
            subjects::agent_control((*agent)->options().config.ns, node));
  int sig = cluster::wait_for_stop_signal();
  log->info("agent {}: signal {}, draining", node, sig);
  (*agent)->shutdown();
  agent->reset();
  return 0;
}

}  // namespace yard::cmd
