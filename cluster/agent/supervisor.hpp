// cluster/agent/supervisor.hpp — one-for-one process supervisor.
//
// Owns: child processes it starts (fork/exec), their restart policy and their
// shutdown. Each child runs in its own process group and gets
// PR_SET_PDEATHSIG(SIGKILL) so it dies with the supervising process; the
// fork happens on the supervisor's own monitor thread, which lives as long as
// the supervisor (PDEATHSIG fires when the forking *thread* exits).
// Restart policy: a child that exits without being asked is restarted after a
// backoff (initial, doubling per consecutive crash, capped; reset after the
// child stayed up `stable_ms`); more than `max_restarts` restarts inside
// `window_ms` and the supervisor gives up on that child (state failed, logged).
// Stopping: SIGTERM to the child's group (a worker drains), wait up to a
// timeout, then SIGKILL the group. Whatever is left in a dead child's group
// is SIGKILLed too, so no grandchild outlives its child.
// Must not touch: other children of this process (waitpid by pid only), NATS.
// Thread-safety: all public methods are thread-safe.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.hpp"

namespace yard::cluster {

struct restart_policy {
  std::uint32_t max_restarts = 5;          // restarts allowed within window_ms (default 5)
  std::uint32_t window_ms = 60000;         // default 60 s
  std::uint32_t backoff_initial_ms = 250;  // default 250 ms
  std::uint32_t backoff_max_ms = 10000;    // default 10 s
  std::uint32_t stable_ms = 10000;         // up this long = healthy, backoff resets (default 10 s)
};

struct child_spec {
  std::string name;                 // unique within the supervisor
  std::string group;                // free label (the agent uses the worker role's wire name)
  std::vector<std::string> argv;    // argv[0] is the executable path (execv, no PATH lookup)
  std::vector<std::string> env;     // extra "KEY=VALUE" entries on top of ours (default none)
  restart_policy policy;
};

enum class child_state { running, backoff, stopping, stopped, failed };
const char* to_string(child_state s);

struct child_info {
  std::string name;
  std::string group;
  child_state state = child_state::stopped;
  pid_t pid = -1;              // -1 when not running
  std::uint32_t restarts = 0;  // total restarts so far
  std::string last_exit;       // "exit 1", "signal 9", "" before the first exit
};

// Events for logs and tests: "started", "exited", "restarting", "gave_up", "stopped".
struct child_event {
  std::string name;
  std::string kind;
  pid_t pid = -1;
  std::string detail;
};

struct supervisor_options {
  std::uint32_t tick_ms = 20;   // monitor loop period (default 20 ms)
  std::function<void(const child_event&)> on_event;  // called on the monitor thread, no locks held
};

class supervisor {
 public:
  explicit supervisor(supervisor_options opts = {});
  // Stops every child (SIGTERM, 5 s, SIGKILL) and joins the monitor thread.
  ~supervisor();
  supervisor(const supervisor&) = delete;
  supervisor& operator=(const supervisor&) = delete;

  // Starts a child; errc::conflict for a duplicate live name, errc::bad_request
  // for an empty argv. Returns once the fork happened (exec failures show up
  // as exit 127 and follow the restart policy).
  status start_child(child_spec spec);
  // Asks a child to stop: SIGTERM now, SIGKILL after timeout_ms. Returns at
  // once; the child is removed once it has exited (children() shows
  // "stopping" until then). errc::not_found for an unknown name.
  status stop_child(const std::string& name, std::uint32_t timeout_ms);
  // Stops all children like stop_child and blocks until every one has exited.
  void stop_all(std::uint32_t timeout_ms);
  // Blocks until `name` has no process (stopped, failed or removed) or
  // timeout_ms passed; true when it is gone.
  bool wait_gone(const std::string& name, std::uint32_t timeout_ms);

  std::vector<child_info> children() const;
  std::vector<pid_t> live_pids() const;

 private:
  struct child;
  void monitor_loop();
  void tick(std::vector<child_event>& events);
  void spawn(child& c, std::vector<child_event>& events);  // monitor thread only
  void on_exit(child& c, int wstatus, std::vector<child_event>& events);
  // Spawn requests go through the monitor thread so PDEATHSIG binds to it.
  supervisor_options opts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // state changes (waiters)
  std::condition_variable wake_;     // wakes the monitor early
  std::map<std::string, std::unique_ptr<child>> children_;
  std::uint64_t spawn_seq_ = 0, spawned_seq_ = 0;  // start_child waits for the monitor to fork
  bool quit_ = false;
  std::thread thread_;
};

}  // namespace yard::cluster
