#include "bench/http_probe.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace yard::bench {

int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool send_all(int fd, const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    auto n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

std::string post_request(const std::string& path, const std::string& json_body, bool keep_alive) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(json_body.size()) + (keep_alive ? "" : "\r\nConnection: close") + "\r\n\r\n" + json_body;
}

http_probe::~http_probe() {
  if (fd_ >= 0) ::close(fd_);
}

int http_probe::request(const std::string& raw, std::string* body) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (fd_ < 0) {
      fd_ = connect_loopback(port_);
      buf_.clear();
      if (fd_ < 0) return -1;
    }
    if (!send_all(fd_, raw)) {
      ::close(fd_);
      fd_ = -1;
      continue;  // the server closed an idle keep-alive connection: once more on a new one
    }
    std::size_t head_end = std::string::npos, need = 0;
    char tmp[16384];
    while (true) {
      if (head_end == std::string::npos) {
        auto p = buf_.find("\r\n\r\n");
        if (p != std::string::npos) {
          head_end = p + 4;
          auto cl = buf_.find("Content-Length: ");
          if (cl == std::string::npos || cl > head_end) {
            ::close(fd_);  // not a Content-Length response: not for this probe
            fd_ = -1;
            return -1;
          }
          need = head_end + std::strtoul(buf_.c_str() + cl + 16, nullptr, 10);
        }
      }
      if (head_end != std::string::npos && buf_.size() >= need) break;
      auto n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) {
        ::close(fd_);
        fd_ = -1;
        if (buf_.empty() && attempt == 0) break;  // closed before answering: retry
        return -1;
      }
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
    if (fd_ < 0) continue;
    int status = std::atoi(buf_.c_str() + 9);  // "HTTP/1.1 200"
    if (body) *body = buf_.substr(head_end, need - head_end);
    bool close_after = buf_.find("Connection: close") < head_end;
    buf_.erase(0, need);
    if (close_after) {
      ::close(fd_);
      fd_ = -1;
    }
    return status;
  }
  return -1;
}

int http_probe::get(const std::string& path, std::string* body) {
  return request("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", body);
}

double http_probe::metric(const std::string& name) {
  std::string body;
  if (get("/metrics", &body) != 200) return -1;
  auto p = body.find("\n" + name + " ");
  if (p == std::string::npos) return -1;
  return std::atof(body.c_str() + p + name.size() + 2);
}

}  // namespace yard::bench
