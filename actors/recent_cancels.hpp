// actors/recent_cancels.hpp — cancels that arrived before their request.
//
// Owns: a bounded, time-limited memory of the cancels a worker could match to nothing (request id, and the
// attempt when the cancel named one). A cancel and its request take different paths — the cancel goes straight
// to every worker, the request through a router first — so a client that cancels at once (a load tool cutting
// connections, a frontend whose client left) can be overtaken by its own cancel. The request then ends
// `cancelled` on arrival instead of running to its last token.
// Must not touch: streams, the engine (the worker actor asks and acts).
// Thread-safety: not thread-safe; one actor's state.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>

namespace yard::actors {

class recent_cancels {
 public:
  using clock = std::chrono::steady_clock;

  explicit recent_cancels(std::chrono::milliseconds keep = std::chrono::milliseconds(2000), std::size_t max = 4096)
      : keep_(keep), max_(max) {}

  // A cancel that matched nothing here: `attempt` empty = every attempt of the id.
  void remember(const std::string& request_id, std::optional<std::uint32_t> attempt, clock::time_point now) {
    prune(now);
    if (entries_.size() >= max_) pop_front();
    entries_.push_back(entry{request_id, attempt, now});
    ++ids_[request_id];
  }

  // True (and forgotten) when a remembered cancel covers this request's attempt.
  bool take(const std::string& request_id, std::uint32_t attempt, clock::time_point now) {
    prune(now);
    if (!ids_.count(request_id)) return false;
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->request_id == request_id && (!it->attempt || *it->attempt == attempt)) {
        if (--ids_[request_id] == 0) ids_.erase(request_id);
        entries_.erase(it);
        return true;
      }
    return false;
  }

  std::size_t size() const { return entries_.size(); }

 private:
  struct entry {
    std::string request_id;
    std::optional<std::uint32_t> attempt;
    clock::time_point at;
  };
  void prune(clock::time_point now) {
    while (!entries_.empty() && now - entries_.front().at > keep_) pop_front();
  }
  void pop_front() {
    if (--ids_[entries_.front().request_id] == 0) ids_.erase(entries_.front().request_id);
    entries_.pop_front();
  }

  std::chrono::milliseconds keep_;
  std::size_t max_;
  std::deque<entry> entries_;
  std::unordered_map<std::string, std::size_t> ids_;  // how many entries name each id
};

}  // namespace yard::actors
