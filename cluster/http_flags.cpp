#include "cluster/http_flags.hpp"

namespace yard::cluster {

void add_http_flags(CLI::App& app, actors::http_options& http) {
  app.add_option("--http-port", http.port, "OpenAI API port (0 = any free port)")->capture_default_str();
  app.add_option("--http-host", http.host, "OpenAI API listen address (0.0.0.0 = every interface)")->capture_default_str();
  app.add_option("--max-body-bytes", http.max_body_bytes, "larger request bodies get 413")->capture_default_str();
  app.add_option("--http-io-threads", http.io_threads, "I/O threads serving every HTTP connection")
      ->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--http-max-connections", http.max_connections, "open HTTP connections; beyond it a 503 and close")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))->capture_default_str();
  app.add_option("--http-header-timeout-ms", http.header_timeout_ms, "a request's header and body must arrive within this")
      ->check(CLI::Range(1, 3600000))->capture_default_str();
  app.add_option("--http-idle-timeout-ms", http.idle_timeout_ms, "a keep-alive connection may idle this long between requests")
      ->check(CLI::Range(1, 86400000))->capture_default_str();
  app.add_option("--http-drain-timeout-ms", http.drain_timeout_ms, "on stop, open requests may finish for this long")
      ->check(CLI::Range(0, 3600000))->capture_default_str();
}

}  // namespace yard::cluster
