#include "backends/chat/jinja/jinja_ops.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstdint>

#include "backends/chat/jinja/jinja_call.hpp"
#include "backends/chat/jinja/jinja_error.hpp"
#include "backends/chat/jinja/jinja_strings.hpp"

namespace yard::backends::chat::jinja {

namespace {

const char* symbol(op_kind op) {
  switch (op) {
    case op_kind::add: return "+";
    case op_kind::sub: return "-";
    case op_kind::mul: return "*";
    case op_kind::div: return "/";
    case op_kind::floordiv: return "//";
    case op_kind::mod: return "%";
    case op_kind::pow: return "**";
    default: return "~";
  }
}

[[noreturn]] void fail_operands(op_kind op, const value& a, const value& b) {
  if (a.is_undefined() || b.is_undefined())
    fail(std::string("an undefined value was used with '") + symbol(op) + "'");
  fail(std::string("unsupported operand type(s) for ") + symbol(op) + ": '" + std::string(type_name(a)) +
       "' and '" + std::string(type_name(b)) + "'");
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

value repeat(const value& seq, std::int64_t times) {
  constexpr std::int64_t max_items = std::int64_t{1} << 26;  // a template is not a way to allocate gigabytes
  std::int64_t unit = seq.is_string() ? static_cast<std::int64_t>(seq.as_string().size())
                                      : static_cast<std::int64_t>(seq.as_list().items.size());
  if (times > 0 && unit > 0 && times > max_items / unit) fail("repetition result too large");
  if (seq.is_string()) {
    std::string out;
    for (std::int64_t k = 0; k < times; ++k) out += seq.as_string();
    return value::string(std::move(out));
  }
  std::vector<value> items;
  for (std::int64_t k = 0; k < times; ++k)
    items.insert(items.end(), seq.as_list().items.begin(), seq.as_list().items.end());
  return value::list(std::move(items), seq.as_list().tuple);
}

value arithmetic(op_kind op, const value& a, const value& b) {
  bool ints = a.kind() != value_kind::floating && b.kind() != value_kind::floating;
  if ((op == op_kind::div || op == op_kind::floordiv || op == op_kind::mod) && b.as_float() == 0.0)
    fail(op == op_kind::mod ? "modulo by zero" : "division by zero");
  if (ints) {
    std::int64_t x = a.as_int(), y = b.as_int(), r = 0;
    // Python's ints do not overflow; past 64 bits the result is computed as a float instead.
    switch (op) {
      case op_kind::add:
        if (!__builtin_add_overflow(x, y, &r)) return value::integer(r);
        break;
      case op_kind::sub:
        if (!__builtin_sub_overflow(x, y, &r)) return value::integer(r);
        break;
      case op_kind::mul:
        if (!__builtin_mul_overflow(x, y, &r)) return value::integer(r);
        break;
      case op_kind::div: return value::floating(static_cast<double>(x) / static_cast<double>(y));
      case op_kind::floordiv:
        if (x == INT64_MIN && y == -1) break;
        return value::integer(floor_div(x, y));
      case op_kind::mod:
        if (x == INT64_MIN && y == -1) return value::integer(0);
        return value::integer(x - floor_div(x, y) * y);
      case op_kind::pow: {
        if (y < 0) break;
        bool overflow = false;
        r = 1;
        for (std::int64_t base = x, e = y; e > 0 && !overflow;) {  // square and multiply
          if (e & 1) overflow = __builtin_mul_overflow(r, base, &r);
          e >>= 1;
          if (e > 0 && !overflow) overflow = __builtin_mul_overflow(base, base, &base);
        }
        if (!overflow) return value::integer(r);
        break;
      }
      default: break;
    }
  }
  double x = a.as_float(), y = b.as_float();
  switch (op) {
    case op_kind::add: return value::floating(x + y);
    case op_kind::sub: return value::floating(x - y);
    case op_kind::mul: return value::floating(x * y);
    case op_kind::div: return value::floating(x / y);
    case op_kind::floordiv: return value::floating(std::floor(x / y));
    case op_kind::mod: {
      double r = std::fmod(x, y);
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return value::floating(r);
    }
    case op_kind::pow: return value::floating(std::pow(x, y));
    default: fail_operands(op, a, b);
  }
}

// Python's slice.indices(): clamps one bound of a slice over `n` items.
std::int64_t slice_bound(const value& v, std::int64_t n, std::int64_t step, bool is_start) {
  if (v.is_undefined() || v.is_none()) return is_start ? (step > 0 ? 0 : n - 1) : (step > 0 ? n : -1);
  std::int64_t k = arg_int(v, "slice index");
  if (k < 0) {
    k += n;
    if (k < 0) k = step < 0 ? -1 : 0;
  } else if (k >= n) {
    k = step < 0 ? n - 1 : n;
  }
  return k;
}

value loop_attr(const loop_state& l, std::string_view name) {
  auto n = static_cast<std::int64_t>(l.items.size());
  auto i = static_cast<std::int64_t>(l.index0);
  if (name == "index") return value::integer(i + 1);
  if (name == "index0") return value::integer(i);
  if (name == "revindex") return value::integer(n - i);
  if (name == "revindex0") return value::integer(n - i - 1);
  if (name == "first") return value::boolean(i == 0);
  if (name == "last") return value::boolean(i == n - 1);
  if (name == "length") return value::integer(n);
  if (name == "previtem") return i > 0 ? l.items[l.index0 - 1] : value();
  if (name == "nextitem") return i + 1 < n ? l.items[l.index0 + 1] : value();
  if (name == "depth") return value::integer(1);
  if (name == "depth0") return value::integer(0);
  return value();
}

}  // namespace

value binary_op(op_kind op, const value& a, const value& b) {
  if (op == op_kind::concat) {
    std::string out = to_str(a);
    append_str(out, b);
    return value::string(std::move(out));
  }
  if (a.is_numeric() && b.is_numeric()) return arithmetic(op, a, b);
  if (op == op_kind::add && a.is_string() && b.is_string()) return value::string(a.as_string() + b.as_string());
  if (op == op_kind::add && a.is_list() && b.is_list()) {
    std::vector<value> items = a.as_list().items;
    items.insert(items.end(), b.as_list().items.begin(), b.as_list().items.end());
    return value::list(std::move(items), a.as_list().tuple);
  }
  if (op == op_kind::mod && a.is_string()) return percent_format(a.as_string(), b);
  if (op == op_kind::mul) {
    bool a_seq = a.is_string() || a.is_list(), b_seq = b.is_string() || b.is_list();
    if (a_seq && (b.is_int() || b.kind() == value_kind::boolean)) return repeat(a, b.as_int());
    if (b_seq && (a.is_int() || a.kind() == value_kind::boolean)) return repeat(b, a.as_int());
  }
  fail_operands(op, a, b);
}

bool contains(const value& container, const value& item) {
  switch (container.kind()) {
    case value_kind::undefined: return false;
    case value_kind::string:
      if (!item.is_string())
        fail("'in <string>' requires string as left operand, not " + std::string(type_name(item)));
      return container.as_string().find(item.as_string()) != std::string::npos;
    case value_kind::list:
      for (const auto& v : container.as_list().items)
        if (equals(v, item)) return true;
      return false;
    case value_kind::dict:
    case value_kind::ns: return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
    default: fail("argument of type '" + std::string(type_name(container)) + "' is not iterable");
  }
}

value get_attr(const value& obj, std::string_view name) {
  switch (obj.kind()) {
    case value_kind::dict: {
      if (has_method(value_kind::dict, name)) return value::method(obj, std::string(name));
      const value* v = obj.as_dict().find(name);
      return v ? *v : value();
    }
    case value_kind::ns: {
      const value* v = obj.as_dict().find(name);
      return v ? *v : value();
    }
    case value_kind::loop:
      if (name == "cycle") return value::method(obj, "cycle");
      return loop_attr(obj.as_loop(), name);
    case value_kind::string:
    case value_kind::list:
      if (has_method(obj.kind(), name)) return value::method(obj, std::string(name));
      return value();
    default: return value();
  }
}

value get_item(const value& obj, const value& key) {
  switch (obj.kind()) {
    case value_kind::dict:
      if (key.is_string()) {
        const value* v = obj.as_dict().find(key.as_string());
        return v ? *v : get_attr(obj, key.as_string());
      }
      return value();
    case value_kind::list:
    case value_kind::string:
      if (key.is_int() || key.kind() == value_kind::boolean) {
        std::int64_t n = length(obj), k = key.as_int();
        if (k < 0) k += n;
        if (k < 0 || k >= n) return value();
        if (obj.is_list()) return obj.as_list().items[static_cast<std::size_t>(k)];
        const std::string& s = obj.as_string();
        if (is_ascii(s)) return value::string(s.substr(static_cast<std::size_t>(k), 1));
        auto offsets = code_point_offsets(s);
        auto at = static_cast<std::size_t>(k);
        return value::string(s.substr(offsets[at], offsets[at + 1] - offsets[at]));
      }
      return key.is_string() ? get_attr(obj, key.as_string()) : value();
    default: return key.is_string() ? get_attr(obj, key.as_string()) : value();
  }
}

value get_slice(const value& obj, const value& start_v, const value& stop_v, const value& step_v) {
  if (!obj.is_list() && !obj.is_string()) return value();
  std::int64_t step = (step_v.is_undefined() || step_v.is_none()) ? 1 : arg_int(step_v, "slice step");
  if (step == 0) fail("slice step cannot be zero");
  std::int64_t n = length(obj);
  std::int64_t start = slice_bound(start_v, n, step, true), stop = slice_bound(stop_v, n, step, false);
  std::vector<std::size_t> picked;
  for (std::int64_t k = start; step > 0 ? k < stop : k > stop; k += step) picked.push_back(static_cast<std::size_t>(k));
  if (obj.is_list()) {
    std::vector<value> items;
    items.reserve(picked.size());
    for (std::size_t k : picked) items.push_back(obj.as_list().items[k]);
    return value::list(std::move(items), obj.as_list().tuple);
  }
  const std::string& s = obj.as_string();
  std::string out;
  if (is_ascii(s)) {
    for (std::size_t k : picked) out += s[k];
  } else {
    auto offsets = code_point_offsets(s);
    for (std::size_t k : picked) out += s.substr(offsets[k], offsets[k + 1] - offsets[k]);
  }
  return value::string(std::move(out));
}

namespace {

// One conversion of percent_format: `flags`, `width`, `precision` (-1: none) and `conv` applied to `arg`.
void format_one(std::string& out, const std::string& flags, int width, int precision, char conv, const value& arg) {
  if (conv == 's' || conv == 'r' || conv == 'a') {
    std::string text;
    if (conv == 's') append_str(text, arg);
    else append_repr(text, arg);
    auto offsets = code_point_offsets(text);
    if (precision >= 0 && static_cast<std::size_t>(precision) + 1 < offsets.size()) text.resize(offsets[precision]);
    auto n = static_cast<int>(code_point_count(text));
    std::string pad(width > n ? static_cast<std::size_t>(width - n) : 0, ' ');
    out += flags.find('-') != std::string::npos ? text + pad : pad + text;
    return;
  }
  if (!arg.is_numeric())
    fail(std::string("%") + conv + " format: a number is required, not " + std::string(type_name(arg)));
  std::string spec = "%" + flags + (width > 0 ? std::to_string(width) : "") +
                     (precision >= 0 ? "." + std::to_string(precision) : "");
  char buf[512];
  if (std::string_view("fFeEgG").find(conv) != std::string_view::npos) {
    std::snprintf(buf, sizeof buf, (spec + conv).c_str(), arg.as_float());
  } else {
    auto n = arg.kind() == value_kind::floating ? static_cast<long long>(arg.as_float())
                                                : static_cast<long long>(arg.as_int());
    if (conv == 'c') {
      append_utf8(out, static_cast<char32_t>(n));
      return;
    }
    if (std::string_view("diuxXo").find(conv) == std::string_view::npos)
      fail(std::string("unsupported format character '") + conv + "'");
    std::snprintf(buf, sizeof buf, (spec + "ll" + ((conv == 'i' || conv == 'u') ? 'd' : conv)).c_str(), n);
  }
  out += buf;
}

}  // namespace

value percent_format(const std::string& format, const value& args) {
  // A dict is the mapping for %(name)s conversions, else (like any non-tuple) the single argument.
  bool mapping = args.is_dict() && format.find("%(") != std::string::npos;
  std::vector<value> positional;
  if (args.is_list() && args.as_list().tuple) positional = args.as_list().items;
  else if (!mapping) positional.push_back(args);
  std::size_t next = 0;
  std::string out;
  for (std::size_t k = 0; k < format.size(); ++k) {
    if (format[k] != '%') {
      out += format[k];
      continue;
    }
    auto at_end = [&] {
      if (k >= format.size()) fail("incomplete format");
    };
    ++k;
    at_end();
    const value* named = nullptr;
    if (format[k] == '(') {  // %(name)s
      std::size_t close = format.find(')', k);
      if (close == std::string::npos || !mapping) fail("format requires a mapping");
      named = args.as_dict().find(std::string_view(format).substr(k + 1, close - k - 1));
      if (!named) fail("format: key '" + format.substr(k + 1, close - k - 1) + "' not found");
      k = close + 1;
      at_end();
    }
    std::string flags;
    while (k < format.size() && std::string_view("-+ 0#").find(format[k]) != std::string_view::npos) flags += format[k++];
    int width = 0, precision = -1;
    while (k < format.size() && std::isdigit(static_cast<unsigned char>(format[k]))) width = width * 10 + (format[k++] - '0');
    if (k < format.size() && format[k] == '.') {
      precision = 0;
      for (++k; k < format.size() && std::isdigit(static_cast<unsigned char>(format[k])); ++k)
        precision = precision * 10 + (format[k] - '0');
    }
    at_end();
    if (format[k] == '%') {
      out += '%';
      continue;
    }
    if (!named) {
      if (mapping) fail("format requires a mapping");
      if (next >= positional.size()) fail("not enough arguments for format string");
    }
    format_one(out, flags, std::min(width, 400), std::min(precision, 400), format[k], named ? *named : positional[next++]);
  }
  if (!mapping && next < positional.size()) fail("not all arguments converted during string formatting");
  return value::string(std::move(out));
}

value get_attr_path(const value& obj, std::string_view path) {
  value cur = obj;
  while (true) {
    std::size_t dot = path.find('.');
    std::string_view part = path.substr(0, dot);
    bool digits = !part.empty() && part.find_first_not_of("0123456789") == std::string_view::npos;
    cur = digits ? get_item(cur, value::integer(std::stoll(std::string(part)))) : get_item(cur, value::string(std::string(part)));
    if (dot == std::string_view::npos) return cur;
    path.remove_prefix(dot + 1);
  }
}

}  // namespace yard::backends::chat::jinja
