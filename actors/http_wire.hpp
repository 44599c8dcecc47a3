// actors/http_wire.hpp — internal: small HTTP/1.1 wire helpers shared by http_connection's files.
//
// Owns: the response head and the Unix clock the OpenAI objects use.
// Must not touch: sockets, state.
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/http/status.hpp>
#include <fmt/format.h>

namespace yard::actors::http_wire {

inline std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

inline std::string response_head(int status, const char* content_type, bool keep_alive) {
  namespace bhttp = boost::beast::http;
  auto reason = bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(status)));
  return fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nConnection: {}\r\n", status,
                     std::string_view(reason.data(), reason.size()), content_type, keep_alive ? "keep-alive" : "close");
}

}  // namespace yard::actors::http_wire
