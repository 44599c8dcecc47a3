// backends/chat/jinja/jinja_ast.hpp — the compiled form of a chat template.
//
// Owns: the expression and statement nodes the parser builds and the renderer walks. Filters and tests are
// resolved to function pointers at compile time, so rendering never looks them up by name.
// Must not touch: evaluation (jinja_render) and parsing (jinja_parser).
// Thread-safety: immutable after compile; one tree is rendered by many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backends/chat/jinja/jinja_call.hpp"
#include "backends/chat/jinja/jinja_error.hpp"
#include "backends/chat/jinja/jinja_value.hpp"

namespace yard::backends::chat::jinja {

struct expr;
struct stmt;
using expr_ptr = std::unique_ptr<expr>;
using stmt_ptr = std::unique_ptr<stmt>;
using stmt_list = std::vector<stmt_ptr>;

enum class expr_kind : std::uint8_t {
  literal,      // constant (none, bool, int, float, str)
  name,         // a variable: name
  attribute,    // args[0].name
  subscript,    // args[0][args[1]]
  slice,        // args[0][args[1]:args[2]:args[3]]; an omitted part is nullptr
  call,         // args[0](args[1..], kwargs)
  filter,       // args[0] | name(args[1..], kwargs) through `filter`
  test,         // args[0] is [not] name(args[1..], kwargs) through `test`; `negated` for `is not`
  unary,        // op args[0]: neg, pos, not_
  binary,       // args[0] op args[1]: arithmetic and ~
  compare,      // args[0] ops[0] args[1] ops[1] args[2] ... (Python chains: a < b < c)
  logical_and,  // args[0] and args[1]: Python's value-returning and
  logical_or,
  conditional,  // args[1] if args[0] else args[2] (args[2] nullptr: undefined)
  list,         // [args...]
  tuple,        // (args...)
  dict,         // {args[0]: args[1], args[2]: args[3], ...}
  block_input,  // the rendered body of a {% filter %} or {% set x | f %} block
};

enum class op_kind : std::uint8_t {
  add, sub, mul, div, floordiv, mod, pow, concat,  // binary
  eq, ne, lt, le, gt, ge, in, not_in,              // compare
  neg, pos, not_,                                  // unary
};

struct expr {
  expr_kind kind = expr_kind::literal;
  op_kind op = op_kind::add;
  bool negated = false;
  source_pos pos;
  std::string name;
  value constant;
  std::vector<expr_ptr> args;
  std::vector<op_kind> ops;
  std::vector<std::pair<std::string, expr_ptr>> kwargs;
  filter_fn filter = nullptr;
  test_fn test = nullptr;
};

enum class stmt_kind : std::uint8_t {
  text,           // text
  output,         // {{ expression }}
  if_,            // branches, else_body
  for_,           // for targets in expression [if cond]: body [else: else_body]
  set,            // set targets = expression; with attr: set targets[0].attr = expression (a namespace)
  set_block,      // set targets[0] [| filter] %} body {% endset
  macro,          // macro text(params) %} body {% endmacro
  filter_block,   // filter ... %} body {% endfilter: filter is the chain over a block_input node
  group,          // {% generation %} body {% endgeneration %}: body as is
  loop_break,
  loop_continue,
  do_,            // do expression: evaluated, nothing printed
};

struct macro_param {
  std::string name;
  expr_ptr default_value;  // nullptr: undefined when not passed
};

struct if_branch {
  expr_ptr cond;
  stmt_list body;
};

struct stmt {
  stmt_kind kind = stmt_kind::text;
  source_pos pos;
  std::string text;                  // text; the macro's name
  expr_ptr expression;               // output, set, do; the iterable of a for
  std::vector<std::string> targets;  // the names a for or set binds (several: tuple unpacking)
  std::string attr;                  // set ns.attr
  expr_ptr cond;                     // for ... if cond
  std::vector<if_branch> branches;   // if / elif
  stmt_list body;
  stmt_list else_body;
  std::vector<macro_param> params;
  expr_ptr filter;                   // set_block (optional) and filter_block
};

struct template_ast {
  stmt_list body;
};

}  // namespace yard::backends::chat::jinja
