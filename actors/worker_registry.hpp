// actors/worker_registry.hpp — the live workers one component knows about.
//
// Owns: worker entries built from heartbeats (subject, model, role, load,
// draining, last seen) and their lease expiry. Used by the router (to pick
// workers) and the frontend (health, /v1/models, migration on worker loss).
// Must not touch: NATS or actors (callers feed it heartbeats and the clock).
// Thread-safety: not thread-safe; owned by one actor.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "messages/types.hpp"

namespace yard::actors {

struct worker_entry {
  msg::heartbeat last;                               // the latest heartbeat
  std::chrono::steady_clock::time_point last_seen;   // when it arrived
};

class worker_registry {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  enum class change { none, joined, restarted };
  // Records a heartbeat; says whether the worker is new, or came back as a new
  // process (another incarnation) under the same id.
  change observe(const msg::heartbeat& hb, time_point now);
  // Drops workers whose lease ran out; returns their ids.
  std::vector<std::string> expire(time_point now);
  void remove(const std::string& id) { workers_.erase(id); }

  // Workers that accept work for `model` ("" = any), excluding draining ones.
  std::vector<const worker_entry*> eligible(const std::string& model) const;
  // Prefill-only workers for `model` ("" = any), excluding draining ones.
  std::vector<const worker_entry*> eligible_prefill(const std::string& model) const;
  bool knows_model(const std::string& model) const;
  std::vector<std::string> models() const;
  bool alive(const std::string& id) const { return workers_.count(id) != 0; }
  std::size_t size() const { return workers_.size(); }
  const std::map<std::string, worker_entry>& all() const { return workers_; }

 private:
  std::map<std::string, worker_entry> workers_;  // ordered: deterministic choices
};

}  // namespace yard::actors
