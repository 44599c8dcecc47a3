// kv/policy_flags.hpp — command-line knobs of the routing policies.
//
// Owns: the flags that fill policy_config (Dynamo's overlap weight and
// temperature, the approx policy's balance thresholds, the lower-tier hit
// weights), shared by `yard router`, `yard up` and `yard sim`. Must not
// touch: the policy name, the router id or anything outside policy_config.
#pragma once

#include <CLI/CLI.hpp>

#include "kv/routing_policy.hpp"

namespace yard::kv {

void add_router_policy_flags(CLI::App& app, policy_config& pc);

}  // namespace yard::kv
