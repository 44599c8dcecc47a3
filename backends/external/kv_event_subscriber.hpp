// backends/external/kv_event_subscriber.hpp — a live vLLM or SGLang KV-event feed over ZeroMQ.
//
// Owns: one thread with a SUB socket on the engine's publisher and, when a replay endpoint is
// set, a DEALER on its replay ROUTER; a kv_event_translator fed by that thread; the translated
// events not drained yet.
// Must not touch: the engine process, the router, NATS (its owner publishes what drain() returns).
// Thread-safety: drain(), snapshot() and stats() may be called from any thread; the destructor
// stops and joins the thread (within one poll interval plus any replay wait in progress).
//
// Wire (vLLM ZmqEventPublisher, vllm/distributed/kv_events.py; SGLang's is the same code):
//   PUB   multipart [topic, seq as 8-byte big-endian, msgpack batch]; topic may carry SGLang's
//         "\0sgl-kv-epoch=<epoch>" suffix (snapshot-enabled publishers): a new epoch = a restart.
//   replay ROUTER: request [empty, start seq as 8-byte big-endian] (a REQ-style envelope, so the
//         ROUTER sees [identity, empty, start]); answer: one [empty, seq, payload] per buffered
//         batch with seq >= start, then [empty, -1 as 8 bytes, empty].
// Gap, replay and resync semantics: kv_event_translator.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/external/engine_kv_events.hpp"
#include "backends/external/kv_event_translator.hpp"
#include "common/status.hpp"
#include "messages/types.hpp"

namespace yard::backends::external {

// "vllm" | "sglang"; anything else is errc::bad_request naming the value.
result<kv_event_source> parse_kv_event_source(std::string_view name);

struct kv_event_subscriber_options {
  kv_event_source source = kv_event_source::vllm;
  std::string endpoint;              // the engine's PUB socket, e.g. tcp://127.0.0.1:5557 (required)
  std::string replay_endpoint;       // its replay socket (ROUTER), e.g. tcp://127.0.0.1:5558; empty = no replay
  std::string topic;                 // subscription prefix ("" = every topic, the default)
  std::uint32_t block_size = 16;     // Switchyard's block size: events whose block_size differs are rejected
  std::uint32_t replay_timeout_ms = 2000;  // wait for a replay answer before resyncing (default 2000)
  std::uint32_t poll_interval_ms = 100;    // how often the thread checks for stop (default 100)
};

class kv_event_subscriber {
 public:
  // Connects the sockets and starts the thread. A bad or empty endpoint is an error value
  // (errc::bad_request naming it); nothing is left running then.
  static result<std::unique_ptr<kv_event_subscriber>> start(kv_event_subscriber_options o);
  ~kv_event_subscriber();
  kv_event_subscriber(const kv_event_subscriber&) = delete;
  kv_event_subscriber& operator=(const kv_event_subscriber&) = delete;

  std::vector<msg::kv_event> drain();                // translated events since the last call
  std::vector<msg::kv_event> snapshot() const;       // every block held now, as `stored` events
  kv_event_subscriber_stats stats() const;

  struct impl;

 private:
  explicit kv_event_subscriber(std::unique_ptr<impl> p);
  std::unique_ptr<impl> p_;
};

}  // namespace yard::backends::external
