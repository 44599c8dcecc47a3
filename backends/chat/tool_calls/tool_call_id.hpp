// backends/chat/tool_calls/tool_call_id.hpp — ids for parsed tool calls.
//
// Owns: id_source, the random generator behind tool-call ids, and the id
// shapes: OpenAI-style "call_" + 24 alphanumerics for llama3_json and hermes,
// and Mistral's 9 alphanumerics (its chat template rejects any other shape
// when the call is sent back in the next turn).
// Must not touch: parsing, uniqueness within one reply (the parser keeps the
// ids it has handed out and draws again on a clash), request or wire types.
// Thread-safety: an id_source is a plain mutable value: one per request or
// stream, or guard it. Free functions are pure.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "backends/chat/tool_calls/tool_call_format.hpp"

namespace yard::backends::chat {

class id_source {
 public:
  // Seeded from std::random_device: ids differ between requests and runs.
  id_source();
  // Deterministic: the same seed yields the same ids in the same order (tests,
  // replays).
  explicit id_source(std::uint64_t seed);

  // A fresh id in the shape `format` uses: 9 alphanumerics for mistral,
  // "call_" + 24 alphanumerics otherwise.
  std::string next(tool_call_format format);

 private:
  std::string alnum(std::size_t n);

  std::mt19937_64 rng_;
};

// Whether `id` has Mistral's shape: exactly 9 characters of [A-Za-z0-9].
bool is_mistral_tool_call_id(std::string_view id);

}  // namespace yard::backends::chat
