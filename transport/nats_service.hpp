// transport/nats_service.hpp — a component's answer to the NATS "services" API
// (ADR-32, the micro protocol behind `nats micro ls/info/stats`).
//
// Owns: one service instance (name, a random 22-char id, version, description,
// metadata, the endpoints it describes), its three discovery subscriptions
// ($SRV.*, $SRV.*.<name>, $SRV.*.<name>.<id>: the verbs PING, INFO, STATS;
// no queue group: every instance answers) and per-endpoint request counters. Replies are JSON with a
// `Content-Type: application/json` header; request bodies are ignored.
// Must not touch: the component's real endpoint subscriptions (it only
// describes them; the component subscribes and calls record()), message
// schemas, actors. The nats_connection must outlive the service.
// Thread-safety: every method is thread-safe. record() is lock-free on
// success (relaxed atomics) and takes a per-endpoint mutex only to store an
// error text. Discovery replies are built on nats.c delivery threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "transport/nats_connection.hpp"

namespace yard::transport {

// ADR-32 response types.
inline constexpr std::string_view ping_response_type = "io.nats.micro.v1.ping_response";
inline constexpr std::string_view info_response_type = "io.nats.micro.v1.info_response";
inline constexpr std::string_view stats_response_type = "io.nats.micro.v1.stats_response";

using service_metadata = std::map<std::string, std::string>;  // serialized as {} when empty

// One endpoint the component serves (it subscribes to it itself).
struct service_endpoint {
  std::string name;         // [A-Za-z0-9_-]+, unique within the service; the key for record()
  std::string subject;      // the real subject, e.g. subjects::router_generate(ns) (wildcards allowed)
  std::string queue_group;  // the queue group it subscribes with (default none: "")
  service_metadata metadata;  // (default empty)
  // Optional STATS "data": returns a JSON text (object, number, ...). Runs on a
  // delivery thread; must be thread-safe and quick. Invalid JSON is left out.
  // (default none: no "data" field)
  std::function<std::string()> stats_data;
};

struct nats_service_config {
  std::string name;         // the service kind, [A-Za-z0-9_-]+ (e.g. "yard-router")
  std::string version;      // SemVer 2.0 (e.g. "0.2.0")
  std::string description;  // (default "")
  service_metadata metadata;  // (default empty)
  std::vector<service_endpoint> endpoints;  // (default none)
  std::string api_prefix = "$SRV";  // ADR-32 lets a deployment override it (default "$SRV")
};

// A copy of one endpoint's counters (STATS, /metrics, tests).
struct endpoint_stats {
  std::string name, subject, queue_group;
  std::uint64_t num_requests = 0;
  std::uint64_t num_errors = 0;      // included in num_requests
  std::string last_error;            // "" when none since start/reset
  std::chrono::nanoseconds processing_time{0};          // total
  std::chrono::nanoseconds average_processing_time{0};  // total / num_requests (0 when none)
};

// True for a SemVer 2.0 string (the official semver.org regex).
bool valid_semver(std::string_view version);
// True for a non-empty [A-Za-z0-9_-]+ name.
bool valid_service_name(std::string_view name);

class nats_service {
 public:
  // Validates the config (errc::bad_request: name, version, endpoint names
  // (unique), subjects) and subscribes the discovery subjects, flushed so a
  // PING sent after this returns is answered. On failure nothing stays
  // subscribed. `conn` must outlive the service.
  static result<std::unique_ptr<nats_service>> start(nats_connection& conn, nats_service_config cfg);
  ~nats_service();  // stop()
  nats_service(const nats_service&) = delete;
  nats_service& operator=(const nats_service&) = delete;

  // Unsubscribes; no reply is sent once it returns. Idempotent.
  void stop();
  bool stopped() const;

  const std::string& id() const;
  const std::string& name() const;

  // Counts one request of `endpoint` that took `processing`; an error counts
  // in num_errors too and becomes last_error. errc::not_found for an unknown
  // endpoint (nothing counted). Hot path: no allocation unless `error` is set.
  status record(std::string_view endpoint, std::chrono::nanoseconds processing,
                std::optional<std::string> error = std::nullopt);
  // The same by index (endpoint_index()), skipping the name lookup. Asserts a valid index.
  void record(std::size_t endpoint_index, std::chrono::nanoseconds processing,
              std::optional<std::string> error = std::nullopt);
  std::optional<std::size_t> endpoint_index(std::string_view endpoint) const;
  // Zeroes every endpoint's counters and last_error.
  void reset();

  std::vector<endpoint_stats> stats() const;
  // The JSON bodies the discovery subjects answer with.
  std::string ping_json() const;
  std::string info_json() const;
  std::string stats_json() const;

  struct state;  // shared with the subscription handlers

 private:
  explicit nats_service(std::shared_ptr<state> s);
  std::shared_ptr<state> state_;
};

}  // namespace yard::transport
