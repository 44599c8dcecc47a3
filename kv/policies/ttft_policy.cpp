// kv/policies/ttft_policy.cpp — ours: route to the minimum predicted time to first token.
//
// For candidate w with C effectively cached prompt tokens (tier-1 blocks fully,
// tier-2/3 blocks at tier2/3_hit_weight, weighted_overlap_blocks) out of P prompt tokens:
//   prefill_ms = f(P) - f(C) + c           f(t) = a t^2 + b t (fitted profile);
//                                          attention over the cached prefix is still paid
//   queue_ms   = pending_prefill_tokens * f_chunk / chunk      (f_chunk = prefill_ms(chunk))
//   interfere  = decode_ms_per_block * active_decode_blocks * steps,
//                steps = ceil((pending + P - C) / chunk)        (decode batched into every prefill step)
//   ttft       = queue_ms + prefill_ms + interfere
//   score      = ttft + ttft_miss_penalty * f(P - C)   (what the miss costs the rest of the fleet:
//                the recompute occupies the worker and its duplicate blocks evict other prefixes)
// Every candidate within max(tie_ms, tie_rel * best) of the best score is tied; the
// least loaded of those wins (exact ties: uniform by the seed).
#include <algorithm>
#include <cmath>

#include "kv/policies/policy_common.hpp"

namespace yard::kv::policies {
namespace {

class ttft_policy final : public routing_policy {
 public:
  ttft_policy(const policy_config& c, std::uint64_t seed) : cfg_(c), rng_(seed) {}
  std::string_view name() const override { return "ttft"; }

  result<route_decision> choose(const route_request& req, std::span<const worker_candidate> c) override {
    if (c.empty()) return make_error(errc::unavailable, "no candidate workers");
    const double bs = req.block_size ? req.block_size : 1;
    const double p = req.prompt_tokens;
    const double chunk = cfg_.prefill_chunk_tokens ? cfg_.prefill_chunk_tokens : 2048;
    const double ms_per_queued_token = predicted_prefill_ms(cfg_, chunk) / chunk;
    auto f = [&](double t) { return cfg_.prefill_a * t * t + cfg_.prefill_b * t; };
    // One pass over every candidate per request: nothing here allocates once
    // score_ has grown, and a candidate with no cached prefix (most of them)
    // skips the overlap weighting.
    const double f_p = f(p);
    const double max_cached = std::max(0.0, p - 1);  // the last token is always computed
    const double per_chunk = 1.0 / chunk;  // steps by a multiply: the loop runs for every candidate
    auto ttft_of = [&](const worker_candidate& ci, double& miss_ms) __attribute__((always_inline)) {
      double cached = 0;
      if (ci.overlap_blocks | ci.overlap_blocks_any | ci.overlap_blocks_g2 | ci.overlap_blocks_g3)
        cached = std::min(std::min(p, weighted_overlap_blocks(ci, cfg_) * bs), max_cached);
      const double prefill = p > 0 ? f_p - f(cached) + cfg_.prefill_c : 0;
      const double pending = static_cast<double>(ci.load.pending_prefill_tokens);
      const double steps = std::ceil((pending + p - cached) * per_chunk);
      miss_ms = f(p - cached);
      return pending * ms_per_queued_token + prefill +
             cfg_.decode_ms_per_block * static_cast<double>(ci.load.active_decode_blocks) * steps;
    };
    // A candidate with nothing cached (most of them): the same expressions with cached = 0,
    // the request's constant part computed once.
    const double uncached_prefill = p > 0 ? f_p - f(0) + cfg_.prefill_c : 0;
    const double uncached_penalty = cfg_.ttft_miss_penalty * f(p - 0);
    score_.resize(c.size());
    double best = 0;
    for (std::size_t i = 0; i < c.size(); ++i) {
      const auto& ci = c[i];
      if (!(ci.overlap_blocks | ci.overlap_blocks_any | ci.overlap_blocks_g2 | ci.overlap_blocks_g3)) {
        const double pending = static_cast<double>(ci.load.pending_prefill_tokens);
        const double steps = std::ceil((pending + p - 0) * per_chunk);
        score_[i] = pending * ms_per_queued_token + uncached_prefill +
                    cfg_.decode_ms_per_block * static_cast<double>(ci.load.active_decode_blocks) * steps +
                    uncached_penalty;
      } else {
        double miss_ms;
        const double ttft = ttft_of(ci, miss_ms);
        score_[i] = ttft + cfg_.ttft_miss_penalty * miss_ms;
      }
      best = i ? std::min(best, score_[i]) : score_[i];
    }
    double slack = std::max(cfg_.tie_ms, cfg_.tie_rel * best);
    std::size_t pick = least_loaded_of(c, rng_, [&](std::size_t k) { return score_[k] <= best + slack; });
    double miss_ms;
    return route_decision{c[pick].worker, ttft_of(c[pick], miss_ms), c[pick].overlap_blocks};
  }

 private:
  policy_config cfg_;
  rng rng_;
  std::vector<double> score_;  // per candidate, what is minimised: predicted TTFT + miss penalty
};

}  // namespace

std::unique_ptr<routing_policy> make_ttft(const policy_config& c, std::uint64_t seed) {
  return std::make_unique<ttft_policy>(c, seed);
}

}  // namespace yard::kv::policies
