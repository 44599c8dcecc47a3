// cluster/bus_config_command.cpp — `yard bus-config`: the permissioned
// nats-server config for a Switchyard deployment.
//
// Owns: printing users + per-role permissions (cluster/bus_permissions) as a
// nats-server config. Passwords are written as nats-server environment
// variables ($YARD_<USER>_PASSWORD) so the file itself holds no secret.
// docs/hardened/nats-server.conf is this command's default output.
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cluster/bus_permissions.hpp"
#include "cluster/process_options.hpp"
#include "messages/subject_token.hpp"
#include "tools/commands.hpp"

namespace yard::cmd {

namespace {

std::string env_name(const std::string& user) {
  std::string out = "YARD_";
  for (char c : user) out += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(c)) : '_';
  return out + "_PASSWORD";
}

}  // namespace

int run_bus_config(int argc, char** argv) {
  CLI::App app{"yard bus-config: print a nats-server config with Switchyard's per-role users and permissions"};
  std::string ns = "default";
  std::vector<std::string> specs;
  app.add_option("--namespace", ns, "subject namespace")->check(cluster::subject_token_check())->capture_default_str();
  app.add_option("--user", specs,
                 "USER:ROLE[:INSTANCE] (roles client|frontend|router|worker|agent|planner|node; INSTANCE = a worker id or "
                 "agent node); default one user per role, named after it");
  CLI11_PARSE(app, argc, argv);
  std::vector<cluster::bus_user> users;
  if (specs.empty())
    for (const char* r : {"client", "frontend", "router", "worker", "agent", "planner"}) specs.push_back(std::string(r) + ":" + r);
  for (const auto& spec : specs) {
    auto c1 = spec.find(':');
    if (c1 == std::string::npos) {
      std::fprintf(stderr, "yard bus-config: --user %s: expected USER:ROLE[:INSTANCE]\n", spec.c_str());
      return 2;
    }
    auto c2 = spec.find(':', c1 + 1);
    std::string name = spec.substr(0, c1);
    std::string role = spec.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1);
    auto r = cluster::parse_bus_role(role);
    if (!r || name.empty()) {
      std::fprintf(stderr, "yard bus-config: --user %s: unknown role '%s'\n", spec.c_str(), role.c_str());
      return 2;
    }
    const std::string instance = c2 == std::string::npos ? "" : spec.substr(c2 + 1);
    // The instance becomes a subject token of the user's permissions: '*' or '>' would let one worker speak for all.
    if (!subjects::valid_token(name) || (c2 != std::string::npos && !subjects::valid_token(instance))) {
      std::fprintf(stderr, "yard bus-config: --user %s: USER and INSTANCE must be 1 to 128 characters of [A-Za-z0-9_-]\n",
                   spec.c_str());
      return 2;
    }
    users.push_back({name, "$" + env_name(name), *r, instance});
  }
  std::printf("# nats-server config for Switchyard namespace '%s' (yard bus-config).\n", ns.c_str());
  std::printf("# No anonymous access. Each user's password comes from the server's environment\n");
  std::printf("# ($YARD_<USER>_PASSWORD); each user receives replies only on its own _INBOX_<user>.> prefix.\n");
  std::printf("# A password must start with a letter: nats-server parses a variable's value like a config value.\n");
  std::printf("max_payload: 8388608\n\n%s", cluster::render_authorization(users, ns).c_str());
  return 0;
}

}  // namespace yard::cmd
