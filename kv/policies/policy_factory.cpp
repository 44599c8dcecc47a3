// kv/policies/policy_factory.cpp — make_policy, policy_names, predicted_prefill_ms (weighted_overlap_blocks is inline in routing_policy.hpp).

#include "kv/policies/policy_common.hpp"

namespace yard::kv {

std::vector<std::string> policy_names() { return {"random", "round_robin", "least_loaded", "approx", "dynamo", "ttft"}; }

result<std::unique_ptr<routing_policy>> make_policy(std::string_view name, const policy_config& config,
                                                    std::uint64_t seed) {
  using namespace policies;
  if (name == "random") return make_random(config, seed);
  if (name == "round_robin") return make_round_robin(config, seed);
  if (name == "least_loaded") return make_least_loaded(config, seed);
  if (name == "approx") return make_approx(config, seed);
  if (name == "dynamo") return make_dynamo(config, seed);
  if (name == "ttft") return make_ttft(config, seed);
  std::string valid;
  for (const auto& n : policy_names()) valid += (valid.empty() ? "" : ", ") + n;
  return make_error(errc::bad_request, "unknown routing policy '" + std::string(name) + "' (valid: " + valid + ")");
}

double predicted_prefill_ms(const policy_config& c, double t) {
  if (t <= 0) return 0;
  return c.prefill_a * t * t + c.prefill_b * t + c.prefill_c;
}

}  // namespace yard::kv
