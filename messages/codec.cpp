#include "messages/codec.hpp"

#include <cctype>

namespace yard::msg {

wire_format detect_format(std::string_view content_type, std::string_view body) {
  if (content_type.find("json") != std::string_view::npos) return wire_format::json;
  if (content_type.find("msgpack") != std::string_view::npos) return wire_format::msgpack;
  // Every message is a map: msgpack opens with 0x80..0x8f, 0xde or 0xdf, never with '{', '[' or white space. So
  // a body opening with those is JSON (an array or blank text then gets JSON's error, not msgpack's).
  bool blank = !body.empty();
  for (char c : body) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{' || c == '[' ? wire_format::json : wire_format::msgpack;
  }
  return blank ? wire_format::json : wire_format::msgpack;
}

std::string_view content_type_of(wire_format f) {
  return f == wire_format::json ? "application/json" : "application/msgpack";
}

status check_json_shape(std::string_view body, const decode_limits& lim) {
  if (body.size() > lim.max_bytes)
    return make_error(errc::payload_too_large,
                      "body of " + std::to_string(body.size()) + " bytes exceeds the limit of " + std::to_string(lim.max_bytes));
  std::size_t depth = 0;
  bool in_string = false;
  bool escape = false;
  for (char c : body) {
    if (in_string) {
      if (escape) escape = false;
      else if (c == '\\') escape = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') {
      if (++depth > lim.max_depth)
        return make_error(errc::bad_request, "JSON nesting deeper than " + std::to_string(lim.max_depth));
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return status::success();
}

result<nlohmann::json> parse_json_tree(std::string_view body, const decode_limits& lim) {
  if (auto st = check_json_shape(body, lim); !st) return st.err();
  auto tree = nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (tree.is_discarded()) return make_error(errc::bad_request, "malformed JSON body");
  return tree;
}

result<msgpack::object_handle> unpack_msgpack(std::string_view body, const decode_limits& lim) {
  if (body.size() > lim.max_bytes)
    return make_error(errc::payload_too_large,
                      "body of " + std::to_string(body.size()) + " bytes exceeds the limit of " + std::to_string(lim.max_bytes));
  if (body.empty()) return make_error(errc::bad_request, "empty msgpack body");
  // Bound every container by the body size so a tiny body cannot claim a huge
  // array, and bound nesting depth.
  const std::size_t n = body.size();
  msgpack::unpack_limit limit(n, n, n, n, n, lim.max_depth);
  try {
    std::size_t off = 0;
    auto handle = msgpack::unpack(body.data(), body.size(), off, nullptr, nullptr, limit);
    if (off != body.size()) return make_error(errc::bad_request, "trailing bytes after msgpack value");
    return handle;
  } catch (const msgpack::insufficient_bytes&) {
    return make_error(errc::bad_request, "truncated msgpack body");
  } catch (const msgpack::depth_size_overflow&) {
    return make_error(errc::bad_request, "msgpack nesting deeper than " + std::to_string(lim.max_depth));
  } catch (const msgpack::size_overflow&) {
    return make_error(errc::bad_request, "msgpack container larger than its body");
  } catch (const std::exception& e) {
    return make_error(errc::bad_request, std::string("malformed msgpack body: ") + e.what());
  }
}

namespace detail {

bool mp_to_json(const msgpack::object& o, nlohmann::ordered_json& out, std::string& err, const std::string& path) {
  namespace t = msgpack::type;
  switch (o.type) {
    case t::NIL: out = nullptr; return true;
    case t::BOOLEAN: out = o.via.boolean; return true;
    case t::POSITIVE_INTEGER: out = o.via.u64; return true;
    case t::NEGATIVE_INTEGER: out = o.via.i64; return true;
    case t::FLOAT32:
    case t::FLOAT64: out = o.via.f64; return true;
    case t::STR: out = std::string(o.via.str.ptr, o.via.str.size); return true;
    case t::BIN: out = std::string(o.via.bin.ptr, o.via.bin.size); return true;
    case t::ARRAY:
      out = nlohmann::ordered_json::array();
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        nlohmann::ordered_json e;
        if (!mp_to_json(o.via.array.ptr[i], e, err, path + "[" + std::to_string(i) + "]")) return false;
        out.push_back(std::move(e));
      }
      return true;
    case t::MAP:
      out = nlohmann::ordered_json::object();
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (kv.key.type != t::STR) {
          err = "field '" + path + "' must be a map with string keys";
          return false;
        }
        std::string key(kv.key.via.str.ptr, kv.key.via.str.size);
        nlohmann::ordered_json e;
        if (!mp_to_json(kv.val, e, err, path + "." + key)) return false;
        out[key] = std::move(e);
      }
      return true;
    default:
      err = "field '" + path + "' holds a msgpack extension type";
      return false;
  }
}

}  // namespace detail

}  // namespace yard::msg
