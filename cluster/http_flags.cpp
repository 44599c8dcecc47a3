#include "cluster/http_flags.hpp"

#include "common/log.hpp"

namespace yard::cluster {

void add_http_flags(CLI::App& app, actors::http_options& http, http_flag_state& st) {
  app.add_option("--http-port", http.port, "OpenAI API port (0 = any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  st.host = app.add_option("--http-host", http.host,
                           "OpenAI API listen address (default 127.0.0.1; 0.0.0.0 when --api-keys is given)");
  app.add_option("--max-body-bytes", http.max_body_bytes, "larger request bodies get 413")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 30))
      ->capture_default_str();
  app.add_option("--http-io-threads", http.io_threads, "I/O threads serving every HTTP connection")
      ->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--http-max-connections", http.max_connections, "open HTTP connections; beyond it a 503 and close")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))->capture_default_str();
  app.add_option("--http-header-timeout-ms", http.header_timeout_ms, "a request's header must arrive within this (its body gets the idle timeout)")
      ->check(CLI::Range(1, 3600000))->capture_default_str();
  app.add_option("--http-idle-timeout-ms", http.idle_timeout_ms, "a keep-alive connection may idle this long between requests")
      ->check(CLI::Range(1, 86400000))->capture_default_str();
  app.add_option("--http-drain-timeout-ms", http.drain_timeout_ms, "on stop, open requests may finish for this long")
      ->check(CLI::Range(0, 3600000))->capture_default_str();
  app.add_option("--api-keys", st.api_keys_file,
                 "API key file (TOML or JSON: sha256(key) -> tenant; tenants' models, rate limits, priority); "
                 "every /v1/ request then needs a key")
      ->check(CLI::ExistingFile);
  app.add_option("--http-cors-origins", http.cors_origins,
                 "origins browser clients may call from (comma-separated; * = any): CORS preflights and headers")
      ->delimiter(',');
  app.add_option("--tls-cert", http.tls_cert_file, "serve HTTPS with this PEM certificate (chain) file")->check(CLI::ExistingFile);
  app.add_option("--tls-key", http.tls_key_file, "... and this PEM private key file")->check(CLI::ExistingFile);
}

status finish_http_flags(actors::http_options& http, const http_flag_state& st) {
  if (!st.api_keys_file.empty()) {
    auto t = actors::tenant_table::load(st.api_keys_file);
    if (!t) return t.err();
    http.tenants = std::move(*t);
    component_logger("http")->info("API keys on: {} keys of {} tenants from {}", http.tenants->keys(),
                                   http.tenants->tenant_names().size(), st.api_keys_file);
    if (st.host == nullptr || st.host->count() == 0) http.host = "0.0.0.0";
  }
  return status::success();
}

}  // namespace yard::cluster
