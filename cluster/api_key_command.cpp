// cluster/api_key_command.cpp — `yard api-key`: make an API key for a tenant.
//
// Owns: printing a fresh random key (to give to the tenant, shown once) and
// the line for the `--api-keys` file, which stores only the key's SHA-256.
// Must not touch: the key file itself (the operator edits it).
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "actors/tenant_table.hpp"
#include "cluster/bus_permissions.hpp"
#include "tools/commands.hpp"

namespace yard::cmd {

int run_api_key(int argc, char** argv) {
  CLI::App app{"yard api-key: make an API key; prints the key (give it to the tenant) and its line for --api-keys"};
  std::string tenant;
  bool json = false;
  app.add_option("--tenant", tenant, "the tenant the key belongs to (letters, digits, '_', '-', '.')")
      ->required()
      ->check(CLI::Validator(
          [](std::string& t) {
            return actors::tenant_table::valid_name(t) ? std::string() : "'" + t + "' is not a tenant name --api-keys takes";
          },
          "NAME"));
  app.add_flag("--json", json, "print the JSON form of the file line");
  CLI11_PARSE(app, argc, argv);
  auto secret = cluster::random_password();
  if (!secret) {
    std::fprintf(stderr, "yard api-key: %s\n", secret.err().describe().c_str());
    return 1;
  }
  std::string key = "sk-yard-" + *secret;
  auto hash = actors::tenant_table::key_hash(key);
  std::printf("key: %s\n", key.c_str());
  if (json) std::printf("file line (under \"keys\"): \"%s\": \"%s\"\n", hash.c_str(), tenant.c_str());
  else std::printf("file line (under [keys]): \"%s\" = \"%s\"\n", hash.c_str(), tenant.c_str());
  return 0;
}

}  // namespace yard::cmd
