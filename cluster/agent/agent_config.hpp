// cluster/agent/agent_config.hpp — the `yard agent` config file (TOML).
//
// Owns: the config structs and their parser/validator. A bad file gives an
// error value naming the file, the line and the field, e.g.
//   agent.toml:12: workers[1].role: must be one of both|prefill|decode (got "prefil")
// Unknown keys are errors too (a typo must not be silently ignored). A
// worker role is a string only in the file; it is parsed to msg::worker_role.
// Must not touch: processes, NATS. Thread-safety: plain values, pure functions.
//
// Example:
//   [agent]
//   node = "node-a"                  # required; [A-Za-z0-9_-]+
//   namespace = "default"            # default "default"
//   nats = ["nats://127.0.0.1:4222"] # required, at least one nats:// or tls:// URL
//   metrics_port = 9400              # the agent's Prometheus endpoint (default 0 = off)
//   [auth]                           # optional; secrets never go in this file or any argv
//   user = "agent-a"                 # NATS user of the agent (default none)
//   password_file = "/etc/switchyard/agent.password"   # first line = password
//   token_file = "..."               # or a token (default none)
//   creds = "/etc/switchyard/agent.creds"              # or a NATS credentials file
//   tls = true                       # require TLS (default false; also implied by tls:// URLs)
//   tls_ca = "ca.pem"                # CA, client certificate and key (PEM; default none)
//   tls_cert = "agent.pem"
//   tls_key = "agent.key"
//   worker_user = "worker"           # the workers' own NATS user (default: the agent's)
//   worker_password_file = "..."     # its password file (default: the agent's)
//   worker_creds = "..."             # or its credentials file
//   # Workers get their auth through YARD_NATS_* environment variables, never argv.
//   [resources]
//   cpus = 16                        # default 0 = unknown
//   memory_gb = 128                  # default 0 = unknown
//   devices = ["cuda:0", "cuda:1"]   # default none; a worker's device must be listed
//   [restart]
//   max_restarts = 5                 # per child within window_s (default 5)
//   window_s = 60                    # default 60
//   backoff_initial_ms = 250         # default 250, doubles per consecutive crash
//   backoff_max_ms = 10000           # default 10000
//   shutdown_timeout_ms = 15000      # drain wait before SIGKILL (default 15000)
//   [[workers]]
//   role = "decode"                  # required: both|prefill|decode
//   engine = "mock"                  # required: mock|native
//   model = "mock-7b"                # required
//   device = "cuda:0"                # default "" (cpu / engine default)
//   count = 2                        # default 1, >= 0
//   min_count = 0                    # scale bound on this node (default 0)
//   max_count = 8                    # scale bound on this node (default max(count, 8))
//   args = ["--token-delay-ms", "5"] # extra worker flags (default none)
//   metrics_port = 9500              # instance n serves /metrics on 9500 + n (default 0 = off)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "messages/types.hpp"

namespace yard::cluster {

struct node_resources {
  std::uint32_t cpus = 0;          // 0 = unknown (default)
  double memory_gb = 0;            // 0 = unknown (default)
  std::vector<std::string> devices;  // default none
};

struct restart_settings {
  std::uint32_t max_restarts = 5;        // restarts allowed per child in window (default 5)
  std::uint32_t window_s = 60;           // default 60 s
  std::uint32_t backoff_initial_ms = 250;  // first restart delay (default 250 ms)
  std::uint32_t backoff_max_ms = 10000;    // cap (default 10 s)
  std::uint32_t shutdown_timeout_ms = 15000;  // SIGTERM -> SIGKILL (default 15 s)
};

struct worker_group {
  msg::worker_role role = msg::worker_role::both;  // the file's "both"|"prefill"|"decode" (required)
  std::string engine;              // mock|native|openai
  std::string model;
  std::string upstream;            // openai: the engine server's base URL (--upstream; required there)
  std::string device;              // default ""
  std::uint32_t count = 1;         // started at boot (default 1)
  std::uint32_t min_count = 0;     // default 0
  std::uint32_t max_count = 8;     // default max(count, 8)
  std::vector<std::string> args;   // extra worker flags (default none)
  // Instance n of this group serves Prometheus metrics on metrics_port + n (default 0 = off).
  std::uint32_t metrics_port = 0;
  int line = 0;                    // where the entry starts in the file, for logs
};

struct agent_auth {
  std::string user, password_file, token_file, creds;  // the agent's own (default none)
  bool tls = false;                                    // default false
  std::string tls_ca, tls_cert, tls_key;               // PEM files (default none)
  std::string worker_user, worker_password_file, worker_creds;  // the workers' (default: the agent's)
};

struct agent_config {
  std::string node;
  std::string ns = "default";
  std::vector<std::string> nats;
  node_resources resources;
  restart_settings restart;
  std::vector<worker_group> workers;
  agent_auth auth;                 // [auth] (default none)
  std::string worker_binary;       // [agent] worker_binary, default "" = this executable
  std::uint32_t metrics_port = 0;  // [agent] metrics_port: the agent's own /metrics (default 0 = off; --metrics-port overrides)
  std::string source_name;         // file name used in messages
};

// Parses TOML text; `source_name` prefixes error messages. Errors are
// errc::bad_request with "<source>:<line>: <field>: <what>".
result<agent_config> parse_agent_config(std::string_view text, const std::string& source_name = "config");
// Reads and parses a file (errc::io_error when it cannot be read).
result<agent_config> load_agent_config(const std::string& path);

}  // namespace yard::cluster
