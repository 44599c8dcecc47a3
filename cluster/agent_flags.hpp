// cluster/agent_flags.hpp — command-line flags of a worker's agent-facing output.
//
// Owns: --tool-call-format (llama3_json | hermes | mistral | none; default the
// model family's), which fills actors::worker_config::tool_call_format, shared
// by `yard worker` and `yard up`. Must not touch: anything else in the config.
#pragma once

#include <CLI/CLI.hpp>

#include "actors/worker_actor.hpp"

namespace yard::cluster {

void add_agent_flags(CLI::App& app, actors::worker_config& wc);

}  // namespace yard::cluster
