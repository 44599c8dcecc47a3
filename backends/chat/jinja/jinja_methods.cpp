// Methods of the built-in types: str, dict and list (has_method and call_method in jinja_call.hpp).
#include <algorithm>
#include <array>
#include <cctype>

#include "backends/chat/jinja/jinja_call.hpp"
#include "backends/chat/jinja/jinja_error.hpp"
#include "backends/chat/jinja/jinja_strings.hpp"

namespace yard::backends::chat::jinja {

namespace {

constexpr std::array<std::string_view, 22> string_methods = {
    "strip", "lstrip", "rstrip", "startswith", "endswith", "split", "splitlines", "lower",
    "upper", "title", "capitalize", "replace", "find", "rfind", "count", "join",
    "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper"};
constexpr std::array<std::string_view, 4> dict_methods = {"items", "keys", "values", "get"};
constexpr std::array<std::string_view, 5> list_methods = {"append", "extend", "pop", "index", "count"};

template <std::size_t N>
bool listed(const std::array<std::string_view, N>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::optional<std::string> optional_string(const value& v, std::string_view what) {
  if (v.is_undefined() || v.is_none()) return std::nullopt;
  return arg_string(v, what);
}

bool all_chars(const std::string& s, int (*pred)(int)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) { return pred(static_cast<unsigned char>(c)) != 0; });
}

// startswith/endswith take a str or a tuple of them.
bool affix_match(const std::string& s, const value& affix, bool prefix) {
  auto one = [&](const std::string& a) {
    if (a.size() > s.size()) return false;
    return prefix ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_list())
    return std::any_of(affix.as_list().items.begin(), affix.as_list().items.end(),
                       [&](const value& a) { return one(arg_string(a, "startswith/endswith's argument")); });
  return one(arg_string(affix, "startswith/endswith's argument"));
}

value string_list(std::vector<std::string> parts) {
  std::vector<value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.push_back(value::string(std::move(p)));
  return value::list(std::move(items));
}

value call_string_method(const std::string& s, std::string_view name, const call_args& a) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    a.expect(name, {"chars"});
    return value::string(py_strip(s, optional_string(a.get(0, "chars"), "chars"), name != "rstrip", name != "lstrip"));
  }
  if (name == "startswith" || name == "endswith") {
    a.expect(name, {"prefix"});
    return value::boolean(affix_match(s, a.get(0, "prefix"), name == "startswith"));
  }
  if (name == "split") {
    a.expect(name, {"sep", "maxsplit"});
    return string_list(py_split(s, optional_string(a.get(0, "sep"), "sep"),
                                arg_int(a.get(1, "maxsplit", value::integer(-1)), "maxsplit")));
  }
  if (name == "splitlines") {
    a.expect(name, {"keepends"});
    return string_list(py_splitlines(s, truthy(a.get(0, "keepends"))));
  }
  if (name == "replace") {
    a.expect(name, {"old", "new", "count"});
    return value::string(py_replace(s, arg_string(a.get(0, "old"), "old"), arg_string(a.get(1, "new"), "new"),
                                    arg_int(a.get(2, "count", value::integer(-1)), "count")));
  }
  if (name == "find" || name == "rfind" || name == "count") {
    a.expect(name, {"sub"});
    std::string sub = arg_string(a.get(0, "sub"), "sub");
    return value::integer(name == "count" ? py_count(s, sub) : py_find(s, sub, name == "rfind"));
  }
  if (name == "join") {
    a.expect(name, {"iterable"});
    std::string out;
    std::size_t k = 0;
    for (const value& item : iterate(a.get(0, "iterable"))) {
      if (!item.is_string())
        fail("sequence item " + std::to_string(k) + ": expected str instance, " + std::string(type_name(item)) +
             " found");
      if (k++) out += s;
      out += item.as_string();
    }
    return value::string(std::move(out));
  }
  a.expect(name, {});
  if (name == "lower") return value::string(py_lower(s));
  if (name == "upper") return value::string(py_upper(s));
  if (name == "title") return value::string(py_title(s));
  if (name == "capitalize") return value::string(py_capitalize(s));
  if (name == "isdigit") return value::boolean(all_chars(s, [](int c) { return std::isdigit(c); }));
  if (name == "isalpha") return value::boolean(all_chars(s, [](int c) { return std::isalpha(c); }));
  if (name == "isalnum") return value::boolean(all_chars(s, [](int c) { return std::isalnum(c); }));
  if (name == "isspace") return value::boolean(all_chars(s, [](int c) { return std::isspace(c); }));
  if (name == "islower") return value::boolean(s != py_upper(s) && s == py_lower(s));
  if (name == "isupper") return value::boolean(s != py_lower(s) && s == py_upper(s));
  fail("'str' object has no method '" + std::string(name) + "'");
}

value call_dict_method(const dict_data& d, std::string_view name, const call_args& a) {
  if (name == "get") {
    a.expect(name, {"key", "default"});
    value key = a.get(0, "key");
    const value* v = key.is_string() ? d.find(key.as_string()) : nullptr;
    return v ? *v : a.get(1, "default", value::none());
  }
  a.expect(name, {});
  std::vector<value> out;
  out.reserve(d.entries.size());
  for (const auto& [k, v] : d.entries) {
    if (name == "items") out.push_back(value::list({value::string(k), v}, true));
    else if (name == "keys") out.push_back(value::string(k));
    else if (name == "values") out.push_back(v);
    else fail("'dict' object has no method '" + std::string(name) + "'");
  }
  return value::list(std::move(out));
}

value call_list_method(list_data& l, std::string_view name, const call_args& a) {
  if (name == "append") {
    a.expect(name, {"object"});
    l.items.push_back(a.get(0, "object"));
    return value::none();
  }
  if (name == "extend") {
    a.expect(name, {"iterable"});
    for (value& v : iterate(a.get(0, "iterable"))) l.items.push_back(std::move(v));
    return value::none();
  }
  if (name == "pop") {
    a.expect(name, {"index"});
    auto n = static_cast<std::int64_t>(l.items.size());
    std::int64_t k = arg_int(a.get(0, "index", value::integer(-1)), "index");
    if (k < 0) k += n;
    if (k < 0 || k >= n) fail("pop index out of range");
    value v = l.items[static_cast<std::size_t>(k)];
    l.items.erase(l.items.begin() + k);
    return v;
  }
  a.expect(name, {"value"});
  value needle = a.get(0, "value");
  std::int64_t found = 0;
  for (std::size_t k = 0; k < l.items.size(); ++k) {
    if (!equals(l.items[k], needle)) continue;
    if (name == "index") return value::integer(static_cast<std::int64_t>(k));
    ++found;
  }
  if (name == "index") fail("value is not in list");
  if (name == "count") return value::integer(found);
  fail("'list' object has no method '" + std::string(name) + "'");
}

}  // namespace

bool has_method(value_kind kind, std::string_view name) {
  switch (kind) {
    case value_kind::string: return listed(string_methods, name);
    case value_kind::dict: return listed(dict_methods, name);
    case value_kind::list: return listed(list_methods, name);
    default: return false;
  }
}

value call_method(const value& self, std::string_view name, const call_args& args) {
  if (has_method(self.kind(), name)) {
    switch (self.kind()) {
      case value_kind::string: return call_string_method(self.as_string(), name, args);
      case value_kind::dict: return call_dict_method(self.as_dict(), name, args);
      case value_kind::list: return call_list_method(self.as_list(), name, args);
      default: break;
    }
  }
  if (self.is_undefined()) fail("cannot call method '" + std::string(name) + "' of an undefined value");
  fail("'" + std::string(type_name(self)) + "' object has no method '" + std::string(name) + "'");
}

}  // namespace yard::backends::chat::jinja
