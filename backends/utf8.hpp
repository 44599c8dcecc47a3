// backends/utf8.hpp — UTF-8 decoding and streaming for engine output.
//
// Owns: code-point decode/encode and utf8_stream, which turns a token's bytes
// into text that never splits a character (an engine's streamed deltas are
// always valid UTF-8).
// Must not touch: tokenizers, engines.
// Thread-safety: free functions are pure; utf8_stream is a per-sequence value.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace yard::backends {

// Splits streamed bytes into valid UTF-8 text: push() returns the longest
// complete prefix and keeps an unfinished character for the next call.
// Invalid bytes become U+FFFD.
class utf8_stream {
 public:
  std::string push(std::string_view bytes);
  std::string flush();  // end of stream: pending bytes become U+FFFD
  bool empty() const { return pending_.empty(); }

 private:
  std::string pending_;
};

// Decodes one UTF-8 code point at s[i]; returns its length (0 if invalid or incomplete at the end).
int utf8_decode(std::string_view s, std::size_t i, std::uint32_t& cp);
// Like utf8_decode, but -1 when the bytes at i are a valid start cut short by the end of s.
int utf8_check(std::string_view s, std::size_t i, std::uint32_t& cp);
void utf8_append(std::string& out, std::uint32_t cp);

}  // namespace yard::backends
