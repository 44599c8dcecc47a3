// backends/chat/jinja/jinja_template.hpp — Hugging Face chat templates (a Jinja2 subset), compiled once and
// rendered per request.
//
// Owns: the public edge of the engine: compile() (lex + parse + every static check) and render() (walk the
// tree with the request's variables), and the conversion of every internal failure to a yard::error whose
// message names the template line: "chat template line 7: unsupported filter 'wordwrap' (column 12)".
// Rendering follows transformers' apply_chat_template: trim_blocks and lstrip_blocks on, one trailing newline
// of the template dropped, no autoescape, Jinja's lenient undefined (prints "", is falsy, iterates as empty;
// its attributes and items are undefined too), `tojson` as Python's json.dumps(ensure_ascii=False), the
// loop-controls extension (break/continue) and {% generation %}. Not supported (compile errors): include,
// import, extends, block, call, with, recursive loops, *args/**kwargs, and filters/tests outside the tables in
// jinja_filters.cpp, jinja_seq_filters.cpp and jinja_is_tests.cpp.
// Must not touch: tokenization and the engine; the hard-coded families in backends/native/chat_template stay
// the fallback for models without a template.
// Thread-safety: a compiled template is immutable; render may run on many threads at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.hpp"

namespace yard::backends::chat::jinja {

struct template_ast;

class jinja_template {  // compiled, immutable, thread-safe to render concurrently
 public:
  // Parses the whole source. Anything unsupported (unknown tag, filter, test or global function, a method a
  // literal's type lacks) is errc::unsupported; a syntax error or an unclosed block is errc::bad_request.
  // The message names the line (and column) and the construct; an unclosed block names the line it opened on.
  static yard::result<jinja_template> compile(std::string_view source);

  // Renders with `context` (an object: messages, tools, add_generation_prompt, bos_token, ...). Runtime
  // failures are errc::bad_request naming the line: raise_exception (its message verbatim), type errors,
  // calling a method the runtime value lacks. Nothing is left behind on failure.
  yard::result<std::string> render(const nlohmann::ordered_json& context) const;

 private:
  explicit jinja_template(std::shared_ptr<const template_ast> ast) : ast_(std::move(ast)) {}

  std::shared_ptr<const template_ast> ast_;  // shared by copies; never mutated after compile
};

}  // namespace yard::backends::chat::jinja
