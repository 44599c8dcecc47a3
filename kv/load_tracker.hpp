// kv/load_tracker.hpp — the router's estimate of each worker's in-flight work.
//
// Owns: per worker, the requests this router dispatched and has not seen
// finish (their prefill tokens until the first token, their KV blocks until
// completion) plus the last load_report the worker sent.
// Must not touch: the KV index, routing choices, clocks, I/O.
// Thread-safety: not thread-safe; one owner (the router core).
//
// Estimate = the worker's last report + what this router dispatched since that
// report. A report supersedes the router's own count of everything dispatched
// before it arrived (the worker already counts those), so the two sources
// never add up twice. A request is tracked only until the worker's next report
// (or its completion, whichever comes first): once a report covers it, its
// completion must not change the estimate, so it is forgotten. The table is
// therefore bounded by what is dispatched between two reports (and by
// max_tracked), whether or not anyone reports completions.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "kv/routing_policy.hpp"
#include "messages/types.hpp"

namespace yard::kv {

class load_tracker {
 public:
  explicit load_tracker(std::uint32_t max_workers = 4096, std::size_t max_tracked = 1u << 20);

  // The router sent request `id` to `worker`: `prefill_tokens` still to be
  // prefilled (the uncached part), `blocks` KV blocks it will hold.
  void on_dispatch(worker_index worker, const std::string& id, std::uint64_t prefill_tokens, std::uint64_t blocks);
  // The request's prefill finished (first token seen).
  void on_first_token(const std::string& id);
  // The request finished, failed or was cancelled.
  void on_complete(const std::string& id);
  // A worker's own report replaces the estimate's baseline.
  void on_load_report(worker_index worker, const msg::load_report& report);
  void remove_worker(worker_index worker);

  worker_load load(worker_index worker) const;
  // Calls f(worker) once for each worker whose load() changed since the last
  // call (a router keeps its candidate list current without recomputing every
  // worker's load per request), then forgets them.
  template <class F>
  void take_changed(F&& f) {
    for (worker_index w : changed_) {
      changed_flag_[w] = 0;
      f(w);
    }
    changed_.clear();
  }
  // Requests tracked now (dispatched since their worker's last report, not completed).
  std::size_t in_flight() const { return requests_.size(); }
  // Dispatches not tracked because the table was full (counted in the estimate all the same).
  std::uint64_t untracked() const { return untracked_; }

 private:
  struct delta {
    std::int64_t prefill = 0;
    std::int64_t blocks = 0;
    std::int64_t queue = 0;
  };
  struct per_worker {
    worker_load reported;   // last report (zero until one arrives)
    delta since;            // dispatched after that report, net of completions
    std::uint64_t epoch = 0;  // bumps on each report
    std::vector<std::string> dispatched;  // ids dispatched in this epoch (forgotten at the next report)
  };
  struct request {
    worker_index worker;
    std::uint64_t prefill, blocks;
    std::uint64_t epoch;    // worker epoch at dispatch
    bool prefilled = false;
  };
  void mark_changed(worker_index w) {
    if (w >= changed_flag_.size()) changed_flag_.resize(w + 1, 0);
    if (!changed_flag_[w]) {
      changed_flag_[w] = 1;
      changed_.push_back(w);
    }
  }

  std::vector<per_worker> workers_;
  std::vector<worker_index> changed_;
  std::vector<std::uint8_t> changed_flag_;  // [worker] 1 while in changed_
  std::unordered_map<std::string, request> requests_;
  std::size_t max_tracked_;
  std::uint64_t untracked_ = 0;
};

}  // namespace yard::kv
