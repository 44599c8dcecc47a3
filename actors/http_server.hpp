// actors/http_server.hpp — the OpenAI-compatible HTTP API.
//
// Owns: the listening socket, a few I/O threads running one Boost.Asio
// io_context, the open connections (actors/http_connection.*) and their
// lifecycle: connection cap (a clean 503 beyond it), graceful drain on stop.
// Routes: POST /v1/completions, POST /v1/chat/completions (JSON or SSE
// ending with `data: [DONE]`), GET /v1/models, GET /health, GET /metrics.
// Event-driven: no thread is parked on a connection or stream; a stream's
// chunks are written when the frontend actor hands them over. A client that
// disconnects (streamed or not) cancels its request on the worker.
// Must not touch: NATS (requests go through the frontend actor's frontend_port).
// Thread-safety: start/stop from one thread; connections run on the I/O threads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "actors/frontend_actor.hpp"
#include "actors/metrics.hpp"
#include "actors/tenant_table.hpp"

namespace yard::actors {

struct http_options {
  std::string host = "127.0.0.1";      // listen address (default loopback only; 0.0.0.0 for all interfaces)
  int port = 8000;                     // (default 8000; 0 = any free port)
  std::size_t max_body_bytes = 4u << 20;  // larger bodies get 413 (default 4 MiB)
  int io_threads = 2;                  // I/O threads serving every connection (default 2)
  std::size_t max_connections = 16384; // open connections; beyond it a 503 and close (default 16384)
  int header_timeout_ms = 10000;       // a request's header must arrive within this (default 10 s); its body gets the idle timeout
  int idle_timeout_ms = 60000;         // keep-alive connection idle between requests (default 60 s)
  int drain_timeout_ms = 10000;        // stop(): open requests may finish for this long (default 10 s)
  int request_timeout_ms = 600000;     // whole-request limit (default 10 min)
  std::string default_model;           // used when a request names none (default: first served)
  std::string id_prefix = "cmpl";      // response id prefix
  // API keys (--api-keys FILE): when set, every /v1/ request needs a known key
  // (Authorization: Bearer KEY, or an api-key / x-api-key header); null = open.
  std::shared_ptr<tenant_table> tenants;
  // HTTPS (--tls-cert / --tls-key, PEM): both set = every connection is TLS.
  std::string tls_cert_file;
  std::string tls_key_file;
  // CORS (--http-cors-origins): origins browsers may call from ("*" = any); empty = no CORS headers, and a
  // preflight (OPTIONS) is a 405. A listed Origin gets Access-Control-Allow-Origin on every response.
  std::vector<std::string> cors_origins;
};

class http_server {
 public:
  http_server(http_options opts, frontend_port frontend, std::shared_ptr<frontend_metrics> metrics,
              std::shared_ptr<cluster_view> view);
  ~http_server();

  // Binds (backlog SOMAXCONN) and starts serving on the I/O threads. Fails
  // when the address cannot be bound; nothing is left running on failure.
  status start();
  // Stops accepting, closes idle connections, lets open requests finish up to
  // drain_timeout_ms, then closes the rest and joins the I/O threads. Idempotent.
  void stop();
  int port() const { return port_; }
  // Connections open now (for tests and benches).
  std::size_t open_connections() const;

  struct impl;

 private:
  http_options opts_;
  frontend_port frontend_;
  std::shared_ptr<frontend_metrics> metrics_;
  std::shared_ptr<cluster_view> view_;
  std::shared_ptr<impl> impl_;
  int port_ = 0;
};

}  // namespace yard::actors
