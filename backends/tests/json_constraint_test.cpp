// backends/tests/json_constraint_test.cpp — constrained JSON output: schema compiler, matcher, completion, mask, budget.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "backends/structured/json_constraint.hpp"
#include "backends/structured/json_schema_compiler.hpp"

namespace yard::backends::structured {
namespace {

using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

std::shared_ptr<const json_grammar> grammar_of(const std::string& schema) {
  auto g = compile_json_schema(ojson::parse(schema));
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.err().describe());
  if (!g.ok()) return nullptr;
  return std::make_shared<const json_grammar>(std::move(*g));
}

bool matches(const json_grammar& g, std::string_view doc) {
  json_matcher m(g);
  return m.accept(doc) && m.complete();
}

std::size_t code_points(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// A small validator for the keywords the compiler supports (additionalProperties
// absent with properties given counts as false, the compiler's strict choice).
bool validate(const json& v, const ojson& s, const ojson& root) {
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("$ref")) return validate(v, root.at(ojson::json_pointer(s["$ref"].get<std::string>().substr(1))), root);
  for (const char* kw : {"anyOf", "oneOf"})
    if (s.contains(kw)) {
      for (const auto& b : s[kw])
        if (validate(v, b, root)) return true;
      return false;
    }
  if (s.contains("const")) return v == json::parse(s["const"].dump());
  if (s.contains("enum")) {
    for (const auto& e : s["enum"])
      if (v == json::parse(e.dump())) return true;
    return false;
  }
  if (s.contains("type")) {
    auto is = [&](const std::string& t) {
      return (t == "object" && v.is_object()) || (t == "array" && v.is_array()) || (t == "string" && v.is_string()) ||
             (t == "number" && v.is_number()) || (t == "integer" && v.is_number_integer()) ||
             (t == "boolean" && v.is_boolean()) || (t == "null" && v.is_null());
    };
    bool any = false;
    if (s["type"].is_string()) {
      any = is(s["type"].get<std::string>());
    } else {
      for (const auto& t : s["type"]) any = any || is(t.get<std::string>());
    }
    if (!any) return false;
  }
  if (v.is_string()) {
    const auto n = code_points(v.get<std::string>());
    if (s.contains("minLength") && n < s["minLength"].get<std::size_t>()) return false;
    if (s.contains("maxLength") && n > s["maxLength"].get<std::size_t>()) return false;
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<std::size_t>()) return false;
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<std::size_t>()) return false;
    if (s.contains("items"))
      for (const auto& x : v)
        if (!validate(x, s["items"], root)) return false;
  }
  if (v.is_object()) {
    if (s.contains("required"))
      for (const auto& r : s["required"])
        if (!v.contains(r.get<std::string>())) return false;
    const bool has_props = s.contains("properties");
    for (const auto& [k, x] : v.items()) {
      if (has_props && s["properties"].contains(k)) {
        if (!validate(x, s["properties"][k], root)) return false;
      } else if (s.contains("additionalProperties")) {
        if (!validate(x, s["additionalProperties"], root)) return false;
      } else if (has_props) {
        return false;
      }
    }
  }
  return true;
}

bool valid_text(const std::string& text, const ojson& schema) {
  json v = json::parse(text, nullptr, false);
  return !v.is_discarded() && validate(v, schema, schema);
}

// ---- schemas used by several tests -----------------------------------------

const char* person = R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
  "tags":{"type":"array","items":{"type":"string"}}},"required":["name","age"]})";
const char* order = R"({"type":"object","properties":{
  "id":{"type":"integer"},"name":{"type":"string","maxLength":40},
  "tags":{"type":"array","items":{"type":"string","minLength":1},"maxItems":4},
  "items":{"type":"array","minItems":1,"items":{"type":"object","properties":{"sku":{"type":"string"},
     "qty":{"type":"integer"},"price":{"type":"number"}},"required":["sku","qty"]}},
  "status":{"enum":["open","closed","pending"]},"note":{"type":["string","null"]}},
  "required":["id","items","status"]})";
const char* shapes = R"({"anyOf":[
  {"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number"}},"required":["kind","r"]},
  {"type":"object","properties":{"kind":{"const":"square"},"side":{"type":"number"}},"required":["kind","side"]},
  {"type":"null"}]})";
const char* tree = R"({"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer"},
  "children":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["value"]}},"$ref":"#/$defs/node"})";
const char* open_map = R"({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"string"}})";
const char* choice = R"({"enum":["alpha","beta","gamma",42,true]})";
// Escaped and non-ASCII names, a name that prefixes another, enum prefixes,
// overlapping alternation branches, extra keys with a schema.
const char* tricky = R"({"type":"object","properties":{"a\"b":{"type":"string","minLength":2},
  "\u00e9":{"enum":[1,12,123]},"a":{"type":["integer","number"]},"ab":{"type":"integer"},
  "list":{"type":"array","items":{"anyOf":[{"type":"string","maxLength":3},
    {"type":"array","items":{"type":"boolean"},"minItems":2}]},"minItems":2,"maxItems":3}},
  "required":["a","list"],"additionalProperties":{"type":"null"}})";

struct docs {
  const char* schema;
  std::vector<std::string> good;
  std::vector<std::string> bad;
};

void check(const docs& d) {
  auto g = grammar_of(d.schema);
  ASSERT_TRUE(g);
  for (const auto& doc : d.good) EXPECT_TRUE(matches(*g, doc)) << d.schema << "\nshould accept: " << doc;
  for (const auto& doc : d.bad) EXPECT_FALSE(matches(*g, doc)) << d.schema << "\nshould reject: " << doc;
}

TEST(json_matcher, objects_in_order_required_and_no_extra_keys) {
  check({person,
         {R"({"name":"a","age":3})", R"({"name":"a","age":-12,"tags":["x","y"]})", R"({"name":"","age":0,"tags":[]})",
          R"({ "name" : "a" , "age" : 3 })", "{\n\"name\":\"a\",\n\"age\":3\n}"},
         {R"({"age":3,"name":"a"})", R"({"name":"a"})", R"({"name":"a","age":3,"x":1})", R"({"name":"a","age":3,})",
          R"({"name":"a",,"age":3})", R"({"name":"a","name":"b","age":3})", R"({"name":1,"age":3})",
          R"({"name":"a","age":3}{)", R"({  "name":"a","age":3})", R"( {"name":"a","age":3})",
          R"({"name":"a","age":3} )", R"({"name":'a',"age":3})", R"({"na\u006de":"a","age":3})"}});
}

TEST(json_matcher, missing_required_is_rejected_at_the_closing_brace) {
  auto g = grammar_of(person);
  json_matcher m(*g);
  ASSERT_TRUE(m.accept(R"({"name":"a")"));
  EXPECT_FALSE(m.accept('}'));
  EXPECT_FALSE(m.accept(R"(,"x")"));  // additionalProperties false: no unknown key either
  EXPECT_TRUE(m.accept(R"(,"age":1})"));
}

TEST(json_matcher, numbers_and_integers) {
  check({R"({"type":"number"})",
         {"0", "-0", "1.5", "-1.5e10", "1E+2", "0.0", "123456789", "2e-3", "9999999999999999", "9e99"},
         {"01", "-", "1.", ".5", "+1", "1e", "1e+", "00", "-01", "12345678901234567", "1e123", "NaN"}});
  check({R"({"type":"integer"})", {"0", "-7", "42"}, {"1.5", "1.0", "1e3", "01", "-"}});
  check({R"({"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]})",
         {R"({"n":10})"}, {R"({"n":10.5})", R"({"n":010})", R"({"n":1e2})"}});
}

TEST(json_matcher, strings_escapes_and_utf8) {
  check({R"({"type":"string"})",
         {R"("")", R"("a\"b")", R"("\\")", R"("\/")", R"("\b\f\n\r\t")", R"("\u00e9\uABCD")", "\"\xC3\xA9\"",
          "\"\xE2\x82\xAC\"", "\"\xF0\x9F\x98\x80\"", "\"\x7F\""},
         {R"("\x")", R"("\u12G4")", R"("\ud800")", R"("\uDC00")", "\"a\nb\"", "\"\xC0\x80\"", "\"\xC1\xBF\"",
          "\"\xED\xA0\x80\"", "\"\xE2\x82\"", "\"\xF5\x80\x80\x80\"", "\"\x80\"", "\"\xF4\x90\x80\x80\"",
          "\"\xE0\x80\x80\"", "\"\xF0\x80\x80\x80\"", "\"abc", "'a'"}});
  check({R"({"type":"string","minLength":2,"maxLength":3})",
         {R"("ab")", R"("abc")", "\"\xC3\xA9\xC3\xA9\xC3\xA9\"", R"("\n\t")"},
         {R"("a")", R"("abcd")", R"("")", "\"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\""}});
}

TEST(json_matcher, arrays_enum_const_types) {
  check({R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":2})",
         {"[1]", "[1,2]", "[ 1 , 2 ]"}, {"[]", "[1,2,3]", "[1,]", "[\"a\"]", "[1 2]"}});
  check({R"({"enum":["red","green",1,12,null,{"a":[1]}]})",
         {R"("red")", R"("green")", "1", "12", "null", R"({"a":[1]})"},
         {R"("blue")", R"("re")", "2", "123", R"({"a": [1]})", R"({"a":[2]})"}});
  check({R"({"const":"x"})", {R"("x")"}, {R"("y")", R"("xx")"}});
  check({R"({"type":["string","null"]})", {R"("x")", "null"}, {"1", "nul"}});
  check({R"({"type":"boolean"})", {"true", "false"}, {"tru", "True", "1"}});
  check({R"({"type":"string","enum":["a",1]})", {R"("a")"}, {"1"}});
}

TEST(json_matcher, any_of_and_recursive_ref) {
  check({shapes,
         {R"({"kind":"circle","r":1.5})", R"({"kind":"square","side":2})", "null"},
         {R"({"kind":"circle","side":2})", R"({"kind":"square","r":1})", R"({"kind":"triangle"})", "{}"}});
  check({tree,
         {R"({"value":1})", R"({"value":1,"children":[{"value":2,"children":[{"value":3}]},{"value":4}]})"},
         {R"({"value":1,"children":[{"children":[]}]})", R"({"value":1,"children":[1]})"}});
  check({R"({"definitions":{"list":{"anyOf":[{"type":"null"},{"type":"object","properties":{"head":{"type":"integer"},
           "tail":{"$ref":"#/definitions/list"}},"required":["head","tail"]}]}},"$ref":"#/definitions/list"})",
         {"null", R"({"head":1,"tail":{"head":2,"tail":null}})"}, {R"({"head":1})", R"({"head":1,"tail":1})"}});
}

TEST(json_matcher, many_object_branches_stay_reachable) {
  std::string schema = R"({"anyOf":[)";
  std::vector<std::string> good;
  for (int i = 0; i < 7; ++i) {
    const std::string k = "k" + std::to_string(i);
    schema += std::string(i ? "," : "") + R"({"type":"object","properties":{"kind":{"const":")" + k +
              R"("},"v":{"type":"integer"}},"required":["kind","v"]})";
    good.push_back(R"({"kind":")" + k + R"(","v":1})");
  }
  schema += "]}";
  check({schema.c_str(), good, {R"({"kind":"k7","v":1})", R"({"kind":"k1"})"}});
}

TEST(json_matcher, additional_properties_and_any_object) {
  check({open_map,
         {R"({"a":1,"b":"x"})", R"({"b":"x"})", R"({"b":"x","a":1})", "{}", R"({"ab":"x","":"y"})"},
         {R"({"b":1})", R"({"a":"x"})", R"({"a":1,"a":2})", R"({"a":1,"b":"x","a":2})", R"({"\u0061":1})"}});
  check({R"({"type":"object","required":["id"]})", {R"({"id":1})", R"({"id":[],"x":{}})"}, {"{}"}});
  auto any = json_grammar::any_object();
  EXPECT_TRUE(matches(any, "{}"));
  EXPECT_TRUE(matches(any, R"({"a":[1,{"b":null}],"c":"d\u00e9","a":true})"));
  for (std::string bad : {"[]", R"("x")", R"({"a":})", R"({a:1})", "{", "1"}) EXPECT_FALSE(matches(any, bad)) << bad;
}

TEST(json_matcher, nesting_is_bounded_and_still_completes) {
  auto any = json_grammar::any_object();
  json_matcher m(any);
  std::string text = R"({"a":)";
  ASSERT_TRUE(m.accept(text));
  int depth = 0;
  while (m.accept('[')) ++depth;
  EXPECT_GT(depth, 20);
  EXPECT_LT(depth, max_nesting);
  EXPECT_FALSE(m.accept('{'));  // the stack is full: only `]` now
  EXPECT_FALSE(m.accept('"'));
  text += std::string(static_cast<std::size_t>(depth), '[') + m.shortest_completion();
  EXPECT_TRUE(json::accept(text)) << text;
  auto g = grammar_of(tree);
  json_matcher t(*g);
  std::string deep;
  for (int i = 0; i < 40; ++i) {
    const std::string level = R"({"value":1,"children":[)";
    if (!t.accept(level)) break;
    deep += level;
  }
  const std::string c = t.shortest_completion();
  ASSERT_TRUE(t.accept(c));
  EXPECT_TRUE(t.complete());
  EXPECT_TRUE(valid_text(deep + c, ojson::parse(tree))) << deep + c;
}

TEST(json_matcher, rejected_byte_leaves_state_unchanged) {
  auto g = grammar_of(person);
  json_matcher m(*g);
  ASSERT_TRUE(m.accept(R"({"name":"x)"));
  EXPECT_FALSE(m.accept(std::string_view("\x01")));
  EXPECT_FALSE(m.accept(std::string_view("\",\"x")));  // all or nothing
  EXPECT_TRUE(m.accept(R"(","age":5})"));
  EXPECT_TRUE(m.complete());
  EXPECT_FALSE(m.can_continue());
}

TEST(json_schema_compiler, unsupported_keywords_are_named) {
  for (std::string kw : {"pattern", "format", "minimum", "maximum", "allOf", "not", "patternProperties", "uniqueItems",
                         "prefixItems", "multipleOf"}) {
    auto g = compile_json_schema(ojson::parse(R"({"type":"object","properties":{"a":{"type":"string",")" + kw +
                                              R"(":1}}})"));
    ASSERT_FALSE(g.ok()) << kw;
    EXPECT_EQ(g.err().code, errc::unsupported) << kw;
    EXPECT_NE(g.err().message.find("'" + kw + "'"), std::string::npos) << g.err().message;
    EXPECT_NE(g.err().message.find("#/properties/a"), std::string::npos) << g.err().message;
  }
  for (std::string bad : {R"({"type":"string","minLength":3,"maxLength":2})", R"({"$ref":"#/$defs/none"})",
                          R"({"type":"object","properties":{},"required":["x"]})", "false", R"({"type":"thing"})",
                          R"({"$defs":{"a":{"type":"object","properties":{"a":{"$ref":"#/$defs/a"}},"required":["a"]}},
                             "$ref":"#/$defs/a"})"}) {
    auto g = compile_json_schema(ojson::parse(bad));
    ASSERT_FALSE(g.ok()) << bad;
    EXPECT_EQ(g.err().code, errc::bad_request) << bad << " " << g.err().message;
  }
  EXPECT_TRUE(compile_json_schema(json::parse(R"({"type":"object","title":"t","description":"d","$schema":"x",
                                                  "properties":{"a":{"type":"string","default":"q"}}})")).ok());
}

// Every prefix of a valid document, completed with shortest_completion(),
// parses and validates; the completion is what the matcher accepts.
TEST(json_matcher, shortest_completion_from_every_prefix) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {person, R"({"name":"a\u00e9\n\u20ac","age":-12,"tags":["x","y"]})"},
      {order, R"({"id":7,"name":"n","tags":["t"],"items":[{"sku":"a","qty":1,"price":2.5e-3}],"status":"closed","note":null})"},
      {shapes, R"({"kind":"square","side":2})"},
      {tree, R"({"value":1,"children":[{"value":2,"children":[]}]})"},
      {open_map, R"({"abc":"x","a":1,"zz":"y"})"},
      {open_map, "{\"a\xC3\xA9\":\"x\"}"},
      {tricky, "{\"a\\\"b\":\"xy\",\"\xC3\xA9\":12,\"a\":1.5,\"abc\":null,\"list\":[\"abc\",[true,false]]}"},
      {choice, R"("gamma")"},
      {R"({"type":"string","minLength":3})", "\"\xE2\x82\xAC\xF0\x9F\x98\x80" "ab\""},
      {R"({"type":"array","items":{"type":"integer"},"minItems":3})", "[1,2,3,4]"},
      {R"({"type":"number"})", "-1.25e+3"},
  };
  for (const auto& [schema_text, doc] : cases) {
    auto schema = ojson::parse(schema_text);
    auto g = grammar_of(schema_text);
    ASSERT_TRUE(g);
    json_matcher m(*g);
    for (std::size_t k = 0; k <= doc.size(); ++k) {
      if (k > 0) {
        ASSERT_TRUE(m.accept(static_cast<unsigned char>(doc[k - 1]))) << doc.substr(0, k);
      }
      const std::string c = m.shortest_completion();
      EXPECT_EQ(c.size(), m.shortest_completion_size());
      json_matcher done(m);
      ASSERT_TRUE(done.accept(c)) << doc.substr(0, k) << " + " << c;
      ASSERT_TRUE(done.complete()) << doc.substr(0, k) << " + " << c;
      EXPECT_TRUE(valid_text(doc.substr(0, k) + c, schema)) << doc.substr(0, k) << " + " << c;
    }
    EXPECT_TRUE(m.complete());
  }
}

// Random byte walks: at random points the completion must close the value.
TEST(json_matcher, shortest_completion_after_random_bytes) {
  std::mt19937_64 rng(7);
  for (const char* s : {person, order, shapes, tree, open_map, choice, tricky}) {
    auto schema = ojson::parse(s);
    auto g = grammar_of(s);
    ASSERT_TRUE(g);
    for (int walk = 0; walk < 60; ++walk) {
      json_matcher m(*g);
      std::string text;
      const int len = static_cast<int>(rng() % 80);
      for (int i = 0; i < len; ++i) {
        std::vector<unsigned char> ok;
        for (int b = 0; b < 256; ++b) {
          json_matcher probe(m);
          if (probe.try_advance(static_cast<unsigned char>(b))) ok.push_back(static_cast<unsigned char>(b));
        }
        if (ok.empty()) break;
        const unsigned char b = ok[rng() % ok.size()];
        ASSERT_TRUE(m.accept(b));
        text.push_back(static_cast<char>(b));
      }
      const std::string c = m.shortest_completion();
      json_matcher done(m);
      ASSERT_TRUE(done.accept(c) && done.complete()) << text << " + " << c;
      EXPECT_TRUE(valid_text(text + c, schema)) << text << " + " << c;
    }
  }
}

// ---- tokens -------------------------------------------------------------------

// 256 single bytes, JSON fragments, words, UTF-8 (also split), then EOS.
std::vector<std::string> synthetic_tokens(std::size_t words, std::uint64_t seed) {
  std::vector<std::string> t;
  for (int b = 0; b < 256; ++b) t.push_back(std::string(1, static_cast<char>(b)));
  for (const char* s : {"{\"", "\":", "\",\"", ", \"", "\"}", "}]", "]}", "true", "false", "null", "\":\"", "\":[",
                        "[{\"", "\"},{\"", "},{", "\\n", "\\\"", "\\\\", "\\u00e9", "\\ud83d", "\\u20", "\xC3\xA9",
                        "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xE2\x82", "\xAC\"", "\xC3", " {", "{\n", "\n}", "1.5", "e+",
                        "-1", "00", "10", "42", "3.14", "\"name", "name", "\"id\":", "items", "sku", "qty", "price",
                        "status", "\"open\"", "closed", "pend", "ing", "\"kind\":\"circle\"", "square", "value",
                        "children", "\":{\"", "\": ", "\", \"", "alpha", "\"beta\"", "gam", "ma\"", "\"\"", "[]", "{}"})
    t.push_back(s);
  for (int i = 0; i < 100; ++i) t.push_back(std::to_string(i));
  std::mt19937_64 rng(seed);
  const std::string letters = "abcdefghijklmnopqrstuvwxyz";
  for (std::size_t i = 0; i < words; ++i) {
    std::string w = (rng() % 2) ? " " : "";
    const int n = 2 + static_cast<int>(rng() % 7);
    for (int k = 0; k < n; ++k) w += letters[rng() % letters.size()];
    switch (rng() % 6) {
      case 0: w += "\""; break;
      case 1: w += "\":"; break;
      case 2: w = "\"" + w; break;
      default: break;
    }
    t.push_back(w);
  }
  t.push_back("");  // EOS (special)
  return t;
}

std::shared_ptr<const token_vocabulary> synthetic_vocab(std::size_t words = 300, std::uint64_t seed = 1) {
  auto t = synthetic_tokens(words, seed);
  const token_id eos = static_cast<token_id>(t.size() - 1);
  return std::make_shared<const token_vocabulary>(std::move(t), std::vector<token_id>{eos});
}

TEST(token_vocabulary, trie_and_greedy_tokenization) {
  auto v = synthetic_vocab();
  EXPECT_TRUE(v->has_all_bytes());
  EXPECT_FALSE(v->is_text(static_cast<token_id>(v->size() - 1)));
  EXPECT_EQ(v->plain()['a'], 1);
  EXPECT_EQ(v->plain()['"'], 0);
  EXPECT_EQ(v->plain()[0xC3], 0);  // half a character
  token_id t = 0;
  std::size_t len = 0;
  ASSERT_TRUE(v->longest_prefix("\":[1", t, len));
  EXPECT_EQ(v->bytes(t), "\":[");
  EXPECT_LE(v->greedy_count("{\"name\":\"x\"}"), 5u);  // {"  name  ":"  x  "} at most
  EXPECT_EQ(v->greedy_count(std::string_view("\xF5")), 1u);
}

std::vector<std::uint8_t> brute_force_mask(const json_matcher& m, const token_vocabulary& v) {
  std::vector<std::uint8_t> out(v.size(), 0);
  for (token_id t = 0; t < v.size(); ++t) {
    if (v.is_eos(t)) { out[t] = m.complete(); continue; }
    if (!v.is_text(t)) continue;
    json_matcher probe(m);
    out[t] = probe.accept(v.bytes(t)) ? 1 : 0;
  }
  return out;
}

TEST(token_mask, equals_brute_force_in_random_states) {
  auto v = synthetic_vocab(2000, 3);
  std::mt19937_64 rng(11);
  token_masker masker;
  std::vector<std::uint8_t> mask;
  for (const char* s : {person, order, shapes, tree, open_map, choice, tricky, R"({"type":"string","maxLength":3})"}) {
    auto g = grammar_of(s);
    ASSERT_TRUE(g);
    for (int walk = 0; walk < 10; ++walk) {
      json_matcher m(*g);
      for (int step = 0; step < 40; ++step) {
        masker.allowed(m, *v, mask);
        ASSERT_EQ(mask, brute_force_mask(m, *v)) << s << " after step " << step;
        std::vector<token_id> ok;
        for (token_id t = 0; t < v->size(); ++t)
          if (mask[t] && v->is_text(t)) ok.push_back(t);
        if (ok.empty()) break;
        ASSERT_TRUE(m.accept(v->bytes(ok[rng() % ok.size()])));
      }
    }
  }
}

TEST(json_constraint, eos_only_once_the_value_is_complete) {
  auto v = synthetic_vocab();
  const token_id eos = v->eos_ids()[0];
  auto feed = [&](json_constraint& c, const std::string& s) {
    for (unsigned char b : s) ASSERT_TRUE(c.try_advance(b).ok()) << s;
  };
  json_constraint obj(grammar_of(person), v);
  EXPECT_FALSE(obj.compute_allowed(100)[eos]);
  feed(obj, R"({"name":"a","age":1)");
  EXPECT_FALSE(obj.compute_allowed(100)[eos]);
  EXPECT_FALSE(obj.try_advance(eos).ok());
  feed(obj, "}");
  EXPECT_TRUE(obj.finished());
  const auto& after = obj.compute_allowed(100);
  for (token_id t = 0; t < v->size(); ++t) EXPECT_EQ(after[t], t == eos ? 1 : 0) << t;
  std::vector<float> logits(v->size() + 5, 1.0f);
  obj.mask(logits, 100);
  for (token_id t = 0; t < logits.size(); ++t) EXPECT_EQ(std::isinf(logits[t]), t != eos) << t;

  // A top-level number is complete but may grow: EOS and digits both allowed.
  json_constraint num(grammar_of(R"({"type":"integer"})"), v);
  feed(num, "12");
  const auto& m = num.compute_allowed(100);
  EXPECT_TRUE(m[eos]);
  EXPECT_TRUE(m['3']);
  EXPECT_FALSE(num.finished());
  ASSERT_TRUE(num.try_advance(eos).ok());
  EXPECT_TRUE(num.finished());
}

TEST(json_constraint, budget_forces_the_completion_path) {
  auto v = synthetic_vocab();
  json_constraint c(grammar_of(person), v);
  for (unsigned char b : std::string(R"({"name":"abc)")) ASSERT_TRUE(c.try_advance(b).ok());
  // Completion: ","age":0}  greedy: ",":  age  ":  0  }  -> a handful of tokens.
  const std::size_t cost = v->greedy_count(c.matcher().shortest_completion());
  ASSERT_GT(cost, 1u);
  std::size_t left = cost;
  while (!c.finished()) {
    const auto& ok = c.compute_allowed(static_cast<std::uint32_t>(left));
    std::vector<token_id> allowed;
    for (token_id t = 0; t < v->size(); ++t)
      if (ok[t]) allowed.push_back(t);
    ASSERT_EQ(allowed.size(), 1u) << c.text();
    EXPECT_TRUE(c.forcing());
    ASSERT_TRUE(c.try_advance(allowed[0]).ok());
    ASSERT_GT(left, 0u) << "forced path longer than its cost";
    --left;
  }
  EXPECT_EQ(c.text(), R"({"name":"abc","age":0})");
  // A misbehaving engine: a token the mask did not allow is recorded, not applied.
  json_constraint d(grammar_of(person), v);
  d.advance('x');
  EXPECT_TRUE(d.fault().has_value());
  EXPECT_TRUE(d.finished());
  EXPECT_EQ(d.text(), "");
}

// Uniformly random allowed tokens under random budgets: every output is
// complete within its budget, parses and validates.
TEST(json_constraint, random_walks_finish_valid_within_budget) {
  auto v = synthetic_vocab(400, 5);
  const token_id eos = v->eos_ids()[0];
  std::mt19937_64 rng(2024);
  auto any_object = std::make_shared<const json_grammar>(json_grammar::any_object());
  struct target {
    std::shared_ptr<const json_grammar> g;
    ojson schema;
  };
  std::vector<target> targets;
  for (const char* s : {order, choice, shapes, tree, person, open_map, tricky})
    targets.push_back({grammar_of(s), ojson::parse(s)});
  targets.push_back({any_object, ojson::parse(R"({"type":"object"})")});
  int walks = 0, raised = 0;
  for (const auto& tg : targets) {
    for (int w = 0; w < 60; ++w, ++walks) {
      json_constraint c(tg.g, v);
      std::size_t budget = 20 + rng() % 181;
      const std::size_t need = v->greedy_count(c.matcher().shortest_completion());
      if (budget < need) { budget = need; ++raised; }
      std::size_t used = 0;
      while (!c.finished() && used < budget) {
        const auto& ok = c.compute_allowed(static_cast<std::uint32_t>(budget - used));
        std::vector<token_id> allowed;
        for (token_id t = 0; t < v->size(); ++t)
          if (ok[t]) allowed.push_back(t);
        ASSERT_FALSE(allowed.empty()) << c.text();
        const token_id t = allowed[rng() % allowed.size()];
        ASSERT_TRUE(c.try_advance(t).ok()) << c.text();
        if (t != eos) ++used;
      }
      ASSERT_TRUE(c.matcher().complete()) << "budget " << budget << ": " << c.text();
      EXPECT_TRUE(valid_text(c.text(), tg.schema)) << c.text();
    }
  }
  EXPECT_EQ(walks, 480);
  EXPECT_LT(raised, walks / 4);  // most budgets are random, not raised to the minimum
}

}  // namespace
}  // namespace yard::backends::structured
