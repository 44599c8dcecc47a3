#include "backends/chat/jinja/jinja_value.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "backends/chat/jinja/jinja_call.hpp"
#include "backends/chat/jinja/jinja_error.hpp"
#include "backends/chat/jinja/jinja_strings.hpp"

namespace yard::backends::chat::jinja {

const value* dict_data::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

void dict_data::set(std::string_view key, value v) {
  for (auto& [k, existing] : entries)
    if (k == key) {
      existing = std::move(v);
      return;
    }
  entries.emplace_back(std::string(key), std::move(v));
}

value value::none() {
  value v;
  v.kind_ = value_kind::none;
  return v;
}
value value::boolean(bool b) {
  value v;
  v.kind_ = value_kind::boolean;
  v.num_.b = b;
  return v;
}
value value::integer(std::int64_t i) {
  value v;
  v.kind_ = value_kind::integer;
  v.num_.i = i;
  return v;
}
value value::floating(double d) {
  value v;
  v.kind_ = value_kind::floating;
  v.num_.d = d;
  return v;
}
value value::string(std::string s) {
  value v;
  v.kind_ = value_kind::string;
  v.ptr_ = std::make_shared<std::string>(std::move(s));
  return v;
}
value value::list(std::vector<value> items, bool tuple) {
  value v;
  v.kind_ = value_kind::list;
  v.ptr_ = std::make_shared<list_data>(list_data{std::move(items), tuple});
  return v;
}
value value::dict(std::vector<std::pair<std::string, value>> entries) {
  value v;
  v.kind_ = value_kind::dict;
  v.ptr_ = std::make_shared<dict_data>(dict_data{std::move(entries)});
  return v;
}
value value::ns(std::vector<std::pair<std::string, value>> entries) {
  value v = dict(std::move(entries));
  v.kind_ = value_kind::ns;
  return v;
}
value value::loop(std::shared_ptr<loop_state> state) {
  value v;
  v.kind_ = value_kind::loop;
  v.ptr_ = std::move(state);
  return v;
}
value value::macro(const stmt* definition) {
  value v;
  v.kind_ = value_kind::macro;
  // Aliasing constructor with no owner: the compiled template owns the definition.
  v.ptr_ = std::shared_ptr<void>(std::shared_ptr<void>(), const_cast<stmt*>(definition));
  return v;
}
value value::function(const global_entry* entry) {
  value v;
  v.kind_ = value_kind::function;
  v.ptr_ = std::shared_ptr<void>(std::shared_ptr<void>(), const_cast<global_entry*>(entry));  // static, not owned
  return v;
}

value value::method(value self, std::string name) {
  value v;
  v.kind_ = value_kind::method;
  v.ptr_ = std::make_shared<std::pair<value, std::string>>(std::move(self), std::move(name));
  return v;
}

std::int64_t value::as_int() const { return kind_ == value_kind::boolean ? (num_.b ? 1 : 0) : num_.i; }

double value::as_float() const {
  if (kind_ == value_kind::floating) return num_.d;
  return static_cast<double>(as_int());
}

std::string_view type_name(const value& v) {
  switch (v.kind()) {
    case value_kind::undefined: return "Undefined";
    case value_kind::none: return "NoneType";
    case value_kind::boolean: return "bool";
    case value_kind::integer: return "int";
    case value_kind::floating: return "float";
    case value_kind::string: return "str";
    case value_kind::list: return v.as_list().tuple ? "tuple" : "list";
    case value_kind::dict: return "dict";
    case value_kind::ns: return "Namespace";
    case value_kind::loop: return "LoopContext";
    case value_kind::macro: return "Macro";
    case value_kind::method:
    case value_kind::function: return "builtin_function_or_method";
  }
  return "?";
}

bool truthy(const value& v) {
  switch (v.kind()) {
    case value_kind::undefined:
    case value_kind::none: return false;
    case value_kind::boolean: return v.as_bool();
    case value_kind::integer: return v.as_int() != 0;
    case value_kind::floating: return v.as_float() != 0.0;
    case value_kind::string: return !v.as_string().empty();
    case value_kind::list: return !v.as_list().items.empty();
    case value_kind::dict: return !v.as_dict().entries.empty();
    default: return true;
  }
}

bool equals(const value& a, const value& b) {
  if (a.is_numeric() && b.is_numeric()) {
    if (a.kind() == value_kind::floating || b.kind() == value_kind::floating) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case value_kind::undefined:
    case value_kind::none: return true;
    case value_kind::string: return a.as_string() == b.as_string();
    case value_kind::list: {
      const auto& x = a.as_list();
      const auto& y = b.as_list();
      if (x.tuple != y.tuple || x.items.size() != y.items.size()) return false;
      for (std::size_t k = 0; k < x.items.size(); ++k)
        if (!equals(x.items[k], y.items[k])) return false;
      return true;
    }
    case value_kind::dict: {
      const auto& x = a.as_dict();
      const auto& y = b.as_dict();
      if (x.entries.size() != y.entries.size()) return false;
      for (const auto& [k, v] : x.entries) {
        const value* other = y.find(k);
        if (!other || !equals(v, *other)) return false;
      }
      return true;
    }
    default: return a.same_object(b);
  }
}

bool less(const value& a, const value& b) {
  if (a.is_numeric() && b.is_numeric()) {
    if (a.kind() == value_kind::floating || b.kind() == value_kind::floating) return a.as_float() < b.as_float();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 bytes sort as code points
  if (a.is_list() && b.is_list()) {
    const auto& x = a.as_list().items;
    const auto& y = b.as_list().items;
    for (std::size_t k = 0; k < x.size() && k < y.size(); ++k) {
      if (equals(x[k], y[k])) continue;
      return less(x[k], y[k]);
    }
    return x.size() < y.size();
  }
  fail("'<' not supported between instances of '" + std::string(type_name(a)) + "' and '" +
       std::string(type_name(b)) + "'");
}

void append_float(std::string& out, double d) {
  if (std::isnan(d)) {
    out += "nan";
    return;
  }
  if (std::isinf(d)) {
    out += d < 0 ? "-inf" : "inf";
    return;
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);  // shortest round trip
  std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));
  bool negative = sci.front() == '-';
  if (negative) sci.remove_prefix(1);
  std::size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos))
    if (c != '.') digits += c;
  int exp = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  if (negative) out += '-';
  if (exp >= -4 && exp < 16) {  // Python's repr switches to exponent notation outside this range
    if (exp < 0) {
      out += "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
    } else {
      auto int_len = static_cast<std::size_t>(exp) + 1;
      if (digits.size() <= int_len) {
        out += digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    }
    return;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  out += exp < 0 ? "e-" : "e+";
  int mag = exp < 0 ? -exp : exp;
  if (mag < 10) out += '0';
  out += std::to_string(mag);
}

void append_str(std::string& out, const value& v) {
  switch (v.kind()) {
    case value_kind::undefined: return;
    case value_kind::string: out += v.as_string(); return;
    default: append_repr(out, v);
  }
}

std::string to_str(const value& v) {
  if (v.is_string()) return v.as_string();
  std::string out;
  append_str(out, v);
  return out;
}

void append_repr(std::string& out, const value& v) {
  switch (v.kind()) {
    case value_kind::undefined: out += "Undefined"; return;
    case value_kind::none: out += "None"; return;
    case value_kind::boolean: out += v.as_bool() ? "True" : "False"; return;
    case value_kind::integer: out += std::to_string(v.as_int()); return;
    case value_kind::floating: append_float(out, v.as_float()); return;
    case value_kind::string: append_py_repr(out, v.as_string()); return;
    case value_kind::list: {
      const auto& l = v.as_list();
      out += l.tuple ? '(' : '[';
      for (std::size_t k = 0; k < l.items.size(); ++k) {
        if (k) out += ", ";
        append_repr(out, l.items[k]);
      }
      if (l.tuple && l.items.size() == 1) out += ',';
      out += l.tuple ? ')' : ']';
      return;
    }
    case value_kind::dict:
    case value_kind::ns: {
      if (v.kind() == value_kind::ns) out += "<Namespace ";
      out += '{';
      bool first = true;
      for (const auto& [k, item] : v.as_dict().entries) {
        if (!first) out += ", ";
        first = false;
        append_py_repr(out, k);
        out += ": ";
        append_repr(out, item);
      }
      out += '}';
      if (v.kind() == value_kind::ns) out += '>';
      return;
    }
    case value_kind::loop: {
      const auto& l = v.as_loop();
      out += "<LoopContext " + std::to_string(l.index0 + 1) + "/" + std::to_string(l.items.size()) + ">";
      return;
    }
    case value_kind::macro: out += "<Macro>"; return;
    case value_kind::method: out += "<built-in method " + v.as_method().second + ">"; return;
    case value_kind::function: out += "<built-in function " + std::string(v.as_function()->name) + ">"; return;
  }
}

std::vector<value> iterate(const value& v) {
  switch (v.kind()) {
    case value_kind::undefined: return {};
    case value_kind::list: return v.as_list().items;
    case value_kind::dict: {
      std::vector<value> keys;
      keys.reserve(v.as_dict().entries.size());
      for (const auto& entry : v.as_dict().entries) keys.push_back(value::string(entry.first));
      return keys;
    }
    case value_kind::string: {
      const std::string& s = v.as_string();
      std::vector<value> chars;
      for (std::size_t pos = 0; pos < s.size();) {
        std::size_t start = pos;
        decode_utf8(s, pos);
        chars.push_back(value::string(s.substr(start, pos - start)));
      }
      return chars;
    }
    default: fail("'" + std::string(type_name(v)) + "' object is not iterable");
  }
}

std::int64_t length(const value& v) {
  switch (v.kind()) {
    case value_kind::undefined: return 0;
    case value_kind::string: return static_cast<std::int64_t>(code_point_count(v.as_string()));
    case value_kind::list: return static_cast<std::int64_t>(v.as_list().items.size());
    case value_kind::dict:
    case value_kind::ns: return static_cast<std::int64_t>(v.as_dict().entries.size());
    case value_kind::loop: return static_cast<std::int64_t>(v.as_loop().items.size());
    default: fail("object of type '" + std::string(type_name(v)) + "' has no len()");
  }
}

value from_json(const nlohmann::ordered_json& j) {
  using t = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case t::null: return value::none();
    case t::boolean: return value::boolean(j.get<bool>());
    case t::number_integer: return value::integer(j.get<std::int64_t>());
    case t::number_unsigned: {
      auto u = j.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(INT64_MAX)) return value::integer(static_cast<std::int64_t>(u));
      return value::floating(static_cast<double>(u));
    }
    case t::number_float: return value::floating(j.get<double>());
    case t::string: return value::string(j.get_ref<const std::string&>());
    case t::array: {
      std::vector<value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(from_json(item));
      return value::list(std::move(items));
    }
    case t::object: {
      std::vector<std::pair<std::string, value>> entries;
      entries.reserve(j.size());
      for (const auto& [k, item] : j.items()) entries.emplace_back(k, from_json(item));
      return value::dict(std::move(entries));
    }
    default: return value();  // binary and discarded values have no template meaning
  }
}

}  // namespace yard::backends::chat::jinja
