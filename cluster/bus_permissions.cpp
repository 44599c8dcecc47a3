// cluster/bus_permissions.cpp — see bus_permissions.hpp.
#include "cluster/bus_permissions.hpp"

#include <openssl/rand.h>

#include <cstdio>

#include "messages/cluster_subjects.hpp"
#include "messages/subjects.hpp"

namespace yard::cluster {

namespace {

struct role_name {
  bus_role role;
  const char* name;
};
constexpr role_name kRoles[] = {{bus_role::client, "client"},   {bus_role::frontend, "frontend"},
                                {bus_role::router, "router"},   {bus_role::worker, "worker"},
                                {bus_role::agent, "agent"},     {bus_role::planner, "planner"},
                                {bus_role::node, "node"}};

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + quoted(v[i]);
  return out + "]";
}

void append(std::vector<std::string>& to, const std::vector<std::string>& from) {
  for (const auto& s : from) {
    bool have = false;
    for (const auto& t : to) have = have || t == s;
    if (!have) to.push_back(s);
  }
}

}  // namespace

std::optional<bus_role> parse_bus_role(const std::string& name) {
  for (const auto& r : kRoles)
    if (name == r.name) return r.role;
  return std::nullopt;
}

const char* bus_role_name(bus_role role) {
  for (const auto& r : kRoles)
    if (r.role == role) return r.name;
  return "?";
}

std::string inbox_prefix_for(const std::string& user) {
  std::string clean;
  for (char c : user) clean += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return "_INBOX_" + clean;
}

bus_permissions permissions_for(bus_role role, const std::string& ns, const std::string& user,
                                const std::string& instance) {
  const std::string any = instance.empty() ? "*" : instance;
  const std::string inbox = inbox_prefix_for(user) + ".>";
  bus_permissions p;
  switch (role) {
    case bus_role::client:
      // Ask the router; read every process's supervision tree (`yard tree` with the client's credentials).
      p.publish = {subjects::router_generate(ns), subjects::node_tree_all(ns), subjects::node_tree(ns, "*")};
      p.subscribe = {inbox};
      break;
    case bus_role::frontend:
      p.publish = {subjects::router_generate(ns), subjects::worker_cancel(ns), subjects::latency_metrics(ns),
                   subjects::roster(ns), subjects::worker_status(ns, "*")};
      p.subscribe = {inbox, subjects::heartbeat_all(ns)};
      p.allow_responses = true;  // node tree answers
      break;
    case bus_role::router:
      p.publish = {subjects::worker_generate(ns, "*"), subjects::worker_prefill(ns, "*"), subjects::kv_snapshot(ns, "*"),
                   subjects::router_inflight(ns), subjects::roster(ns), subjects::worker_status(ns, "*")};
      p.subscribe = {inbox, subjects::router_generate(ns), subjects::router_prefill(ns), subjects::heartbeat_all(ns),
                     subjects::kv_events_all(ns), subjects::router_inflight(ns), subjects::latency_metrics(ns)};
      p.allow_responses = true;  // error chunks to the client's inbox, prefill errors to the decode worker
      break;
    case bus_role::worker:
      p.publish = {subjects::heartbeat(ns, any), subjects::kv_events(ns, any), subjects::router_prefill(ns),
                   subjects::worker_kv_release(ns, "*")};
      p.subscribe = {inbox,
                     subjects::worker_generate(ns, any),
                     subjects::worker_cancel(ns),
                     subjects::worker_prefill(ns, any),
                     subjects::worker_kv_release(ns, any),
                     subjects::kv_snapshot(ns, any),
                     subjects::worker_status(ns, any),
                     subjects::roster(ns),
                     subjects::heartbeat_all(ns)};
      p.allow_responses = true;  // token chunks to the inboxes it was given; snapshots and status answers
      break;
    case bus_role::agent:
      // `yard tree` runs with an agent's identity: it asks every process for its tree.
      p.publish = {subjects::agent_status(ns), subjects::node_tree_all(ns), subjects::node_tree(ns, "*")};
      p.subscribe = {inbox, subjects::agent_control(ns, any)};
      p.allow_responses = true;  // scale replies
      break;
    case bus_role::planner:
      p.publish = {subjects::agent_control(ns, "*"), subjects::node_tree_all(ns), subjects::node_tree(ns, "*")};
      p.subscribe = {inbox, subjects::latency_metrics(ns), subjects::heartbeat_all(ns), subjects::agent_status(ns)};
      break;
    case bus_role::node:
      for (auto r : {bus_role::frontend, bus_role::router, bus_role::worker}) {
        auto q = permissions_for(r, ns, user, "");
        append(p.publish, q.publish);
        append(p.subscribe, q.subscribe);
      }
      append(p.publish, {subjects::node_tree_all(ns), subjects::node_tree(ns, "*")});  // `yard tree` as the node
      p.allow_responses = true;
      break;
  }
  // Every process that hosts a node runtime answers its supervision tree and
  // the NATS services API ($SRV.PING/INFO/STATS, answered on the asker's inbox).
  if (role == bus_role::frontend || role == bus_role::router || role == bus_role::worker) {
    p.subscribe.push_back(subjects::node_tree(ns, "*"));
    p.subscribe.push_back(subjects::node_tree_all(ns));
    p.subscribe.push_back("$SRV.>");
    p.allow_responses = true;
  }
  // Anyone may discover the services (nats micro ls).
  if (role == bus_role::client || role == bus_role::agent || role == bus_role::planner) p.publish.push_back("$SRV.>");
  return p;
}

std::string render_authorization(const std::vector<bus_user>& users, const std::string& ns) {
  std::string out = "authorization {\n  users = [\n";
  for (const auto& u : users) {
    auto p = permissions_for(u.role, ns, u.name, u.instance);
    out += "    # role " + std::string(bus_role_name(u.role)) + (u.instance.empty() ? "" : " (" + u.instance + ")") + "\n";
    // "$NAME" stays a nats-server variable (resolved from its environment): a shipped config holds no secret.
    std::string pw = !u.password.empty() && u.password[0] == '$' ? u.password : quoted(u.password);
    out += "    { user: " + quoted(u.name) + ", password: " + pw + ",\n";
    out += "      permissions: {\n";
    out += "        publish: { allow: " + list(p.publish) + " }\n";
    out += "        subscribe: { allow: " + list(p.subscribe) + " }\n";
    // Streams answer many times per request, for up to the request deadline.
    if (p.allow_responses) out += "        allow_responses: { max: 10000000, expires: \"15m\" }\n";
    out += "      } }\n";
  }
  out += "  ]\n}\n";
  return out;
}

result<std::string> random_password() {
  unsigned char b[32];
  if (RAND_bytes(b, sizeof b) != 1) return make_error(errc::internal, "OpenSSL RAND_bytes failed");
  std::string out;
  char hex[3];
  for (unsigned char c : b) {
    std::snprintf(hex, sizeof hex, "%02x", c);
    out += hex;
  }
  return out;
}

}  // namespace yard::cluster
