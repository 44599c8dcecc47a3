// The `is` tests (x is defined, x is divisibleby 3, ...) and the table find_test reads (jinja_call.hpp).
#include <cctype>

#include "backends/chat/jinja/jinja_call.hpp"
#include "backends/chat/jinja/jinja_error.hpp"
#include "backends/chat/jinja/jinja_ops.hpp"

namespace yard::backends::chat::jinja {

namespace {

using k = value_kind;

value other(const call_args& a, std::string_view test) {
  if (!a.has(0, "other") && !a.has(0, "value")) fail("test '" + std::string(test) + "' needs an argument");
  return a.get(0, "other", a.get(0, "value"));
}

std::int64_t int_subject(const value& v, std::string_view test) {
  return arg_int(v, "the subject of test '" + std::string(test) + "'");
}

bool t_defined(const value& v, const call_args&) { return !v.is_undefined(); }
bool t_undefined(const value& v, const call_args&) { return v.is_undefined(); }
bool t_none(const value& v, const call_args&) { return v.is_none(); }
bool t_string(const value& v, const call_args&) { return v.is_string(); }
bool t_number(const value& v, const call_args&) { return v.is_numeric(); }
bool t_integer(const value& v, const call_args&) { return v.is_int(); }
bool t_float(const value& v, const call_args&) { return v.kind() == k::floating; }
bool t_boolean(const value& v, const call_args&) { return v.kind() == k::boolean; }
bool t_true(const value& v, const call_args&) { return v.kind() == k::boolean && v.as_bool(); }
bool t_false(const value& v, const call_args&) { return v.kind() == k::boolean && !v.as_bool(); }
bool t_mapping(const value& v, const call_args&) { return v.is_dict(); }
// Jinja's Undefined iterates (as empty) and has len() and [], so it counts as iterable and as a sequence.
bool t_iterable(const value& v, const call_args&) {
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}
bool t_sequence(const value& v, const call_args& a) { return t_iterable(v, a); }
bool t_callable(const value& v, const call_args&) {
  return v.kind() == k::macro || v.kind() == k::method || v.kind() == k::function;
}
bool t_odd(const value& v, const call_args&) { return (int_subject(v, "odd") % 2 + 2) % 2 == 1; }
bool t_even(const value& v, const call_args&) { return int_subject(v, "even") % 2 == 0; }
bool t_divisibleby(const value& v, const call_args& a) {
  std::int64_t d = arg_int(a.get(0, "num"), "divisibleby's argument");
  if (d == 0) fail("divisibleby 0");
  return int_subject(v, "divisibleby") % d == 0;
}
bool t_eq(const value& v, const call_args& a) { return equals(v, other(a, "eq")); }
bool t_ne(const value& v, const call_args& a) { return !equals(v, other(a, "ne")); }
bool t_lt(const value& v, const call_args& a) { return less(v, other(a, "lt")); }
bool t_le(const value& v, const call_args& a) {
  value o = other(a, "le");
  return less(v, o) || equals(v, o);
}
bool t_gt(const value& v, const call_args& a) { return less(other(a, "gt"), v); }
bool t_ge(const value& v, const call_args& a) {
  value o = other(a, "ge");
  return less(o, v) || equals(v, o);
}
bool t_in(const value& v, const call_args& a) { return contains(a.get(0, "seq"), v); }
bool t_sameas(const value& v, const call_args& a) {
  value o = other(a, "sameas");
  if (v.kind() != o.kind()) return false;
  switch (v.kind()) {
    case k::undefined:
    case k::none: return true;
    case k::boolean:
    case k::integer:
    case k::floating:
    case k::string: return equals(v, o);
    default: return v.same_object(o);
  }
}
bool t_lower(const value& v, const call_args&) {
  std::string s = to_str(v);
  bool cased = false;
  for (char c : s) {
    if (std::isupper(static_cast<unsigned char>(c))) return false;
    cased = cased || std::islower(static_cast<unsigned char>(c));
  }
  return cased;
}
bool t_upper(const value& v, const call_args&) {
  std::string s = to_str(v);
  bool cased = false;
  for (char c : s) {
    if (std::islower(static_cast<unsigned char>(c))) return false;
    cased = cased || std::isupper(static_cast<unsigned char>(c));
  }
  return cased;
}
bool t_filter(const value& v, const call_args&) { return v.is_string() && find_filter(v.as_string()); }
bool t_test(const value& v, const call_args&) { return v.is_string() && find_test(v.as_string()); }

struct entry {
  std::string_view name;
  test_fn fn;
};

constexpr entry table[] = {
    {"defined", t_defined},   {"undefined", t_undefined}, {"none", t_none},         {"string", t_string},
    {"number", t_number},     {"integer", t_integer},     {"float", t_float},       {"boolean", t_boolean},
    {"true", t_true},         {"false", t_false},         {"mapping", t_mapping},   {"iterable", t_iterable},
    {"sequence", t_sequence}, {"callable", t_callable},   {"odd", t_odd},           {"even", t_even},
    {"divisibleby", t_divisibleby},
    {"equalto", t_eq},        {"eq", t_eq},               {"==", t_eq},             {"ne", t_ne},
    {"!=", t_ne},             {"lt", t_lt},               {"lessthan", t_lt},       {"<", t_lt},
    {"le", t_le},             {"<=", t_le},               {"gt", t_gt},             {"greaterthan", t_gt},
    {">", t_gt},              {"ge", t_ge},               {">=", t_ge},             {"in", t_in},
    {"sameas", t_sameas},     {"lower", t_lower},         {"upper", t_upper},       {"filter", t_filter},
    {"test", t_test},
};

}  // namespace

test_fn find_test(std::string_view name) {
  for (const auto& e : table)
    if (e.name == name) return e.fn;
  return nullptr;
}

}  // namespace yard::backends::chat::jinja
