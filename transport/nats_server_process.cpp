#include "transport/nats_server_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "common/log.hpp"

namespace yard::transport {

namespace {

auto& log() {
  static auto l = component_logger("nats-server");
  return l;
}

std::string find_binary(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = getenv("PATH") ? getenv("PATH") : "";
  path += ":/usr/sbin:/usr/local/sbin:/usr/bin";
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string candidate = path.substr(start, end - start) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

bool port_accepts(const std::string& host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host == "0.0.0.0" ? "127.0.0.1" : host.c_str(), &addr.sin_addr);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace

int free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

result<std::unique_ptr<nats_server_process>> nats_server_process::start(const nats_server_options& opts) {
  std::unique_ptr<nats_server_process> p(new nats_server_process());
  p->opts_ = opts;
  p->host_ = opts.host;
  p->port_ = opts.port > 0 ? opts.port : free_loopback_port();
  if (p->port_ <= 0) return make_error(errc::unavailable, "no free loopback port for nats-server");
  if (auto st = p->spawn(); !st) return st.err();
  return p;
}

status nats_server_process::spawn() {
  std::string bin = find_binary(opts_.binary);
  if (bin.empty())
    return make_error(errc::unavailable, "'" + opts_.binary + "' not found in PATH (apt-get install nats-server)");
  if (port_accepts(host_, port_))
    return make_error(errc::unavailable, "port " + std::to_string(port_) + " is already in use");
  if (config_dir_.empty()) {
    char dir[] = "/tmp/yard-nats-XXXXXX";  // private (0700): the config may hold credentials
    if (::mkdtemp(dir) == nullptr) return make_error(errc::io_error, std::string("mkdtemp: ") + strerror(errno));
    config_dir_ = dir;
  }
  config_path_ = config_dir_ + "/nats-server.conf";
  {
    int fd = ::open(config_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE* f = fd < 0 ? nullptr : ::fdopen(fd, "w");
    if (f == nullptr) {
      if (fd >= 0) ::close(fd);
      return make_error(errc::io_error, "cannot write " + config_path_);
    }
    std::fprintf(f, "max_payload: %zu\n%s\n", opts_.max_payload_bytes, opts_.config_extra.c_str());
    std::fclose(f);
  }
  std::vector<std::string> args = {bin, "-c", config_path_, "-a", host_, "-p", std::to_string(port_)};
  for (const auto& a : opts_.extra_args) args.push_back(a);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return make_error(errc::unavailable, std::string("fork failed: ") + strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    setpgid(0, 0);
    if (opts_.quiet) {
      int devnull = open("/dev/null", O_RDWR);
      if (devnull >= 0) {
        dup2(devnull, 1);
        dup2(devnull, 2);
      }
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.ready_timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int wstatus = 0;
    if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return make_error(errc::unavailable, "nats-server exited at start (status " + std::to_string(wstatus) + ")");
    }
    if (port_accepts(host_, port_)) {
      log()->info("nats-server pid {} listening on {}", pid_, url());
      return status::success();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill_hard();
  return make_error(errc::timeout, "nats-server did not accept on port " + std::to_string(port_) + " in time");
}

nats_server_process::~nats_server_process() {
  stop();
  if (!config_path_.empty()) std::remove(config_path_.c_str());
  if (!config_dir_.empty()) ::rmdir(config_dir_.c_str());
}

void nats_server_process::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 300; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill_hard();
}

void nats_server_process::kill_hard() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

status nats_server_process::restart() {
  stop();
  return spawn();
}

}  // namespace yard::transport
