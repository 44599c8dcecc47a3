// messages/router.hpp — router-to-router wire types.
//
// Owns: route_notice, published by a router replica on yard.<ns>.router.inflight
// for every dispatch so the other replicas count that work in their load
// estimates. Must not touch: behaviour.
#pragma once

#include <cstdint>
#include <string>

namespace yard::msg {

struct route_notice {
  std::string router_id;             // the replica that routed (others apply it)
  std::string request_id;
  std::string worker_id;
  std::string model;
  std::uint32_t prompt_tokens = 0;
  std::uint32_t cached_tokens = 0;   // prefix the router expected cached
  std::uint32_t max_tokens = 0;
};
template <class V> void describe(V& v, route_notice& x) {
  v.req("router_id", x.router_id);
  v.req("request_id", x.request_id);
  v.req("worker_id", x.worker_id);
  v.opt("model", x.model);
  v.opt("prompt_tokens", x.prompt_tokens);
  v.opt("cached_tokens", x.cached_tokens);
  v.opt("max_tokens", x.max_tokens);
}

}  // namespace yard::msg
