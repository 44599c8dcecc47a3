// kv/policies/approx_policy.cpp — SGLang-style cache-aware routing from a router-side prefix index.
//
// The policy ignores the event-fed overlaps in its candidates: like SGLang's
// router it keeps its own approximate index (kv/approx_indexer.hpp) of what it
// routed, with TTL and capacity. Decision, per request:
//   1. load = queue depth. If max - min > balance_abs_threshold and
//      max > balance_rel_threshold * min, the system is imbalanced: least loaded.
//   2. else the longest router-side prefix match, if it covers at least
//      cache_threshold of the prompt's blocks (ties: least loaded);
//   3. else the worker with the fewest router-side cached blocks (most room).
#include <algorithm>

#include "kv/approx_indexer.hpp"
#include "kv/policies/policy_common.hpp"

namespace yard::kv::policies {
namespace {

class approx_policy final : public routing_policy {
 public:
  approx_policy(const policy_config& c, std::uint64_t seed)
      : cfg_(c), rng_(seed), index_(approx_indexer_options{c.approx_ttl_ms, c.approx_capacity_blocks}) {}
  std::string_view name() const override { return "approx"; }

  result<route_decision> choose(const route_request& req, std::span<const worker_candidate> c) override {
    if (c.empty()) return make_error(errc::unavailable, "no candidate workers");
    std::uint32_t lo = c[0].load.queue_depth, hi = lo;
    for (const auto& w : c) {
      lo = std::min(lo, w.load.queue_depth);
      hi = std::max(hi, w.load.queue_depth);
    }
    if (hi - lo > cfg_.balance_abs_threshold && hi > cfg_.balance_rel_threshold * lo) {
      std::size_t i = least_loaded_of(c, rng_, [](std::size_t) { return true; });
      return route_decision{c[i].worker, static_cast<double>(c[i].load.queue_depth), 0};
    }
    index_.find_matches(req.hashes, req.now_ms, matches_);
    match_of_.assign(c.size(), 0);
    std::uint32_t best = 0;
    for (std::size_t i = 0; i < c.size(); ++i) {
      for (const auto& m : matches_)
        if (m.worker == c[i].worker) match_of_[i] = m.blocks;
      best = std::max(best, match_of_[i]);
    }
    if (!req.hashes.empty() && best > 0 &&
        static_cast<double>(best) >= cfg_.cache_threshold * static_cast<double>(req.hashes.size())) {
      std::size_t i = least_loaded_of(c, rng_, [&](std::size_t k) { return match_of_[k] == best; });
      return route_decision{c[i].worker, static_cast<double>(best), best};
    }
    std::uint64_t fewest = ~std::uint64_t{0};
    for (const auto& w : c) fewest = std::min(fewest, index_.worker_blocks(w.worker));
    std::size_t i = least_loaded_of(c, rng_, [&](std::size_t k) { return index_.worker_blocks(c[k].worker) == fewest; });
    return route_decision{c[i].worker, static_cast<double>(fewest), match_of_[i]};
  }

  void on_routed(const route_request& req, worker_index worker) override {
    index_.record(worker, req.hashes, req.now_ms);
  }
  void on_worker_removed(worker_index worker) override { index_.remove_worker(worker); }

 private:
  policy_config cfg_;
  rng rng_;
  approx_indexer index_;
  std::vector<overlap> matches_;
  std::vector<std::uint32_t> match_of_;
};

}  // namespace

std::unique_ptr<routing_policy> make_approx(const policy_config& c, std::uint64_t seed) {
  return std::make_unique<approx_policy>(c, seed);
}

}  // namespace yard::kv::policies
