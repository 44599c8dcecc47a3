#include "backends/chat/jinja/jinja_expr_parser.hpp"

namespace yard::backends::chat::jinja {

namespace {

expr_ptr make(expr_kind kind, source_pos pos) {
  auto e = std::make_unique<expr>();
  e->kind = kind;
  e->pos = pos;
  return e;
}

expr_ptr make_op(expr_kind kind, op_kind op, expr_ptr lhs, expr_ptr rhs, source_pos pos) {
  auto e = make(kind, pos);
  e->op = op;
  e->args.push_back(std::move(lhs));
  if (rhs) e->args.push_back(std::move(rhs));
  return e;
}

expr_ptr make_literal(value v, source_pos pos) {
  auto e = make(expr_kind::literal, pos);
  e->constant = std::move(v);
  return e;
}

// The type a literal node is known to have at compile time (for the method check), undefined if not known.
value_kind literal_kind(const expr& e) {
  switch (e.kind) {
    case expr_kind::literal: return e.constant.kind();
    case expr_kind::list:
    case expr_kind::tuple: return value_kind::list;
    case expr_kind::dict: return value_kind::dict;
    default: return value_kind::undefined;
  }
}

constexpr int max_nesting = 200;  // operands inside operands; real templates stay far below

}  // namespace

expr_parser::nesting_guard::nesting_guard(int& depth, const token& at) : depth_(depth) {
  if (++depth_ > max_nesting) fail("expression nested too deeply", at.pos);
}

expr_ptr expr_parser::parse_tuple(bool with_condexpr, bool explicit_parens) {
  source_pos pos = c_.cur().pos;
  auto at_end = [&] {
    auto k = c_.cur().kind;
    return k == token_kind::block_end || k == token_kind::output_end || k == token_kind::eof || c_.at_op(")");
  };
  std::vector<expr_ptr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) {
      if (!c_.skip_op(",")) break;
      is_tuple = true;
    }
    if (at_end()) break;
    items.push_back(parse_expression(with_condexpr));
  }
  if (items.empty() && !explicit_parens) c_.fail_expected("an expression");
  if (!is_tuple && !items.empty()) return std::move(items[0]);
  auto node = make(expr_kind::tuple, pos);
  node->args = std::move(items);
  return node;
}

expr_ptr expr_parser::parse_expression(bool with_condexpr) {
  nesting_guard guard(depth_, c_.cur());
  source_pos pos = c_.cur().pos;
  expr_ptr node = parse_or();
  if (!with_condexpr) return node;
  while (c_.skip_name("if")) {
    auto cond = make(expr_kind::conditional, pos);
    cond->args.push_back(parse_or());
    cond->args.push_back(std::move(node));
    cond->args.push_back(c_.skip_name("else") ? parse_expression(true) : nullptr);
    node = std::move(cond);
  }
  return node;
}

expr_ptr expr_parser::parse_or() {
  expr_ptr node = parse_and();
  while (c_.at_name("or")) {
    source_pos pos = c_.next().pos;
    node = make_op(expr_kind::logical_or, op_kind::add, std::move(node), parse_and(), pos);
  }
  return node;
}

expr_ptr expr_parser::parse_and() {
  expr_ptr node = parse_not();
  while (c_.at_name("and")) {
    source_pos pos = c_.next().pos;
    node = make_op(expr_kind::logical_and, op_kind::add, std::move(node), parse_not(), pos);
  }
  return node;
}

expr_ptr expr_parser::parse_not() {
  if (!c_.at_name("not")) return parse_compare();
  nesting_guard guard(depth_, c_.cur());
  source_pos pos = c_.next().pos;
  return make_op(expr_kind::unary, op_kind::not_, parse_not(), nullptr, pos);
}

expr_ptr expr_parser::parse_compare() {
  source_pos pos = c_.cur().pos;
  expr_ptr first = parse_math1();
  auto node = make(expr_kind::compare, pos);
  node->args.push_back(std::move(first));
  static const std::pair<const char*, op_kind> symbols[] = {{"==", op_kind::eq}, {"!=", op_kind::ne},
                                                             {"<", op_kind::lt},  {"<=", op_kind::le},
                                                             {">", op_kind::gt},  {">=", op_kind::ge}};
  while (true) {
    bool found = false;
    for (const auto& [sym, op] : symbols)
      if (c_.skip_op(sym)) {
        node->ops.push_back(op);
        found = true;
        break;
      }
    if (!found && c_.skip_name("in")) {
      node->ops.push_back(op_kind::in);
      found = true;
    } else if (!found && c_.at_name("not") && c_.peek().kind == token_kind::name && c_.peek().text == "in") {
      c_.next();
      c_.next();
      node->ops.push_back(op_kind::not_in);
      found = true;
    }
    if (!found) break;
    node->args.push_back(parse_math1());
  }
  if (node->ops.empty()) return std::move(node->args[0]);
  return node;
}

expr_ptr expr_parser::parse_math1() {
  expr_ptr node = parse_concat();
  while (c_.at_op("+") || c_.at_op("-")) {
    const token& t = c_.next();
    op_kind op = t.text == "+" ? op_kind::add : op_kind::sub;
    node = make_op(expr_kind::binary, op, std::move(node), parse_concat(), t.pos);
  }
  return node;
}

expr_ptr expr_parser::parse_concat() {
  expr_ptr node = parse_math2();
  while (c_.at_op("~")) {
    source_pos pos = c_.next().pos;
    node = make_op(expr_kind::binary, op_kind::concat, std::move(node), parse_math2(), pos);
  }
  return node;
}

expr_ptr expr_parser::parse_math2() {
  expr_ptr node = parse_pow();
  while (c_.at_op("*") || c_.at_op("/") || c_.at_op("//") || c_.at_op("%")) {
    const token& t = c_.next();
    op_kind op = t.text == "*" ? op_kind::mul : t.text == "/" ? op_kind::div : t.text == "//" ? op_kind::floordiv
                                                                                                : op_kind::mod;
    node = make_op(expr_kind::binary, op, std::move(node), parse_pow(), t.pos);
  }
  return node;
}

expr_ptr expr_parser::parse_pow() {
  expr_ptr node = parse_unary(true);
  while (c_.at_op("**")) {
    source_pos pos = c_.next().pos;
    node = make_op(expr_kind::binary, op_kind::pow, std::move(node), parse_unary(true), pos);
  }
  return node;
}

expr_ptr expr_parser::parse_unary(bool with_filter) {
  nesting_guard guard(depth_, c_.cur());
  expr_ptr node;
  if (c_.at_op("-") || c_.at_op("+")) {
    const token& t = c_.next();
    node = make_op(expr_kind::unary, t.text == "-" ? op_kind::neg : op_kind::pos, parse_unary(false), nullptr, t.pos);
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  return with_filter ? parse_filter_expr(std::move(node)) : std::move(node);
}

expr_ptr expr_parser::parse_primary() {
  const token& t = c_.cur();
  source_pos pos = t.pos;
  switch (t.kind) {
    case token_kind::name: {
      std::string name = c_.next().text;
      if (name == "true" || name == "True") return make_literal(value::boolean(true), pos);
      if (name == "false" || name == "False") return make_literal(value::boolean(false), pos);
      if (name == "none" || name == "None") return make_literal(value::none(), pos);
      auto node = make(expr_kind::name, pos);
      node->name = std::move(name);
      return node;
    }
    case token_kind::string: {
      std::string s = c_.next().text;
      while (c_.cur().kind == token_kind::string) s += c_.next().text;  // 'a' 'b' is 'ab'
      return make_literal(value::string(std::move(s)), pos);
    }
    case token_kind::integer: return make_literal(value::integer(c_.next().int_value), pos);
    case token_kind::floating: return make_literal(value::floating(c_.next().float_value), pos);
    default: break;
  }
  if (c_.skip_op("(")) {
    expr_ptr node = parse_tuple(true, true);
    c_.expect_op(")");
    return node;
  }
  if (c_.at_op("[") || c_.at_op("{")) {
    bool is_dict = c_.next().text == "{";
    auto node = make(is_dict ? expr_kind::dict : expr_kind::list, pos);
    const char* close = is_dict ? "}" : "]";
    while (!c_.at_op(close)) {
      node->args.push_back(parse_expression());
      if (is_dict) {
        c_.expect_op(":");
        node->args.push_back(parse_expression());
      }
      if (!c_.skip_op(",")) break;
    }
    c_.expect_op(close);
    return node;
  }
  c_.fail_expected("an expression");
}

expr_ptr expr_parser::parse_postfix(expr_ptr node) {
  while (true) {
    if (c_.at_op(".") || c_.at_op("[")) node = parse_subscript(std::move(node));
    else if (c_.at_op("(")) node = parse_call(std::move(node));
    else return node;
  }
}

expr_ptr expr_parser::parse_filter_expr(expr_ptr node) {
  while (true) {
    if (c_.skip_op("|")) node = parse_filter(std::move(node));
    else if (c_.at_name("is")) node = parse_test(std::move(node));
    else if (c_.at_op("(")) node = parse_call(std::move(node));
    else return node;
  }
}

expr_ptr expr_parser::parse_filters(expr_ptr subject) {
  expr_ptr node = parse_filter(std::move(subject));
  while (c_.skip_op("|")) node = parse_filter(std::move(node));
  return node;
}

expr_ptr expr_parser::parse_subscript(expr_ptr subject) {
  source_pos pos = c_.cur().pos;
  if (c_.skip_op(".")) {
    const token& t = c_.cur();
    if (t.kind == token_kind::integer) {  // a.0 is a[0]
      auto node = make(expr_kind::subscript, pos);
      node->args.push_back(std::move(subject));
      node->args.push_back(make_literal(value::integer(c_.next().int_value), t.pos));
      return node;
    }
    auto node = make(expr_kind::attribute, pos);
    node->name = c_.expect_name("an attribute name").text;
    node->args.push_back(std::move(subject));
    return node;
  }
  c_.expect_op("[");
  expr_ptr start;
  if (!c_.at_op(":")) {
    start = parse_expression();
    if (!c_.at_op(":")) {
      c_.expect_op("]");
      auto node = make(expr_kind::subscript, pos);
      node->args.push_back(std::move(subject));
      node->args.push_back(std::move(start));
      return node;
    }
  }
  c_.expect_op(":");
  expr_ptr stop, step;
  if (!c_.at_op("]") && !c_.at_op(":")) stop = parse_expression();
  if (c_.skip_op(":") && !c_.at_op("]")) step = parse_expression();
  c_.expect_op("]");
  auto node = make(expr_kind::slice, pos);
  node->args.push_back(std::move(subject));
  node->args.push_back(std::move(start));
  node->args.push_back(std::move(stop));
  node->args.push_back(std::move(step));
  return node;
}

expr_ptr expr_parser::parse_call(expr_ptr callee) {
  auto node = make(expr_kind::call, callee->pos);
  if (callee->kind == expr_kind::name) {
    called_names_.emplace_back(callee->name, callee->pos);
  } else if (callee->kind == expr_kind::attribute) {
    value_kind known = literal_kind(*callee->args[0]);
    if (known != value_kind::undefined && !has_method(known, callee->name))
      fail_unsupported("unsupported method '" + callee->name + "' on a " +
                           std::string(known == value_kind::string ? "str"
                                       : known == value_kind::list ? "list"
                                       : known == value_kind::dict ? "dict"
                                                                   : "literal"),
                       callee->pos);
  }
  node->args.push_back(std::move(callee));
  parse_call_args(*node);
  return node;
}

void expr_parser::parse_call_args(expr& node) {
  c_.expect_op("(");
  while (!c_.at_op(")")) {
    if (c_.at_op("*") || c_.at_op("**")) fail_unsupported("unsupported '*' or '**' arguments", c_.cur().pos);
    if (c_.cur().kind == token_kind::name && c_.peek().kind == token_kind::op && c_.peek().text == "=") {
      std::string name = c_.next().text;
      c_.next();
      node.kwargs.emplace_back(std::move(name), parse_expression());
    } else {
      if (!node.kwargs.empty()) fail("positional argument follows keyword argument", c_.cur().pos);
      node.args.push_back(parse_expression());
    }
    if (!c_.skip_op(",")) break;
  }
  c_.expect_op(")");
}

expr_ptr expr_parser::parse_filter(expr_ptr subject) {
  const token& first = c_.expect_name("a filter name");
  auto node = make(expr_kind::filter, first.pos);
  node->name = first.text;
  while (c_.skip_op(".")) node->name += "." + c_.expect_name("a filter name").text;
  node->filter = find_filter(node->name);
  if (!node->filter) fail_unsupported("unsupported filter '" + node->name + "'", node->pos);
  node->args.push_back(std::move(subject));
  if (c_.at_op("(")) parse_call_args(*node);
  check_named_builtins(*node);
  return node;
}

expr_ptr expr_parser::parse_test(expr_ptr subject) {
  c_.expect_name("'is'");
  bool negated = c_.skip_name("not");
  const token& first = c_.expect_name("a test name");
  auto node = make(expr_kind::test, first.pos);
  node->negated = negated;
  node->name = first.text;
  while (c_.skip_op(".")) node->name += "." + c_.expect_name("a test name").text;
  node->test = find_test(node->name);
  if (!node->test) fail_unsupported("unsupported test '" + node->name + "'", node->pos);
  node->args.push_back(std::move(subject));
  const token& t = c_.cur();
  if (c_.at_op("(")) {
    parse_call_args(*node);
  } else if ((t.kind == token_kind::name || t.kind == token_kind::string || t.kind == token_kind::integer ||
              t.kind == token_kind::floating || c_.at_op("[") || c_.at_op("{")) &&
             !c_.at_name("else") && !c_.at_name("or") && !c_.at_name("and")) {
    // `x is divisibleby 3`, `x is equalto 'a'`: one argument without parentheses
    if (c_.at_name("is")) fail("tests cannot be chained with 'is'", t.pos);
    node->args.push_back(parse_postfix(parse_primary()));
  }
  return node;
}

// select('odd'), selectattr('x', 'equalto', 1), map('upper'): a literal test or filter name is checked now.
void expr_parser::check_named_builtins(const expr& node) const {
  auto literal_name = [&](std::size_t index) -> const expr* {
    if (node.args.size() <= index) return nullptr;
    const expr& a = *node.args[index];
    return a.kind == expr_kind::literal && a.constant.is_string() ? &a : nullptr;
  };
  const expr* name = nullptr;
  bool is_test = true;
  if (node.name == "select" || node.name == "reject") name = literal_name(1);
  else if (node.name == "selectattr" || node.name == "rejectattr") name = literal_name(2);
  else if (node.name == "map" && node.kwargs.empty()) name = literal_name(1), is_test = false;
  if (!name) return;
  const std::string& n = name->constant.as_string();
  if (is_test && !find_test(n)) fail_unsupported("unsupported test '" + n + "'", name->pos);
  if (!is_test && !find_filter(n)) fail_unsupported("unsupported filter '" + n + "'", name->pos);
}

}  // namespace yard::backends::chat::jinja
