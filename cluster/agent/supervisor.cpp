// cluster/agent/supervisor.cpp — fork/exec, reaping, backoff and shutdown.
#include "cluster/agent/supervisor.hpp"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>

#include "common/log.hpp"

extern char** environ;

namespace yard::cluster {

using clock_type = std::chrono::steady_clock;

const char* to_string(child_state s) {
  switch (s) {
    case child_state::running: return "running";
    case child_state::backoff: return "backoff";
    case child_state::stopping: return "stopping";
    case child_state::stopped: return "stopped";
    case child_state::failed: return "failed";
  }
  return "unknown";
}

struct supervisor::child {
  child_spec spec;
  child_state state = child_state::backoff;
  pid_t pid = -1;
  std::uint32_t restarts = 0;
  std::uint32_t consecutive = 0;           // crashes since the last stable run
  std::deque<clock_type::time_point> restart_times;
  clock_type::time_point next_start{};     // when in backoff
  clock_type::time_point started_at{};
  clock_type::time_point stop_deadline{};  // when stopping
  bool killed = false;                     // SIGKILL already sent while stopping
  bool remove_when_gone = false;
  bool first_spawn_done = false;
  std::string last_exit;
};

namespace {

std::string describe_wait(int st) {
  if (WIFEXITED(st)) return "exit " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return "signal " + std::to_string(WTERMSIG(st));
  return "status " + std::to_string(st);
}

void signal_group(pid_t pid, int sig) {
  if (pid <= 0) return;
  ::kill(-pid, sig);  // the child leads its own group
  ::kill(pid, sig);   // in case it has not reached setpgid yet
}

}  // namespace

supervisor::supervisor(supervisor_options opts) : opts_(std::move(opts)) {
  thread_ = std::thread([this] { monitor_loop(); });
}

supervisor::~supervisor() {
  stop_all(5000);
  {
    std::lock_guard<std::mutex> lk(mu_);
    quit_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

status supervisor::start_child(child_spec spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) return make_error(errc::bad_request, "child '" + spec.name + "' has no argv");
  if (spec.name.empty()) return make_error(errc::bad_request, "child needs a name");
  std::unique_lock<std::mutex> lk(mu_);
  auto it = children_.find(spec.name);
  if (it != children_.end()) {
    child_state s = it->second->state;
    if (s != child_state::stopped && s != child_state::failed)
      return make_error(errc::conflict, "child '" + spec.name + "' already exists (" + to_string(s) + ")");
    children_.erase(it);
  }
  auto c = std::make_unique<child>();
  c->spec = std::move(spec);
  c->next_start = clock_type::now();
  child* raw = c.get();
  std::string name = raw->spec.name;
  children_.emplace(name, std::move(c));
  wake_.notify_all();
  cv_.wait_for(lk, std::chrono::seconds(10), [&] {
    auto f = children_.find(name);
    return f == children_.end() || f->second.get() != raw || raw->first_spawn_done || quit_;
  });
  return {};
}

status supervisor::stop_child(const std::string& name, std::uint32_t timeout_ms) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = children_.find(name);
  if (it == children_.end()) return make_error(errc::not_found, "no child named '" + name + "'");
  child& c = *it->second;
  c.remove_when_gone = true;
  if (c.pid > 0) {
    if (c.state != child_state::stopping) {
      signal_group(c.pid, SIGTERM);
      c.state = child_state::stopping;
      c.stop_deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms);
    }
  } else {
    c.state = child_state::stopped;
  }
  wake_.notify_all();
  cv_.notify_all();
  return {};
}

void supervisor::stop_all(std::uint32_t timeout_ms) {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [n, c] : children_) names.push_back(n);
  }
  for (const auto& n : names) stop_child(n, timeout_ms);
  std::unique_lock<std::mutex> lk(mu_);
  // The monitor SIGKILLs at the deadline; the extra margin only guards a bug.
  cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms) + std::chrono::seconds(10),
               [&] { return children_.empty() || quit_; });
}

bool supervisor::wait_gone(const std::string& name, std::uint32_t timeout_ms) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] {
    auto it = children_.find(name);
    if (it == children_.end()) return true;
    const child& c = *it->second;
    return c.pid <= 0 && (c.state == child_state::stopped || c.state == child_state::failed);
  });
}

std::vector<child_info> supervisor::children() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<child_info> out;
  for (const auto& [n, c] : children_)
    out.push_back(child_info{n, c->spec.group, c->state, c->pid, c->restarts, c->last_exit});
  return out;
}

std::vector<pid_t> supervisor::live_pids() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<pid_t> out;
  for (const auto& [n, c] : children_)
    if (c->pid > 0) out.push_back(c->pid);
  return out;
}

void supervisor::monitor_loop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!quit_) {
    std::vector<child_event> events;
    tick(events);
    if (!events.empty()) {
      lk.unlock();
      auto log = component_logger("supervisor");
      for (const auto& e : events) {
        if (e.kind == "gave_up")
          log->error("child {} gave up: {}", e.name, e.detail);
        else if (e.kind == "exited" || e.kind == "restarting")
          log->warn("child {} (pid {}) {}: {}", e.name, e.pid, e.kind, e.detail);
        else
          log->info("child {} (pid {}) {} {}", e.name, e.pid, e.kind, e.detail);
        if (opts_.on_event) opts_.on_event(e);
      }
      lk.lock();
    }
    wake_.wait_for(lk, std::chrono::milliseconds(opts_.tick_ms));
  }
}

void supervisor::tick(std::vector<child_event>& events) {
  auto now = clock_type::now();
  bool changed = false;
  for (auto it = children_.begin(); it != children_.end();) {
    child& c = *it->second;
    if (c.pid > 0) {
      int st = 0;
      pid_t r = ::waitpid(c.pid, &st, WNOHANG);
      if (r == c.pid || (r < 0 && errno == ECHILD)) {
        on_exit(c, r == c.pid ? st : 0, events);
        changed = true;
      } else if (c.state == child_state::stopping && !c.killed && now >= c.stop_deadline) {
        signal_group(c.pid, SIGKILL);
        c.killed = true;
        events.push_back({c.spec.name, "killed", c.pid, "did not exit within the stop timeout; SIGKILL"});
      }
    }
    if (c.pid <= 0 && c.state == child_state::backoff && now >= c.next_start) {
      spawn(c, events);
      changed = true;
    }
    if (c.pid <= 0 && c.state == child_state::stopped && c.remove_when_gone) {
      it = children_.erase(it);
      changed = true;
      continue;
    }
    ++it;
  }
  if (changed) cv_.notify_all();
}

void supervisor::on_exit(child& c, int wstatus, std::vector<child_event>& events) {
  auto now = clock_type::now();
  pid_t old = c.pid;
  ::kill(-old, SIGKILL);  // leftovers of its group (grandchildren) must not outlive it
  c.pid = -1;
  c.last_exit = describe_wait(wstatus);
  if (c.state == child_state::stopping) {
    c.state = child_state::stopped;
    events.push_back({c.spec.name, "stopped", old, c.last_exit});
    return;
  }
  events.push_back({c.spec.name, "exited", old, c.last_exit});
  const restart_policy& p = c.spec.policy;
  while (!c.restart_times.empty() && now - c.restart_times.front() > std::chrono::milliseconds(p.window_ms))
    c.restart_times.pop_front();
  if (c.restart_times.size() >= p.max_restarts) {
    c.state = child_state::failed;
    events.push_back({c.spec.name, "gave_up", old,
                      std::to_string(c.restart_times.size()) + " restarts within " + std::to_string(p.window_ms) +
                          " ms (last: " + c.last_exit + ")"});
    return;
  }
  if (now - c.started_at >= std::chrono::milliseconds(p.stable_ms)) c.consecutive = 0;
  std::uint64_t delay = p.backoff_initial_ms;
  for (std::uint32_t i = 0; i < c.consecutive && delay < p.backoff_max_ms; ++i) delay *= 2;
  delay = std::min<std::uint64_t>(delay, p.backoff_max_ms);
  ++c.consecutive;
  ++c.restarts;
  c.restart_times.push_back(now);
  c.state = child_state::backoff;
  c.next_start = now + std::chrono::milliseconds(delay);
  events.push_back({c.spec.name, "restarting", old, "in " + std::to_string(delay) + " ms (restart " +
                                                       std::to_string(c.restarts) + ")"});
}

void supervisor::spawn(child& c, std::vector<child_event>& events) {
  // Everything the child touches is prepared before fork: after fork only
  // async-signal-safe calls are allowed in a multi-threaded process.
  std::vector<char*> argv;
  for (auto& a : c.spec.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    std::string key = kv.substr(0, kv.find('='));
    bool overridden = std::any_of(c.spec.env.begin(), c.spec.env.end(),
                                  [&](const std::string& x) { return x.compare(0, key.size() + 1, key + "=") == 0; });
    if (!overridden) env_store.push_back(std::move(kv));
  }
  for (const auto& e : c.spec.env) env_store.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(125);  // the supervisor died before prctl
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
      for (int fd = 3; fd < 4096; ++fd) ::close(fd);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  c.first_spawn_done = true;
  if (pid < 0) {
    int err = errno;
    c.last_exit = std::string("fork failed: ") + std::strerror(err);
    // Treat like a crash so the restart policy applies.
    c.state = child_state::running;
    c.pid = -1;
    c.started_at = clock_type::now();
    events.push_back({c.spec.name, "exited", -1, c.last_exit});
    c.state = child_state::backoff;
    c.next_start = clock_type::now() + std::chrono::milliseconds(c.spec.policy.backoff_max_ms);
    return;
  }
  ::setpgid(pid, pid);
  c.pid = pid;
  c.killed = false;
  c.state = child_state::running;
  c.started_at = clock_type::now();
  events.push_back({c.spec.name, "started", pid, c.spec.argv[0]});
}

}  // namespace yard::cluster
