#include "backends/chat/jinja/jinja_token_cursor.hpp"

namespace yard::backends::chat::jinja {

bool token_cursor::skip_op(std::string_view op) {
  if (!at_op(op)) return false;
  next();
  return true;
}

bool token_cursor::skip_name(std::string_view name) {
  if (!at_name(name)) return false;
  next();
  return true;
}

void token_cursor::expect_op(std::string_view op) {
  if (!skip_op(op)) fail_expected("'" + std::string(op) + "'");
}

const token& token_cursor::expect_name(std::string_view what) {
  if (cur().kind != token_kind::name) fail_expected(what);
  return next();
}

void token_cursor::fail_expected(std::string_view what) const {
  fail("expected " + std::string(what) + ", got " + describe(cur()), cur().pos);
}

std::string token_cursor::describe(const token& t) {
  switch (t.kind) {
    case token_kind::text: return "template text";
    case token_kind::output_begin: return "'{{'";
    case token_kind::output_end: return "'}}'";
    case token_kind::block_begin: return "'{%'";
    case token_kind::block_end: return "'%}'";
    case token_kind::name:
    case token_kind::op: return "'" + t.text + "'";
    case token_kind::string: return "a string";
    case token_kind::integer:
    case token_kind::floating: return "a number";
    case token_kind::eof: return "the end of the template";
  }
  return "?";
}

}  // namespace yard::backends::chat::jinja
