// backends/tests/jinja_chat_templates_test.cpp — whole chat templates through the Jinja engine: three templates
// written here in the shapes of the published Llama 3.1, Qwen2.5 and Mistral (v3, tool calling) templates, rendered
// with a system message, a user turn, an assistant tool call, its tool result, an assistant answer, another user
// turn and add_generation_prompt. The expected prompts are what Jinja 3.1 renders with Hugging Face's settings.
#include "backends/chat/jinja/jinja_template.hpp"

#include <gtest/gtest.h>

#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace yard::backends::chat::jinja {
namespace {

using json = nlohmann::ordered_json;

// Llama 3.1's shape: the date line, tools as tojson(indent=4) in the first user turn, one tool call per assistant
// turn as {"name", "parameters"}, tool results under the ipython role, <|eot_id|> after each turn.
const char* llama31_template = R"tpl({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if tools_in_user_message is not defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if date_string is not defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if tools is not defined %}
    {%- set tools = none %}
{%- endif %}

{#- The system message, if any, is taken out of the conversation #}
{%- if messages[0].role == "system" %}
    {%- set system_message = messages[0].content | trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " ~ date_string ~ "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You may call the functions below. Answer with a JSON function call.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- With tools, they open the first user turn #}
{%- if tools_in_user_message and tools is not none %}
    {%- if messages | length == 0 %}
        {{- raise_exception("Tools need a first user message to go into!") }}
    {%- endif %}
    {%- set first_user_message = messages[0].content | trim %}
    {%- set messages = messages[1:] %}
    {{- "<|start_header_id|>user<|end_header_id|>\n\n" -}}
    {{- "Given the following functions, reply with a JSON function call that answers the prompt.\n\n" }}
    {{- 'Use the format {"name": function name, "parameters": dictionary of arguments}. ' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message ~ "<|eot_id|>" }}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == "ipython" or message.role == "tool" or "tool_calls" in message) %}
        {{- "<|start_header_id|>" ~ message.role ~ "<|end_header_id|>\n\n" ~ message.content | trim ~ "<|eot_id|>" }}
    {%- elif "tool_calls" in message %}
        {%- if message.tool_calls | length != 1 %}
            {{- raise_exception("Only one tool call per message is supported.") }}
        {%- endif %}
        {%- set call = message.tool_calls[0].function %}
        {{- "<|start_header_id|>assistant<|end_header_id|>\n\n" -}}
        {{- '{"name": "' ~ call.name ~ '", ' }}
        {{- '"parameters": ' }}
        {{- call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- else %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or (message.content is iterable and message.content is not string) %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- "<|start_header_id|>assistant<|end_header_id|>\n\n" }}
{%- endif %}
)tpl";

// Qwen2.5's shape: ChatML, a <tools></tools> section in the system turn, <tool_call> blocks for
// message.tool_calls, consecutive tool results grouped into one user turn of <tool_response> blocks.
const char* qwen25_template = R"tpl({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to help with the user query.\n\nThe function signatures are inside <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each call, return a JSON object with the function name and arguments inside <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (loop.previtem.role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)tpl";

// Mistral's shape (v3 with tools): [INST]/[/INST], raise_exception unless user/assistant alternate (counted in a
// namespace), [AVAILABLE_TOOLS] before the last user turn, [TOOL_CALLS] with 9-character ids, [TOOL_RESULTS],
// the system message folded into the last user turn.
const char* mistral_template = R"tpl({%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if tools is not defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- Roles must alternate user/assistant, not counting tool calls and their results #}
{%- set ns = namespace(index=0) %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
        {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if tool_call.id is not defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs must be alphanumeric strings of length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token }}
    {%- elif message["role"] == "tool" %}
        {{- '[TOOL_RESULTS] {"content": ' + message.content|string + ", " }}
        {%- if message.tool_call_id is not defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs must be alphanumeric strings of length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user, assistant and tool roles are supported, after an optional system message!") }}
    {%- endif %}
{%- endfor %}
)tpl";

const json tools = json::parse(R"([{"type": "function", "function": {
  "name": "get_weather", "description": "Get the current weather in a city",
  "parameters": {"type": "object", "properties": {
    "city": {"type": "string", "description": "The city, e.g. Zürich"},
    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
  "required": ["city"]}}}])");

const json system_turn = {{"role", "system"}, {"content", "You are a weather bot."}};
const json user_turn = {{"role", "user"}, {"content", "What's the weather in Zürich?"}};
const json tool_call_turn = json::parse(R"({"role": "assistant", "content": null, "tool_calls": [{"id": "call12345",
  "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}}]})");
const json tool_result_turn = {{"role", "tool"}, {"tool_call_id", "call12345"},
                               {"content", "{\"temperature\": 21.5, \"sky\": \"clear\"}"}};
const json answer_turn = {{"role", "assistant"}, {"content", "It is 21.5 °C and clear in Zürich."}};
const json thanks_turn = {{"role", "user"}, {"content", "Thanks!"}};
// Without tools: system, user, a plain assistant answer (with spaces to trim), user.
const json plain_conversation = json::array({system_turn, user_turn,
                                             {{"role", "assistant"}, {"content", "  Sunny.  "}}, thanks_turn});

json context(json messages, std::string bos, bool with_tools) {
  json c = {{"messages", std::move(messages)}, {"add_generation_prompt", true}, {"bos_token", std::move(bos)},
            {"eos_token", "</s>"}, {"date_string", "05 Mar 2025"}};
  if (with_tools) c["tools"] = tools;
  return c;
}

std::string render(const char* source, const json& ctx) {
  auto tmpl = jinja_template::compile(source);
  if (!tmpl.ok()) {
    ADD_FAILURE() << "compile failed: " << tmpl.err().describe();
    return {};
  }
  auto out = tmpl->render(ctx);
  if (!out.ok()) {
    ADD_FAILURE() << "render failed: " << out.err().describe();
    return {};
  }
  return *out;
}

TEST(jinja_chat_templates, llama31_with_tools_a_tool_call_and_an_ipython_result) {
  json ipython_result = {{"role", "ipython"}, {"content", {{"temperature", 21.5}, {"sky", "clear"}}}};
  json messages = json::array({system_turn, user_turn, tool_call_turn, ipython_result, answer_turn, thanks_turn});
  EXPECT_EQ(render(llama31_template, context(messages, "<|begin_of_text|>", true)),
            R"x(<|begin_of_text|><|start_header_id|>system<|end_header_id|>

Environment: ipython
Cutting Knowledge Date: December 2023
Today Date: 05 Mar 2025

You are a weather bot.<|eot_id|><|start_header_id|>user<|end_header_id|>

Given the following functions, reply with a JSON function call that answers the prompt.

Use the format {"name": function name, "parameters": dictionary of arguments}. Do not use variables.

{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {
                    "type": "string",
                    "description": "The city, e.g. Zürich"
                },
                "unit": {
                    "type": "string",
                    "enum": [
                        "celsius",
                        "fahrenheit"
                    ]
                }
            },
            "required": [
                "city"
            ]
        }
    }
}

What's the weather in Zürich?<|eot_id|><|start_header_id|>assistant<|end_header_id|>

{"name": "get_weather", "parameters": {"city": "Zürich", "unit": "celsius"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>

{"temperature": 21.5, "sky": "clear"}<|eot_id|><|start_header_id|>assistant<|end_header_id|>

It is 21.5 °C and clear in Zürich.<|eot_id|><|start_header_id|>user<|end_header_id|>

Thanks!<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)x");
}

TEST(jinja_chat_templates, llama31_without_tools) {
  EXPECT_EQ(render(llama31_template, context(plain_conversation, "<|begin_of_text|>", false)),
            R"x(<|begin_of_text|><|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023
Today Date: 05 Mar 2025

You are a weather bot.<|eot_id|><|start_header_id|>user<|end_header_id|>

What's the weather in Zürich?<|eot_id|><|start_header_id|>assistant<|end_header_id|>

Sunny.<|eot_id|><|start_header_id|>user<|end_header_id|>

Thanks!<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)x");
}

TEST(jinja_chat_templates, llama31_takes_todays_date_from_strftime_now) {
  json ctx = context(plain_conversation, "<|begin_of_text|>", false);
  ctx.erase("date_string");
  auto today = [] {
    std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[32];
    return std::string(buf, std::strftime(buf, sizeof buf, "%d %b %Y", &local));
  };
  std::string before = today();
  std::string out = render(llama31_template, ctx);
  std::string after = today();
  bool found = out.find("Today Date: " + before + "\n") != std::string::npos ||
               out.find("Today Date: " + after + "\n") != std::string::npos;
  EXPECT_TRUE(found) << out;
}

TEST(jinja_chat_templates, qwen25_with_tools_a_tool_call_and_grouped_tool_responses) {
  json second_result = {{"role", "tool"}, {"tool_call_id", "x"}, {"content", "second result"}};
  json messages = json::array(
      {system_turn, user_turn, tool_call_turn, tool_result_turn, second_result, answer_turn, thanks_turn});
  EXPECT_EQ(render(qwen25_template, context(messages, "", true)),
            R"x(<|im_start|>system
You are a weather bot.

# Tools

You may call one or more functions to help with the user query.

The function signatures are inside <tools></tools> XML tags:
<tools>
{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city, e.g. Zürich"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}
</tools>

For each call, return a JSON object with the function name and arguments inside <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
<|im_start|>user
What's the weather in Zürich?<|im_end|>
<|im_start|>assistant
<tool_call>
{"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}
</tool_call><|im_end|>
<|im_start|>user
<tool_response>
{"temperature": 21.5, "sky": "clear"}
</tool_response>
<tool_response>
second result
</tool_response><|im_end|>
<|im_start|>assistant
It is 21.5 °C and clear in Zürich.<|im_end|>
<|im_start|>user
Thanks!<|im_end|>
<|im_start|>assistant
)x");
}

TEST(jinja_chat_templates, qwen25_without_tools) {
  EXPECT_EQ(render(qwen25_template, context(plain_conversation, "", false)),
            R"x(<|im_start|>system
You are a weather bot.<|im_end|>
<|im_start|>user
What's the weather in Zürich?<|im_end|>
<|im_start|>assistant
  Sunny.  <|im_end|>
<|im_start|>user
Thanks!<|im_end|>
<|im_start|>assistant
)x");
}

TEST(jinja_chat_templates, mistral_with_tools_a_tool_call_and_a_tool_result) {
  json messages = json::array({system_turn, user_turn, tool_call_turn, tool_result_turn, answer_turn, thanks_turn});
  EXPECT_EQ(render(mistral_template, context(messages, "<s>", true)),
            R"x(<s>[INST] What's the weather in Zürich?[/INST][TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}, "id": "call12345"}]</s>[TOOL_RESULTS] {"content": {"temperature": 21.5, "sky": "clear"}, "call_id": "call12345"}[/TOOL_RESULTS] It is 21.5 °C and clear in Zürich.</s>[AVAILABLE_TOOLS] [{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city, e.g. Zürich"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}][/AVAILABLE_TOOLS][INST] You are a weather bot.

Thanks![/INST])x");
}

TEST(jinja_chat_templates, mistral_without_tools) {
  EXPECT_EQ(render(mistral_template, context(plain_conversation, "<s>", false)),
            R"x(<s>[INST] What's the weather in Zürich?[/INST] Sunny.</s>[INST] You are a weather bot.

Thanks![/INST])x");
}

TEST(jinja_chat_templates, mistral_raises_when_roles_do_not_alternate) {
  auto tmpl = jinja_template::compile(mistral_template);
  ASSERT_TRUE(tmpl.ok()) << tmpl.err().describe();
  json two_users = json::array({user_turn, thanks_turn});
  auto out = tmpl->render(context(two_users, "<s>", false));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.err().code, errc::bad_request);
  EXPECT_EQ(out.err().message.rfind("chat template line 17: After the optional system message, conversation roles "
                                    "must alternate user/assistant/user/assistant/...",
                                    0),
            0u)
      << out.err().message;
  json bad_id = tool_call_turn;
  bad_id["tool_calls"][0]["id"] = "short";
  auto id_out = tmpl->render(context(json::array({user_turn, bad_id}), "<s>", false));
  ASSERT_FALSE(id_out.ok());
  EXPECT_NE(id_out.err().message.find("Tool call IDs must be alphanumeric strings of length 9!"), std::string::npos);
}

TEST(jinja_chat_templates, one_compiled_template_renders_on_many_threads) {
  auto tmpl = jinja_template::compile(qwen25_template);
  ASSERT_TRUE(tmpl.ok());
  json messages = json::array({system_turn, user_turn, tool_call_turn, tool_result_turn, answer_turn, thanks_turn});
  json ctx = context(messages, "", true);
  std::string expected = *tmpl->render(ctx);
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < 50; ++k) {
        auto out = tmpl->render(ctx);
        if (!out.ok() || *out != expected) ++mismatches[t];
      }
    });
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace yard::backends::chat::jinja
