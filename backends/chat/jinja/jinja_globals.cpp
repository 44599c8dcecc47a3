// Global functions a template may call: raise_exception, namespace, range, dict, strftime_now (find_global in
// jinja_call.hpp). Macros are called by the renderer, not from here.
#include <ctime>

#include "backends/chat/jinja/jinja_call.hpp"
#include "backends/chat/jinja/jinja_error.hpp"

namespace yard::backends::chat::jinja {

namespace {

constexpr std::int64_t max_range = 100000;  // as Jinja's sandbox (which Hugging Face renders in) allows

// The message is the error's text, verbatim (a bad request: templates raise on invalid conversations).
value g_raise_exception(const call_args& a) {
  a.expect("raise_exception", {"message"});
  throw template_error(errc::bad_request, to_str(a.get(0, "message")));
}

std::vector<std::pair<std::string, value>> entries_of(const call_args& a, std::string_view what) {
  if (a.positional.size() > 1) fail(std::string(what) + " takes at most 1 positional argument");
  std::vector<std::pair<std::string, value>> entries;
  if (!a.positional.empty()) {
    const value& init = a.positional[0];
    if (init.is_dict() || init.kind() == value_kind::ns) {
      entries = init.as_dict().entries;
    } else {
      for (const value& pair : iterate(init)) {
        std::vector<value> kv = iterate(pair);
        if (kv.size() != 2) fail(std::string(what) + ": each item must be a (key, value) pair");
        entries.emplace_back(arg_string(kv[0], "key"), kv[1]);
      }
    }
  }
  dict_data d{std::move(entries)};
  for (const auto& [k, v] : a.named) d.set(k, v);
  return std::move(d.entries);
}

value g_namespace(const call_args& a) { return value::ns(entries_of(a, "namespace")); }
value g_dict(const call_args& a) { return value::dict(entries_of(a, "dict")); }

value g_range(const call_args& a) {
  if (!a.named.empty()) fail("range() takes no keyword arguments");
  if (a.positional.empty() || a.positional.size() > 3) fail("range expected 1 to 3 arguments");
  std::int64_t start = 0, stop = 0, step = 1;
  if (a.positional.size() == 1) {
    stop = arg_int(a.positional[0], "range's argument");
  } else {
    start = arg_int(a.positional[0], "range's start");
    stop = arg_int(a.positional[1], "range's stop");
    if (a.positional.size() == 3) step = arg_int(a.positional[2], "range's step");
  }
  if (step == 0) fail("range() arg 3 must not be zero");
  std::vector<value> items;
  for (std::int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
    if (static_cast<std::int64_t>(items.size()) >= max_range)
      fail("range too big (more than " + std::to_string(max_range) + " items)");
    items.push_back(value::integer(k));
  }
  return value::list(std::move(items));
}

// The local date and time through strftime, as Hugging Face's strftime_now(format) does.
value g_strftime_now(const call_args& a) {
  a.expect("strftime_now", {"format"});
  std::string format = arg_string(a.get(0, "format"), "strftime_now's format");
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::string out(format.size() * 4 + 64, '\0');
  std::size_t n = format.empty() ? 0 : std::strftime(out.data(), out.size(), format.c_str(), &local);
  out.resize(n);
  return value::string(std::move(out));
}

constexpr global_entry table[] = {
    {"raise_exception", g_raise_exception}, {"namespace", g_namespace}, {"dict", g_dict},
    {"range", g_range},                     {"strftime_now", g_strftime_now},
};

}  // namespace

const global_entry* find_global(std::string_view name) {
  for (const auto& e : table)
    if (e.name == name) return &e;
  return nullptr;
}

}  // namespace yard::backends::chat::jinja
