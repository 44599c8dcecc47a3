// messages/cluster_subjects.hpp — NATS subjects of the node agents and the planner.
//
// Owns: the subject names used by cluster/agent and cluster/planner (kept apart
// from messages/subjects.hpp, which the foundation owns; same scheme).
//   yard.<ns>.agent.<node>.control   scale_request in (request/reply), scale_reply out
//   yard.<ns>.agent.status           agent_status published by every agent every ~1 s
//   yard.<ns>.metrics.latency        latency_report published by frontends (TTFT/ITL samples)
//   yard.<ns>.node.<id>.tree         request: one process answers its node_tree (JSON or msgpack)
//   yard.<ns>.node.tree              request: every process answers (gather replies until a timeout)
// Must not touch: anything else. Thread-safety: pure functions.
#pragma once

#include <string>

#include "messages/subjects.hpp"

namespace yard::subjects {

inline std::string agent_control(const std::string& ns, const std::string& node) {
  return prefix(ns) + ".agent." + node + ".control";
}
inline std::string agent_status(const std::string& ns) { return prefix(ns) + ".agent.status"; }
inline std::string latency_metrics(const std::string& ns) { return prefix(ns) + ".metrics.latency"; }
inline std::string node_tree(const std::string& ns, const std::string& node) { return prefix(ns) + ".node." + node + ".tree"; }
inline std::string node_tree_all(const std::string& ns) { return prefix(ns) + ".node.tree"; }

}  // namespace yard::subjects
