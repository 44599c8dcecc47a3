// Text, number and conversion filters (trim, replace, format, tojson, default, int, round, indent, ...) and
// find_filter.
#include "backends/chat/jinja/jinja_filters.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "backends/chat/jinja/jinja_error.hpp"
#include "backends/chat/jinja/jinja_json.hpp"
#include "backends/chat/jinja/jinja_ops.hpp"
#include "backends/chat/jinja/jinja_strings.hpp"

namespace yard::backends::chat::jinja {

namespace {

value f_trim(const value& v, const call_args& a) {
  a.expect("trim", {"chars"});
  value chars = a.get(0, "chars");
  std::optional<std::string> set;
  if (!chars.is_undefined() && !chars.is_none()) set = arg_string(chars, "trim's chars");
  return value::string(py_strip(to_str(v), set, true, true));
}

value f_upper(const value& v, const call_args& a) {
  a.expect("upper", {});
  return value::string(py_upper(to_str(v)));
}
value f_lower(const value& v, const call_args& a) {
  a.expect("lower", {});
  return value::string(py_lower(to_str(v)));
}
value f_title(const value& v, const call_args& a) {
  a.expect("title", {});
  return value::string(jinja_title(to_str(v)));
}
value f_capitalize(const value& v, const call_args& a) {
  a.expect("capitalize", {});
  return value::string(py_capitalize(to_str(v)));
}

value f_replace(const value& v, const call_args& a) {
  a.expect("replace", {"old", "new", "count"});
  value count = a.get(2, "count");
  std::int64_t n = (count.is_undefined() || count.is_none()) ? -1 : arg_int(count, "replace's count");
  return value::string(py_replace(to_str(v), arg_string(a.get(0, "old"), "replace's old"),
                                  arg_string(a.get(1, "new"), "replace's new"), n));
}

value f_string(const value& v, const call_args& a) {
  a.expect("string", {});
  return v.is_string() ? v : value::string(to_str(v));
}

value f_safe(const value& v, const call_args& a) {
  a.expect("safe", {});
  return v;
}

value f_escape(const value& v, const call_args& a) {
  a.expect("escape", {});
  return value::string(html_escape(to_str(v)));
}

value f_length(const value& v, const call_args& a) {
  a.expect("length", {});
  return value::integer(length(v));
}

value f_default(const value& v, const call_args& a) {
  a.expect("default", {"default_value", "boolean"});
  bool use_default = v.is_undefined() || (truthy(a.get(1, "boolean")) && !truthy(v));
  return use_default ? a.get(0, "default_value", value::string("")) : v;
}

// Python's float() of a string: surrounding whitespace allowed, the whole rest must be the number.
bool parse_float(const std::string& text, double& out) {
  std::string s = py_strip(text, std::nullopt, true, true);
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

value f_int(const value& v, const call_args& a) {
  a.expect("int", {"default", "base"});
  value fallback = a.get(0, "default", value::integer(0));
  switch (v.kind()) {
    case value_kind::integer: return v;
    case value_kind::boolean: return value::integer(v.as_int());
    case value_kind::floating: return std::isfinite(v.as_float()) ? value::integer(static_cast<std::int64_t>(v.as_float())) : fallback;
    case value_kind::string: {
      std::string s = py_strip(v.as_string(), std::nullopt, true, true);
      std::string digits;
      for (char c : s)
        if (c != '_') digits += c;
      int base = static_cast<int>(arg_int(a.get(1, "base", value::integer(10)), "int's base"));
      char* end = nullptr;
      long long n = digits.empty() ? 0 : std::strtoll(digits.c_str(), &end, base);
      if (!digits.empty() && end == digits.c_str() + digits.size()) return value::integer(n);
      double d = 0;
      if (parse_float(v.as_string(), d) && std::isfinite(d)) return value::integer(static_cast<std::int64_t>(d));
      return fallback;
    }
    default: return fallback;
  }
}

value f_float(const value& v, const call_args& a) {
  a.expect("float", {"default"});
  value fallback = a.get(0, "default", value::floating(0.0));
  if (v.is_numeric()) return value::floating(v.as_float());
  double d = 0;
  if (v.is_string() && parse_float(v.as_string(), d)) return value::floating(d);
  return fallback;
}

value f_abs(const value& v, const call_args& a) {
  a.expect("abs", {});
  if (v.kind() == value_kind::floating) return value::floating(std::fabs(v.as_float()));
  if (v.is_numeric()) return value::integer(std::llabs(v.as_int()));
  fail("bad operand type for abs(): '" + std::string(type_name(v)) + "'");
}

value f_round(const value& v, const call_args& a) {
  a.expect("round", {"precision", "method"});
  if (!v.is_numeric()) fail("round expects a number, not " + std::string(type_name(v)));
  std::int64_t precision = arg_int(a.get(0, "precision", value::integer(0)), "round's precision");
  std::string method = arg_string(a.get(1, "method", value::string("common")), "round's method");
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_float() * scale;
  if (method == "common") {
    if (v.kind() != value_kind::floating) return value::integer(v.as_int());  // Python: round(int, n) is the int
    if (precision >= 0 && precision <= 17 && std::isfinite(v.as_float())) {
      // Python rounds the exact binary value (2.675 is 2.67499..., so 2.67), ties to even; so does printf.
      char buf[400];
      std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(precision), v.as_float());
      return value::floating(std::strtod(buf, nullptr));
    }
    return value::floating(std::nearbyint(x) / scale);
  }
  if (method == "floor") return value::floating(std::floor(x) / scale);
  if (method == "ceil") return value::floating(std::ceil(x) / scale);
  fail("round's method must be 'common', 'ceil' or 'floor'");
}

value f_indent(const value& v, const call_args& a) {
  a.expect("indent", {"width", "first", "blank"});
  value width = a.get(0, "width", value::integer(4));
  std::string pad = width.is_string() ? width.as_string() : std::string(static_cast<std::size_t>(std::max<std::int64_t>(0, arg_int(width, "indent's width"))), ' ');
  bool first = truthy(a.get(1, "first")), blank = truthy(a.get(2, "blank"));
  std::vector<std::string> lines = py_splitlines(to_str(v) + "\n", false);
  std::string out;
  for (std::size_t k = 0; k < lines.size(); ++k) {
    if (k) out += '\n';
    if ((k > 0 || first) && (blank || !lines[k].empty())) out += pad;
    out += lines[k];
  }
  return value::string(std::move(out));
}

value f_wordcount(const value& v, const call_args& a) {
  a.expect("wordcount", {});
  std::int64_t words = 0;
  bool in_word = false;
  for (char c : to_str(v)) {
    bool word_char = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
    if (word_char && !in_word) ++words;
    in_word = word_char;
  }
  return value::integer(words);
}

// format(*args) or format(**kwargs): Python's `value % args`.
value f_format(const value& v, const call_args& a) {
  if (!a.positional.empty() && !a.named.empty()) fail("format takes positional or keyword arguments, not both");
  if (!a.named.empty()) {
    std::vector<std::pair<std::string, value>> entries;
    for (const auto& [name, arg] : a.named) entries.emplace_back(std::string(name), arg);
    return percent_format(to_str(v), value::dict(std::move(entries)));
  }
  return percent_format(to_str(v), value::list(a.positional, true));
}

// Hugging Face's tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
value f_tojson(const value& v, const call_args& a) {
  a.expect("tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});  // Hugging Face's order
  json_format f;
  value indent = a.get(1, "indent");
  if (indent.is_string()) f.indent = indent.as_string();
  else if (!indent.is_undefined() && !indent.is_none())
    f.indent = std::string(static_cast<std::size_t>(std::max<std::int64_t>(0, arg_int(indent, "tojson's indent"))), ' ');
  if (f.indent) f.item_separator = ",";
  value separators = a.get(2, "separators");
  if (!separators.is_undefined() && !separators.is_none()) {
    std::vector<value> seps = iterate(separators);
    if (seps.size() != 2) fail("tojson's separators must be an (item, key) pair");
    f.item_separator = arg_string(seps[0], "tojson's item separator");
    f.key_separator = arg_string(seps[1], "tojson's key separator");
  }
  f.ensure_ascii = truthy(a.get(0, "ensure_ascii"));
  f.sort_keys = truthy(a.get(3, "sort_keys"));
  std::string out;
  append_json(out, v, f);
  return value::string(std::move(out));
}

constexpr filter_entry table[] = {
    {"trim", f_trim},         {"upper", f_upper},     {"lower", f_lower},         {"title", f_title},
    {"capitalize", f_capitalize}, {"replace", f_replace}, {"string", f_string},   {"safe", f_safe},
    {"escape", f_escape},     {"e", f_escape},        {"forceescape", f_escape},  {"length", f_length},
    {"count", f_length},      {"default", f_default}, {"d", f_default},           {"int", f_int},
    {"float", f_float},       {"abs", f_abs},         {"round", f_round},         {"indent", f_indent},
    {"wordcount", f_wordcount}, {"tojson", f_tojson},   {"format", f_format},
};

}  // namespace

filter_fn find_filter(std::string_view name) {
  for (const auto& e : table)
    if (e.name == name) return e.fn;
  for (const auto& e : sequence_filters())
    if (e.name == name) return e.fn;
  return nullptr;
}

}  // namespace yard::backends::chat::jinja
