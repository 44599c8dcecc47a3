// backends/structured/json_schema_compiler.cpp — JSON Schema to json_grammar (see json_schema_compiler.hpp).
#include "backends/structured/json_schema_compiler.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <string_view>

namespace yard::backends::structured {

namespace {

using ojson = nlohmann::ordered_json;

constexpr std::array<std::string_view, 12> annotations = {
    "description", "title",    "default",   "examples", "$schema",  "$id",
    "$comment",    "deprecated", "readOnly", "writeOnly", "$defs", "definitions"};
constexpr std::array<std::string_view, 14> supported = {
    "type",  "properties", "required", "additionalProperties", "enum",  "const", "items",
    "minItems", "maxItems", "minLength", "maxLength", "anyOf", "oneOf", "$ref"};

bool is_one_of(std::string_view k, const auto& list) { return std::find(list.begin(), list.end(), k) != list.end(); }

error unsupported(const std::string& what, const std::string& at) {
  return make_error(errc::unsupported, what + " at #" + at + " is not supported for constrained output");
}
error bad(const std::string& what, const std::string& at) {
  return make_error(errc::bad_request, "schema #" + at + ": " + what);
}

// A JSON pointer token: ~ and / escaped.
std::string pointer_token(const std::string& k) {
  std::string out;
  for (char c : k) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return out;
}

bool fits_type(const ojson& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "number") return v.is_number();
  if (t == "integer") return v.is_number_integer();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  return false;
}

class compiler {
 public:
  compiler(const ojson& root, json_grammar& g) : root_(root), g_(g) {}

  result<std::int32_t> compile(const ojson& s, const std::string& at) {
    if (s.is_boolean()) {
      if (s.get<bool>()) return g_.add_any();
      return bad("the schema false admits no value", at);
    }
    if (!s.is_object()) return bad("a schema must be an object or a boolean", at);
    std::vector<std::string> constraints;  // keywords that are not annotations
    for (const auto& [k, v] : s.items()) {
      if (is_one_of(k, annotations)) continue;
      if (!is_one_of(k, supported)) return unsupported("keyword '" + k + "'", at);
      constraints.push_back(k);
    }
    auto alone = [&](const std::string& kw) -> status {
      for (const auto& k : constraints)
        if (k != kw) return unsupported("keyword '" + k + "' next to '" + kw + "'", at);
      return status::success();
    };
    if (s.contains("$ref")) {
      if (auto st = alone("$ref"); !st) return st.err();
      return compile_ref(s["$ref"], at);
    }
    for (const char* kw : {"anyOf", "oneOf"}) {
      if (!s.contains(kw)) continue;
      if (auto st = alone(kw); !st) return st.err();
      const auto& list = s[kw];
      if (!list.is_array() || list.empty()) return bad(std::string("'") + kw + "' must be a non-empty array", at);
      grammar_node alt;
      for (std::size_t i = 0; i < list.size(); ++i) {
        auto b = compile(list[i], at + "/" + kw + "/" + std::to_string(i));
        if (!b) return b.err();
        alt.branches.push_back(*b);
      }
      return g_.add(std::move(alt));
    }
    std::vector<std::string> types;
    if (s.contains("type")) {
      const auto& t = s["type"];
      if (t.is_string()) types.push_back(t.get<std::string>());
      else if (t.is_array() && !t.empty() && std::all_of(t.begin(), t.end(), [](const ojson& x) { return x.is_string(); }))
        for (const auto& x : t) types.push_back(x.get<std::string>());
      else return bad("'type' must be a string or a non-empty array of strings", at);
      for (const auto& x : types)
        if (!is_one_of(std::string_view(x), std::array<std::string_view, 7>{"object", "array", "string", "number",
                                                                             "integer", "boolean", "null"}))
          return bad("unknown type '" + x + "'", at);
    }
    if (s.contains("enum") || s.contains("const")) return compile_enum(s, types, constraints, at);
    if (types.empty()) {
      if (s.contains("properties") || s.contains("additionalProperties") || s.contains("required")) types = {"object"};
      else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) types = {"array"};
      else if (s.contains("minLength") || s.contains("maxLength")) types = {"string"};
      else return g_.add_any();
    }
    if (types.size() == 1) return compile_typed(s, types[0], at);
    grammar_node alt;
    for (const auto& t : types) {
      auto b = compile_typed(s, t, at);
      if (!b) return b.err();
      alt.branches.push_back(*b);
    }
    return g_.add(std::move(alt));
  }

 private:
  result<std::int32_t> compile_ref(const ojson& ref, const std::string& at) {
    if (!ref.is_string()) return bad("'$ref' must be a string", at);
    const auto r = ref.get<std::string>();
    if (r.empty() || r[0] != '#') return unsupported("'$ref' to '" + r + "' (only local #/... references)", at);
    if (auto it = refs_.find(r); it != refs_.end()) return it->second;
    const ojson* target = nullptr;
    try {
      ojson::json_pointer p(r.substr(1));
      if (root_.contains(p)) target = &root_.at(p);
    } catch (const ojson::exception&) {
    }
    if (!target) return bad("'$ref' " + r + " does not resolve", at);
    // The placeholder alternation is the node every use of r points at, so
    // recursion through r closes on it; finalize() flattens the indirection.
    const auto slot = g_.add(grammar_node{});
    refs_[r] = slot;
    auto t = compile(*target, r.substr(1));
    if (!t) return t.err();
    g_.nodes[slot].branches = {*t};
    return slot;
  }

  result<std::int32_t> compile_enum(const ojson& s, const std::vector<std::string>& types,
                                    const std::vector<std::string>& constraints, const std::string& at) {
    const bool is_const = s.contains("const");
    const char* kw = is_const ? "const" : "enum";
    for (const auto& k : constraints)
      if (k != "enum" && k != "const" && k != "type") return unsupported("keyword '" + k + "' next to '" + kw + "'", at);
    if (s.contains("enum") && is_const) return unsupported("'const' next to 'enum'", at);
    std::vector<ojson> values;
    if (is_const) values.push_back(s["const"]);
    else if (s["enum"].is_array()) values.assign(s["enum"].begin(), s["enum"].end());
    else return bad("'enum' must be an array", at);
    std::vector<std::string> texts;
    for (const auto& v : values) {
      if (!types.empty() && std::none_of(types.begin(), types.end(), [&](const std::string& t) { return fits_type(v, t); }))
        continue;
      try {
        texts.push_back(v.dump());
      } catch (const ojson::exception& e) {
        return bad(std::string("'") + kw + "' holds a value that is not valid UTF-8", at);
      }
    }
    if (texts.empty()) return bad(std::string("'") + kw + "' has no value of the declared type", at);
    return g_.add_literals(texts);
  }

  static result<std::uint32_t> count(const ojson& s, const char* kw, std::uint32_t dflt, const std::string& at) {
    if (!s.contains(kw)) return dflt;
    const auto& v = s[kw];
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > UINT32_MAX)
      return bad(std::string("'") + kw + "' must be a non-negative integer", at);
    return static_cast<std::uint32_t>(v.get<std::int64_t>());
  }

  result<std::int32_t> compile_typed(const ojson& s, const std::string& type, const std::string& at) {
    grammar_node n;
    if (type == "boolean") return g_.add_literals({"true", "false"});
    if (type == "null") return g_.add_literals({"null"});
    if (type == "number") { n.kind = node_kind::number; return g_.add(std::move(n)); }
    if (type == "integer") { n.kind = node_kind::integer; return g_.add(std::move(n)); }
    if (type == "string") {
      n.kind = node_kind::string;
      auto lo = count(s, "minLength", 0, at);
      if (!lo) return lo.err();
      auto hi = count(s, "maxLength", UINT32_MAX, at);
      if (!hi) return hi.err();
      if (*lo > *hi) return bad("'minLength' is over 'maxLength'", at);
      n.min_length = *lo;
      n.max_length = *hi;
      return g_.add(std::move(n));
    }
    if (type == "array") {
      n.kind = node_kind::array;
      auto lo = count(s, "minItems", 0, at);
      if (!lo) return lo.err();
      auto hi = count(s, "maxItems", UINT32_MAX, at);
      if (!hi) return hi.err();
      if (*lo > *hi) return bad("'minItems' is over 'maxItems'", at);
      n.min_items = *lo;
      n.max_items = *hi;
      if (s.contains("items") && s["items"].is_array()) return unsupported("'items' as an array (tuple form)", at);
      auto items = s.contains("items") ? compile(s["items"], at + "/items") : result<std::int32_t>(g_.add_any());
      if (!items) return items.err();
      n.items = *items;
      return g_.add(std::move(n));
    }
    return compile_object(s, at);
  }

  result<std::int32_t> compile_object(const ojson& s, const std::string& at) {
    grammar_node n;
    n.kind = node_kind::object;
    if (s.contains("properties")) {
      const auto& props = s["properties"];
      if (!props.is_object()) return bad("'properties' must be an object", at);
      for (const auto& [k, v] : props.items()) {
        auto value = compile(v, at + "/properties/" + pointer_token(k));
        if (!value) return value.err();
        property_def p;
        p.name = k;
        p.value = *value;
        n.props.push_back(std::move(p));
      }
    }
    if (!s.contains("additionalProperties")) {
      n.additional = s.contains("properties") ? -1 : g_.add_any();
    } else if (const auto& a = s["additionalProperties"]; a.is_boolean()) {
      n.additional = a.get<bool>() ? g_.add_any() : -1;
    } else {
      auto v = compile(a, at + "/additionalProperties");
      if (!v) return v.err();
      n.additional = *v;
    }
    if (s.contains("required")) {
      const auto& req = s["required"];
      if (!req.is_array()) return bad("'required' must be an array of strings", at);
      for (const auto& r : req) {
        if (!r.is_string()) return bad("'required' must be an array of strings", at);
        const auto name = r.get<std::string>();
        auto it = std::find_if(n.props.begin(), n.props.end(), [&](const property_def& p) { return p.name == name; });
        if (it == n.props.end()) {
          if (n.additional < 0) return bad("required property '" + name + "' is not in 'properties'", at);
          property_def p;
          p.name = name;
          p.value = n.additional;
          n.props.push_back(std::move(p));
          it = n.props.end() - 1;
        }
        it->required = true;
      }
    }
    if (n.props.size() > max_properties)
      return unsupported("an object with over " + std::to_string(max_properties) + " properties", at);
    for (auto& p : n.props) {
      try {
        const auto quoted = ojson(p.name).dump();
        p.spelled = quoted.substr(1, quoted.size() - 2);
      } catch (const ojson::exception&) {
        return bad("property name '" + p.name + "' is not valid UTF-8", at);
      }
    }
    return g_.add(std::move(n));
  }

  const ojson& root_;
  json_grammar& g_;
  std::map<std::string, std::int32_t> refs_;
};

}  // namespace

result<json_grammar> compile_json_schema(const nlohmann::ordered_json& schema) {
  json_grammar g;
  compiler c(schema, g);
  auto root = c.compile(schema, "");
  if (!root) return root.err();
  g.root = *root;
  if (auto s = g.finalize(); !s) return s.err();
  return g;
}

result<json_grammar> compile_json_schema(const nlohmann::json& schema) {
  std::string text;
  try {
    text = schema.dump();
  } catch (const nlohmann::json::exception&) {
    return make_error(errc::bad_request, "schema holds a string that is not valid UTF-8");
  }
  return compile_json_schema(nlohmann::ordered_json::parse(text));
}

}  // namespace yard::backends::structured
