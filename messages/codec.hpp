// messages/codec.hpp — msgpack and JSON codecs for the types in types.hpp.
//
// Owns: the wire encodings. msgpack (maps keyed by field name) is the default;
// JSON is chosen by a `Content-Type: application/json` header or a body whose
// first non-blank byte is '{'. Both walk the same describe() field list, so a
// type is defined once and both formats always agree.
// Decoding never throws: malformed, truncated, too deep or oversize input, a
// missing required field or a wrong type all come back as errc::bad_request or
// errc::payload_too_large with a message naming the field path.
// Must not touch: I/O, logging. Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <msgpack.hpp>
#include <nlohmann/json.hpp>

#include "common/status.hpp"
#include "messages/types.hpp"

namespace yard::msg {

enum class wire_format { msgpack, json };

struct decode_limits {
  std::size_t max_bytes = 4u << 20;  // body size limit (default 4 MiB)
  std::size_t max_depth = 32;        // nesting limit (default 32)
};

// Picks the format from a Content-Type value (may be empty) and the body.
wire_format detect_format(std::string_view content_type, std::string_view body);
std::string_view content_type_of(wire_format f);

// Checks size and JSON nesting depth without parsing (nlohmann recurses).
status check_json_shape(std::string_view body, const decode_limits& lim);

namespace detail {

// Wire enums (messages/wire_enum.hpp): a string on the wire, an enum in the core.
template <class E> bool enum_read(std::string_view s, E& out, std::string& err, const std::string& path) {
  if (wire_enum_from(s, out)) return true;
  std::string names;
  for (auto n : wire_names(E{})) names += (names.empty() ? "" : ", ") + std::string(n);
  err = "field '" + path + "' must be one of " + names + " (got '" + std::string(s) + "')";
  return false;
}

template <class T, class = void> struct is_described : std::false_type {};
struct probe_visitor {
  template <class F> void req(const char*, F&) {}
  template <class F> void opt(const char*, F&) {}
};
template <class T>
struct is_described<T, std::void_t<decltype(describe(std::declval<probe_visitor&>(), std::declval<T&>()))>>
    : std::true_type {};

template <class T> struct is_vector : std::false_type {};
template <class T> struct is_vector<std::vector<T>> : std::true_type {};
template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};

// ---- JSON -------------------------------------------------------------------

class json_reader;
template <class T> bool json_read(const nlohmann::json& j, T& out, std::string& err, const std::string& path);

class json_reader {
 public:
  json_reader(const nlohmann::json& obj, std::string& err, std::string path)
      : obj_(obj), err_(err), path_(std::move(path)) {}
  template <class T> void req(const char* name, T& out) { field(name, out, true); }
  template <class T> void opt(const char* name, T& out) { field(name, out, false); }

 private:
  template <class T> void field(const char* name, T& out, bool required) {
    if (!err_.empty()) return;
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) {
      if (required) err_ = "missing required field '" + path_ + name + "'";
      return;
    }
    json_read(*it, out, err_, path_ + name);
  }
  const nlohmann::json& obj_;
  std::string& err_;
  std::string path_;
};

template <class T>
bool json_read(const nlohmann::json& j, T& out, std::string& err, const std::string& path) {
  auto fail = [&](const char* want) {
    err = "field '" + path + "' must be " + want;
    return false;
  };
  if constexpr (std::is_same_v<T, json_value>) {
    out.v = nlohmann::ordered_json::parse(j.dump());  // the tree is already depth-checked
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!j.is_boolean()) return fail("a boolean");
    out = j.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!j.is_number_integer()) return fail("an integer");
    if constexpr (std::is_unsigned_v<T>) {
      if (j.is_number_unsigned()) {
        auto v = j.get<std::uint64_t>();
        if (v > std::numeric_limits<T>::max()) return fail("in range");
        out = static_cast<T>(v);
      } else {
        auto v = j.get<std::int64_t>();
        if (v < 0 || static_cast<std::uint64_t>(v) > std::numeric_limits<T>::max()) return fail("a non-negative integer in range");
        out = static_cast<T>(v);
      }
    } else {
      if (j.is_number_unsigned() && j.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
        return fail("in range");
      auto v = j.get<std::int64_t>();
      if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) return fail("in range");
      out = static_cast<T>(v);
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!j.is_number()) return fail("a number");
    out = j.get<T>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string()) return fail("a string");
    out = j.get_ref<const std::string&>();
  } else if constexpr (std::is_enum_v<T>) {
    if (!j.is_string()) return fail("a string");
    return enum_read(j.get_ref<const std::string&>(), out, err, path);
  } else if constexpr (is_optional<T>::value) {
    typename T::value_type v{};
    if (!json_read(j, v, err, path)) return false;
    out = std::move(v);
  } else if constexpr (is_vector<T>::value) {
    if (!j.is_array()) return fail("an array");
    T tmp;
    tmp.reserve(j.size());
    for (std::size_t i = 0; i < j.size(); ++i) {
      typename T::value_type v{};
      if (!json_read(j[i], v, err, path + "[" + std::to_string(i) + "]")) return false;
      tmp.push_back(std::move(v));
    }
    out = std::move(tmp);
  } else {
    static_assert(is_described<T>::value, "type has no describe()");
    if (!j.is_object()) return fail("an object");
    json_reader r(j, err, path.empty() ? std::string() : path + ".");
    describe(r, out);
    return err.empty();
  }
  return true;
}

class json_writer {
 public:
  explicit json_writer(nlohmann::json& obj) : obj_(obj) {}
  template <class T> void req(const char* name, T& v) { put(name, v); }
  template <class T> void opt(const char* name, T& v) { put(name, v); }

 private:
  template <class T> void put(const char* name, T& v) {
    if constexpr (is_optional<T>::value) {
      if (!v) return;
      obj_[name] = to_json_value(*v);
    } else {
      obj_[name] = to_json_value(v);
    }
  }
  template <class T> static nlohmann::json to_json_value(T& v) {
    if constexpr (std::is_same_v<T, json_value>) {
      return nlohmann::json::parse(v.v.dump());
    } else if constexpr (is_described<T>::value) {
      nlohmann::json o = nlohmann::json::object();
      json_writer w(o);
      describe(w, v);
      return o;
    } else if constexpr (std::is_enum_v<T>) {
      return nlohmann::json(std::string(wire_name(v)));
    } else if constexpr (is_vector<T>::value) {
      if constexpr (is_described<typename T::value_type>::value || std::is_enum_v<typename T::value_type>) {
        nlohmann::json a = nlohmann::json::array();
        for (auto& e : v) a.push_back(to_json_value(e));
        return a;
      } else {
        return nlohmann::json(v);
      }
    } else {
      return nlohmann::json(v);
    }
  }
  nlohmann::json& obj_;
};

// ---- msgpack ----------------------------------------------------------------

// A msgpack tree as JSON (map keys must be strings; binaries become strings).
bool mp_to_json(const msgpack::object& o, nlohmann::ordered_json& out, std::string& err, const std::string& path);

template <class Packer> void pack_json(Packer& pk, const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::object:
      pk.pack_map(static_cast<std::uint32_t>(j.size()));
      for (auto it = j.begin(); it != j.end(); ++it) {
        pk.pack(std::string_view(it.key()));
        pack_json(pk, it.value());
      }
      break;
    case nlohmann::ordered_json::value_t::array:
      pk.pack_array(static_cast<std::uint32_t>(j.size()));
      for (const auto& e : j) pack_json(pk, e);
      break;
    case nlohmann::ordered_json::value_t::string: pk.pack(std::string_view(j.get_ref<const std::string&>())); break;
    case nlohmann::ordered_json::value_t::boolean: pk.pack(j.get<bool>()); break;
    case nlohmann::ordered_json::value_t::number_integer: pk.pack(j.get<std::int64_t>()); break;
    case nlohmann::ordered_json::value_t::number_unsigned: pk.pack(j.get<std::uint64_t>()); break;
    case nlohmann::ordered_json::value_t::number_float: pk.pack(j.get<double>()); break;
    default: pk.pack_nil(); break;
  }
}

template <class T> bool mp_read(const msgpack::object& o, T& out, std::string& err, const std::string& path);

class mp_reader {
 public:
  mp_reader(const msgpack::object& map, std::string& err, std::string path)
      : map_(map), err_(err), path_(std::move(path)) {}
  template <class T> void req(const char* name, T& out) { field(name, out, true); }
  template <class T> void opt(const char* name, T& out) { field(name, out, false); }

 private:
  const msgpack::object* find(std::string_view name) const {
    for (std::uint32_t i = 0; i < map_.via.map.size; ++i) {
      const auto& kv = map_.via.map.ptr[i];
      if (kv.key.type == msgpack::type::STR && std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == name)
        return &kv.val;
    }
    return nullptr;
  }
  template <class T> void field(const char* name, T& out, bool required) {
    if (!err_.empty()) return;
    const auto* v = find(name);
    if (v == nullptr || v->type == msgpack::type::NIL) {
      if (required) err_ = "missing required field '" + path_ + name + "'";
      return;
    }
    mp_read(*v, out, err_, path_ + name);
  }
  const msgpack::object& map_;
  std::string& err_;
  std::string path_;
};

template <class T>
bool mp_read(const msgpack::object& o, T& out, std::string& err, const std::string& path) {
  namespace t = msgpack::type;
  auto fail = [&](const char* want) {
    err = "field '" + path + "' must be " + want;
    return false;
  };
  if constexpr (std::is_same_v<T, json_value>) {
    return mp_to_json(o, out.v, err, path);
  } else if constexpr (std::is_same_v<T, bool>) {
    if (o.type != t::BOOLEAN) return fail("a boolean");
    out = o.via.boolean;
  } else if constexpr (std::is_integral_v<T>) {
    if (o.type == t::POSITIVE_INTEGER) {
      if (o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return fail("in range");
      out = static_cast<T>(o.via.u64);
    } else if (o.type == t::NEGATIVE_INTEGER) {
      if constexpr (std::is_unsigned_v<T>) return fail("a non-negative integer");
      else {
        if (o.via.i64 < std::numeric_limits<T>::min()) return fail("in range");
        out = static_cast<T>(o.via.i64);
      }
    } else {
      return fail("an integer");
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (o.type == t::FLOAT32 || o.type == t::FLOAT64) out = static_cast<T>(o.via.f64);
    else if (o.type == t::POSITIVE_INTEGER) out = static_cast<T>(o.via.u64);
    else if (o.type == t::NEGATIVE_INTEGER) out = static_cast<T>(o.via.i64);
    else return fail("a number");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (o.type == t::STR) out.assign(o.via.str.ptr, o.via.str.size);
    else if (o.type == t::BIN) out.assign(o.via.bin.ptr, o.via.bin.size);
    else return fail("a string");
  } else if constexpr (std::is_enum_v<T>) {
    if (o.type != t::STR) return fail("a string");
    return enum_read(std::string_view(o.via.str.ptr, o.via.str.size), out, err, path);
  } else if constexpr (is_optional<T>::value) {
    typename T::value_type v{};
    if (!mp_read(o, v, err, path)) return false;
    out = std::move(v);
  } else if constexpr (is_vector<T>::value) {
    if (o.type != t::ARRAY) return fail("an array");
    T tmp;
    tmp.reserve(o.via.array.size);
    for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
      typename T::value_type v{};
      if (!mp_read(o.via.array.ptr[i], v, err, path + "[" + std::to_string(i) + "]")) return false;
      tmp.push_back(std::move(v));
    }
    out = std::move(tmp);
  } else {
    static_assert(is_described<T>::value, "type has no describe()");
    if (o.type != t::MAP) return fail("a map");
    mp_reader r(o, err, path.empty() ? std::string() : path + ".");
    describe(r, out);
    return err.empty();
  }
  return true;
}

struct mp_counter {
  std::uint32_t n = 0;
  template <class T> void req(const char*, T& v) { count(v); }
  template <class T> void opt(const char*, T& v) { count(v); }
  template <class T> void count(T& v) {
    if constexpr (is_optional<T>::value) n += v.has_value() ? 1 : 0;
    else ++n;
  }
};

template <class Packer> class mp_writer {
 public:
  explicit mp_writer(Packer& pk) : pk_(pk) {}
  template <class T> void req(const char* name, T& v) { put(name, v); }
  template <class T> void opt(const char* name, T& v) { put(name, v); }

  template <class T> void value(T& v) {
    if constexpr (std::is_same_v<T, json_value>) {
      pack_json(pk_, v.v);
    } else if constexpr (is_described<T>::value) {
      mp_counter c;
      describe(c, v);
      pk_.pack_map(c.n);
      describe(*this, v);
    } else if constexpr (std::is_enum_v<T>) {
      pk_.pack(wire_name(v));
    } else if constexpr (is_vector<T>::value) {
      pk_.pack_array(static_cast<std::uint32_t>(v.size()));
      for (auto& e : v) value(e);
    } else {
      pk_.pack(v);
    }
  }

 private:
  template <class T> void put(const char* name, T& v) {
    if constexpr (is_optional<T>::value) {
      if (!v) return;
      pk_.pack(std::string_view(name));
      value(*v);
    } else {
      pk_.pack(std::string_view(name));
      value(v);
    }
  }
  Packer& pk_;
};

}  // namespace detail

// Encodes `x` (a described type) in `f`.
template <class T>
std::string encode(const T& x, wire_format f = wire_format::msgpack) {
  T& v = const_cast<T&>(x);  // describe() takes T&; writers only read
  if (f == wire_format::json) {
    nlohmann::json o = nlohmann::json::object();
    detail::json_writer w(o);
    describe(w, v);
    return o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  detail::mp_writer<msgpack::packer<msgpack::sbuffer>> w(pk);
  w.value(v);
  return std::string(buf.data(), buf.size());
}

// Parses a body into a generic JSON tree (both formats), for callers that
// need to look at a body before knowing its type. Never throws.
result<nlohmann::json> parse_json_tree(std::string_view body, const decode_limits& lim = {});
// Unpacks a msgpack body with limits. Never throws.
result<msgpack::object_handle> unpack_msgpack(std::string_view body, const decode_limits& lim = {});

// Decodes a `T` from `body` in `f`.
template <class T>
result<T> decode(std::string_view body, wire_format f, const decode_limits& lim = {}) {
  if (body.size() > lim.max_bytes)
    return make_error(errc::payload_too_large,
                      "body of " + std::to_string(body.size()) + " bytes exceeds the limit of " + std::to_string(lim.max_bytes));
  T out{};
  std::string err;
  if (f == wire_format::json) {
    auto tree = parse_json_tree(body, lim);
    if (!tree) return tree.err();
    if (!tree->is_object()) return make_error(errc::bad_request, "body must be a JSON object");
    detail::json_read(*tree, out, err, "");
  } else {
    auto handle = unpack_msgpack(body, lim);
    if (!handle) return handle.err();
    const msgpack::object& o = handle->get();
    if (o.type != msgpack::type::MAP) return make_error(errc::bad_request, "body must be a msgpack map");
    detail::mp_read(o, out, err, "");
  }
  if (!err.empty()) return make_error(errc::bad_request, err);
  return out;
}

// Decodes picking the format from content_type and the body.
template <class T>
result<T> decode_auto(std::string_view body, std::string_view content_type = {}, const decode_limits& lim = {}) {
  return decode<T>(body, detect_format(content_type, body), lim);
}

}  // namespace yard::msg
