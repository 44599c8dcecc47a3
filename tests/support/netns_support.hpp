// tests/support/netns_support.hpp — helpers of the multi-host tests (label netns).
//
// Owns: finding the repository and the `yard` binary as absolute paths, running
// a shell command (status or output), and ns_process: a command started inside
// a network namespace through one of the tools/netns*.sh scripts, in its own
// process group, killed as a group when the handle goes away.
// Must not touch: namespaces themselves (the scripts create and delete them).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/cluster_fixture.hpp"

namespace yard::test_support {

inline std::string repo_root() {
  if (const char* d = std::getenv("YARD_SOURCE_DIR"); d != nullptr && *d != '\0') return d;
  std::string f = __FILE__;  // <root>/tests/support/netns_support.hpp
  for (int i = 0; i < 3; ++i) f = f.substr(0, f.rfind('/'));
  return f;
}

inline std::string yard_bin() {
  const char* b = std::getenv("YARD_BIN");
  std::string p = b ? b : "build/bin/yard";
  char buf[4096];
  if (p[0] != '/' && ::getcwd(buf, sizeof(buf))) p = std::string(buf) + "/" + p;
  return p;
}

inline bool sh(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

inline std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

// `prefix` is the script invocation up to the command, e.g. {"/bin/bash", "tools/netns.sh", "exec", "yd1", "a"}.
class ns_process {
 public:
  ns_process(std::vector<std::string> prefix, const std::vector<std::string>& cmd) {
    prefix.insert(prefix.end(), cmd.begin(), cmd.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      std::vector<char*> argv;
      for (auto& a : prefix) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~ns_process() { kill(); }
  ns_process(const ns_process&) = delete;
  ns_process& operator=(const ns_process&) = delete;
  void kill() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // SIGTERM to the group, then waits up to timeout_ms; returns the exit code (-1 on timeout).
  int terminate(int timeout_ms) {
    if (pid_ <= 0) return -1;
    ::kill(-pid_, SIGTERM);
    for (int waited = 0; waited < timeout_ms; waited += 20) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      ::usleep(20000);
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
};

// A long prompt (variants of `prompt`, first character changed) until one is
// served from KV pulled from a prefill worker: each answer must be the mock's
// exact text; the last answer is returned (its cached tokens tell). `complete`
// is (prompt, max_tokens) -> the completion's JSON. A decode worker may hear
// of the prefill pool a little after it starts, so the first tries may prefill
// locally.
template <class Complete>
nlohmann::json until_prefilled_remotely(Complete complete, const std::string& prompt, int cached_tokens,
                                        const std::string& variants) {
  nlohmann::json r;
  for (char first : variants) {
    std::string p = prompt;
    p[0] = first;
    r = complete(p, 8);
    if (!r.contains("choices")) {
      ADD_FAILURE() << r.dump();
      return r;
    }
    EXPECT_EQ(r["choices"][0]["text"].get<std::string>(), mock_expected_text(p, 8));
    if (r["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>() >= cached_tokens) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  return r;
}

}  // namespace yard::test_support
