// actors/service_face.hpp — a component's face on the NATS services API ($SRV).
//
// Owns: what each Switchyard component tells `nats micro ls/info/stats` and
// the official clients' service modules about itself — the service name
// (yard-frontend, yard-router, yard-worker), the version, metadata (namespace,
// instance, model, role, HTTP address) and its endpoints (the real subjects it
// serves, with their queue groups) — and the counted subscription that
// delivers an endpoint's messages to an actor while counting them in STATS.
// The protocol itself is transport/nats_service.
// Must not touch: message meaning; the actors it delivers to.
// Thread-safety: start_service_face and expose_counted run at component
// start; the counting handler runs on nats.c threads (nats_service::record is
// thread-safe).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "transport/actor_bridge.hpp"
#include "transport/nats_service.hpp"

namespace yard::actors {

// The version every component reports; kept equal to CPACK_PACKAGE_VERSION
// (cmake/packaging.cmake; a test checks it).
inline constexpr const char* yard_version = "0.2.0";

enum class component_kind { frontend, router, worker };

struct service_face_config {
  component_kind kind = component_kind::worker;
  std::string ns = "default";
  std::string instance;                // worker id, router/frontend instance ("" = none)
  transport::service_metadata metadata;  // extra metadata (model, role, http)
  std::vector<transport::service_endpoint> endpoints;
};

// Starts the face; the caller keeps it alive as long as the component runs.
result<std::shared_ptr<transport::nats_service>> start_service_face(transport::nats_connection& conn,
                                                                   service_face_config cfg);

// expose(), counting each delivery in `face`'s STATS for `endpoint`
// (num_requests and the time the hand-off took). A null face: plain expose().
template <class Tag>
result<transport::subscription> expose_counted(transport::nats_connection& conn, const std::string& subject,
                                               const caf::actor& target, Tag tag, const std::string& queue_group,
                                               const std::shared_ptr<transport::nats_service>& face,
                                               const std::string& endpoint) {
  auto idx = face ? face->endpoint_index(endpoint) : std::nullopt;
  if (!idx) return transport::expose(conn, subject, target, tag, queue_group);
  std::weak_ptr<transport::nats_service> weak = face;
  return conn.subscribe(
      subject,
      [target, tag, weak, i = *idx](transport::nats_message m) {
        const auto t0 = std::chrono::steady_clock::now();
        caf::anon_send(target, tag, std::move(m));
        if (auto f = weak.lock()) f->record(i, std::chrono::steady_clock::now() - t0);
      },
      queue_group);
}

}  // namespace yard::actors
