// backends/chat/jinja/jinja_expr_parser.hpp — expressions inside {{ }} and {% %} to expression nodes.
//
// Owns: Jinja's expression grammar with its precedence (lowest first): `x if c else y`, or, and, not,
// comparisons and `in`, + -, ~, * / // %, **, unary - +, then postfix `.attr` `[i]` `[a:b:c]` `(args)` and the filter/test suffixes `| f(...)`,
// `is [not] t(...)`. Filters and tests are resolved here; unknown ones are compile errors (unsupported), as
// are methods that a literal's type lacks (`'x'.nope()`). Calls to bare names are recorded so the
// statement parser can check them against the globals and the template's macros once the whole source is read.
// Must not touch: statements and their tags.
// Thread-safety: one parser per compile.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/chat/jinja/jinja_ast.hpp"
#include "backends/chat/jinja/jinja_token_cursor.hpp"

namespace yard::backends::chat::jinja {

class expr_parser {
 public:
  explicit expr_parser(token_cursor& cursor) : c_(cursor) {}

  // Comma-separated expressions form a tuple; one alone is itself. with_condexpr=false stops before `if`
  // (for loops: `for x in xs if cond`).
  expr_ptr parse_tuple(bool with_condexpr = true, bool explicit_parens = false);
  expr_ptr parse_expression(bool with_condexpr = true);
  // The filters of {% filter f(a) | g %} or {% set x | f %}, applied to `subject`; the cursor is at the first name.
  expr_ptr parse_filters(expr_ptr subject);

  // The bare names called (`foo(...)`), in source order, for the check against globals and macros.
  const std::vector<std::pair<std::string, source_pos>>& called_names() const { return called_names_; }

 private:
  expr_ptr parse_or();
  expr_ptr parse_and();
  expr_ptr parse_not();
  expr_ptr parse_compare();
  expr_ptr parse_math1();
  expr_ptr parse_concat();
  expr_ptr parse_math2();
  expr_ptr parse_pow();
  expr_ptr parse_unary(bool with_filter);
  expr_ptr parse_primary();
  expr_ptr parse_postfix(expr_ptr node);
  expr_ptr parse_filter_expr(expr_ptr node);
  expr_ptr parse_filter(expr_ptr subject);
  expr_ptr parse_test(expr_ptr subject);
  expr_ptr parse_subscript(expr_ptr subject);
  expr_ptr parse_call(expr_ptr callee);
  void parse_call_args(expr& node);
  void check_named_builtins(const expr& node) const;

  // Counts nesting while one operand is parsed, so a pathological template fails instead of overflowing the stack.
  struct nesting_guard {
    nesting_guard(int& depth, const token& at);
    ~nesting_guard() { --depth_; }
    int& depth_;
  };

  token_cursor& c_;
  std::vector<std::pair<std::string, source_pos>> called_names_;
  int depth_ = 0;
};

}  // namespace yard::backends::chat::jinja
