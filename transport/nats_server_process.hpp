// transport/nats_server_process.hpp — an embedded nats-server child process.
//
// Owns: one `nats-server` child bound to loopback (or a given host) on a port,
// started for `yard up` and for tests that need a real server. The child dies
// with its parent (PR_SET_PDEATHSIG) so a crash leaves no orphan.
// Must not touch: the NATS client side (nats_connection).
// Thread-safety: not thread-safe; one owner.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace yard::transport {

struct nats_server_options {
  std::string binary = "nats-server";  // looked up in PATH and /usr/sbin (default)
  std::string host = "127.0.0.1";      // listen address (default loopback)
  int port = 0;                        // 0 = pick a free port (default)
  int ready_timeout_ms = 5000;         // wait for the port to accept (default 5 s)
  std::vector<std::string> extra_args; // e.g. {"--cluster", "nats://127.0.0.1:6222", "--routes", ...}
  bool quiet = true;                   // discard the server's own log (default)
  // Largest message the server accepts (default 8 MiB: above the 4 MiB body
  // limit of our decoders, so oversize bodies get our 413, not a dropped publish).
  std::size_t max_payload_bytes = 8u << 20;
  // Appended to the generated config file (e.g. an `authorization { ... }`
  // block or `tls { ... }`). The file lives in a private 0700 directory, is
  // 0600 and is removed on stop (default none: anonymous access).
  std::string config_extra;
};

// Returns a port the kernel reports free on 127.0.0.1 right now.
int free_loopback_port();

class nats_server_process {
 public:
  static result<std::unique_ptr<nats_server_process>> start(const nats_server_options& opts);
  ~nats_server_process();  // stops the server

  std::string url() const { return "nats://" + host_ + ":" + std::to_string(port_); }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }

  // SIGTERM, then SIGKILL after 3 s; idempotent.
  void stop();
  // SIGKILL now (fault injection); idempotent.
  void kill_hard();
  // Starts the same server again on the same port (after stop or kill_hard).
  status restart();

 private:
  nats_server_process() = default;
  status spawn();
  nats_server_options opts_;
  std::string host_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::string config_dir_;
  std::string config_path_;
};

}  // namespace yard::transport
