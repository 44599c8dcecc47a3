// actors/heartbeat_publisher.cpp — see heartbeat_publisher.hpp.
#include "actors/heartbeat_publisher.hpp"

#include <chrono>

#include <caf/all.hpp>

#include "messages/codec.hpp"

namespace yard::actors {

namespace {

struct publisher_state {
  transport::nats_connection* conn = nullptr;
  heartbeat_publisher_config cfg;
  caf::actor engine;
  static inline const char* name = "heartbeat_publisher";
};

using publisher = heartbeat_publisher_actor::stateful_pointer<publisher_state>;

// Asks the engine actor for a heartbeat and publishes it to `subject` in `fmt` (a status probe's answer is in
// the probe's format).
void ask_and_publish(publisher self, std::string subject, msg::wire_format fmt = msg::wire_format::msgpack) {
  if (!self->state.engine) return;
  self->request(self->state.engine, std::chrono::seconds(10), heartbeat_atom::value)
      .then([=](const msg::heartbeat& hb) {
              self->state.conn->publish(subject, msg::encode(hb, fmt), {}, std::string(msg::content_type_of(fmt)));
            },
            [](const caf::error&) {});  // the engine is gone or stuck: its lease runs out, as it should
}

heartbeat_publisher_actor::behavior_type publisher_behavior(publisher self, transport::nats_connection* conn,
                                                            heartbeat_publisher_config cfg) {
  self->state.conn = conn;
  self->state.cfg = std::move(cfg);
  return {
      [=](open_atom, caf::actor engine) { self->state.engine = std::move(engine); },
      [=](tick_atom) {
        ask_and_publish(self, self->state.cfg.subject);
        self->delayed_send(self, std::chrono::milliseconds(self->state.cfg.period_ms), tick_atom::value);
      },
      [=](heartbeat_atom, const msg::heartbeat& hb) {
        self->state.conn->publish(self->state.cfg.subject, msg::encode(hb));
      },
      [=](status_atom, const transport::nats_message& m) {
        if (!m.reply.empty()) ask_and_publish(self, m.reply, msg::detect_format(m.content_type, m.data));
      },
      [=](roster_atom, const transport::nats_message&) { ask_and_publish(self, self->state.cfg.subject); },
  };
}

}  // namespace

heartbeat_publisher_actor spawn_heartbeat_publisher(caf::actor_system& sys, transport::nats_connection& conn,
                                                    heartbeat_publisher_config cfg) {
  return sys.spawn(publisher_behavior, &conn, std::move(cfg));
}

}  // namespace yard::actors
