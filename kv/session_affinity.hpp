// kv/session_affinity.hpp — which worker a conversation (session_id) is kept on.
//
// Owns: session_id -> (worker, last use) for one router core, the rule that
// keeps a session on its worker while that worker is not overloaded, and the
// counters of how often it did (sticky hits), had to move it (breaks: the
// worker was overloaded or gone) or saw a new session. Bounded: entries idle
// longer than `ttl_ms` are dropped, and at most `max_sessions` are held (the
// least recently used goes first).
// Must not touch: the KV index, the policy, clocks (now_ms comes in), I/O.
// Thread-safety: not thread-safe; the router core's owner calls it.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kv/routing_policy.hpp"

namespace yard::kv {

struct session_affinity_options {
  double ttl_ms = 30 * 60 * 1000.0;       // a session idle this long is forgotten (default 30 min)
  std::size_t max_sessions = 1u << 20;    // (default 1Mi)
  // Overloaded: more requests in flight than the least-loaded candidate plus
  // this many (default 8), or KV use above max_kv_use of its pool (default 0.9).
  std::uint32_t max_queue_gap = 8;
  double max_kv_use = 0.9;
};

struct session_affinity_stats {
  std::uint64_t sticky_hits = 0;    // routed to the session's worker
  std::uint64_t sticky_breaks = 0;  // the session's worker was overloaded or gone: routed by policy
  std::uint64_t new_sessions = 0;   // first request of a session (or after it expired)
  std::uint64_t sessions = 0;       // held now
};

class session_affinity {
 public:
  explicit session_affinity(session_affinity_options o = {}) : o_(o) {}

  // The session's worker when it is among `cands` and not overloaded.
  // Counts a hit, a break or a new session.
  std::optional<worker_index> pick(std::string_view session, std::span<const worker_candidate> cands, double now_ms);
  // The session was routed to `w` (by pick() or the policy).
  void record(std::string_view session, worker_index w, double now_ms);
  // Forgets every session on `w` (it left).
  void forget_worker(worker_index w);

  session_affinity_stats stats() const;

 private:
  struct entry {
    worker_index worker = 0;
    double last_ms = 0;
    std::list<std::string>::iterator lru;  // position in lru_ (front = most recent)
  };
  bool overloaded(const worker_candidate& c, std::span<const worker_candidate> cands) const;
  void expire(double now_ms);

  session_affinity_options o_;
  std::unordered_map<std::string, entry> sessions_;
  std::list<std::string> lru_;
  session_affinity_stats stats_;
};

}  // namespace yard::kv
