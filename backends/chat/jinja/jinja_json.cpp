#include "backends/chat/jinja/jinja_json.hpp"

#include <algorithm>
#include <cmath>

#include "backends/chat/jinja/jinja_error.hpp"
#include "backends/chat/jinja/jinja_strings.hpp"

namespace yard::backends::chat::jinja {

namespace {

void append_u_escape(std::string& out, unsigned cp) {
  static const char* hex = "0123456789abcdef";  // Python writes lowercase hex digits
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += hex[(cp >> shift) & 0xf];
}

void newline_indent(std::string& out, const json_format& f, int level) {
  out += '\n';
  for (int k = 0; k < level; ++k) out += *f.indent;
}

void append_value(std::string& out, const value& v, const json_format& f, int level) {
  switch (v.kind()) {
    case value_kind::none: out += "null"; return;
    case value_kind::boolean: out += v.as_bool() ? "true" : "false"; return;
    case value_kind::integer: out += std::to_string(v.as_int()); return;
    case value_kind::floating: {
      double d = v.as_float();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d < 0 ? "-Infinity" : "Infinity";
      else append_float(out, d);
      return;
    }
    case value_kind::string: append_json_string(out, v.as_string(), f.ensure_ascii); return;
    case value_kind::list: {
      const auto& items = v.as_list().items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (std::size_t k = 0; k < items.size(); ++k) {
        if (k) out += f.item_separator;
        if (f.indent) newline_indent(out, f, level + 1);
        append_value(out, items[k], f, level + 1);
      }
      if (f.indent) newline_indent(out, f, level);
      out += ']';
      return;
    }
    case value_kind::dict: {
      const auto& entries = v.as_dict().entries;
      if (entries.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, value>*> order;
      order.reserve(entries.size());
      for (const auto& e : entries) order.push_back(&e);
      if (f.sort_keys)
        std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      for (std::size_t k = 0; k < order.size(); ++k) {
        if (k) out += f.item_separator;
        if (f.indent) newline_indent(out, f, level + 1);
        append_json_string(out, order[k]->first, f.ensure_ascii);
        out += f.key_separator;
        append_value(out, order[k]->second, f, level + 1);
      }
      if (f.indent) newline_indent(out, f, level);
      out += '}';
      return;
    }
    default:
      fail("Object of type " + std::string(type_name(v)) + " is not JSON serializable");
  }
}

}  // namespace

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  for (std::size_t pos = 0; pos < s.size();) {
    char c = s[pos];
    switch (c) {
      case '"': out += "\\\""; ++pos; continue;
      case '\\': out += "\\\\"; ++pos; continue;
      case '\n': out += "\\n"; ++pos; continue;
      case '\r': out += "\\r"; ++pos; continue;
      case '\t': out += "\\t"; ++pos; continue;
      case '\b': out += "\\b"; ++pos; continue;
      case '\f': out += "\\f"; ++pos; continue;
      default: break;
    }
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || (ensure_ascii && byte == 0x7f)) {
      append_u_escape(out, byte);
      ++pos;
    } else if (byte < 0x80 || !ensure_ascii) {
      out += c;
      ++pos;
    } else {
      char32_t cp = decode_utf8(s, pos);
      if (cp >= 0x10000) {  // a surrogate pair, as Python writes it
        cp -= 0x10000;
        append_u_escape(out, 0xd800 + (cp >> 10));
        append_u_escape(out, 0xdc00 + (cp & 0x3ff));
      } else {
        append_u_escape(out, cp);
      }
    }
  }
  out += '"';
}

void append_json(std::string& out, const value& v, const json_format& format) { append_value(out, v, format, 0); }

}  // namespace yard::backends::chat::jinja
