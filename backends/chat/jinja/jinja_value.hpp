// backends/chat/jinja/jinja_value.hpp — the runtime values a chat template computes with.
//
// Owns: value (Jinja's data model: undefined, none, bool, int, float, str, list/tuple, dict, namespace, the loop
// object, a macro, a bound method) and the Python rules every other part relies on: truthiness, ==, <, str()
// and repr() printing, iteration, length, and the conversion from the request's JSON.
// Must not touch: parsing or rendering. Operators, filters and methods live in their own files.
// Thread-safety: strings are immutable and may be shared between threads; lists, dicts and namespaces are
// shared by reference (Python semantics: `ns.x = ...` and `.append` mutate in place) and so belong to one
// render at a time. Literal strings in a compiled template are the only values shared between renders.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace yard::backends::chat::jinja {

struct stmt;          // a macro's definition (jinja_ast.hpp); a macro value points into the compiled template
struct global_entry;  // a global function (jinja_call.hpp), e.g. range; a static table entry
class value;

enum class value_kind : std::uint8_t {
  undefined,  // a missing variable, attribute or item: prints "", is falsy, iterates as empty
  none,
  boolean,
  integer,
  floating,
  string,
  list,       // also tuples (list_data::tuple), which only print differently
  dict,       // string keys, insertion order kept
  ns,         // namespace(...): a dict whose entries are read and set as attributes
  loop,       // the `loop` variable of a for loop
  macro,
  method,     // `obj.name` of a built-in method, not called yet
  function,   // a global function (range, namespace, raise_exception, ...) read as a variable
};

struct list_data {
  std::vector<value> items;
  bool tuple = false;
};

struct dict_data {
  std::vector<std::pair<std::string, value>> entries;  // in insertion order; keys are unique
  const value* find(std::string_view key) const;
  void set(std::string_view key, value v);  // replaces the value of an existing key in place
};

// The state behind `loop`: the (already filtered) items and the position in them.
struct loop_state {
  std::vector<value> items;
  std::size_t index0 = 0;
};

class value {
 public:
  value() = default;  // undefined
  static value none();
  static value boolean(bool b);
  static value integer(std::int64_t i);
  static value floating(double d);
  static value string(std::string s);
  static value list(std::vector<value> items, bool tuple = false);
  static value dict(std::vector<std::pair<std::string, value>> entries = {});
  static value ns(std::vector<std::pair<std::string, value>> entries = {});
  static value loop(std::shared_ptr<loop_state> state);
  static value macro(const stmt* definition);  // the definition outlives every render of its template
  static value method(value self, std::string name);
  static value function(const global_entry* entry);

  value_kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == value_kind::undefined; }
  bool is_none() const { return kind_ == value_kind::none; }
  bool is_string() const { return kind_ == value_kind::string; }
  bool is_list() const { return kind_ == value_kind::list; }
  bool is_dict() const { return kind_ == value_kind::dict; }
  bool is_int() const { return kind_ == value_kind::integer; }
  // int, float or bool: Python counts bool as a number in arithmetic and comparisons.
  bool is_numeric() const {
    return kind_ == value_kind::integer || kind_ == value_kind::floating || kind_ == value_kind::boolean;
  }

  bool as_bool() const { return num_.b; }
  std::int64_t as_int() const;  // of a bool or int
  double as_float() const;      // of a bool, int or float
  const std::string& as_string() const { return *static_cast<const std::string*>(ptr_.get()); }
  list_data& as_list() const { return *static_cast<list_data*>(ptr_.get()); }
  dict_data& as_dict() const { return *static_cast<dict_data*>(ptr_.get()); }  // dict or namespace
  loop_state& as_loop() const { return *static_cast<loop_state*>(ptr_.get()); }
  const stmt* as_macro() const { return static_cast<const stmt*>(ptr_.get()); }
  const global_entry* as_function() const { return static_cast<const global_entry*>(ptr_.get()); }
  const std::pair<value, std::string>& as_method() const {
    return *static_cast<const std::pair<value, std::string>*>(ptr_.get());
  }
  // Same object (Python `is`) for the shared kinds.
  bool same_object(const value& other) const { return kind_ == other.kind_ && ptr_ == other.ptr_; }

 private:
  value_kind kind_ = value_kind::undefined;
  union {
    bool b;
    std::int64_t i;
    double d;
  } num_{};
  std::shared_ptr<void> ptr_;  // the string, list_data, dict_data, loop_state, macro, method or function
};

// Python's type name, for error messages: 'str', 'int', 'list', 'dict', 'NoneType', ...
std::string_view type_name(const value& v);
bool truthy(const value& v);
// Python ==: 1 == 1.0 == True, lists and dicts compare by content (dicts ignoring order).
bool equals(const value& a, const value& b);
// Python <: numbers with numbers, str with str (code point order), lists lexicographically; anything else
// throws a type error naming both types.
bool less(const value& a, const value& b);
// Python str() (what {{ }} prints) and repr() (how items inside a printed list or dict appear).
std::string to_str(const value& v);
void append_str(std::string& out, const value& v);
void append_repr(std::string& out, const value& v);
// Python's repr of a float: shortest round-trip digits, "1.0", "1e+16", "1e-05", "inf", "nan".
void append_float(std::string& out, double d);
// The items a for loop sees: list items, dict keys, a string's characters; undefined gives none;
// anything else throws "'int' object is not iterable".
std::vector<value> iterate(const value& v);
// len(): code points of a string, items of a list or dict; undefined is 0; other kinds throw.
std::int64_t length(const value& v);
value from_json(const nlohmann::ordered_json& j);

}  // namespace yard::backends::chat::jinja
