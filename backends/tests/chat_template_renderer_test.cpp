// backends/tests/chat_template_renderer_test.cpp — a model folder's own chat template, through the
// prompt tokenizer that routers and workers share: rendered with tools, tool calls and tool results;
// read from tokenizer_config.json (string or named list) or chat_template.jinja; a template this
// build cannot render fails at load naming its line.
#include "backends/chat/chat_template_renderer.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "backends/native/native_prompt_tokenizer.hpp"
#include "backends/tests/native_test_util.hpp"

namespace yard::backends {
namespace {

using nlohmann::json;

// A ChatML template with a tools section and Hermes-style calls, Qwen2.5-shaped.
const char* chatml_tools = R"({%- if tools %}<|im_start|>system
# Tools
<tools>
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}
</tools><|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == "assistant" and message.tool_calls %}<|im_start|>assistant
{%- for call in message.tool_calls %}
<tool_call>
{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}
</tool_call>
{%- endfor %}<|im_end|>
{% elif message.role == "tool" %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %})";

void write_config(const std::string& dir, const json& extra) {
  json tc = {{"tokenizer_class", "PreTrainedTokenizerFast"}, {"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"}};
  tc.update(extra);
  std::ofstream(dir + "/tokenizer_config.json") << tc.dump(2);
}

std::vector<msg::chat_message> conversation() {
  msg::chat_message call{"assistant", ""};
  call.tool_calls = {{"call_1", "function", {"get_weather", R"({"city":"Paris"})"}}};
  msg::chat_message result{"tool", "18C"};
  result.tool_call_id = "call_1";
  return {{"user", "weather?"}, call, result};
}

msg::json_value weather_tools() {
  return {nlohmann::ordered_json::parse(R"([{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}])")};
}

TEST(chat_template_renderer, renders_messages_tools_calls_and_results) {
  auto r = chat::chat_template_renderer::from_source(chatml_tools);
  ASSERT_TRUE(r.ok()) << r.err().describe();
  auto tools = weather_tools();
  auto text = r->render(conversation(), &tools);
  ASSERT_TRUE(text.ok()) << text.err().describe();
  // Jinja's whitespace rules as transformers sets them: trim_blocks eats the newline after a block
  // tag, `{%-` the whitespace before it (checked against Python Jinja 3.1).
  EXPECT_EQ(*text,
            "<|im_start|>system\n# Tools\n<tools>"
            "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\"}}}"
            "</tools><|im_end|>\n"
            "<|im_start|>user\nweather?<|im_end|>\n"
            "<|im_start|>assistant<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
            "<|im_start|>user\n<tool_response>\n18C\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n");
  // Without tools the tools section is not rendered.
  auto plain = r->render({{"user", "hi"}}, nullptr);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(chat_template_renderer, the_folder_template_drives_the_prompt_tokenizer) {
  native::testing::temp_dir d;
  auto dir = native::testing::make_model(d, "m");
  write_config(dir, {{"chat_template", chatml_tools}});
  auto t = native_prompt_tokenizer::open(dir);
  ASSERT_TRUE(t.ok()) << t.err().describe();
  auto tools = weather_tools();
  auto ids = t->apply_chat_template(conversation(), &tools);
  ASSERT_TRUE(ids.ok()) << ids.err().describe();
  auto text = t->vocab().decode(std::vector<native::tok_id>(ids->begin(), ids->end()));
  auto expected = chat::chat_template_renderer::from_source(chatml_tools)->render(conversation(), &tools);
  EXPECT_EQ(text, *expected);
  EXPECT_EQ(t->family(), native::chat_family::chatml);  // detected from the template text
}

TEST(chat_template_renderer, named_template_lists_and_jinja_files) {
  native::testing::temp_dir d;
  auto dir = native::testing::make_model(d, "m");
  write_config(dir, {{"chat_template", json::array({{{"name", "tool_use"}, {"template", "TOOLS"}},
                                                    {{"name", "default"}, {"template", "{{ bos_token }}D{{ messages[0].content }}"}}})}});
  auto a = chat::chat_template_renderer::load(dir);
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ(*(*a)->render({{"user", "x"}}, nullptr), "<|begin_of_text|>Dx");
  write_config(dir, json::object());
  std::ofstream(dir + "/chat_template.jinja") << "J{{ messages | length }}{{ eos_token }}\n";
  auto b = chat::chat_template_renderer::load(dir);
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ(*(*b)->render({{"user", "x"}, {"assistant", "y"}}, nullptr), "J2<|eot_id|>");
  std::filesystem::remove(dir + "/chat_template.jinja");
  auto none = chat::chat_template_renderer::load(dir);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());  // no template: the built-in family is used
}

TEST(chat_template_renderer, an_unsupported_template_fails_at_load_naming_the_line) {
  native::testing::temp_dir d;
  auto dir = native::testing::make_model(d, "m");
  write_config(dir, {{"chat_template", "{% for m in messages %}\n{{ m.content }}\n{% include 'footer.jinja' %}\n{% endfor %}"}});
  auto t = native_prompt_tokenizer::open(dir);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.err().message.find("tokenizer_config.json"), std::string::npos) << t.err().message;
  EXPECT_NE(t.err().message.find("line 3"), std::string::npos) << t.err().message;
  write_config(dir, {{"chat_template", "{{ messages | wordwrap(10) }}"}});
  auto f = native_prompt_tokenizer::open(dir);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.err().message.find("wordwrap"), std::string::npos) << f.err().message;
  // raise_exception fails the render (a 400 for the request), not the load.
  write_config(dir, {{"chat_template", "{% if messages[0].role != 'system' %}{{ raise_exception('need a system turn') }}{% endif %}ok"}});
  auto r = native_prompt_tokenizer::open(dir);
  ASSERT_TRUE(r.ok()) << r.err().describe();
  auto ids = r->apply_chat_template({{"user", "hi"}});
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.err().code, errc::bad_request);
  EXPECT_NE(ids.err().message.find("need a system turn"), std::string::npos);
}

}  // namespace
}  // namespace yard::backends
