// actors/supervisor.hpp — the root of a process's supervision tree.
//
// Owns: the process's long-lived actors (workers, router, frontend) as children
// with a one-for-one restart strategy: a child that ends abnormally (an
// exception, a kill) is started again from its child_spec, at most
// max_restarts times in window_ms; one more escalates (the callback; in a
// `yard` process it exits non-zero, so the node agent — the next level of the
// same tree — restarts the process). A child ended with user_shutdown (the
// process stopping it) or a normal exit is not restarted. It also answers the
// tree (children, state, restarts, uptime) locally and on the node tree subjects.
// Must not touch: what the children do; NATS beyond answering tree requests.
// Thread-safety: an actor. child_spec::start runs on the supervisor's thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include "common/status.hpp"
#include "messages/cluster.hpp"
#include "transport/nats_connection.hpp"

namespace yard::actors {

struct child_spec {
  std::string name;  // unique in the process, e.g. "worker w0"
  std::string kind;  // "worker", "router", "frontend"
  // Starts a fresh incarnation (with its subscriptions). Empty: the child
  // cannot be rebuilt here, so its abnormal end escalates at once.
  std::function<result<caf::actor>()> start;
};

struct restart_policy {
  std::uint32_t max_restarts = 5;  // restarts allowed per window (default 5)
  int window_ms = 10000;           // the window (default 10 s)
};

// Called once when the restart intensity is exceeded (or a child cannot be
// rebuilt); the argument says which child and why.
using escalate_fn = std::function<void(const std::string& why)>;

// Escalation past the top of the tree: log, then end the process with exit
// code 70 (EX_SOFTWARE) without running destructors that may wait on the dead
// child. The node agent restarts the process.
void exit_process_on_escalation(const std::string& why);

struct supervisor_config {
  std::string ns = "default";  // subject namespace (default "default")
  std::string node_id;         // this process's id on the tree subjects
  restart_policy policy;
  escalate_fn escalate = exit_process_on_escalation;
  // Serves the tree on yard.<ns>.node.<id>.tree and yard.<ns>.node.tree (JSON or
  // msgpack, as asked) when set; the subscriptions end with the supervisor.
  transport::nats_connection* conn = nullptr;
};

result<caf::actor> spawn_supervisor(caf::actor_system& sys, supervisor_config cfg);

// Message interface (CAF 0.17 atoms from actors/atoms.hpp):
//   (supervise_atom, child_spec, caf::actor first)  adopt a running child (monitor it)
//   (get_atom)                                    -> msg::node_tree
//   (get_atom, std::string kind)                  -> std::vector<caf::actor> current children of a kind
//   (tree_atom, transport::nats_message)          answer a tree request on its reply subject

}  // namespace yard::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::actors::child_spec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::msg::node_tree)
