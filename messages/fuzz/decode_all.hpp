// messages/fuzz/decode_all.hpp — one input through every decoder (shared by
// the libFuzzer target and the regression test). Aborts on a broken round trip.
#pragma once

#include <cstdlib>
#include <string_view>

#include "messages/codec.hpp"

namespace yard::msg::fuzz {

template <class T>
void round_trip(std::string_view bytes, wire_format f) {
  auto v = decode<T>(bytes, f);
  if (!v) return;
  auto again = encode(*v, f);
  auto back = decode<T>(again, f);
  if (!back) std::abort();                   // what we encode, we must decode
  if (encode(*back, f) != again) std::abort();  // and encoding is stable
}

inline void decode_all(std::string_view bytes) {
  for (auto f : {wire_format::msgpack, wire_format::json}) {
    round_trip<generate_request>(bytes, f);
    round_trip<token_chunk>(bytes, f);
    round_trip<cancel_request>(bytes, f);
    round_trip<heartbeat>(bytes, f);
    round_trip<kv_event_batch>(bytes, f);
    round_trip<error_reply>(bytes, f);
  }
}

}  // namespace yard::msg::fuzz
