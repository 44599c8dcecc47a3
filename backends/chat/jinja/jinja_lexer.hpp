// backends/chat/jinja/jinja_lexer.hpp — template source to tokens, with Jinja's whitespace rules applied.
//
// Owns: splitting a template into text and tags ({{ }}, {% %}, {# #}), the tokens inside tags (names,
// numbers, strings with Python escapes, operators), {% raw %} blocks, and every whitespace rule, so the parser
// sees text exactly as it will be printed:
//   - `{%-`, `{{-`, `{#-` strip all whitespace before the tag; `-%}`, `-}}`, `-#}` strip all after it;
//   - trim_blocks (as Hugging Face renders chat templates): the first newline after `%}` or `#}` is dropped;
//   - lstrip_blocks: spaces and tabs from the start of a line up to `{%` or `{#` are dropped (`{%+` keeps them);
//   - keep_trailing_newline=False: one newline at the very end of the template is dropped;
//   - "\r\n" and "\r" read as "\n".
// Must not touch: the meaning of tags (jinja_parser).
// Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/chat/jinja/jinja_error.hpp"

namespace yard::backends::chat::jinja {

enum class token_kind : std::uint8_t {
  text,          // literal template text, already whitespace-trimmed
  output_begin,  // {{
  output_end,    // }}
  block_begin,   // {%
  block_end,     // %}
  name,          // identifiers and keywords (if, in, not, true, none, ...)
  string,        // text holds the unescaped value
  integer,
  floating,
  op,            // text holds the operator: + - * / // % ** ~ ( ) [ ] { } , . : | = == != < <= > >= ;
  eof,
};

struct token {
  token_kind kind = token_kind::eof;
  std::string text;
  std::int64_t int_value = 0;
  double float_value = 0;
  source_pos pos;
};

// Throws template_error (bad_request) for an unclosed tag, comment or string, or a character no token starts
// with. The last token is always eof.
std::vector<token> lex(std::string_view source);

}  // namespace yard::backends::chat::jinja
