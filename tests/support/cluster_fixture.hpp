// tests/support/cluster_fixture.hpp — real nats-server + in-process cluster for tests.
//
// Owns: helpers the end-to-end tests share: start a real nats-server on a
// free loopback port, a node_runtime with N mock workers, a router and a
// frontend on a free HTTP port, or the same serving the native engine on a
// generated tiny model; spawn `yard` subprocesses (YARD_BIN); read an SSE
// stream. Everything is torn down by destructors (model folders by the caller).
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "backends/mock/mock_engine.hpp"
#include "backends/native/mkmodel.hpp"
#include "cluster/node_runtime.hpp"
#include "transport/nats_server_process.hpp"

namespace yard::test_support {

inline std::unique_ptr<transport::nats_server_process> start_nats() {
  auto s = transport::nats_server_process::start({});
  if (!s) ADD_FAILURE() << "nats-server: " << s.err().describe();
  return s ? std::move(*s) : nullptr;
}

template <class Pred>
bool eventually(Pred p, int timeout_ms = 10000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (p()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return p();
}

// HTTP options for a test frontend: loopback, any free port.
// A plain client connection to `url` (nullptr when it cannot connect).
inline std::unique_ptr<transport::nats_connection> connect_client(const std::string& url) {
  transport::nats_options o;
  o.servers = {url};
  auto c = transport::nats_connection::connect(o);
  return c ? std::move(*c) : nullptr;
}

inline actors::http_options loopback_http() {
  actors::http_options http;
  http.host = "127.0.0.1";
  http.port = 0;
  return http;
}

struct cluster_options {
  int workers = 2;
  double token_delay_ms = 2.0;
  bool with_router = true;
  bool with_frontend = true;
  int stream_timeout_ms = 30000;
  std::size_t max_body_bytes = 4u << 20;
  std::uint32_t max_context = 0;  // mock workers' context in tokens (0 = the mock's default, 4096)
};

inline std::unique_ptr<cluster::node_runtime> start_cluster(const std::string& nats_url, const cluster_options& o = {}) {
  transport::nats_options no;
  no.servers = {nats_url};
  no.reconnect_wait_ms = 100;
  auto rt = cluster::node_runtime::create(no);
  if (!rt) {
    ADD_FAILURE() << rt.err().describe();
    return nullptr;
  }
  cluster::engine_options eng;
  eng.token_delay_ms = o.token_delay_ms;
  eng.max_context = o.max_context;
  for (int i = 0; i < o.workers; ++i) {
    actors::worker_config wc;
    wc.id = "w" + std::to_string(i);
    wc.heartbeat_ms = 100;
    wc.lease_ms = 1000;
    EXPECT_TRUE((*rt)->add_worker(eng, wc).ok());
  }
  if (o.with_router) EXPECT_TRUE((*rt)->add_router({}).ok());
  if (o.with_frontend) {
    actors::frontend_config fc;
    fc.stream_timeout_ms = o.stream_timeout_ms;
    actors::http_options http;
    http.host = "127.0.0.1";
    http.port = 0;
    http.max_body_bytes = o.max_body_bytes;
    EXPECT_TRUE((*rt)->add_frontend(fc, http).ok());
    EXPECT_TRUE(eventually([&] { return (*rt)->live_workers() == static_cast<std::size_t>(o.workers); }));
  }
  return std::move(*rt);
}

// A generated tiny Llama model in a temp folder named after `tag` and this process (the caller removes it);
// empty on failure (a test failure is recorded).
inline std::filesystem::path tiny_model(const std::string& tag, std::uint64_t seed) {
  auto dir = std::filesystem::temp_directory_path() / ("yard-" + tag + "-" + std::to_string(getpid()));
  backends::native::mkmodel_options mo;
  mo.preset = "tiny";
  mo.out = dir.string();
  mo.seed = seed;
  if (auto s = backends::native::write_random_model(mo); !s) {
    ADD_FAILURE() << s.err().describe();
    return {};
  }
  return dir;
}

// A node serving the native engine on `model_dir`: one worker, a router that loads only the folder's
// tokenizer, and a frontend on a free loopback port; returns once the worker is registered.
inline std::unique_ptr<cluster::node_runtime> start_native_node(const std::string& nats_url, const std::string& model_dir) {
  auto node = start_cluster(nats_url, {.workers = 0, .with_router = false, .with_frontend = false});
  if (!node) return nullptr;
  cluster::engine_options eng;
  eng.engine = "native";
  eng.model = model_dir;
  actors::worker_config wc;
  wc.id = "native-0";
  wc.heartbeat_ms = 100;
  EXPECT_TRUE(node->add_worker(eng, wc).ok());
  actors::router_config rc;
  auto tok = cluster::make_prompt_tokenizer(eng);  // tokenizer.json only: the router loads no weights
  EXPECT_TRUE(tok.ok()) << tok.err().describe();
  if (!tok) return nullptr;
  rc.tokenizer = std::move(*tok);
  EXPECT_TRUE(node->add_router(rc).ok());
  actors::http_options http;
  http.host = "127.0.0.1";
  http.port = 0;
  EXPECT_TRUE(node->add_frontend({}, http).ok());
  EXPECT_TRUE(eventually([&] { return node->live_workers() == 1; }));
  return node;
}

// A child `yard ...` process (or, with is_yard false, any program: args[0] is
// its path), killed (SIGKILL) when the handle goes away.
class yard_process {
 public:
  explicit yard_process(std::vector<std::string> args, bool is_yard = true) {
    const char* bin = std::getenv("YARD_BIN");
    std::string path = bin ? bin : "build/bin/yard";
    if (is_yard) args.insert(args.begin(), path);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~yard_process() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void signal(int sig) { ::kill(pid_, sig); }
  // Waits for exit; returns the exit code, or -1 on timeout.
  int wait_exit(int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
};

// The text the mock engine generates for `prompt` (byte tokens, seed 0).
inline std::string mock_expected_text(const std::string& prompt, std::size_t n) {
  std::vector<msg::token_id> toks(prompt.begin(), prompt.end());
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(backends::mock_engine::expected_token(toks, 0, i)));
  return s;
}

// Splits an SSE body into its `data:` payloads.
inline std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    auto end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end == std::string::npos ? body.size() : end + 2;
  }
  return out;
}

}  // namespace yard::test_support
