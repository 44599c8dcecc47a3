// cluster/agent/node_agent.cpp — worker processes, scaling, control subject, status.
#include "cluster/agent/node_agent.hpp"

#include "cluster/nats_secrets.hpp"

#include <cstdlib>
#include <algorithm>
#include <chrono>

#include "common/log.hpp"
#include "messages/cluster_subjects.hpp"
#include "messages/codec.hpp"

namespace yard::cluster {
namespace {

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

std::vector<std::string> worker_argv(const node_agent_options& opts, const worker_group& g, const std::string& id) {
  const agent_config& c = opts.config;
  std::vector<std::string> urls;
  for (const auto& u : c.nats) urls.push_back(strip_url_credentials(u).url);
  const std::string role(msg::wire_name(g.role));
  std::vector<std::string> a = {opts.worker_binary, "worker",  "--nats",  join(urls, ","), "--namespace",
                                c.ns,               "--id",    id,        "--engine",        g.engine,
                                "--role",           role,      "--model", g.model};
  if (!g.upstream.empty()) {
    a.push_back("--upstream");
    a.push_back(g.upstream);
  }
  // The worker's own drain budget ends before the agent's SIGKILL.
  std::uint32_t t = c.restart.shutdown_timeout_ms;
  a.push_back("--drain-timeout-ms");
  a.push_back(std::to_string(t > 1000 ? t - 1000 : t));
  if (!opts.worker_log_level.empty()) {
    a.push_back("--log-level");
    a.push_back(opts.worker_log_level);
  }
  if (g.metrics_port > 0) {
    // Instance ids end in their number: instance n of the group serves metrics_port + n.
    auto dash = id.rfind('-');
    std::uint32_t n = 0;
    if (dash != std::string::npos) n = static_cast<std::uint32_t>(std::strtoul(id.c_str() + dash + 1, nullptr, 10));
    a.push_back("--metrics-port");
    a.push_back(std::to_string(g.metrics_port + n));
  }
  a.insert(a.end(), g.args.begin(), g.args.end());
  return a;
}

std::vector<std::string> worker_env(const agent_config& cfg, const worker_group& g) {
  std::vector<std::string> env = {"YARD_NODE=" + cfg.node};
  if (!g.device.empty()) {
    env.push_back("YARD_DEVICE=" + g.device);
    if (g.device.rfind("cuda:", 0) == 0) env.push_back("CUDA_VISIBLE_DEVICES=" + g.device.substr(5));
  }
  return env;
}

node_agent::node_agent(node_agent_options opts) : opts_(std::move(opts)) {}

result<std::unique_ptr<node_agent>> node_agent::start(node_agent_options opts, transport::nats_connection* nc) {
  auto log = component_logger("agent");
  std::unique_ptr<node_agent> a(new node_agent(std::move(opts)));
  a->nc_ = nc;
  const agent_config& c = a->opts_.config;
  if (nc) {
    std::string subject = subjects::agent_control(c.ns, c.node);
    auto sub = nc->subscribe(subject, [raw = a.get()](transport::nats_message m) { raw->on_control(std::move(m)); });
    if (!sub) return error(sub.err().code, "agent " + c.node + ": cannot subscribe to " + subject + ": " + sub.err().message);
    a->control_sub_ = std::move(*sub);
    log->info("agent {} listening on {}", c.node, subject);
  }
  {
    std::lock_guard<std::mutex> lk(a->mu_);
    for (const auto& g : c.workers)
      for (std::uint32_t i = 0; i < g.count; ++i)
        if (auto s = a->start_instance_locked(g); !s) log->error("agent {}: {}", c.node, s.err().describe());
  }
  if (nc) a->status_thread_ = std::thread([raw = a.get()] { raw->status_loop(); });
  return a;
}

node_agent::~node_agent() { shutdown(); }

yard::status node_agent::start_instance_locked(const worker_group& g) {
  std::uint32_t n = next_index_[g.role]++;
  const std::string role(msg::wire_name(g.role));
  std::string id = opts_.config.node + "-" + role + "-" + std::to_string(n);
  child_spec spec;
  spec.name = id;
  spec.group = role;  // the supervisor's label; status() parses it back
  spec.argv = worker_argv(opts_, g, id);
  spec.env = worker_env(opts_.config, g);
  spec.env.insert(spec.env.end(), opts_.worker_auth_env.begin(), opts_.worker_auth_env.end());
  const restart_settings& r = opts_.config.restart;
  spec.policy.max_restarts = r.max_restarts;
  spec.policy.window_ms = r.window_s * 1000;
  spec.policy.backoff_initial_ms = r.backoff_initial_ms;
  spec.policy.backoff_max_ms = r.backoff_max_ms;
  spec.policy.stable_ms = opts_.stable_ms;
  if (auto s = sup_.start_child(std::move(spec)); !s) return s;
  instances_[g.role].push_back(id);
  return {};
}

std::uint32_t node_agent::running_locked(msg::worker_role role) const {
  auto it = instances_.find(role);
  if (it == instances_.end()) return 0;
  std::uint32_t n = 0;
  auto kids = sup_.children();
  for (const auto& id : it->second)
    for (const auto& k : kids)
      if (k.name == id && (k.state == child_state::running || k.state == child_state::backoff)) ++n;
  return n;
}

msg::scale_reply node_agent::scale(const msg::scale_request& req) {
  scale_requests_++;
  auto log = component_logger("agent");
  msg::scale_reply rep;
  rep.request_id = req.request_id;
  rep.node = opts_.config.node;
  rep.role = req.role;
  const worker_group* g = nullptr;
  for (const auto& w : opts_.config.workers)
    if (w.role == req.role) g = &w;
  if (!g) {
    rep.message =
        "node " + rep.node + " has no [[workers]] entry for role '" + std::string(msg::wire_name(req.role)) + "'";
    return rep;
  }
  rep.min_count = g->min_count;
  rep.max_count = g->max_count;
  if (req.delta.has_value() == req.target.has_value()) {
    rep.message = "exactly one of delta and target must be set";
    return rep;
  }
  std::lock_guard<std::mutex> lk(mu_);
  std::uint32_t running = running_locked(req.role);
  rep.running = running;
  if (draining_) {
    rep.message = "node " + rep.node + " is draining";
    return rep;
  }
  // Failed (given-up) and stopped instances no longer count; forget them.
  {
    auto kids = sup_.children();
    auto& ids = instances_[req.role];
    ids.erase(std::remove_if(ids.begin(), ids.end(),
                             [&](const std::string& id) {
                               for (const auto& k : kids)
                                 if (k.name == id) return k.state == child_state::failed || k.state == child_state::stopped;
                               return true;
                             }),
              ids.end());
  }
  std::int64_t want = req.target ? static_cast<std::int64_t>(*req.target)
                                 : static_cast<std::int64_t>(running) + *req.delta;
  auto target = static_cast<std::uint32_t>(std::clamp<std::int64_t>(want, g->min_count, g->max_count));
  std::string clamp_note =
      want != static_cast<std::int64_t>(target)
          ? " (asked for " + std::to_string(want) + ", clamped to [" + std::to_string(g->min_count) + ", " +
                std::to_string(g->max_count) + "])"
          : "";
  std::uint32_t started = 0, stopped = 0;
  while (running_locked(req.role) < target) {
    if (auto s = start_instance_locked(*g); !s) {
      rep.running = running_locked(req.role);
      rep.message = "could not start a worker: " + s.err().describe();
      return rep;
    }
    ++started;
  }
  auto& ids = instances_[req.role];
  while (running_locked(req.role) > target && !ids.empty()) {
    std::string id = ids.back();  // newest first: the oldest have the warmest caches
    ids.pop_back();
    sup_.stop_child(id, opts_.config.restart.shutdown_timeout_ms);
    ++stopped;
  }
  rep.ok = true;
  rep.running = running_locked(req.role);
  rep.message = "role " + std::string(msg::wire_name(req.role)) + ": started " + std::to_string(started) +
                ", draining " + std::to_string(stopped) + ", now " + std::to_string(rep.running) + clamp_note;
  log->info("agent {}: scale {} ({}): {}", rep.node, msg::wire_name(req.role), req.reason, rep.message);
  return rep;
}

msg::agent_status node_agent::status() const {
  msg::agent_status s;
  s.node = opts_.config.node;
  s.control_subject = subjects::agent_control(opts_.config.ns, opts_.config.node);
  s.draining = draining_;
  s.timestamp_ms = wall_ms();
  std::lock_guard<std::mutex> lk(mu_);
  for (const auto& g : opts_.config.workers)
    s.roles.push_back(msg::agent_role_bounds{g.role, running_locked(g.role), g.min_count, g.max_count});
  for (const auto& k : sup_.children()) {
    msg::worker_role role = msg::worker_role::both;
    msg::wire_enum_from(k.group, role);  // every child's group is a role's wire name (start_instance_locked)
    s.children.push_back(
        msg::agent_child_status{k.name, role, to_string(k.state), static_cast<std::int32_t>(k.pid), k.restarts});
  }
  return s;
}

void node_agent::on_control(transport::nats_message m) {
  auto fmt = msg::detect_format(m.content_type, m.data);
  msg::scale_reply rep;
  auto req = msg::decode<msg::scale_request>(m.data, fmt);
  if (!req) {
    rep.node = opts_.config.node;
    rep.message = "bad scale_request: " + req.err().message;
    component_logger("agent")->warn("agent {}: {}", rep.node, rep.message);
  } else {
    rep = scale(*req);
  }
  if (!m.reply.empty() && nc_) nc_->publish(m.reply, msg::encode(rep, fmt), {}, msg::content_type_of(fmt));
}

void node_agent::status_loop() {
  std::string subject = subjects::agent_status(opts_.config.ns);
  std::unique_lock<std::mutex> lk(wake_mu_);
  while (!stopped_) {
    lk.unlock();
    nc_->publish(subject, msg::encode(status()));
    lk.lock();
    wake_.wait_for(lk, std::chrono::milliseconds(opts_.status_interval_ms), [&] { return stopped_; });
  }
}

void node_agent::shutdown() {
  {
    std::lock_guard<std::mutex> lk(wake_mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  draining_ = true;
  wake_.notify_all();
  if (status_thread_.joinable()) status_thread_.join();
  control_sub_ = transport::subscription();
  auto log = component_logger("agent");
  if (nc_) nc_->publish(subjects::agent_status(opts_.config.ns), msg::encode(status()));
  log->info("agent {}: draining {} workers (timeout {} ms)", opts_.config.node, sup_.live_pids().size(),
            opts_.config.restart.shutdown_timeout_ms);
  sup_.stop_all(opts_.config.restart.shutdown_timeout_ms);
  std::lock_guard<std::mutex> lk(mu_);
  instances_.clear();
  log->info("agent {}: all workers stopped", opts_.config.node);
}

}  // namespace yard::cluster
