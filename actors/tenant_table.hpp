// actors/tenant_table.hpp — API keys and tenants of the HTTP front door.
//
// Owns: the key file (`--api-keys FILE`, TOML or JSON; keys stored as SHA-256
// hashes, so the file holds no secret), key -> tenant lookup, each tenant's
// allowed models, priority and server-bound cache salt, and its rate limits
// (token buckets on requests/s and tokens/min).
// Must not touch: HTTP parsing or NATS (http_connection applies the verdicts).
// Thread-safety: lookups are const and safe; admit()/charge_tokens() lock.
//
// File format (TOML; JSON has the same shape):
//   [keys]                       # sha256(key) in hex -> tenant
//   "9f86d081884c7d65..." = "acme"
//   [tenants.acme]
//   models = ["mock"]            # optional; absent or empty = every model
//   requests_per_s = 20          # optional; 0 or absent = unlimited (burst = one second's worth)
//   tokens_per_min = 60000       # optional; prompt + completion tokens (burst = one minute's worth)
//   priority = 1                 # optional; higher is admitted first on a busy worker (default 0)
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "actors/token_bucket.hpp"
#include "common/status.hpp"

namespace yard::actors {

struct tenant {
  std::string name;
  std::vector<std::string> models;  // empty = every model
  double requests_per_s = 0;        // 0 = unlimited
  double tokens_per_min = 0;        // 0 = unlimited
  std::int32_t priority = 0;

  bool allows(const std::string& model) const;
};

class tenant_table {
 public:
  using clock = std::chrono::steady_clock;

  // Reads FILE (".json", or JSON text starting with '{', is JSON; anything else TOML).
  static result<std::shared_ptr<tenant_table>> load(const std::string& path);
  static result<std::shared_ptr<tenant_table>> parse(std::string_view text, bool json, const std::string& source);

  // The tenant a presented key belongs to; nullptr for an unknown key.
  const tenant* authenticate(std::string_view key) const;
  // One request of `t` now: ok, or rate_limited with how long to wait.
  status admit(const tenant& t, clock::time_point now, std::chrono::milliseconds& retry_after);
  // Tokens `t` spent (prompt + completion), charged when the request ends.
  void charge_tokens(const tenant& t, std::uint64_t tokens, clock::time_point now);

  // The cache salt a tenant's request runs with: the tenant is bound by the
  // server and length-prefixed, so no client salt can name another tenant's.
  static std::string salt_for(const tenant& t, const std::optional<std::string>& client_salt);
  // Lower-case hex SHA-256 of a key: what the file stores.
  static std::string key_hash(std::string_view key);
  // A tenant name as the file takes it (it lands in metric labels and logs): 1..128 of letters, digits, '_-.'.
  static bool valid_name(const std::string& name);

  std::size_t keys() const { return key_to_tenant_.size(); }
  std::vector<std::string> tenant_names() const;

 private:
  struct buckets {
    token_bucket requests, tokens;
  };
  std::map<std::string, tenant> tenants_;
  std::unordered_map<std::string, std::string> key_to_tenant_;  // hash hex -> tenant name
  std::mutex mu_;
  std::map<std::string, buckets> buckets_;  // made on first use
};

}  // namespace yard::actors
