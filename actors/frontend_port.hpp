// actors/frontend_port.hpp — how HTTP connections reach the frontend actor.
//
// Owns: the binding from every copy of a frontend_port to the current frontend
// actor incarnation (its actor, reply inbox and key counter), opening a request
// (tell the actor, then publish the first attempt from the caller's thread),
// cancelling one, rebinding after a restart.
// Must not touch: stream state (frontend_actor), HTTP (http_server).
// Thread-safety: thread-safe; copies share one binding behind a mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "actors/chunk_queue.hpp"
#include "messages/types.hpp"
#include "transport/nats_connection.hpp"

namespace yard::actors {

// How other threads (HTTP connections) open and cancel requests. Copyable,
// thread-safe. Request ids must be unique among open requests (the HTTP layer
// makes them); a duplicate gets a 409 chunk, but its first attempt has left.
// Every copy shares one binding to the current frontend actor: when the
// supervisor rebuilds the actor, rebind() points every copy (the HTTP server's,
// each connection's) at the new incarnation.
class frontend_port {
 public:
  frontend_port() = default;
  frontend_port(caf::actor actor, transport::nats_connection* conn, std::string subject, std::string inbox_prefix,
                std::shared_ptr<std::atomic<std::uint64_t>> next_key);
  // The actor learns of the stream before its request is published, so it owns
  // the stream before any reply can reach its mailbox (one FIFO). While the
  // bound actor has ended and is not yet rebuilt, the sink gets a final 503
  // error chunk at once and nothing is published.
  void open(msg::generate_request req, chunk_queue_ptr sink) const;
  void cancel(const std::string& request_id) const;
  caf::actor actor() const;
  // Every copy of this port now speaks to `fresh`'s actor and inbox. A request
  // the old actor was told of but never took (its open was still in the
  // mailbox when it died) gets a final 503 error chunk now, instead of waiting
  // for its deadline.
  void rebind(const frontend_port& fresh) const;

 private:
  struct bound {  // one incarnation
    caf::actor actor;
    std::string inbox_prefix;                              // replies come to <inbox_prefix>.<key>
    std::shared_ptr<std::atomic<std::uint64_t>> next_key;  // shared with the actor's re-dispatches
  };
  struct binding {  // what every copy shares
    std::mutex mu;
    bound now;
    // Sinks told to the bound actor that it has not claimed yet (pruned as they are
    // claimed or dropped): if it dies first, their open died in its mailbox.
    struct told {
      std::weak_ptr<chunk_queue> sink;
      std::string request_id;
    };
    std::vector<told> unclaimed;
    std::size_t prune_at = 64;
  };
  bound current() const;
  // The bound incarnation, with `sink` noted as told to it (binding_->unclaimed) in the same step.
  bound current_remembering(const chunk_queue_ptr& sink, const std::string& request_id) const;
  std::shared_ptr<binding> binding_;
  transport::nats_connection* conn_ = nullptr;
  std::string subject_;  // the routers' generate subject
};

}  // namespace yard::actors
