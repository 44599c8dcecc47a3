// cluster/agent/agent_config.cpp — TOML parsing and validation for `yard agent`.
//
// toml++ is used header-only with exceptions off, in this file only, so the
// parse result is a value and nothing throws out of here.
#include "cluster/agent/agent_config.hpp"

#include "messages/subject_token.hpp"

#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace yard::cluster {
namespace {

// Collects the first error; every check below returns false once one is set.
class checker {
 public:
  explicit checker(std::string source) : source_(std::move(source)) {}

  bool fail(int line, const std::string& field, const std::string& what) {
    if (err_.empty()) err_ = source_ + ":" + std::to_string(line) + ": " + field + ": " + what;
    return false;
  }
  bool failed() const { return !err_.empty(); }
  const std::string& message() const { return err_; }

  static int line_of(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

  // Rejects keys not in `allowed`.
  bool only_keys(const toml::table& t, const std::string& prefix, std::initializer_list<std::string_view> allowed) {
    for (auto&& [k, v] : t) {
      if (std::find(allowed.begin(), allowed.end(), k.str()) == allowed.end()) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        return fail(line_of(v), prefix + std::string(k.str()), "unknown key (allowed: " + list + ")");
      }
    }
    return true;
  }

  bool get_string(const toml::table& t, const std::string& prefix, std::string_view key, std::string& out,
                  bool required, int table_line) {
    const toml::node* n = t.get(key);
    if (!n) return required ? fail(table_line, prefix + std::string(key), "missing required field") : true;
    if (!n->is_string()) return fail(line_of(*n), prefix + std::string(key), "must be a string");
    out = n->as_string()->get();
    if (required && out.empty()) return fail(line_of(*n), prefix + std::string(key), "must not be empty");
    return true;
  }

  template <class U>
  bool get_uint(const toml::table& t, const std::string& prefix, std::string_view key, U& out, std::int64_t lo,
                std::int64_t hi) {
    const toml::node* n = t.get(key);
    if (!n) return true;
    if (!n->is_integer()) return fail(line_of(*n), prefix + std::string(key), "must be an integer");
    std::int64_t v = n->as_integer()->get();
    if (v < lo || v > hi)
      return fail(line_of(*n), prefix + std::string(key),
                  "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "] (got " + std::to_string(v) + ")");
    out = static_cast<U>(v);
    return true;
  }

  bool get_number(const toml::table& t, const std::string& prefix, std::string_view key, double& out) {
    const toml::node* n = t.get(key);
    if (!n) return true;
    if (n->is_integer()) out = static_cast<double>(n->as_integer()->get());
    else if (n->is_floating_point()) out = n->as_floating_point()->get();
    else return fail(line_of(*n), prefix + std::string(key), "must be a number");
    if (out < 0) return fail(line_of(*n), prefix + std::string(key), "must not be negative");
    return true;
  }

  bool get_string_array(const toml::table& t, const std::string& prefix, std::string_view key,
                        std::vector<std::string>& out) {
    const toml::node* n = t.get(key);
    if (!n) return true;
    if (!n->is_array()) return fail(line_of(*n), prefix + std::string(key), "must be an array of strings");
    const toml::array& a = *n->as_array();
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_string())
        return fail(line_of(a[i]), prefix + std::string(key) + "[" + std::to_string(i) + "]", "must be a string");
      out.push_back(a[i].as_string()->get());
    }
    return true;
  }

  // A sub-table that must be a table when present.
  const toml::table* table(const toml::table& root, std::string_view key) {
    const toml::node* n = root.get(key);
    if (!n) return nullptr;
    if (!n->is_table()) {
      fail(line_of(*n), std::string(key), "must be a table ([" + std::string(key) + "])");
      return nullptr;
    }
    return n->as_table();
  }

 private:
  std::string source_;
  std::string err_;
};

bool parse_agent_table(checker& c, const toml::table& root, agent_config& cfg) {
  const toml::table* t = c.table(root, "agent");
  if (c.failed()) return false;
  if (!t) return c.fail(1, "agent", "missing required table [agent]");
  int line = checker::line_of(*t);
  if (!c.only_keys(*t, "agent.", {"node", "namespace", "nats", "worker_binary", "metrics_port"})) return false;
  if (!c.get_uint(*t, "agent.", "metrics_port", cfg.metrics_port, 0, 65535)) return false;
  if (!c.get_string(*t, "agent.", "node", cfg.node, true, line)) return false;
  if (!subjects::valid_token(cfg.node))
    return c.fail(checker::line_of(*t->get("node")), "agent.node", "must match [A-Za-z0-9_-]+ (got \"" + cfg.node + "\")");
  if (!c.get_string(*t, "agent.", "namespace", cfg.ns, false, line)) return false;
  if (!subjects::valid_token(cfg.ns))
    return c.fail(checker::line_of(*t->get("namespace")), "agent.namespace", "must match [A-Za-z0-9_-]+");
  if (!c.get_string(*t, "agent.", "worker_binary", cfg.worker_binary, false, line)) return false;
  const toml::node* nats = t->get("nats");
  if (!nats) return c.fail(line, "agent.nats", "missing required field (list of NATS server URLs)");
  if (nats->is_string()) {
    cfg.nats.push_back(nats->as_string()->get());
  } else if (!c.get_string_array(*t, "agent.", "nats", cfg.nats)) {
    return false;
  }
  if (cfg.nats.empty()) return c.fail(checker::line_of(*nats), "agent.nats", "must name at least one server");
  for (std::size_t i = 0; i < cfg.nats.size(); ++i) {
    const std::string& u = cfg.nats[i];
    if (u.rfind("nats://", 0) != 0 && u.rfind("tls://", 0) != 0)
      return c.fail(checker::line_of(*nats), "agent.nats[" + std::to_string(i) + "]",
                    "must start with nats:// or tls:// (got \"" + u + "\")");
  }
  return true;
}

bool parse_auth(checker& c, const toml::table& root, agent_config& cfg) {
  const toml::table* t = c.table(root, "auth");
  if (c.failed()) return false;
  if (!t) return true;
  if (!c.only_keys(*t, "auth.", {"user", "password_file", "token_file", "creds", "tls", "tls_ca", "tls_cert", "tls_key",
                                 "worker_user", "worker_password_file", "worker_creds"}))
    return false;
  int line = checker::line_of(*t);
  auto& a = cfg.auth;
  for (auto [key, field] : std::initializer_list<std::pair<std::string_view, std::string*>>{
           {"user", &a.user}, {"password_file", &a.password_file}, {"token_file", &a.token_file}, {"creds", &a.creds},
           {"tls_ca", &a.tls_ca}, {"tls_cert", &a.tls_cert}, {"tls_key", &a.tls_key}, {"worker_user", &a.worker_user},
           {"worker_password_file", &a.worker_password_file}, {"worker_creds", &a.worker_creds}})
    if (!c.get_string(*t, "auth.", key, *field, false, line)) return false;
  if (const toml::node* n = t->get("tls")) {
    if (!n->is_boolean()) return c.fail(checker::line_of(*n), "auth.tls", "must be true or false");
    a.tls = n->as_boolean()->get();
  }
  if (!a.user.empty() && a.password_file.empty() && a.creds.empty())
    return c.fail(line, "auth.password_file", "auth.user needs a password_file (or creds)");
  return true;
}

bool parse_resources(checker& c, const toml::table& root, agent_config& cfg) {
  const toml::table* t = c.table(root, "resources");
  if (c.failed()) return false;
  if (!t) return true;
  if (!c.only_keys(*t, "resources.", {"cpus", "memory_gb", "devices"})) return false;
  if (!c.get_uint(*t, "resources.", "cpus", cfg.resources.cpus, 0, 1 << 20)) return false;
  if (!c.get_number(*t, "resources.", "memory_gb", cfg.resources.memory_gb)) return false;
  return c.get_string_array(*t, "resources.", "devices", cfg.resources.devices);
}

bool parse_restart(checker& c, const toml::table& root, agent_config& cfg) {
  const toml::table* t = c.table(root, "restart");
  if (c.failed()) return false;
  if (!t) return true;
  if (!c.only_keys(*t, "restart.",
                   {"max_restarts", "window_s", "backoff_initial_ms", "backoff_max_ms", "shutdown_timeout_ms"}))
    return false;
  auto& r = cfg.restart;
  if (!c.get_uint(*t, "restart.", "max_restarts", r.max_restarts, 0, 1000000)) return false;
  if (!c.get_uint(*t, "restart.", "window_s", r.window_s, 1, 86400 * 7)) return false;
  if (!c.get_uint(*t, "restart.", "backoff_initial_ms", r.backoff_initial_ms, 1, 3600000)) return false;
  if (!c.get_uint(*t, "restart.", "backoff_max_ms", r.backoff_max_ms, 1, 3600000)) return false;
  if (!c.get_uint(*t, "restart.", "shutdown_timeout_ms", r.shutdown_timeout_ms, 0, 3600000)) return false;
  if (r.backoff_max_ms < r.backoff_initial_ms)
    return c.fail(checker::line_of(*t->get("backoff_max_ms")), "restart.backoff_max_ms",
                  "must be >= restart.backoff_initial_ms");
  return true;
}

bool parse_workers(checker& c, const toml::table& root, agent_config& cfg) {
  const toml::node* n = root.get("workers");
  if (!n) return c.fail(1, "workers", "missing: add at least one [[workers]] entry");
  if (!n->is_array_of_tables()) return c.fail(checker::line_of(*n), "workers", "must be an array of tables ([[workers]])");
  const toml::array& a = *n->as_array();
  for (std::size_t i = 0; i < a.size(); ++i) {
    const toml::table& t = *a[i].as_table();
    std::string p = "workers[" + std::to_string(i) + "].";
    int line = checker::line_of(t);
    worker_group w;
    w.line = line;
    if (!c.only_keys(t, p, {"role", "engine", "model", "upstream", "device", "count", "min_count", "max_count", "args", "metrics_port"}))
      return false;
    if (!c.get_uint(t, p, "metrics_port", w.metrics_port, 0, 65535)) return false;
    std::string role;
    if (!c.get_string(t, p, "role", role, true, line)) return false;
    if (!msg::wire_enum_from(role, w.role))
      return c.fail(checker::line_of(*t.get("role")), p + "role",
                    "must be one of both|prefill|decode (got \"" + role + "\")");
    if (!c.get_string(t, p, "engine", w.engine, true, line)) return false;
    if (w.engine != "mock" && w.engine != "native" && w.engine != "openai")
      return c.fail(checker::line_of(*t.get("engine")), p + "engine",
                    "must be one of mock|native|openai (got \"" + w.engine + "\")");
    if (!c.get_string(t, p, "model", w.model, true, line)) return false;
    if (!c.get_string(t, p, "upstream", w.upstream, w.engine == "openai", line)) return false;
    if (!w.upstream.empty() && w.engine != "openai")
      return c.fail(checker::line_of(*t.get("upstream")), p + "upstream", "is only for engine \"openai\"");
    if (!c.get_string(t, p, "device", w.device, false, line)) return false;
    if (!w.device.empty() && !cfg.resources.devices.empty() &&
        std::find(cfg.resources.devices.begin(), cfg.resources.devices.end(), w.device) == cfg.resources.devices.end())
      return c.fail(checker::line_of(*t.get("device")), p + "device",
                    "\"" + w.device + "\" is not listed in resources.devices");
    if (!c.get_uint(t, p, "count", w.count, 0, 1024)) return false;
    w.max_count = std::max<std::uint32_t>(w.count, 8);
    if (!c.get_uint(t, p, "min_count", w.min_count, 0, 1024)) return false;
    if (!c.get_uint(t, p, "max_count", w.max_count, 0, 1024)) return false;
    if (w.min_count > w.max_count)
      return c.fail(checker::line_of(*t.get("min_count")), p + "min_count", "must be <= max_count");
    if (w.count < w.min_count || w.count > w.max_count)
      return c.fail(t.get("count") ? checker::line_of(*t.get("count")) : line, p + "count",
                    "must lie in [min_count, max_count] = [" + std::to_string(w.min_count) + ", " +
                        std::to_string(w.max_count) + "]");
    if (w.metrics_port > 0 && w.metrics_port + std::max<std::uint32_t>(w.max_count, 1) - 1 > 65535)
      return c.fail(checker::line_of(*t.get("metrics_port")), p + "metrics_port",
                    "the group's workers take metrics_port + 0 .. max_count - 1: over 65535 at max_count " +
                        std::to_string(w.max_count));
    if (!c.get_string_array(t, p, "args", w.args)) return false;
    for (const auto& prev : cfg.workers)
      if (prev.role == w.role)
        return c.fail(checker::line_of(*t.get("role")), p + "role",
                      "a [[workers]] entry for role \"" + role + "\" already exists at line " +
                          std::to_string(prev.line) + " (one entry per role; use count)");
    cfg.workers.push_back(std::move(w));
  }
  if (cfg.workers.empty()) return c.fail(checker::line_of(*n), "workers", "needs at least one entry");
  return true;
}

}  // namespace

result<agent_config> parse_agent_config(std::string_view text, const std::string& source_name) {
  toml::parse_result parsed = toml::parse(text, source_name);
  if (!parsed) {
    const auto& e = parsed.error();
    return make_error(errc::bad_request, source_name + ":" + std::to_string(e.source().begin.line) +
                                             ": syntax: " + std::string(e.description()));
  }
  const toml::table& root = parsed.table();
  checker c(source_name);
  agent_config cfg;
  cfg.source_name = source_name;
  bool ok = c.only_keys(root, "", {"agent", "auth", "resources", "restart", "workers"}) &&
            parse_agent_table(c, root, cfg) && parse_auth(c, root, cfg) && parse_resources(c, root, cfg) &&
            parse_restart(c, root, cfg) && parse_workers(c, root, cfg);
  if (!ok) return make_error(errc::bad_request, c.message());
  return cfg;
}

result<agent_config> load_agent_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(errc::io_error, "cannot read config file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return make_error(errc::io_error, "error reading config file " + path);
  return parse_agent_config(ss.str(), path);
}

}  // namespace yard::cluster
