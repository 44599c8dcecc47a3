// kv/policy_flags.cpp — see policy_flags.hpp.
#include "kv/policy_flags.hpp"

namespace yard::kv {

void add_router_policy_flags(CLI::App& app, policy_config& pc) {
  app.add_option("--overlap-weight", pc.overlap_weight, "dynamo policy: weight of prefill blocks in the cost")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_option("--temperature", pc.temperature, "dynamo policy: softmax temperature (0 = argmin)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_option("--balance-abs", pc.balance_abs_threshold, "approx policy: load gap (requests) that forces balancing")
      ->capture_default_str();
  app.add_option("--balance-rel", pc.balance_rel_threshold, "approx policy: load ratio that forces balancing")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  app.add_option("--ttft-miss-penalty", pc.ttft_miss_penalty,
                 "ttft policy: extra cost of a cache miss, as a multiple of its prefill time (0 = own TTFT only)")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  app.add_option("--tier2-weight", pc.tier2_hit_weight,
                 "ttft/dynamo: a host-tier (G2) hit counts as this fraction of a device hit (1 - onboard/recompute time)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--tier3-weight", pc.tier3_hit_weight, "ttft/dynamo: a disk-tier (G3) hit counts as this fraction")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
}

}  // namespace yard::kv
