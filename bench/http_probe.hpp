// bench/http_probe.hpp — a minimal blocking HTTP/1.1 keep-alive client for
// benches that drive thousands of sockets or need exact timing (no library
// thread pools, no per-request allocation beyond the response).
//
// Owns: its one loopback socket (reconnects after the server closes it).
// Must not touch: anything but the port it was given.
// Thread-safety: one http_probe per thread.
#pragma once

#include <string>

namespace yard::bench {

// A connected TCP_NODELAY loopback socket, or -1.
int connect_loopback(int port);
bool send_all(int fd, const std::string& bytes);
// A POST with a JSON body; keep_alive = false adds "Connection: close".
std::string post_request(const std::string& path, const std::string& json_body, bool keep_alive = true);

class http_probe {
 public:
  explicit http_probe(int port) : port_(port) {}
  ~http_probe();
  http_probe(const http_probe&) = delete;
  http_probe& operator=(const http_probe&) = delete;

  // Sends a whole request, reads one Content-Length response; its status, or -1.
  int request(const std::string& raw, std::string* body = nullptr);
  int get(const std::string& path, std::string* body = nullptr);
  // A value from the server's /metrics (the first line starting with `name `), or -1.
  double metric(const std::string& name);

 private:
  int port_;
  int fd_ = -1;
  std::string buf_;
};

}  // namespace yard::bench
