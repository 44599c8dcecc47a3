// messages/json_value.hpp — a free-form JSON field inside a wire struct.
//
// Owns: msg::json_value, the one field type whose shape is not fixed by a
// describe() list: OpenAI `tools`, `tool_choice`, `response_format` (JSON
// schemas). The codec (codec.hpp) carries it as a JSON value on the JSON wire
// and as the equivalent msgpack tree (maps, arrays, strings, numbers, bools,
// nil) on the msgpack wire; object key order is kept where the wire keeps it
// (msgpack, and HTTP bodies read by actors/openai_parse), which matters for
// JSON schemas: constrained output emits properties in schema order.
// Must not touch: behaviour. Thread-safety: a plain value.
#pragma once

#include <nlohmann/json.hpp>

namespace yard::msg {

struct json_value {
  nlohmann::ordered_json v;
  bool operator==(const json_value& o) const { return v == o.v; }
};

}  // namespace yard::msg
