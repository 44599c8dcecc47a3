// actors/worker_registry.hpp — the live workers one component knows about.
//
// Owns: worker entries built from heartbeats (subject, model, role, load,
// draining, last seen) and their lease expiry. Used by the router (to pick
// workers) and the frontend (health, /v1/models, migration on worker loss).
//
// A heartbeat is a claim, not a fact: observe() refuses one whose body names
// another worker than its subject, whose generate_subject is not the worker's
// own, that would replace a live incarnation (an incarnation change is taken
// only after the current one has been silent for incarnation_grace_ms, so a
// clone never displaces a worker that still beats), or that would grow the
// table past max_workers; it clamps lease_ms into [min_lease_ms,
// max_lease_ms]. `draining` is therefore honoured only from the incarnation
// already registered. With require_answer, a worker is eligible only after it
// answered a status probe on its own subject (mark_answered): an announced
// worker nobody can reach (a black hole) never gets work or counts for health,
// and its model is not listed by models(). A KV block size outside
// 1..max_block_size is refused, and so is a heartbeat that changes the model,
// role, block size or KV stream of the incarnation already registered.
// Must not touch: NATS or actors (callers feed it heartbeats and the clock).
// Thread-safety: not thread-safe; owned by one actor.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "messages/subjects.hpp"
#include "messages/types.hpp"

namespace yard::actors {

struct worker_entry {
  msg::heartbeat last;                               // the latest heartbeat (lease clamped)
  std::chrono::steady_clock::time_point last_seen;   // when it arrived
  bool answered = false;                             // this incarnation answered a status probe
  std::chrono::steady_clock::time_point probed;      // when we last probed it
};

struct registry_limits {
  std::string ns = "default";                // subject namespace: generate_subject must be ours (default "default")
  std::uint32_t min_lease_ms = 750;          // shorter leases are raised to this (default 750 ms)
  std::uint32_t max_lease_ms = 10000;        // longer leases are cut to this (default 10 s)
  std::uint32_t incarnation_grace_ms = 1500; // silence of the current incarnation before a new one is taken (default 1.5 s)
  std::size_t max_workers = 4096;            // table bound; more ids are refused (default 4096)
  bool require_answer = false;               // eligible only after answering a status probe (default off)
};

class worker_registry {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit worker_registry(registry_limits limits = {}) : limits_(std::move(limits)) {}

  enum class change { none, joined, restarted, refused };
  struct observation {
    change what = change::none;
    std::string why;  // for refused: what was wrong, for the log
  };
  // Records a heartbeat that arrived on the subject of `subject_id` (the last
  // token of yard.<ns>.discovery.heartbeat.<id>); says whether the worker is
  // new, came back as a new process (another incarnation), or was refused.
  observation observe(const msg::heartbeat& hb, const std::string& subject_id, time_point now);
  // The worker answered a status probe with this incarnation.
  void mark_answered(const std::string& id, std::uint64_t incarnation);
  // Workers that have not answered yet and were last probed before `before` (marks them probed now).
  std::vector<std::string> due_for_probe(time_point now, std::chrono::milliseconds every);
  const registry_limits& limits() const { return limits_; }
  // Drops workers whose lease ran out; returns their ids.
  std::vector<std::string> expire(time_point now);
  void remove(const std::string& id) { workers_.erase(id); }

  // Workers that accept work for `model` ("" = any), excluding draining ones.
  std::vector<const worker_entry*> eligible(const std::string& model) const;
  // Prefill-only workers for `model` ("" = any), excluding draining ones.
  std::vector<const worker_entry*> eligible_prefill(const std::string& model) const;
  // Any registered worker's model, verified or not (a request for it waits rather than 404s).
  bool knows_model(const std::string& model) const;
  // The models of workers that answered (all workers' without require_answer): what is advertised.
  std::vector<std::string> models() const;
  static constexpr std::uint32_t max_block_size = 65536;
  bool alive(const std::string& id) const { return workers_.count(id) != 0; }
  std::size_t size() const { return workers_.size(); }
  const std::map<std::string, worker_entry>& all() const { return workers_; }
  // Its claim is checked: it answered a status probe (or answers are not required).
  bool verified(const worker_entry& w) const { return w.answered || !limits_.require_answer; }

 private:
  bool usable(const worker_entry& w) const { return !w.last.draining && verified(w); }
  registry_limits limits_;
  std::map<std::string, worker_entry> workers_;  // ordered: deterministic choices
};

}  // namespace yard::actors
