// backends/tests/tool_call_parser_test.cpp — tool-call parsing: formats,
// ids, the whole-output parse per format, and streamed parses that must equal
// it under every chunking.
#include <gtest/gtest.h>

#include <cctype>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "backends/chat/tool_calls/tool_call_format.hpp"
#include "backends/chat/tool_calls/tool_call_id.hpp"
#include "backends/chat/tool_calls/tool_call_parser.hpp"
#include "backends/chat/tool_calls/tool_call_stream_parser.hpp"

namespace yard::backends::chat {
namespace {

using fmt = tool_call_format;
constexpr std::uint64_t k_seed = 42;

tool_call_result parse(fmt f, std::string_view text, std::uint64_t seed = k_seed) {
  id_source ids(seed);
  return parse_tool_calls(f, text, ids);
}

struct streamed {
  tool_call_result result;
  bool saw = false;
};

// Feeds `chunks` one by one, checking the delta protocol on the way: a call's
// first delta carries id and name, later ones do not, indices are dense.
streamed stream(fmt f, const std::vector<std::string_view>& chunks, std::uint64_t seed = k_seed) {
  id_source ids(seed);
  tool_call_stream_parser p(f, ids);
  streamed s;
  std::size_t started = 0;  // calls whose first delta has been seen
  auto take = [&](const stream_step& step) {
    for (const auto& d : step.calls) {
      const bool first = d.index == started;
      EXPECT_LE(d.index, started);
      EXPECT_EQ(d.id.has_value(), first);
      EXPECT_EQ(d.name.has_value(), first);
      if (first) ++started;
    }
    append_stream_step(s.result, step);
  };
  for (auto c : chunks) take(p.feed(c));
  take(p.finish());
  s.saw = p.saw_tool_call();
  return s;
}

void expect_same(const tool_call_result& want, const tool_call_result& got, const std::string& where) {
  EXPECT_EQ(want.content, got.content) << where;
  ASSERT_EQ(want.calls.size(), got.calls.size()) << where;
  for (std::size_t i = 0; i < want.calls.size(); ++i) {
    EXPECT_EQ(want.calls[i].id, got.calls[i].id) << where << " call " << i;
    EXPECT_EQ(want.calls[i].name, got.calls[i].name) << where << " call " << i;
    EXPECT_EQ(want.calls[i].arguments, got.calls[i].arguments) << where << " call " << i;
  }
}

// --- formats -----------------------------------------------------------------

TEST(tool_call_format, name_round_trip) {
  for (fmt f : {fmt::none, fmt::llama3_json, fmt::hermes, fmt::mistral}) {
    auto back = parse_tool_call_format(tool_call_format_name(f));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, f);
  }
  EXPECT_EQ(tool_call_format_name(fmt::llama3_json), "llama3_json");
  EXPECT_EQ(tool_call_format_name(fmt::hermes), "hermes");
  EXPECT_EQ(tool_call_format_name(fmt::mistral), "mistral");
  EXPECT_EQ(tool_call_format_name(fmt::none), "none");
  for (std::string_view bad : {"", "Hermes", "llama3", "json", "mistral "})
    EXPECT_FALSE(parse_tool_call_format(bad).has_value()) << bad;
}

TEST(tool_call_format, family_defaults) {
  EXPECT_EQ(default_tool_call_format("llama3"), fmt::llama3_json);
  EXPECT_EQ(default_tool_call_format("chatml"), fmt::hermes);
  EXPECT_EQ(default_tool_call_format("qwen"), fmt::hermes);
  EXPECT_EQ(default_tool_call_format("mistral"), fmt::mistral);
  EXPECT_EQ(default_tool_call_format("llama2"), fmt::mistral);
  EXPECT_EQ(default_tool_call_format("zephyr"), fmt::hermes);
  EXPECT_EQ(default_tool_call_format("plain"), fmt::hermes);
  EXPECT_EQ(default_tool_call_format(""), fmt::hermes);
}

// --- ids ---------------------------------------------------------------------

bool is_alnum_of_size(std::string_view s, std::size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  return true;
}
bool is_openai_id(std::string_view id) { return id.starts_with("call_") && is_alnum_of_size(id.substr(5), 24); }
bool is_mistral_id(std::string_view id) { return is_alnum_of_size(id, 9); }

TEST(tool_call_id, shapes_seeding_and_uniqueness) {
  id_source a(7), b(7), c(8);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string x = a.next(fmt::hermes);
    EXPECT_TRUE(is_openai_id(x)) << x;
    EXPECT_EQ(x, b.next(fmt::hermes));
    EXPECT_TRUE(seen.insert(x).second) << "duplicate " << x;
    const std::string m = a.next(fmt::mistral);
    EXPECT_TRUE(is_mistral_id(m)) << m;
    EXPECT_TRUE(is_mistral_tool_call_id(m));
    EXPECT_EQ(m, b.next(fmt::mistral));
    EXPECT_TRUE(seen.insert(m).second) << "duplicate " << m;
  }
  EXPECT_NE(id_source(7).next(fmt::hermes), c.next(fmt::hermes));
  EXPECT_NE(id_source().next(fmt::hermes), id_source().next(fmt::hermes));
  EXPECT_FALSE(is_mistral_tool_call_id("abc"));
  EXPECT_FALSE(is_mistral_tool_call_id("abc-12345"));
  EXPECT_FALSE(is_mistral_tool_call_id("abcdefghij"));
}

TEST(tool_call_id, parsed_calls_get_unique_well_shaped_ids) {
  const std::string call = R"(<tool_call>{"name": "f", "arguments": {}}</tool_call>)";
  auto r = parse(fmt::hermes, call + call + call);
  ASSERT_EQ(r.calls.size(), 3u);
  std::set<std::string> ids;
  for (const auto& c : r.calls) {
    EXPECT_TRUE(is_openai_id(c.id)) << c.id;
    ids.insert(c.id);
  }
  EXPECT_EQ(ids.size(), 3u);

  auto l = parse(fmt::llama3_json, R"({"name": "f", "parameters": {}}; {"name": "g", "parameters": {}})");
  ASSERT_EQ(l.calls.size(), 2u);
  EXPECT_TRUE(is_openai_id(l.calls[0].id));
  EXPECT_NE(l.calls[0].id, l.calls[1].id);
}

TEST(tool_call_id, mistral_keeps_valid_model_ids_and_replaces_bad_or_repeated_ones) {
  auto r = parse(fmt::mistral,
                 R"([TOOL_CALLS] [{"name": "a", "arguments": {}, "id": "abc123xyz"},)"
                 R"( {"name": "b", "arguments": {}, "id": "abc123xyz"},)"
                 R"( {"name": "c", "arguments": {}, "id": "bad-id"},)"
                 R"( {"name": "d", "arguments": {}}])");
  ASSERT_EQ(r.calls.size(), 4u);
  EXPECT_EQ(r.calls[0].id, "abc123xyz");
  std::set<std::string> ids;
  for (const auto& c : r.calls) {
    EXPECT_TRUE(is_mistral_id(c.id)) << c.id;
    ids.insert(c.id);
  }
  EXPECT_EQ(ids.size(), 4u);
}

// --- hermes ------------------------------------------------------------------

TEST(hermes, single_call) {
  auto r = parse(fmt::hermes,
                 "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>");
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments, R"({"city":"Paris","unit":"c"})");
  EXPECT_TRUE(is_openai_id(r.calls[0].id));
}

TEST(hermes, two_calls_and_text_around) {
  auto r = parse(fmt::hermes,
                 "Let me check both.\n"
                 "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"z\": 1, \"a\": [1, 2]}}\n</tool_call>\n"
                 "<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>\n");
  EXPECT_EQ(r.content, "Let me check both.\n");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].name, "a");
  EXPECT_EQ(r.calls[0].arguments, R"({"z":1,"a":[1,2]})");  // model's key order kept
  EXPECT_EQ(r.calls[1].name, "b");
  EXPECT_EQ(r.calls[1].arguments, "{}");

  auto after = parse(fmt::hermes, "<tool_call>{\"name\": \"a\"}</tool_call>\n\nDone.");
  EXPECT_EQ(after.content, "Done.");  // whitespace right after a call is dropped
  ASSERT_EQ(after.calls.size(), 1u);
  EXPECT_EQ(after.calls[0].arguments, "{}");  // no arguments = no parameters
}

TEST(hermes, no_call_is_content) {
  const std::string text = "Plain answer with <b>tags</b>, [brackets] and {\"json\": true}.";
  auto r = parse(fmt::hermes, text);
  EXPECT_EQ(r.content, text);
  EXPECT_TRUE(r.calls.empty());
}

TEST(hermes, malformed_blocks_stay_content) {
  for (std::string text : {
           "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": }}\n</tool_call>",    // bad JSON
           "<tool_call>\n{\"arguments\": {}}\n</tool_call>",                             // no name
           "<tool_call>\n{\"name\": \"f\", \"arguments\": [1]}\n</tool_call>",           // not an object
           "<tool_call>\n{\"name\": \"f\", \"arguments\": \"{oops\"}\n</tool_call>",     // string, not JSON
           "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n",                        // unterminated
           "<tool_call>\n{\"name\": \"f\", \"arguments\": {}",                           // cut off
           "<tool_call>{\"name\": \"f\"} trailing</tool_call>",                           // junk before close
           "<tool_call>call f(x)</tool_call>",                                            // not JSON at all
           "text <tool_call>",
       }) {
    auto r = parse(fmt::hermes, text);
    EXPECT_EQ(r.content, text);
    EXPECT_TRUE(r.calls.empty()) << text;
  }
  // Deep nesting is refused, not recursed into.
  std::string deep = "<tool_call>{\"name\": \"f\", \"arguments\": ";
  for (int i = 0; i < 2000; ++i) deep += "{\"a\": ";
  deep += "1";
  for (int i = 0; i < 2000; ++i) deep += "}";
  deep += "}</tool_call>";
  auto d = parse(fmt::hermes, deep);
  EXPECT_EQ(d.content, deep);
  EXPECT_TRUE(d.calls.empty());
}

TEST(hermes, bad_block_then_good_block) {
  auto r = parse(fmt::hermes, "<tool_call> oops <tool_call>{\"name\": \"f\", \"arguments\": {\"k\": \"v\"}}</tool_call>");
  EXPECT_EQ(r.content, "<tool_call> oops ");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments, R"({"k":"v"})");
}

TEST(hermes, arguments_as_object_and_as_string) {
  auto obj = parse(fmt::hermes, R"(<tool_call>{"name": "f", "arguments": {"q": "caf\u00e9 ☕", "n": 2.5}}</tool_call>)");
  auto str = parse(fmt::hermes, R"(<tool_call>{"name": "f", "arguments": "{\"q\": \"café ☕\", \"n\": 2.5}"}</tool_call>)");
  ASSERT_EQ(obj.calls.size(), 1u);
  ASSERT_EQ(str.calls.size(), 1u);
  EXPECT_EQ(obj.calls[0].arguments, R"({"q":"café ☕","n":2.5})");
  EXPECT_EQ(str.calls[0].arguments, obj.calls[0].arguments);
}

// --- llama3_json -------------------------------------------------------------

TEST(llama3_json, single_call) {
  auto r = parse(fmt::llama3_json, R"({"name": "get_weather", "parameters": {"city": "Paris"}})");
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments, R"({"city":"Paris"})");

  auto tagged = parse(fmt::llama3_json, "\n <|python_tag|>{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n");
  EXPECT_EQ(tagged.content, "");
  ASSERT_EQ(tagged.calls.size(), 1u);
  EXPECT_EQ(tagged.calls[0].arguments, R"({"x":1})");
}

TEST(llama3_json, two_calls) {
  auto r = parse(fmt::llama3_json,
                 R"({"name": "a", "parameters": {"i": 1}}; {"name": "b", "parameters": {"j": [true, null]}};)");
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].name, "a");
  EXPECT_EQ(r.calls[1].name, "b");
  EXPECT_EQ(r.calls[1].arguments, R"({"j":[true,null]})");
}

TEST(llama3_json, text_before_or_no_call_is_content) {
  for (std::string text : {
           std::string("Sure! {\"name\": \"f\", \"parameters\": {}}"),
           std::string("The weather in Paris is sunny."),
           std::string(""),
           std::string("   "),
           std::string("<|python_tag|>brave_search.call(query=\"paris\")"),
           std::string("<|python"),
       }) {
    auto r = parse(fmt::llama3_json, text);
    EXPECT_EQ(r.content, text);
    EXPECT_TRUE(r.calls.empty()) << text;
  }
}

TEST(llama3_json, malformed_reply_stays_content) {
  for (std::string text : {
           R"({"name": "f", "parameters": {"x": 1})",                                 // unclosed
           R"({"name": "f", "parameters": {"x": 1}} and some text)",                  // text after
           R"({"answer": 42})",                                                       // no name
           R"({"name": "f", "parameters": {}}; oops)",                                  // second is not a call
           R"({"name": "f", "parameters": "not json"})",                              // string, not JSON
           R"({"name": "f", "parameters": {"x": 1,}})",                               // bad JSON
       }) {
    auto r = parse(fmt::llama3_json, text);
    EXPECT_EQ(r.content, text);
    EXPECT_TRUE(r.calls.empty()) << text;
  }
}

TEST(llama3_json, arguments_as_object_and_as_string) {
  auto obj = parse(fmt::llama3_json, R"({"name": "f", "parameters": {"b": 1, "a": {"c": "d"}}})");
  auto str = parse(fmt::llama3_json, R"({"name": "f", "parameters": "{\"b\": 1, \"a\": {\"c\": \"d\"}}"})");
  auto key = parse(fmt::llama3_json, R"({"name": "f", "arguments": {"b": 1, "a": {"c": "d"}}})");
  ASSERT_EQ(obj.calls.size(), 1u);
  ASSERT_EQ(str.calls.size(), 1u);
  ASSERT_EQ(key.calls.size(), 1u);
  EXPECT_EQ(obj.calls[0].arguments, R"({"b":1,"a":{"c":"d"}})");
  EXPECT_EQ(str.calls[0].arguments, obj.calls[0].arguments);
  EXPECT_EQ(key.calls[0].arguments, obj.calls[0].arguments);
}

// --- mistral -----------------------------------------------------------------

TEST(mistral, single_call) {
  auto r = parse(fmt::mistral, R"([TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}])");
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_TRUE(is_mistral_id(r.calls[0].id)) << r.calls[0].id;
}

TEST(mistral, two_calls_with_text_before) {
  auto r = parse(fmt::mistral,
                 "I will look both up. [TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": 1}, \"id\": \"Ab3dE6gH9\"}, "
                 "{\"name\": \"b\", \"arguments\": {}}]\n");
  EXPECT_EQ(r.content, "I will look both up. ");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].name, "a");
  EXPECT_EQ(r.calls[0].id, "Ab3dE6gH9");
  EXPECT_EQ(r.calls[1].name, "b");
  EXPECT_TRUE(is_mistral_id(r.calls[1].id));
}

TEST(mistral, no_call_or_malformed_is_content) {
  for (std::string text : {
           std::string("Just text, with [brackets] and [TOOL] words."),
           std::string("[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {\"x\": }}]"),  // bad JSON
           std::string("[TOOL_CALLS] []"),                                              // no call
           std::string("[TOOL_CALLS] [{\"name\": \"f\"}, {\"nom\": \"g\"}]"),           // one bad element
           std::string("[TOOL_CALLS] I cannot call tools."),
           std::string("[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}}"),           // unterminated
           std::string("[TOOL_CALLS]"),
       }) {
    auto r = parse(fmt::mistral, text);
    EXPECT_EQ(r.content, text);
    EXPECT_TRUE(r.calls.empty()) << text;
  }
}

TEST(mistral, arguments_as_object_and_as_string) {
  auto obj = parse(fmt::mistral, R"([TOOL_CALLS] [{"name": "f", "arguments": {"q": "a \"b\"", "n": -1}}])");
  auto str = parse(fmt::mistral, R"([TOOL_CALLS] [{"name": "f", "arguments": "{\"q\": \"a \\\"b\\\"\", \"n\": -1}"}])");
  ASSERT_EQ(obj.calls.size(), 1u);
  ASSERT_EQ(str.calls.size(), 1u);
  EXPECT_EQ(obj.calls[0].arguments, R"({"q":"a \"b\"","n":-1})");
  EXPECT_EQ(str.calls[0].arguments, obj.calls[0].arguments);
}

TEST(none_format, everything_is_content) {
  const std::string text = "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>";
  auto r = parse(fmt::none, text);
  EXPECT_EQ(r.content, text);
  EXPECT_TRUE(r.calls.empty());
}

// --- streaming ---------------------------------------------------------------

// Texts every format's stream parser is run on (each format sees the others'
// texts too: for it they are content).
const std::vector<std::string> k_corpus = {
    "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
    "Checking.\n<tool_call>\n{\"name\": \"a\", \"arguments\": \"{\\\"z\\\": 1}\"}\n</tool_call>\n"
    "<tool_call>{\"name\": \"b\", \"arguments\": {\"s\": \"}]</tool_call>\"}}</tool_call>  after",
    "<tool_call> oops <tool_c <tool_call>{\"name\": \"f\", \"arguments\": {\"x\": }}</tool_call> end",
    "<tool_call>{\"name\": \"f\", \"arguments\": {}}\n</tool_",
    "{\"name\": \"a\", \"parameters\": {\"i\": 1}}; {\"name\": \"b\", \"parameters\": {\"j\": \"k\"}}",
    "  <|python_tag|>{\"name\": \"f\", \"arguments\": {\"x\": [1, {\"y\": 2}]}}",
    "{\"name\": \"f\", \"parameters\": {}} trailing",
    "<|python_tag|>brave_search.call(query=\"x\")",
    "  <|pyth",
    "Here [TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"x\": 1}, \"id\": \"Ab3dE6gH9\"}, {\"name\": \"b\"}]",
    "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": }}] [TOOL_ [TOOL_CALLS] {\"name\": \"c\"}",
    "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}}",
    "Plain text: caf\xc3\xa9 <b>bold</b> [link] {braces} ;",
    "",
};

TEST(tool_call_stream, equals_whole_parse_at_every_split_point_and_byte_by_byte) {
  for (fmt f : {fmt::none, fmt::llama3_json, fmt::hermes, fmt::mistral}) {
    std::size_t calls = 0;  // the corpus must exercise calls, not only content
    for (const std::string& text : k_corpus) {
      const std::string where = std::string(tool_call_format_name(f)) + " on: " + text;
      const tool_call_result whole = parse(f, text);
      calls += whole.calls.size();
      const std::string_view t = text;
      for (std::size_t i = 0; i <= t.size(); ++i) {
        streamed s = stream(f, {t.substr(0, i), t.substr(i)});
        expect_same(whole, s.result, where + " split at " + std::to_string(i));
        EXPECT_EQ(s.saw, !whole.calls.empty()) << where;
      }
      std::vector<std::string_view> bytes;
      for (std::size_t i = 0; i < t.size(); ++i) bytes.push_back(t.substr(i, 1));
      expect_same(whole, stream(f, bytes).result, where + " byte by byte");
      // Random chunkings of 1..8 bytes, fixed seed.
      std::mt19937 rng(1);
      for (int round = 0; round < 20; ++round) {
        std::vector<std::string_view> chunks;
        for (std::size_t i = 0; i < t.size();) {
          const std::size_t n = std::min<std::size_t>(1 + rng() % 8, t.size() - i);
          chunks.push_back(t.substr(i, n));
          i += n;
        }
        expect_same(whole, stream(f, chunks).result, where + " random chunks");
      }
    }
    EXPECT_EQ(calls, f == fmt::none ? 0u : 3u) << tool_call_format_name(f);
  }
}

TEST(tool_call_stream, holds_back_marker_prefixes_and_emits_calls_at_close) {
  id_source ids(k_seed);
  tool_call_stream_parser p(fmt::hermes, ids);
  EXPECT_EQ(p.feed("Hello <tool_c").content, "Hello ");
  EXPECT_TRUE(p.feed("all>\n{\"name\": \"f\", ").empty());
  EXPECT_TRUE(p.feed("\"arguments\": {\"a\": 1}}\n</tool_call").empty());
  EXPECT_FALSE(p.saw_tool_call());
  stream_step s = p.feed(">\n");
  EXPECT_EQ(s.content, "");
  ASSERT_EQ(s.calls.size(), 1u);
  EXPECT_EQ(s.calls[0].index, 0u);
  EXPECT_EQ(s.calls[0].name, "f");
  EXPECT_TRUE(s.calls[0].id && is_openai_id(*s.calls[0].id));
  EXPECT_EQ(s.calls[0].arguments_fragment, R"({"a":1})");
  EXPECT_TRUE(p.saw_tool_call());
  EXPECT_EQ(p.feed("<tool").content, "");  // may still become "<tool_call>"
  EXPECT_EQ(p.feed("s are").content, "<tools are");
  EXPECT_TRUE(p.finish().empty());

  id_source ids2(k_seed);
  tool_call_stream_parser m(fmt::mistral, ids2);
  EXPECT_EQ(m.feed("ok [TOOL_").content, "ok ");
  EXPECT_EQ(m.feed("CALLED]").content, "[TOOL_CALLED]");
  EXPECT_EQ(m.feed(" [TOOL_CALLS] [{\"name\": \"f\"}").content, " ");
  EXPECT_EQ(m.feed("]").calls.size(), 1u);
  EXPECT_TRUE(m.saw_tool_call());
}

TEST(tool_call_stream, llama3_holds_a_reply_that_starts_like_a_call) {
  id_source ids(k_seed);
  tool_call_stream_parser p(fmt::llama3_json, ids);
  EXPECT_TRUE(p.feed("  ").empty());
  EXPECT_TRUE(p.feed("{\"name\": \"f\", \"parameters\": {}}").empty());  // text may still follow
  stream_step end = p.finish();
  ASSERT_EQ(end.calls.size(), 1u);
  EXPECT_EQ(end.content, "");
  EXPECT_TRUE(p.saw_tool_call());

  id_source ids2(k_seed);
  tool_call_stream_parser q(fmt::llama3_json, ids2);
  EXPECT_TRUE(q.feed(" ").empty());
  EXPECT_EQ(q.feed("It is").content, " It is");  // decided at once: content
  EXPECT_EQ(q.feed(" {sunny}").content, " {sunny}");
  EXPECT_TRUE(q.finish().empty());
  EXPECT_FALSE(q.saw_tool_call());
}

TEST(tool_call_stream, invalid_calls_do_not_set_saw_tool_call) {
  for (fmt f : {fmt::llama3_json, fmt::hermes, fmt::mistral}) {
    streamed s = stream(f, {"<tool_call>{\"name\": 1}</tool_call>", " [TOOL_CALLS] [1]", " {\"x\": 1}"});
    EXPECT_FALSE(s.saw) << tool_call_format_name(f);
    EXPECT_TRUE(s.result.calls.empty());
  }
}

}  // namespace
}  // namespace yard::backends::chat
