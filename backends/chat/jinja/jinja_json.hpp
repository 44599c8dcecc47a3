// backends/chat/jinja/jinja_json.hpp — the `tojson` filter's output, byte for byte.
//
// Owns: serialising a value the way Hugging Face's chat templates do (transformers replaces Jinja's tojson with
// Python's json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)): separators
// ", " and ": " on one line, "," and ": " with an indent, key order kept, non-ASCII text written as is
// unless ensure_ascii, floats as Python's repr, NaN/Infinity as Python writes them.
// Must not touch: parsing JSON (the request's JSON is converted once by from_json in jinja_value).
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>

#include "backends/chat/jinja/jinja_value.hpp"

namespace yard::backends::chat::jinja {

struct json_format {
  std::optional<std::string> indent;  // absent: one line; else the text repeated per nesting level
  std::string item_separator = ", ";  // "," when an indent is given and separators are not
  std::string key_separator = ": ";
  bool ensure_ascii = false;          // \uXXXX for every non-ASCII character
  bool sort_keys = false;
};

// Appends the JSON text of `v`; undefined, namespaces, macros and the loop object throw
// "Object of type X is not JSON serializable", as Python does.
void append_json(std::string& out, const value& v, const json_format& format);
void append_json_string(std::string& out, std::string_view s, bool ensure_ascii);

}  // namespace yard::backends::chat::jinja
