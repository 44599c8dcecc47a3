#include "messages/codec.hpp"

#include <cctype>

namespace yard::msg {

wire_format detect_format(std::string_view content_type, std::string_view body) {
  if (content_type.find("json") != std::string_view::npos) return wire_format::json;
  if (content_type.find("msgpack") != std::string_view::npos) return wire_format::msgpack;
  for (char c : body) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{' ? wire_format::json : wire_format::msgpack;
  }
  return wire_format::msgpack;
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

}  // namespace yard::msg
