// backends/chat/jinja/jinja_ops.hpp — Python's operators and Jinja's attribute/item lookup on values.
//
// Owns: + - * / // % ** ~ with Python semantics (int/float promotion, floor division and modulo, str and
// list concatenation and repetition, printf-style str % args), `in`, `a.b` and `a[b]` (Jinja's rule: an attribute, else an item, or
// the other way round for subscripts; a miss is undefined, never an error, and so is any lookup on an
// undefined value), slices with negative indexes and steps, and dotted attribute paths ("a.b.0").
// Must not touch: comparisons and truthiness (jinja_value), calls.
// Thread-safety: pure functions (apart from reading shared values).
#pragma once

#include <string_view>

#include "backends/chat/jinja/jinja_ast.hpp"
#include "backends/chat/jinja/jinja_value.hpp"

namespace yard::backends::chat::jinja {

// op is one of add, sub, mul, div, floordiv, mod, pow, concat. Throws a type error for unsupported operands.
value binary_op(op_kind op, const value& a, const value& b);
// `item in container`: substring, list member, dict key; false for undefined; throws for non-containers.
bool contains(const value& container, const value& item);
value get_attr(const value& obj, std::string_view name);
value get_item(const value& obj, const value& key);
// obj[start:stop:step]; each bound may be undefined or none (omitted).
value get_slice(const value& obj, const value& start, const value& stop, const value& step);
// "a.b.0": attributes, and list indexes for the all-digit parts (filters' attribute= arguments).
value get_attr_path(const value& obj, std::string_view path);
// Python's `format % args` (the `%` operator on a str and the `format` filter): a tuple supplies the
// positional conversions, a dict the %(name)s ones, anything else is the one argument. Conversions: s r a d i
// u f F e E g G x X o c %, with flags - + 0 space, width and precision.
value percent_format(const std::string& format, const value& args);

}  // namespace yard::backends::chat::jinja
