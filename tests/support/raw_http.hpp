// tests/support/raw_http.hpp — plain-socket HTTP/1.1 client pieces for tests
// that need what a library client hides: half-sent headers, many sockets in
// one thread, closing mid-request, reusing one connection.
//
// Owns: loopback sockets it opens (closed by raw_socket's destructor); the
// socket plumbing itself is bench/http_probe's.
// Must not touch: the server under test beyond its port.
// Thread-safety: one raw_socket per thread.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "bench/http_probe.hpp"  // connect_loopback, send_all, post_request

namespace yard::test_support {

class raw_socket {
 public:
  explicit raw_socket(int port) : fd_(bench::connect_loopback(port)) {}
  ~raw_socket() { close(); }
  raw_socket(const raw_socket&) = delete;
  raw_socket& operator=(const raw_socket&) = delete;
  raw_socket(raw_socket&& o) noexcept : fd_(o.fd_), data(std::move(o.data)) { o.fd_ = -1; }

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(const std::string& s) { return bench::send_all(fd_, s); }
  // Reads what is available within timeout_ms into `data`. Returns bytes
  // read, 0 on EOF (eof() turns true), -1 on timeout or error.
  long read_some(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return -1;
    char buf[8192];
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) eof_ = true;
    if (n > 0) data.append(buf, static_cast<std::size_t>(n));
    return n < 0 ? -1 : n;
  }
  // Reads until `needle` shows up in `data` (from `from`), EOF or the deadline.
  bool read_until(const std::string& needle, int timeout_ms, std::size_t from = 0) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (data.find(needle, from) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0 || eof_) return false;
      read_some(static_cast<int>(left));
    }
    return true;
  }
  // Waits for the server to close the connection (EOF or reset).
  bool wait_closed(int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!eof_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) eof_ = true;
      else data.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  bool eof() const { return eof_; }

  std::string data;  // everything read so far

 private:
  int fd_ = -1;
  bool eof_ = false;
};

using bench::post_request;

inline std::string get_request(const std::string& path) { return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"; }

}  // namespace yard::test_support
