// backends/chat/jinja/jinja_call.hpp — the arguments of a call, and the tables of built-in callables.
//
// Owns: call_args (positional and keyword arguments, looked up Python-style by position or name, with the
// "unexpected argument" checks) and the signatures of the four built-in tables: filters (jinja_filters.cpp),
// tests (jinja_is_tests.cpp), global functions (jinja_globals.cpp) and methods of str/dict/list
// (jinja_methods.cpp). The parser looks names up at compile time, so an unknown name is a compile error.
// Must not touch: macros and `loop.cycle` (the renderer calls those; they need its scopes).
// Thread-safety: the tables are immutable; built-ins are pure apart from mutating methods (list.append) and
// strftime_now (reads the clock).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/chat/jinja/jinja_value.hpp"

namespace yard::backends::chat::jinja {

struct call_args {
  std::vector<value> positional;  // for a filter or test: the arguments after the subject
  std::vector<std::pair<std::string_view, value>> named;  // names point into the compiled template

  // Argument `index` by position, else the one named `name`, else `fallback`.
  value get(std::size_t index, std::string_view name, value fallback = {}) const;
  bool has(std::size_t index, std::string_view name) const;
  // The keyword argument `name` only (for parameters that cannot be positional), else `fallback`.
  value named_arg(std::string_view name, value fallback = {}) const;
  // Throws "<what> got an unexpected argument 'x'" or "<what> takes at most N arguments" unless every argument
  // fits `names` (the parameters in order).
  void expect(std::string_view what, std::initializer_list<std::string_view> names) const;
};

using filter_fn = value (*)(const value& subject, const call_args& args);
using test_fn = bool (*)(const value& subject, const call_args& args);
using global_fn = value (*)(const call_args& args);

struct global_entry {
  std::string_view name;
  global_fn fn;
};

// nullptr when the name is not implemented.
filter_fn find_filter(std::string_view name);
test_fn find_test(std::string_view name);
const global_entry* find_global(std::string_view name);

// Built-in methods: str (strip, split, startswith, ...), dict (items, keys, values, get), list (append, ...).
bool has_method(value_kind kind, std::string_view name);
// Calls `self.name(args)`; throws when `self`'s type has no such method.
value call_method(const value& self, std::string_view name, const call_args& args);

// Argument conversions shared by the built-ins; they throw a type error naming `what`.
std::string arg_string(const value& v, std::string_view what);
std::int64_t arg_int(const value& v, std::string_view what);

}  // namespace yard::backends::chat::jinja
