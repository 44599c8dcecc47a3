// actors/service_face.cpp — see service_face.hpp.
#include "actors/service_face.hpp"

namespace yard::actors {

namespace {

const char* name_of(component_kind k) {
  switch (k) {
    case component_kind::frontend: return "yard-frontend";
    case component_kind::router: return "yard-router";
    case component_kind::worker: return "yard-worker";
  }
  return "yard";
}

const char* description_of(component_kind k) {
  switch (k) {
    case component_kind::frontend: return "Switchyard OpenAI-compatible HTTP frontend";
    case component_kind::router: return "Switchyard KV-aware router: send generate_request (msgpack or JSON) to its generate endpoint";
    case component_kind::worker: return "Switchyard inference worker";
  }
  return "";
}

}  // namespace

result<std::shared_ptr<transport::nats_service>> start_service_face(transport::nats_connection& conn,
                                                                   service_face_config cfg) {
  transport::nats_service_config sc;
  sc.name = name_of(cfg.kind);
  sc.version = yard_version;
  sc.description = description_of(cfg.kind);
  sc.metadata = std::move(cfg.metadata);
  sc.metadata["namespace"] = cfg.ns;
  if (!cfg.instance.empty()) sc.metadata["instance"] = cfg.instance;
  sc.endpoints = std::move(cfg.endpoints);
  auto svc = transport::nats_service::start(conn, std::move(sc));
  if (!svc) return svc.err();
  return std::shared_ptr<transport::nats_service>(std::move(*svc));
}

}  // namespace yard::actors
