// cluster/disagg_flags.hpp — command-line flags of disaggregated prefill/decode workers.
//
// Owns: the flags that fill actors::worker_config's disaggregation fields
// (remote prefill threshold, prefill queue limit, timeouts, UCX staging,
// leases, checksums, test-only fault injection), shared by `yard worker` and
// `yard up`. Must not touch: anything else in the config.
#pragma once

#include <CLI/CLI.hpp>

#include "actors/worker_actor.hpp"

namespace yard::cluster {

void add_disagg_flags(CLI::App& app, actors::worker_config& wc);

}  // namespace yard::cluster
