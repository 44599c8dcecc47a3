// messages/cluster.hpp — wire types of the node agents and the SLO planner.
//
// Owns: scale_request/scale_reply (planner -> agent control subject),
// agent_status (agent -> everyone, periodic), latency_report (frontend ->
// planner) and node_tree (a process's supervision tree, on request). Same rules as messages/types.hpp: describe() lists the fields,
// adding an optional field is backwards compatible. Worker roles are
// msg::worker_role here; on the wire they stay the strings "both", "prefill",
// "decode" (messages/wire_enum.hpp), so decoding an unknown role is an error
// naming the field and the allowed values.
// Must not touch: behaviour, I/O. Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "messages/types.hpp"

namespace yard::msg {

// Asks one agent to change how many workers of `role` it runs. Exactly one of
// delta / target is set; the agent clamps to its configured bounds.
struct scale_request {
  std::string request_id;               // for logs (default "")
  worker_role role = worker_role::both;  // required on the wire ("both", "prefill" or "decode")
  std::optional<std::int32_t> delta;    // add (>0) or stop (<0) this many
  std::optional<std::uint32_t> target;  // absolute count on this node
  std::string reason;                   // free text for logs (default "")
};
template <class V> void describe(V& v, scale_request& x) {
  v.opt("request_id", x.request_id);
  v.req("role", x.role);
  v.opt("delta", x.delta);
  v.opt("target", x.target);
  v.opt("reason", x.reason);
}

struct scale_reply {
  std::string request_id;
  bool ok = false;
  std::string message;           // why not, when !ok; what was done otherwise
  std::string node;
  worker_role role = worker_role::both;  // the request's role (both when the request did not decode)
  std::uint32_t running = 0;     // workers of role running (not stopping) after the change
  std::uint32_t min_count = 0;   // this node's bounds for role
  std::uint32_t max_count = 0;
};
template <class V> void describe(V& v, scale_reply& x) {
  v.opt("request_id", x.request_id);
  v.req("ok", x.ok);
  v.opt("message", x.message);
  v.opt("node", x.node);
  v.opt("role", x.role);
  v.opt("running", x.running);
  v.opt("min_count", x.min_count);
  v.opt("max_count", x.max_count);
}

// One supervised child as the agent sees it.
struct agent_child_status {
  std::string id;          // worker instance id
  worker_role role = worker_role::both;  // its [[workers]] group (default both)
  std::string state;       // "running", "backoff", "stopping", "stopped", "failed"
  std::int32_t pid = -1;   // -1 when not running
  std::uint32_t restarts = 0;
};
template <class V> void describe(V& v, agent_child_status& x) {
  v.req("id", x.id);
  v.opt("role", x.role);
  v.opt("state", x.state);
  v.opt("pid", x.pid);
  v.opt("restarts", x.restarts);
}

struct agent_role_bounds {
  worker_role role = worker_role::both;  // required on the wire
  std::uint32_t running = 0;
  std::uint32_t min_count = 0;
  std::uint32_t max_count = 0;
};
template <class V> void describe(V& v, agent_role_bounds& x) {
  v.req("role", x.role);
  v.opt("running", x.running);
  v.opt("min_count", x.min_count);
  v.opt("max_count", x.max_count);
}

// Published by each agent every ~1 s on subjects::agent_status.
struct agent_status {
  std::string node;
  std::string control_subject;
  std::vector<agent_role_bounds> roles;
  std::vector<agent_child_status> children;
  bool draining = false;        // true once the agent is shutting down
  std::uint64_t timestamp_ms = 0;
};
template <class V> void describe(V& v, agent_status& x) {
  v.req("node", x.node);
  v.opt("control_subject", x.control_subject);
  v.opt("roles", x.roles);
  v.opt("children", x.children);
  v.opt("draining", x.draining);
  v.opt("timestamp_ms", x.timestamp_ms);
}

// Latency samples a frontend observed since its last report (the planner's
// input). Frontends publish one every ~1 s on subjects::latency_metrics.
struct latency_report {
  std::string source;                 // frontend instance id
  std::uint32_t window_ms = 1000;     // period the samples cover
  std::uint32_t arrivals = 0;         // requests admitted in the window
  std::vector<float> ttft_ms;         // one per request that got its first token
  std::vector<float> itl_ms;          // inter-token gaps (may be subsampled)
  std::uint64_t timestamp_ms = 0;
};
template <class V> void describe(V& v, latency_report& x) {
  v.opt("source", x.source);
  v.opt("window_ms", x.window_ms);
  v.opt("arrivals", x.arrivals);
  v.opt("ttft_ms", x.ttft_ms);
  v.opt("itl_ms", x.itl_ms);
  v.opt("timestamp_ms", x.timestamp_ms);
}

// One supervised actor in a process's tree.
struct actor_node {
  std::string name;                // e.g. "worker w0", "router router-0"
  std::string kind;                // "worker", "router", "frontend"
  std::string state;               // "running", "stopped", "failed"
  std::uint32_t restarts = 0;      // since the process started
  double uptime_s = 0;             // of the current incarnation
  std::string last_exit;           // why the last incarnation ended (default "")
};
template <class V> void describe(V& v, actor_node& x) {
  v.req("name", x.name);
  v.opt("kind", x.kind);
  v.opt("state", x.state);
  v.opt("restarts", x.restarts);
  v.opt("uptime_s", x.uptime_s);
  v.opt("last_exit", x.last_exit);
}

// A process's supervision tree: its supervisor and the actors under it. The
// level above (the node agent) reports processes in agent_status.
struct node_tree {
  std::string node;                // the process's node id
  std::int32_t pid = -1;
  double uptime_s = 0;
  std::uint32_t max_restarts = 0;  // restart intensity: at most this many ...
  double window_s = 0;             // ... in this window, then the process exits non-zero
  std::vector<actor_node> actors;
};
template <class V> void describe(V& v, node_tree& x) {
  v.req("node", x.node);
  v.opt("pid", x.pid);
  v.opt("uptime_s", x.uptime_s);
  v.opt("max_restarts", x.max_restarts);
  v.opt("window_s", x.window_s);
  v.opt("actors", x.actors);
}

}  // namespace yard::msg
