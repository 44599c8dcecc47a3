// kv/policies/policy_common.hpp — helpers shared by the policy implementations (internal to kv/policies).
//
// Owns: the per-policy constructors make_policy dispatches to, a seeded RNG
// wrapper with a portable uniform draw, and the "least loaded" ordering.
// Must not touch: anything outside kv/policies; not part of the public API.
// Thread-safety: plain functions; each policy owns its rng.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <tuple>

#include "kv/routing_policy.hpp"

namespace yard::kv::policies {

// splitmix64: the same stream on every platform and standard library.
class rng {
 public:
  explicit rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), n > 0.
  std::uint64_t below(std::uint64_t n) { return next() % n; }
  // Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t s_;
};

// Load ordering used for "least loaded" and tie breaks: queue depth, then
// pending prefill tokens, then active decode blocks.
inline auto load_key(const worker_load& l) {
  return std::make_tuple(l.queue_depth, l.pending_prefill_tokens, l.active_decode_blocks);
}

// Index (into candidates) of the least loaded candidate among those where
// keep(i) is true; exact ties broken uniformly by `r`. Returns size() if none.
template <class Keep>
std::size_t least_loaded_of(std::span<const worker_candidate> c, rng& r, Keep keep) {
  std::size_t best = c.size(), ties = 0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (!keep(i)) continue;
    if (best == c.size() || load_key(c[i].load) < load_key(c[best].load)) {
      best = i;
      ties = 1;
    } else if (load_key(c[i].load) == load_key(c[best].load)) {
      // Reservoir sampling over the tied set keeps the draw uniform.
      if (r.below(++ties) == 0) best = i;
    }
  }
  return best;
}

inline std::uint32_t request_blocks(const route_request& req) {
  std::uint32_t bs = req.block_size ? req.block_size : 1;
  return (req.prompt_tokens + bs - 1) / bs;
}

std::unique_ptr<routing_policy> make_random(const policy_config& c, std::uint64_t seed);
std::unique_ptr<routing_policy> make_round_robin(const policy_config& c, std::uint64_t seed);
std::unique_ptr<routing_policy> make_least_loaded(const policy_config& c, std::uint64_t seed);
std::unique_ptr<routing_policy> make_approx(const policy_config& c, std::uint64_t seed);
std::unique_ptr<routing_policy> make_dynamo(const policy_config& c, std::uint64_t seed);
std::unique_ptr<routing_policy> make_ttft(const policy_config& c, std::uint64_t seed);

}  // namespace yard::kv::policies
