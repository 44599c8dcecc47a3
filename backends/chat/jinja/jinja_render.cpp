#include "backends/chat/jinja/jinja_render.hpp"

#include "backends/chat/jinja/jinja_error.hpp"
#include "backends/chat/jinja/jinja_ops.hpp"

namespace yard::backends::chat::jinja {

namespace {

constexpr int max_macro_depth = 100;  // Jinja itself stops at Python's recursion limit

enum class flow { next, break_loop, continue_loop };

// How an expression reads in an error message: `message.content`, else "the expression".
std::string describe(const expr& e) {
  if (e.kind == expr_kind::name) return e.name;
  if (e.kind == expr_kind::attribute) return describe(*e.args[0]) + "." + e.name;
  if (e.kind == expr_kind::subscript) return describe(*e.args[0]) + "[...]";
  return "the expression";
}

class renderer {
 public:
  explicit renderer(const value& context) : context_(context) { frames_.emplace_back(); }

  std::string run(const template_ast& ast) {
    std::string out;
    exec_list(ast.body, out);
    return out;
  }

 private:
  using frame = std::vector<std::pair<std::string_view, value>>;  // names point into the tree

  value lookup(std::string_view name) const {
    for (std::size_t k = frames_.size(); k-- > floor_;)
      for (const auto& [n, v] : frames_[k])
        if (n == name) return v;
    for (const auto& [n, v] : frames_[0])
      if (n == name) return v;
    if (const value* v = context_.as_dict().find(name)) return *v;
    if (const global_entry* g = find_global(name)) return value::function(g);  // the request may shadow a global
    return value();
  }

  void assign(std::string_view name, value v) {
    for (auto& [n, existing] : frames_.back())
      if (n == name) {
        existing = std::move(v);
        return;
      }
    frames_.back().emplace_back(name, std::move(v));
  }

  // Binds one name, or unpacks `v` into several (for k, v in ...; set a, b = ...).
  void bind(const std::vector<std::string>& names, const value& v) {
    if (names.size() == 1) return assign(names[0], v);
    std::vector<value> parts = iterate(v);
    if (parts.size() != names.size())
      fail(std::string(parts.size() > names.size() ? "too many" : "not enough") + " values to unpack (expected " +
           std::to_string(names.size()) + ", got " + std::to_string(parts.size()) + ")");
    for (std::size_t k = 0; k < names.size(); ++k) assign(names[k], std::move(parts[k]));
  }

  flow exec_list(const stmt_list& body, std::string& out) {
    for (const auto& s : body) {
      flow f = exec(*s, out);
      if (f != flow::next) return f;
    }
    return flow::next;
  }

  flow exec(const stmt& s, std::string& out) {
    try {
      return exec_inner(s, out);
    } catch (template_error& err) {
      err.locate(s.pos);
      throw;
    }
  }

  flow exec_inner(const stmt& s, std::string& out) {
    switch (s.kind) {
      case stmt_kind::text: out += s.text; break;
      case stmt_kind::output: append_str(out, eval(*s.expression)); break;
      case stmt_kind::if_:
        for (const auto& branch : s.branches)
          if (truthy(eval(*branch.cond))) return exec_list(branch.body, out);
        return exec_list(s.else_body, out);
      case stmt_kind::for_: exec_for(s, out); break;
      case stmt_kind::set:
        if (!s.attr.empty()) {
          value target = lookup(s.targets[0]);
          if (target.kind() != value_kind::ns)
            fail("cannot set attribute '" + s.attr + "' on '" + s.targets[0] + "': not a namespace");
          target.as_dict().set(s.attr, eval(*s.expression));
        } else {
          bind(s.targets, eval(*s.expression));
        }
        break;
      case stmt_kind::set_block: assign(s.targets[0], render_block(s)); break;
      case stmt_kind::macro: assign(s.text, value::macro(&s)); break;
      case stmt_kind::filter_block: append_str(out, render_block(s)); break;
      case stmt_kind::group: return exec_list(s.body, out);
      case stmt_kind::loop_break: return flow::break_loop;
      case stmt_kind::loop_continue: return flow::continue_loop;
      case stmt_kind::do_: eval(*s.expression); break;
    }
    return flow::next;
  }

  // The body of a set or filter block, rendered and passed through its filters.
  value render_block(const stmt& s) {
    std::string body;
    exec_list(s.body, body);
    value text = value::string(std::move(body));
    if (!s.filter) return text;
    const value* outer = block_input_;
    block_input_ = &text;
    value filtered = eval(*s.filter);
    block_input_ = outer;
    return filtered;
  }

  void exec_for(const stmt& s, std::string& out) {
    std::vector<value> items = iterate(eval(*s.expression));
    frames_.emplace_back();
    if (s.cond) {  // the inline `if` filters first, so loop.index/length/last count only what passes
      std::vector<value> kept;
      for (value& item : items) {
        bind(s.targets, item);
        if (truthy(eval(*s.cond))) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    auto state = std::make_shared<loop_state>();
    state->items = std::move(items);
    value loop = value::loop(state);
    for (std::size_t k = 0; k < state->items.size(); ++k) {
      state->index0 = k;
      bind(s.targets, state->items[k]);
      assign("loop", loop);
      if (exec_list(s.body, out) == flow::break_loop) break;
    }
    frames_.pop_back();
    if (state->items.empty()) exec_list(s.else_body, out);
  }

  value eval(const expr& e) {
    try {
      return eval_inner(e);
    } catch (template_error& err) {
      err.locate(e.pos);
      throw;
    }
  }

  call_args eval_args(const expr& e, std::size_t first) {
    call_args args;
    args.positional.reserve(e.args.size() - first);
    for (std::size_t k = first; k < e.args.size(); ++k) args.positional.push_back(eval(*e.args[k]));
    for (const auto& [name, arg] : e.kwargs) args.named.emplace_back(name, eval(*arg));
    return args;
  }

  value eval_inner(const expr& e) {
    switch (e.kind) {
      case expr_kind::literal: return e.constant;
      case expr_kind::name: return lookup(e.name);
      case expr_kind::attribute: return get_attr(eval(*e.args[0]), e.name);
      case expr_kind::subscript: return get_item(eval(*e.args[0]), eval(*e.args[1]));
      case expr_kind::slice: {
        value obj = eval(*e.args[0]);
        auto bound = [&](std::size_t k) { return e.args[k] ? eval(*e.args[k]) : value(); };
        return get_slice(obj, bound(1), bound(2), bound(3));
      }
      case expr_kind::call: return eval_call(e);
      case expr_kind::filter: {
        value subject = eval(*e.args[0]);
        return e.filter(subject, eval_args(e, 1));
      }
      case expr_kind::test: {
        value subject = eval(*e.args[0]);
        return value::boolean(e.test(subject, eval_args(e, 1)) != e.negated);
      }
      case expr_kind::unary: return eval_unary(e.op, eval(*e.args[0]));
      case expr_kind::binary: {
        value lhs = eval(*e.args[0]);
        return binary_op(e.op, lhs, eval(*e.args[1]));
      }
      case expr_kind::compare: {
        value lhs = eval(*e.args[0]);
        for (std::size_t k = 0; k < e.ops.size(); ++k) {
          value rhs = eval(*e.args[k + 1]);
          if (!compare(e.ops[k], lhs, rhs)) return value::boolean(false);
          lhs = std::move(rhs);
        }
        return value::boolean(true);
      }
      case expr_kind::logical_and: {
        value lhs = eval(*e.args[0]);
        return truthy(lhs) ? eval(*e.args[1]) : lhs;
      }
      case expr_kind::logical_or: {
        value lhs = eval(*e.args[0]);
        return truthy(lhs) ? lhs : eval(*e.args[1]);
      }
      case expr_kind::conditional:
        if (truthy(eval(*e.args[0]))) return eval(*e.args[1]);
        return e.args[2] ? eval(*e.args[2]) : value();
      case expr_kind::list:
      case expr_kind::tuple: {
        std::vector<value> items;
        items.reserve(e.args.size());
        for (const auto& item : e.args) items.push_back(eval(*item));
        return value::list(std::move(items), e.kind == expr_kind::tuple);
      }
      case expr_kind::dict: {
        dict_data d;
        for (std::size_t k = 0; k + 1 < e.args.size(); k += 2) {
          value key = eval(*e.args[k]);
          if (!key.is_string()) fail("dict keys must be strings, not " + std::string(type_name(key)));
          d.set(key.as_string(), eval(*e.args[k + 1]));
        }
        return value::dict(std::move(d.entries));
      }
      case expr_kind::block_input: return block_input_ ? *block_input_ : value();
    }
    return value();
  }

  static value eval_unary(op_kind op, const value& v) {
    if (op == op_kind::not_) return value::boolean(!truthy(v));
    if (v.kind() == value_kind::floating) return value::floating(op == op_kind::neg ? -v.as_float() : v.as_float());
    if (v.is_numeric()) return value::integer(op == op_kind::neg ? -v.as_int() : v.as_int());
    fail(std::string("bad operand type for unary ") + (op == op_kind::neg ? "-" : "+") + ": '" +
         std::string(type_name(v)) + "'");
  }

  static bool compare(op_kind op, const value& a, const value& b) {
    switch (op) {
      case op_kind::eq: return equals(a, b);
      case op_kind::ne: return !equals(a, b);
      case op_kind::lt: return less(a, b);
      case op_kind::le: return less(a, b) || equals(a, b);
      case op_kind::gt: return less(b, a);
      case op_kind::ge: return less(b, a) || equals(a, b);
      case op_kind::in: return contains(b, a);
      case op_kind::not_in: return !contains(b, a);
      default: return false;
    }
  }

  value eval_call(const expr& e) {
    const expr& callee = *e.args[0];
    if (callee.kind == expr_kind::name) {
      value f = lookup(callee.name);
      return call_value(f, eval_args(e, 1), callee);
    }
    if (callee.kind == expr_kind::attribute) {  // obj.method(...): no bound-method value on the way
      value obj = eval(*callee.args[0]);
      call_args args = eval_args(e, 1);
      if (has_method(obj.kind(), callee.name)) return call_method(obj, callee.name, args);
      if (obj.kind() == value_kind::loop && callee.name == "cycle") return cycle(obj, args);
      value f = get_attr(obj, callee.name);
      if (f.is_undefined()) {
        if (obj.is_undefined())
          fail("'" + describe(*callee.args[0]) + "' is undefined, so it has no method '" + callee.name + "'");
        fail("'" + std::string(type_name(obj)) + "' object has no method '" + callee.name + "'");
      }
      return call_value(f, args, callee);
    }
    value f = eval(callee);
    return call_value(f, eval_args(e, 1), callee);
  }

  value call_value(const value& f, const call_args& args, const expr& callee) {
    switch (f.kind()) {
      case value_kind::macro: return call_macro(*f.as_macro(), args);
      case value_kind::function: return f.as_function()->fn(args);
      case value_kind::method: {
        const auto& [self, name] = f.as_method();
        if (self.kind() == value_kind::loop) return cycle(self, args);
        return call_method(self, name, args);
      }
      case value_kind::undefined: fail("'" + describe(callee) + "' is undefined");
      default: fail("'" + std::string(type_name(f)) + "' object is not callable");
    }
  }

  static value cycle(const value& loop, const call_args& args) {
    if (args.positional.empty()) fail("loop.cycle needs at least one value");
    return args.positional[loop.as_loop().index0 % args.positional.size()];
  }

  value call_macro(const stmt& def, const call_args& args) {
    if (args.positional.size() > def.params.size())
      fail("macro '" + def.text + "' takes " + std::to_string(def.params.size()) + " argument(s), got " +
           std::to_string(args.positional.size()));
    for (const auto& [name, v] : args.named) {
      bool known = false;
      for (const auto& p : def.params) known = known || p.name == name;
      if (!known) fail("macro '" + def.text + "' got an unexpected argument '" + std::string(name) + "'");
    }
    if (depth_ >= max_macro_depth) fail("macro calls nested too deeply (recursion?)");
    ++depth_;
    std::size_t outer_floor = floor_;
    frames_.emplace_back();
    floor_ = frames_.size() - 1;
    for (std::size_t k = 0; k < def.params.size(); ++k) {
      const macro_param& p = def.params[k];
      if (args.has(k, p.name)) assign(p.name, args.get(k, p.name));
      else assign(p.name, p.default_value ? eval(*p.default_value) : value());
    }
    std::string out;
    exec_list(def.body, out);
    frames_.pop_back();
    floor_ = outer_floor;
    --depth_;
    return value::string(std::move(out));
  }

  const value& context_;
  std::vector<frame> frames_;       // [0]: the template's top level; then loop and macro scopes
  std::size_t floor_ = 1;           // lookups see frames_[floor_..] and [0]; a macro call raises it
  const value* block_input_ = nullptr;
  int depth_ = 0;                   // macro calls in progress
};

}  // namespace

std::string render_ast(const template_ast& ast, const value& context) { return renderer(context).run(ast); }

}  // namespace yard::backends::chat::jinja
