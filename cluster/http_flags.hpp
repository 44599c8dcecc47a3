// cluster/http_flags.hpp — command-line flags of the OpenAI HTTP server.
//
// Owns: the flags that fill actors::http_options (listen address and port,
// body limit, I/O threads, connection cap, header / idle / drain timeouts,
// API keys, TLS), shared by `yard frontend` and `yard up`, and what follows
// from them once parsed: the key file is loaded, and the listen address
// defaults to 127.0.0.1 unless keys or an explicit --http-host are given
// (with keys and no host: 0.0.0.0). Must not touch: anything else.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "actors/http_server.hpp"
#include "common/status.hpp"

namespace yard::cluster {

struct http_flag_state {
  std::string api_keys_file;
  CLI::Option* host = nullptr;
};

void add_http_flags(CLI::App& app, actors::http_options& http, http_flag_state& st);
// After parsing: loads --api-keys and settles the default host (http_server::start checks the TLS pair).
status finish_http_flags(actors::http_options& http, const http_flag_state& st);

}  // namespace yard::cluster
