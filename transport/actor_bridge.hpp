// transport/actor_bridge.hpp — CAF actors on NATS subjects.
//
// Owns: the two seams that make actor code location-transparent:
//  - expose(): subscribe a subject and deliver each message to a local actor
//    as (Tag, nats_message), so an actor is reachable by subject from any node;
//  - subject_endpoint: a peer addressed by subject; send() encodes a wire type
//    and publishes it, whether the peer lives in this process or elsewhere.
// Must not touch: message meaning (actors decode what they receive).
// Thread-safety: expose() handlers run on nats.c threads and only anon_send;
// subject_endpoint is safe to use from any thread.
#pragma once

#include <string>

#include <caf/all.hpp>

#include "messages/codec.hpp"
#include "transport/nats_connection.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(yard::transport::nats_message)

namespace yard::transport {

template <class Tag>
result<subscription> expose(nats_connection& conn, const std::string& subject, const caf::actor& target, Tag tag,
                            const std::string& queue_group = {}) {
  return conn.subscribe(
      subject, [target, tag](nats_message m) { caf::anon_send(target, tag, std::move(m)); }, queue_group);
}

struct subject_endpoint {
  nats_connection* conn = nullptr;
  std::string subject;

  template <class T>
  status send(const T& value, msg::wire_format f = msg::wire_format::msgpack, const std::string& reply = {}) const {
    return conn->publish(subject, msg::encode(value, f), reply, msg::content_type_of(f));
  }
};

}  // namespace yard::transport
