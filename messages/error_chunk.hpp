// messages/error_chunk.hpp — the token_chunk that ends a stream with an error.
//
// Owns: building that one message (finish_reason error, the error's code and
// text) the same way wherever a stream is failed: the router and the worker
// replying on the bus, the frontend ending a client's stream.
// Must not touch: where the chunk goes (the caller publishes or queues it).
// Thread-safety: a pure function.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.hpp"
#include "messages/types.hpp"

namespace yard::msg {

inline token_chunk error_chunk(std::string request_id, std::uint64_t seq, errc code, std::string message) {
  token_chunk c;
  c.request_id = std::move(request_id);
  c.seq = seq;
  c.finish_reason = finish_kind::error;
  c.error = error_reply{static_cast<std::int32_t>(code), std::move(message)};
  return c;
}

}  // namespace yard::msg
