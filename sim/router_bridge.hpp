// sim/router_bridge.hpp — the simulator's view of the router.
//
// Owns: the narrow interface the event loop needs (route a request, feed KV
// events, load reports and request completions). The one implementation
// (router_bridge.cpp) wraps the production kv/ router classes — the policy
// factory, the KV indexer and the load tracker — so the simulator runs the
// same routing code as a live router; there is no second policy implementation.
// Must not touch: clocks (time comes in as arguments), I/O.
// Thread-safety: one instance per simulation run, one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "kv/block_hash.hpp"
#include "kv/routing_policy.hpp"
#include "messages/types.hpp"

namespace yard::sim {

struct route_query {
  std::string_view request_id;
  std::span<const kv::block_hash> hashes;  // the prompt's full-block hashes
  std::uint32_t prompt_tokens = 0;
  std::uint32_t max_tokens = 0;
  double now_ms = 0;
  std::string_view session_id;  // agent hint ("" = none)
};

class router_bridge {
 public:
  virtual ~router_bridge() = default;
  // The chosen worker index in [0, workers).
  virtual result<std::uint32_t> route(const route_query& q) = 0;
  virtual void on_kv_events(std::uint32_t worker, std::vector<msg::kv_event> events, double now_ms) = 0;
  virtual void on_load(std::uint32_t worker, const msg::load_report& load, double now_ms) = 0;
  virtual void on_first_token(std::string_view request_id, std::uint32_t worker, double now_ms) {}
  virtual void on_finished(std::string_view request_id, std::uint32_t worker, double now_ms) = 0;
  // Takes a worker out of routing (it finishes what it has; its events and
  // load are ignored from then on) or puts a fresh one in (autoscaling).
  virtual void set_serving(std::uint32_t worker, bool serving) {}
};

// The policy names a bridge accepts ("random", "round_robin", "least_loaded",
// "approx", "dynamo", "ttft").
std::vector<std::string> policy_names();

result<std::unique_ptr<router_bridge>> make_router_bridge(const std::string& policy, std::uint32_t workers,
                                                          std::uint32_t block_size, std::uint64_t seed,
                                                          const kv::policy_config& policy_cfg = {});

}  // namespace yard::sim
