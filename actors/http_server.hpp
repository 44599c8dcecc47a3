// actors/http_server.hpp — the OpenAI-compatible HTTP API.
//
// Owns: the cpp-httplib server, its thread pool and routes:
//   POST /v1/completions, POST /v1/chat/completions (JSON or SSE streaming
//   ending with `data: [DONE]`), GET /v1/models, GET /health, GET /metrics.
// Each request runs on one pool thread that opens a stream on the frontend
// actor and relays its chunks; a client that disconnects mid-stream cancels
// its request on the worker.
// Must not touch: NATS (everything goes through the frontend actor).
// Thread-safety: start/stop from one thread; handlers run on pool threads.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <caf/actor.hpp>

#include "actors/frontend_actor.hpp"
#include "actors/metrics.hpp"

namespace httplib {
class Server;
}

namespace yard::actors {

struct http_options {
  std::string host = "0.0.0.0";        // listen address (default all interfaces)
  int port = 8000;                     // (default 8000)
  std::size_t max_body_bytes = 4u << 20;  // larger bodies get 413 (default 4 MiB)
  int threads = 128;                   // concurrent requests served (default 128)
  int request_timeout_ms = 600000;     // whole-request limit (default 10 min)
  std::string default_model;           // used when a request names none (default: first served)
  std::string id_prefix = "cmpl";      // response id prefix
};

class http_server {
 public:
  http_server(http_options opts, caf::actor frontend, std::shared_ptr<frontend_metrics> metrics,
              std::shared_ptr<cluster_view> view);
  ~http_server();

  // Binds and starts serving on a background thread. Fails when the port is taken.
  status start();
  void stop();
  int port() const { return port_; }

 private:
  void install_routes();
  http_options opts_;
  caf::actor frontend_;
  std::shared_ptr<frontend_metrics> metrics_;
  std::shared_ptr<cluster_view> view_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace yard::actors
