// kv/policies/dynamo_policy.cpp — NVIDIA Dynamo's KV-router cost with softmax sampling.
//
// cost(w) = overlap_weight * prefill_blocks(w) + decode_blocks(w), where
//   prefill_blocks = (uncached prompt tokens + the worker's pending prefill tokens) / block_size
//   (cached = weighted_overlap_blocks: tier-2/3 hits count partially)
//   decode_blocks  = the worker's active decode blocks + this request's blocks.
// temperature 0: the minimum cost (exact ties: least loaded, then uniform).
// temperature > 0: costs are normalised to [0, 1] and a worker is drawn with
// probability proportional to exp(-normalised_cost / temperature).
#include <algorithm>
#include <cmath>

#include "kv/policies/policy_common.hpp"

namespace yard::kv::policies {
namespace {

class dynamo_policy final : public routing_policy {
 public:
  dynamo_policy(const policy_config& c, std::uint64_t seed) : cfg_(c), rng_(seed) {}
  std::string_view name() const override { return "dynamo"; }

  result<route_decision> choose(const route_request& req, std::span<const worker_candidate> c) override {
    if (c.empty()) return make_error(errc::unavailable, "no candidate workers");
    const double bs = req.block_size ? req.block_size : 1;
    const double blocks = request_blocks(req);
    cost_.resize(c.size());
    double lo = 0, hi = 0;
    for (std::size_t i = 0; i < c.size(); ++i) {
      double cached_tokens = std::min<double>(req.prompt_tokens, weighted_overlap_blocks(c[i], cfg_) * bs);
      double prefill = (req.prompt_tokens - cached_tokens + static_cast<double>(c[i].load.pending_prefill_tokens)) / bs;
      double decode = static_cast<double>(c[i].load.active_decode_blocks) + blocks;
      cost_[i] = cfg_.overlap_weight * prefill + decode;
      lo = i ? std::min(lo, cost_[i]) : cost_[i];
      hi = i ? std::max(hi, cost_[i]) : cost_[i];
    }
    std::size_t pick;
    if (cfg_.temperature <= 0 || hi == lo) {
      pick = least_loaded_of(c, rng_, [&](std::size_t k) { return cost_[k] == lo; });
    } else {
      double total = 0;
      for (auto& x : cost_) total += (x = std::exp(-((x - lo) / (hi - lo)) / cfg_.temperature));
      double u = rng_.unit() * total;
      pick = c.size() - 1;
      for (std::size_t i = 0; i < c.size(); ++i) {
        if (u < cost_[i]) {
          pick = i;
          break;
        }
        u -= cost_[i];
      }
      // Report the cost, not the weight.
      double cached_tokens = std::min<double>(req.prompt_tokens, weighted_overlap_blocks(c[pick], cfg_) * bs);
      double prefill = (req.prompt_tokens - cached_tokens + static_cast<double>(c[pick].load.pending_prefill_tokens)) / bs;
      return route_decision{c[pick].worker,
                            cfg_.overlap_weight * prefill + static_cast<double>(c[pick].load.active_decode_blocks) + blocks,
                            c[pick].overlap_blocks};
    }
    return route_decision{c[pick].worker, cost_[pick], c[pick].overlap_blocks};
  }

 private:
  policy_config cfg_;
  rng rng_;
  std::vector<double> cost_;
};

}  // namespace

std::unique_ptr<routing_policy> make_dynamo(const policy_config& c, std::uint64_t seed) {
  return std::make_unique<dynamo_policy>(c, seed);
}

}  // namespace yard::kv::policies
