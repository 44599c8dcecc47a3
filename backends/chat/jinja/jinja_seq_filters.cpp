// Sequence filters: join, first, last, list, items, dictsort, select/reject(attr), map, unique, sort, reverse,
// min, max, sum.
#include <algorithm>

#include "backends/chat/jinja/jinja_error.hpp"
#include "backends/chat/jinja/jinja_filters.hpp"
#include "backends/chat/jinja/jinja_ops.hpp"
#include "backends/chat/jinja/jinja_strings.hpp"

namespace yard::backends::chat::jinja {

namespace {

// Jinja's ignore_case: strings compare lowercased unless case_sensitive.
value sort_key(const value& v, bool case_sensitive) {
  return (!case_sensitive && v.is_string()) ? value::string(py_lower(v.as_string())) : v;
}

// The arguments from `first` on, as a fresh call for a named test or filter.
call_args rest_of(const call_args& a, std::size_t first, bool keep_named) {
  call_args rest;
  if (a.positional.size() > first) rest.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(first), a.positional.end());
  if (keep_named) rest.named = a.named;
  return rest;
}

test_fn named_test(const value& name) {
  std::string n = arg_string(name, "the test name");
  test_fn fn = find_test(n);
  if (!fn) fail_unsupported("unsupported test '" + n + "'");
  return fn;
}

// select/reject (on_attribute false) and selectattr/rejectattr (true).
value select_items(const value& v, const call_args& a, bool on_attribute, bool keep) {
  std::size_t test_at = on_attribute ? 1 : 0;
  std::string attr = on_attribute ? arg_string(a.get(0, "attribute"), "selectattr's attribute") : "";
  test_fn test = a.positional.size() > test_at ? named_test(a.positional[test_at]) : nullptr;
  call_args test_args = rest_of(a, test_at + 1, false);
  std::vector<value> out;
  for (const value& item : iterate(v)) {
    value subject = on_attribute ? get_attr_path(item, attr) : item;
    bool pass = test ? test(subject, test_args) : truthy(subject);
    if (pass == keep) out.push_back(item);
  }
  return value::list(std::move(out));
}

value f_select(const value& v, const call_args& a) { return select_items(v, a, false, true); }
value f_reject(const value& v, const call_args& a) { return select_items(v, a, false, false); }
value f_selectattr(const value& v, const call_args& a) { return select_items(v, a, true, true); }
value f_rejectattr(const value& v, const call_args& a) { return select_items(v, a, true, false); }

value f_map(const value& v, const call_args& a) {
  std::vector<value> out;
  value attribute = a.named_arg("attribute");
  if (!attribute.is_undefined()) {
    if (!a.positional.empty()) fail("map takes either a filter name or attribute=, not both");
    std::string attr = arg_string(attribute, "map's attribute");
    value fallback = a.named_arg("default");
    for (const value& item : iterate(v)) {
      value got = get_attr_path(item, attr);
      out.push_back(got.is_undefined() && !fallback.is_undefined() ? fallback : got);
    }
    return value::list(std::move(out));
  }
  if (a.positional.empty()) fail("map needs a filter name or attribute=");
  std::string name = arg_string(a.positional[0], "map's filter name");
  filter_fn fn = find_filter(name);
  if (!fn) fail_unsupported("unsupported filter '" + name + "'");
  call_args filter_args = rest_of(a, 1, true);
  for (const value& item : iterate(v)) out.push_back(fn(item, filter_args));
  return value::list(std::move(out));
}

value f_join(const value& v, const call_args& a) {
  a.expect("join", {"d", "attribute"});
  std::string sep = arg_string(a.get(0, "d", value::string("")), "join's separator");
  value attr = a.get(1, "attribute");
  std::string out;
  bool first = true;
  for (const value& item : iterate(v)) {
    if (!first) out += sep;
    first = false;
    append_str(out, attr.is_undefined() || attr.is_none() ? item : get_attr_path(item, to_str(attr)));
  }
  return value::string(std::move(out));
}

value f_first(const value& v, const call_args& a) {
  a.expect("first", {});
  if (v.is_list()) return v.as_list().items.empty() ? value() : v.as_list().items.front();
  std::vector<value> items = iterate(v);
  return items.empty() ? value() : items.front();
}

value f_last(const value& v, const call_args& a) {
  a.expect("last", {});
  if (v.is_list()) return v.as_list().items.empty() ? value() : v.as_list().items.back();
  std::vector<value> items = iterate(v);
  return items.empty() ? value() : items.back();
}

value f_list(const value& v, const call_args& a) {
  a.expect("list", {});
  return value::list(iterate(v));
}

value f_items(const value& v, const call_args& a) {
  a.expect("items", {});
  if (v.is_undefined()) return value::list({});
  if (!v.is_dict()) fail("items filter expects a mapping, not " + std::string(type_name(v)));
  return call_method(v, "items", {});
}

value f_dictsort(const value& v, const call_args& a) {
  a.expect("dictsort", {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) fail("dictsort expects a mapping, not " + std::string(type_name(v)));
  bool case_sensitive = truthy(a.get(0, "case_sensitive"));
  std::string by = arg_string(a.get(1, "by", value::string("key")), "dictsort's by");
  if (by != "key" && by != "value") fail("dictsort's by must be 'key' or 'value'");
  std::size_t pos = by == "key" ? 0 : 1;
  std::vector<value> items = call_method(v, "items", {}).as_list().items;
  std::stable_sort(items.begin(), items.end(), [&](const value& x, const value& y) {
    return less(sort_key(x.as_list().items[pos], case_sensitive), sort_key(y.as_list().items[pos], case_sensitive));
  });
  if (truthy(a.get(2, "reverse"))) std::reverse(items.begin(), items.end());
  return value::list(std::move(items));
}

// The sort/unique/min/max key of an item: its attribute(s) when given, lowercased unless case_sensitive.
value item_key(const value& item, const value& attribute, bool case_sensitive) {
  if (attribute.is_undefined() || attribute.is_none()) return sort_key(item, case_sensitive);
  std::string attrs = to_str(attribute);
  if (attrs.find(',') == std::string::npos) return sort_key(get_attr_path(item, attrs), case_sensitive);
  std::vector<value> keys;
  for (const std::string& part : py_split(attrs, std::string(","), -1))
    keys.push_back(sort_key(get_attr_path(item, py_strip(part, std::nullopt, true, true)), case_sensitive));
  return value::list(std::move(keys));
}

value f_sort(const value& v, const call_args& a) {
  a.expect("sort", {"reverse", "case_sensitive", "attribute"});
  bool reverse = truthy(a.get(0, "reverse")), case_sensitive = truthy(a.get(1, "case_sensitive"));
  value attribute = a.get(2, "attribute");
  std::vector<std::pair<value, value>> keyed;  // (key, item)
  for (value& item : iterate(v)) keyed.emplace_back(item_key(item, attribute, case_sensitive), std::move(item));
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? less(y.first, x.first) : less(x.first, y.first);
  });
  std::vector<value> out;
  for (auto& [key, item] : keyed) out.push_back(std::move(item));
  return value::list(std::move(out));
}

value f_unique(const value& v, const call_args& a) {
  a.expect("unique", {"case_sensitive", "attribute"});
  bool case_sensitive = truthy(a.get(0, "case_sensitive"));
  value attribute = a.get(1, "attribute");
  std::vector<value> seen, out;
  for (value& item : iterate(v)) {
    value key = item_key(item, attribute, case_sensitive);
    if (std::any_of(seen.begin(), seen.end(), [&](const value& s) { return equals(s, key); })) continue;
    seen.push_back(std::move(key));
    out.push_back(std::move(item));
  }
  return value::list(std::move(out));
}

value min_or_max(const value& v, const call_args& a, bool want_max) {
  a.expect(want_max ? "max" : "min", {"case_sensitive", "attribute"});
  bool case_sensitive = truthy(a.get(0, "case_sensitive"));
  value attribute = a.get(1, "attribute");
  value best, best_key;
  for (value& item : iterate(v)) {
    value key = item_key(item, attribute, case_sensitive);
    if (best.is_undefined() || (want_max ? less(best_key, key) : less(key, best_key))) {
      best = std::move(item);
      best_key = std::move(key);
    }
  }
  return best;
}

value f_min(const value& v, const call_args& a) { return min_or_max(v, a, false); }
value f_max(const value& v, const call_args& a) { return min_or_max(v, a, true); }

value f_sum(const value& v, const call_args& a) {
  a.expect("sum", {"attribute", "start"});
  value attribute = a.get(0, "attribute");
  value total = a.get(1, "start", value::integer(0));
  for (const value& item : iterate(v))
    total = binary_op(op_kind::add, total,
                      attribute.is_undefined() || attribute.is_none() ? item : get_attr_path(item, to_str(attribute)));
  return total;
}

value f_reverse(const value& v, const call_args& a) {
  a.expect("reverse", {});
  std::vector<value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  if (!v.is_string()) return value::list(std::move(items));
  std::string out;
  for (const value& c : items) out += c.as_string();
  return value::string(std::move(out));
}

constexpr filter_entry table[] = {
    {"select", f_select}, {"reject", f_reject}, {"selectattr", f_selectattr}, {"rejectattr", f_rejectattr},
    {"map", f_map},       {"join", f_join},     {"first", f_first},           {"last", f_last},
    {"list", f_list},     {"items", f_items},   {"dictsort", f_dictsort},     {"sort", f_sort},
    {"unique", f_unique}, {"min", f_min},       {"max", f_max},               {"sum", f_sum},
    {"reverse", f_reverse},
};

}  // namespace

std::span<const filter_entry> sequence_filters() { return table; }

}  // namespace yard::backends::chat::jinja
