// backends/chat/jinja/jinja_token_cursor.hpp — reading a template's tokens one at a time.
//
// Owns: the position in the token list the statement and expression parsers share, lookahead, the
// skip/expect helpers, and the wording of "expected X, got Y" syntax errors (with the token's line and column).
// Must not touch: grammar (jinja_parser, jinja_expr_parser).
// Thread-safety: one cursor per compile.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/chat/jinja/jinja_lexer.hpp"

namespace yard::backends::chat::jinja {

class token_cursor {
 public:
  explicit token_cursor(std::vector<token> tokens) : tokens_(std::move(tokens)) {}

  const token& cur() const { return tokens_[at_]; }
  const token& peek(std::size_t ahead = 1) const {
    std::size_t k = at_ + ahead;
    return tokens_[k < tokens_.size() ? k : tokens_.size() - 1];
  }
  const token& next() { return tokens_[at_ < tokens_.size() - 1 ? at_++ : at_]; }
  bool at_op(std::string_view op) const { return cur().kind == token_kind::op && cur().text == op; }
  bool at_name(std::string_view name) const { return cur().kind == token_kind::name && cur().text == name; }
  bool skip_op(std::string_view op);
  bool skip_name(std::string_view name);
  void expect_op(std::string_view op);
  const token& expect_name(std::string_view what);
  // Throws "expected <what>, got <the current token>" at the current token.
  [[noreturn]] void fail_expected(std::string_view what) const;
  static std::string describe(const token& t);

 private:
  std::vector<token> tokens_;  // ends with eof
  std::size_t at_ = 0;
};

}  // namespace yard::backends::chat::jinja
