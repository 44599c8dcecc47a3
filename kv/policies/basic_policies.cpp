// kv/policies/basic_policies.cpp — the cache-blind baselines: random, round_robin, least_loaded.
#include <algorithm>

#include "kv/policies/policy_common.hpp"

namespace yard::kv::policies {
namespace {

result<route_decision> none_available() { return make_error(errc::unavailable, "no candidate workers"); }

route_decision decide(const worker_candidate& c, double score) { return {c.worker, score, c.overlap_blocks}; }

class random_policy final : public routing_policy {
 public:
  explicit random_policy(std::uint64_t seed) : rng_(seed) {}
  std::string_view name() const override { return "random"; }
  result<route_decision> choose(const route_request&, std::span<const worker_candidate> c) override {
    if (c.empty()) return none_available();
    return decide(c[rng_.below(c.size())], 0);
  }

 private:
  rng rng_;
};

// Cycles through workers by index, so a changing candidate order or set does
// not reset the rotation: the next worker after the last one chosen.
class round_robin_policy final : public routing_policy {
 public:
  std::string_view name() const override { return "round_robin"; }
  result<route_decision> choose(const route_request&, std::span<const worker_candidate> c) override {
    if (c.empty()) return none_available();
    const worker_candidate* pick = nullptr;
    const worker_candidate* lowest = nullptr;
    for (const auto& w : c) {
      if (!lowest || w.worker < lowest->worker) lowest = &w;
      if ((!started_ || w.worker > last_) && (!pick || w.worker < pick->worker)) pick = &w;
    }
    if (!pick) pick = lowest;
    started_ = true;
    last_ = pick->worker;
    return decide(*pick, 0);
  }

 private:
  bool started_ = false;
  worker_index last_ = 0;
};

class least_loaded_policy final : public routing_policy {
 public:
  explicit least_loaded_policy(std::uint64_t seed) : rng_(seed) {}
  std::string_view name() const override { return "least_loaded"; }
  result<route_decision> choose(const route_request&, std::span<const worker_candidate> c) override {
    if (c.empty()) return none_available();
    std::size_t i = least_loaded_of(c, rng_, [](std::size_t) { return true; });
    return decide(c[i], c[i].load.queue_depth);
  }

 private:
  rng rng_;
};

}  // namespace

std::unique_ptr<routing_policy> make_random(const policy_config&, std::uint64_t seed) {
  return std::make_unique<random_policy>(seed);
}
std::unique_ptr<routing_policy> make_round_robin(const policy_config&, std::uint64_t) {
  return std::make_unique<round_robin_policy>();
}
std::unique_ptr<routing_policy> make_least_loaded(const policy_config&, std::uint64_t seed) {
  return std::make_unique<least_loaded_policy>(seed);
}

}  // namespace yard::kv::policies
