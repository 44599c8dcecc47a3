// backends/chat/tool_calls/tool_call_json.hpp — the JSON pieces of tool-call
// parsing: where a JSON value in growing text ends, and what one call object
// says.
//
// Owns: json_extent_scanner (finds the closing bracket of an object or array
// in text that is still arriving, without parsing it), parse_json (a
// non-throwing ordered parse) and decode_call_object (a {"name", "arguments"}
// object to a name plus compact arguments text).
// Must not touch: call markers and formats (tool_call_blocks), ids, streaming
// state. Never throws: malformed input is a "not a call" answer.
// Thread-safety: the scanner is a per-block value; the functions are pure.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace yard::backends::chat {

// Finds the end of the JSON object or array that starts at a given offset.
// Tracks strings (with escapes) and bracket nesting only; whether the value is
// valid JSON is parse_json's call. Resumable: scan() continues where the last
// call stopped, so text fed in pieces is walked once.
class json_extent_scanner {
 public:
  enum class state {
    need_more,  // the value has not closed yet
    done,       // closed: end() is one past its closing bracket
    invalid,    // mismatched bracket, not a '{'/'[' at start, or nested deeper than k_max_depth
  };
  static constexpr std::size_t k_max_depth = 256;  // deeper nesting is refused, not parsed

  json_extent_scanner() = default;
  // Start a value at offset `start` of the text given to scan().
  explicit json_extent_scanner(std::size_t start) : pos_(start) {}

  // `text` must be the text of earlier calls, possibly extended at the end.
  // Once done or invalid, further calls return the same answer.
  state scan(std::string_view text);
  std::size_t end() const { return pos_; }  // meaningful when scan() returned done

 private:
  std::size_t pos_ = 0;         // next byte to look at
  std::string closers_;         // expected closing brackets, innermost last
  bool started_ = false;        // the opening bracket was seen
  bool in_string_ = false;
  bool escape_ = false;         // the previous byte in a string was a backslash
  state state_ = state::need_more;
};

// Parses `text` as one JSON value, keeping object key order; nullopt when it
// is not valid JSON (never throws).
std::optional<nlohmann::ordered_json> parse_json(std::string_view text);

// What one call object says.
struct decoded_call {
  std::string name;               // the function name, non-empty
  std::string arguments;          // compact JSON object text, keys in the model's order
  std::optional<std::string> id;  // the model's own id, when asked for and present as a string
};

// A call object is a JSON object with a non-empty string "name" and arguments
// under "arguments" (or "parameters", Llama's key, when "arguments" is absent)
// given as an object, as a string holding a JSON object, or absent/null/an
// empty string (= "{}"). Anything else (no name, arguments not an object,
// a string that is not JSON) is not a call: nullopt. `take_id`: also read a
// string "id" (Mistral).
std::optional<decoded_call> decode_call_object(const nlohmann::ordered_json& value, bool take_id);

}  // namespace yard::backends::chat
