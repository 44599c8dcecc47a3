// cluster/agent/agent_metrics.hpp — what `yard agent` exports on its metrics port.
//
// Owns: the Prometheus rendering of the agent's children (per group and
// state, restarts and the last exit code of each) and of its scale requests.
// Must not touch: the processes (it reads supervisor::children() snapshots).
// Thread-safety: agent_metrics counters are atomic; render functions are pure.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "cluster/agent/supervisor.hpp"
#include "common/prometheus.hpp"

namespace yard::cluster {

// "exit N" -> N, "signal N" -> 128 + N (the shell's convention), "" -> nullopt-like -1.
int exit_code_of(const std::string& last_exit);

void render_agent_children(prom::exposition& out, const std::string& node, const std::vector<child_info>& children);

}  // namespace yard::cluster
