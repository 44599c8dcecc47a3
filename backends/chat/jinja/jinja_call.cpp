#include "backends/chat/jinja/jinja_call.hpp"

#include <algorithm>

#include "backends/chat/jinja/jinja_error.hpp"

namespace yard::backends::chat::jinja {

value call_args::get(std::size_t index, std::string_view name, value fallback) const {
  if (index < positional.size()) return positional[index];
  for (const auto& [n, v] : named)
    if (n == name) return v;
  return fallback;
}

bool call_args::has(std::size_t index, std::string_view name) const {
  if (index < positional.size()) return true;
  return std::any_of(named.begin(), named.end(), [&](const auto& kv) { return kv.first == name; });
}

value call_args::named_arg(std::string_view name, value fallback) const {
  for (const auto& [n, v] : named)
    if (n == name) return v;
  return fallback;
}

void call_args::expect(std::string_view what, std::initializer_list<std::string_view> names) const {
  if (positional.size() > names.size())
    fail(std::string(what) + " takes at most " + std::to_string(names.size()) + " argument(s), got " +
         std::to_string(positional.size()));
  for (const auto& [n, v] : named) {
    auto it = std::find(names.begin(), names.end(), n);
    if (it == names.end()) fail(std::string(what) + " got an unexpected argument '" + std::string(n) + "'");
    if (static_cast<std::size_t>(it - names.begin()) < positional.size())
      fail(std::string(what) + " got multiple values for argument '" + std::string(n) + "'");
  }
}

std::string arg_string(const value& v, std::string_view what) {
  if (!v.is_string()) fail(std::string(what) + " must be a string, not " + std::string(type_name(v)));
  return v.as_string();
}

std::int64_t arg_int(const value& v, std::string_view what) {
  if (v.is_int() || v.kind() == value_kind::boolean) return v.as_int();
  fail(std::string(what) + " must be an integer, not " + std::string(type_name(v)));
}

}  // namespace yard::backends::chat::jinja
