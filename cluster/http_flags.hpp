// cluster/http_flags.hpp — command-line flags of the OpenAI HTTP server.
//
// Owns: the flags that fill actors::http_options (listen address and port,
// body limit, I/O threads, connection cap, header / idle / drain timeouts),
// shared by `yard frontend` and `yard up`. Must not touch: anything else.
#pragma once

#include <CLI/CLI.hpp>

#include "actors/http_server.hpp"

namespace yard::cluster {

void add_http_flags(CLI::App& app, actors::http_options& http);

}  // namespace yard::cluster
