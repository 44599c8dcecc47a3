#include "backends/chat/jinja/jinja_parser.hpp"

#include <algorithm>
#include <set>
#include <string>

#include "backends/chat/jinja/jinja_expr_parser.hpp"

namespace yard::backends::chat::jinja {

namespace {

constexpr int max_block_nesting = 100;

// The block that is open while its body is parsed: the tag that opened it, where, and the tags ending it.
struct open_block {
  std::string_view tag;
  source_pos pos;
  std::vector<std::string_view> ends;  // the last one is the closing tag (endif for if/elif/else)
};

class parser {
 public:
  explicit parser(std::vector<token> tokens) : c_(std::move(tokens)), exprs_(c_) {}

  std::unique_ptr<template_ast> run() {
    auto ast = std::make_unique<template_ast>();
    ast->body = parse_body(nullptr);
    for (const auto& [name, pos] : exprs_.called_names())
      if (!find_global(name) && !macro_names_.count(name)) fail_unsupported("unsupported function '" + name + "'", pos);
    return ast;
  }

 private:
  // Statements up to one of `block`'s end tags (the cursor is then past that tag's name, `ended` names it)
  // or, at the top level (`block` null), to the end of the template.
  stmt_list parse_body(const open_block* block, std::string* ended = nullptr) {
    stmt_list body;
    while (true) {
      const token& t = c_.cur();
      switch (t.kind) {
        case token_kind::text: {
          auto s = make(stmt_kind::text, t.pos);
          s->text = c_.next().text;
          body.push_back(std::move(s));
          break;
        }
        case token_kind::output_begin: {
          auto s = make(stmt_kind::output, c_.next().pos);
          s->expression = exprs_.parse_tuple();
          if (c_.cur().kind != token_kind::output_end) c_.fail_expected("'}}'");
          c_.next();
          body.push_back(std::move(s));
          break;
        }
        case token_kind::block_begin: {
          const token& name = c_.peek();
          if (name.kind != token_kind::name) {
            c_.next();
            c_.fail_expected("a tag name");
          }
          if (block && std::find(block->ends.begin(), block->ends.end(), name.text) != block->ends.end()) {
            c_.next();
            const std::string& end = c_.next().text;
            if (ended) *ended = end;
            return body;
          }
          if (is_end_tag(name.text)) {
            std::string msg = "unexpected '" + name.text + "'";
            if (block)
              msg += "; the innermost open block is '" + std::string(block->tag) + "' from line " +
                     std::to_string(block->pos.line) + ", which ends with '" + std::string(block->ends.back()) + "'";
            fail(msg, name.pos);
          }
          c_.next();
          body.push_back(parse_statement());
          break;
        }
        case token_kind::eof:
          if (block)
            fail("unterminated '" + std::string(block->tag) + "' block: no '" + std::string(block->ends.back()) + "'",
                 block->pos);
          return body;
        default: c_.fail_expected("template text or a tag");
      }
    }
  }

  static bool is_end_tag(std::string_view name) {
    return name.substr(0, 3) == "end" || name == "elif" || name == "else";
  }

  static stmt_ptr make(stmt_kind kind, source_pos pos) {
    auto s = std::make_unique<stmt>();
    s->kind = kind;
    s->pos = pos;
    return s;
  }

  void expect_block_end() {
    if (c_.cur().kind != token_kind::block_end) c_.fail_expected("'%}'");
    c_.next();
  }

  // The cursor is at the tag's name, just after `{%`.
  stmt_ptr parse_statement() {
    const token& name = c_.next();
    if (block_depth_ >= max_block_nesting) fail("blocks nested too deeply", name.pos);
    ++block_depth_;
    stmt_ptr s = parse_tag(name);
    --block_depth_;
    return s;
  }

  stmt_ptr parse_tag(const token& name) {
    const std::string& tag = name.text;
    if (tag == "if") return parse_if(name.pos);
    if (tag == "for") return parse_for(name.pos);
    if (tag == "set") return parse_set(name.pos);
    if (tag == "macro") return parse_macro(name.pos);
    if (tag == "filter") return parse_filter_block(name.pos);
    if (tag == "generation") {
      expect_block_end();
      auto s = make(stmt_kind::group, name.pos);
      open_block block{"generation", name.pos, {"endgeneration"}};
      s->body = parse_body(&block);
      expect_block_end();
      return s;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail("'" + tag + "' outside a loop", name.pos);
      expect_block_end();
      return make(tag == "break" ? stmt_kind::loop_break : stmt_kind::loop_continue, name.pos);
    }
    if (tag == "do") {
      auto s = make(stmt_kind::do_, name.pos);
      s->expression = exprs_.parse_tuple();
      expect_block_end();
      return s;
    }
    fail_unsupported("unsupported tag '" + tag + "'", name.pos);
  }

  stmt_ptr parse_if(source_pos pos) {
    auto s = make(stmt_kind::if_, pos);
    open_block block{"if", pos, {"elif", "else", "endif"}};
    std::string ended = "elif";
    while (ended == "elif") {
      if_branch branch;
      branch.cond = exprs_.parse_expression();
      expect_block_end();
      branch.body = parse_body(&block, &ended);
      s->branches.push_back(std::move(branch));
    }
    if (ended == "else") {
      expect_block_end();
      open_block else_block{"if", pos, {"endif"}};
      s->else_body = parse_body(&else_block);
    }
    expect_block_end();
    return s;
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool parens = c_.skip_op("(");
    do names.push_back(c_.expect_name("a variable name").text);
    while (c_.skip_op(","));
    if (parens) c_.expect_op(")");
    return names;
  }

  stmt_ptr parse_for(source_pos pos) {
    auto s = make(stmt_kind::for_, pos);
    s->targets = parse_targets();
    if (!c_.skip_name("in")) c_.fail_expected("'in'");
    s->expression = exprs_.parse_tuple(false);
    if (c_.skip_name("if")) s->cond = exprs_.parse_expression();
    if (c_.at_name("recursive")) fail_unsupported("unsupported recursive loop", c_.cur().pos);
    expect_block_end();
    ++loop_depth_;
    open_block block{"for", pos, {"else", "endfor"}};
    std::string ended;
    s->body = parse_body(&block, &ended);
    --loop_depth_;
    if (ended == "else") {
      expect_block_end();
      open_block else_block{"for", pos, {"endfor"}};
      s->else_body = parse_body(&else_block);
    }
    expect_block_end();
    return s;
  }

  stmt_ptr parse_set(source_pos pos) {
    auto s = make(stmt_kind::set, pos);
    if (c_.peek().kind == token_kind::op && c_.peek().text == ".") {
      s->targets.push_back(c_.expect_name("a variable name").text);
      c_.next();
      s->attr = c_.expect_name("an attribute name").text;
    } else {
      s->targets = parse_targets();
    }
    if (c_.skip_op("=")) {
      s->expression = exprs_.parse_tuple();
      expect_block_end();
      return s;
    }
    if (s->targets.size() != 1 || !s->attr.empty()) c_.fail_expected("'='");
    s->kind = stmt_kind::set_block;
    if (c_.skip_op("|")) s->filter = exprs_.parse_filters(block_input(c_.cur().pos));
    expect_block_end();
    open_block block{"set", pos, {"endset"}};
    s->body = parse_body(&block);
    expect_block_end();
    return s;
  }

  stmt_ptr parse_macro(source_pos pos) {
    auto s = make(stmt_kind::macro, pos);
    s->text = c_.expect_name("a macro name").text;
    macro_names_.insert(s->text);
    c_.expect_op("(");
    while (!c_.at_op(")")) {
      macro_param p;
      p.name = c_.expect_name("a parameter name").text;
      if (c_.skip_op("=")) p.default_value = exprs_.parse_expression();
      s->params.push_back(std::move(p));
      if (!c_.skip_op(",")) break;
    }
    c_.expect_op(")");
    expect_block_end();
    std::size_t outer_loops = std::exchange(loop_depth_, 0);  // a macro body is not inside the caller's loop
    open_block block{"macro", pos, {"endmacro"}};
    s->body = parse_body(&block);
    loop_depth_ = outer_loops;
    if (c_.cur().kind == token_kind::name && c_.cur().text == s->text) c_.next();  // {% endmacro name %}
    expect_block_end();
    return s;
  }

  stmt_ptr parse_filter_block(source_pos pos) {
    auto s = make(stmt_kind::filter_block, pos);
    s->filter = exprs_.parse_filters(block_input(c_.cur().pos));
    expect_block_end();
    open_block block{"filter", pos, {"endfilter"}};
    s->body = parse_body(&block);
    expect_block_end();
    return s;
  }

  static expr_ptr block_input(source_pos pos) {
    auto e = std::make_unique<expr>();
    e->kind = expr_kind::block_input;
    e->pos = pos;
    return e;
  }

  token_cursor c_;
  expr_parser exprs_;
  std::set<std::string, std::less<>> macro_names_;
  std::size_t loop_depth_ = 0;  // for loops around the statement being parsed (break/continue need one)
  int block_depth_ = 0;         // tags open around the statement being parsed
};

}  // namespace

std::unique_ptr<template_ast> parse(std::vector<token> tokens) { return parser(std::move(tokens)).run(); }

}  // namespace yard::backends::chat::jinja
