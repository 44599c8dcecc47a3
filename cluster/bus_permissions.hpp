// cluster/bus_permissions.hpp — who may say what on the NATS bus.
//
// Owns: the permission matrix of Switchyard's roles (client, frontend, router,
// worker, agent, planner, and `node` = everything `yard up` runs in one
// process), per-user inbox prefixes, and rendering users + permissions as a
// nats-server `authorization { users = [...] }` block. `yard up` feeds its
// embedded server with it; `yard bus-config` prints it for a real deployment
// (docs/hardened/).
// Must not touch: connections, processes. Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace yard::cluster {

enum class bus_role { client, frontend, router, worker, agent, planner, node };

std::optional<bus_role> parse_bus_role(const std::string& name);
const char* bus_role_name(bus_role r);

struct bus_permissions {
  std::vector<std::string> publish;    // allowed publish subjects
  std::vector<std::string> subscribe;  // allowed subscribe subjects
  bool allow_responses = false;        // may answer the reply subject of any message it received
};

// The inbox prefix of `user`: its replies arrive on `<prefix>.>` and nobody
// else may subscribe there ("_INBOX_<user>", user sanitised to [A-Za-z0-9_-]).
std::string inbox_prefix_for(const std::string& user);

// What `role` may do in namespace `ns`. `instance` narrows a worker to its own
// subjects (its id) and an agent to its node's control subject; "" or "*" = any.
bus_permissions permissions_for(bus_role role, const std::string& ns, const std::string& user,
                                const std::string& instance = "");

struct bus_user {
  std::string name;
  std::string password;   // plain (the file is 0600) or a bcrypt hash ("$2a$...")
  bus_role role = bus_role::client;
  std::string instance;   // see permissions_for (default any)
};

// The `authorization { users = [...] }` block for these users (no anonymous
// access: a connection without valid credentials is refused).
std::string render_authorization(const std::vector<bus_user>& users, const std::string& ns);

// A random password (hex, 32 bytes of entropy), from OpenSSL's RNG.
result<std::string> random_password();

}  // namespace yard::cluster
