// backends/tests/jinja_template_test.cpp — the chat-template engine, one feature group per test: output and
// printing, statements, expressions, tests, filters, tojson, methods, globals, whitespace rules, undefined
// values, and the errors (compile-time with the line, runtime with the line and raise_exception's message).
// Expected outputs are what Jinja 3.1 renders with Hugging Face's settings (trim_blocks, lstrip_blocks).
#include "backends/chat/jinja/jinja_template.hpp"

#include <gtest/gtest.h>

#include <string>

namespace yard::backends::chat::jinja {
namespace {

using json = nlohmann::ordered_json;

std::string render(std::string_view source, const json& context = json::object()) {
  auto tmpl = jinja_template::compile(source);
  if (!tmpl.ok()) {
    ADD_FAILURE() << "compile failed: " << tmpl.err().describe();
    return "<compile error>";
  }
  auto out = tmpl->render(context);
  if (!out.ok()) {
    ADD_FAILURE() << "render failed: " << out.err().describe();
    return "<render error>";
  }
  return *out;
}

yard::error compile_error(std::string_view source) {
  auto tmpl = jinja_template::compile(source);
  if (tmpl.ok()) {
    ADD_FAILURE() << "compiled, expected an error: " << source;
    return {};
  }
  return tmpl.err();
}

yard::error render_error(std::string_view source, const json& context = json::object()) {
  auto tmpl = jinja_template::compile(source);
  if (!tmpl.ok()) {
    ADD_FAILURE() << "compile failed: " << tmpl.err().describe();
    return {};
  }
  auto out = tmpl->render(context);
  if (out.ok()) {
    ADD_FAILURE() << "rendered \"" << *out << "\", expected an error";
    return {};
  }
  return out.err();
}

const json messages = json::parse(R"([
  {"role": "system", "content": "Be nice."},
  {"role": "user", "content": "Hi"},
  {"role": "assistant", "content": " Hello! "}
])");

const json users = json::parse(R"([
  {"name": "bob", "age": 30, "tags": ["a"]},
  {"name": "Alice", "age": 25},
  {"name": "carl", "age": 35, "tags": []}
])");

TEST(jinja_template, output_prints_values_the_way_python_does) {
  EXPECT_EQ(render("{{ 1 }} {{ 1.0 }} {{ 0.5 }} {{ 1e20 }} {{ 1.5e-7 }} {{ true }} {{ False }} {{ none }} {{ 'a' }}"),
            "1 1.0 0.5 1e+20 1.5e-07 True False None a");
  EXPECT_EQ(render("{{ [1, 'a', none, true, 2.5] }} {{ {'k': 'v', 'n': [1]} }} {{ (1,) }} {{ (1, 'b') }}"),
            "[1, 'a', None, True, 2.5] {'k': 'v', 'n': [1]} (1,) (1, 'b')");
  EXPECT_EQ(render(R"({{ ["it's", 'q"', 'nl\n', 'é'] }})"), R"(["it's", 'q"', 'nl\n', 'é'])");
  EXPECT_EQ(render("{{ 'it\\'s' ~ \"\\t|\\u00e9|\\x41\" }}"), "it's\t|é|A");
  EXPECT_EQ(render("{{ 'a' 'b' }}{{ 1_000 }}"), "ab1000");
  EXPECT_EQ(render("text {# a comment #}only"), "text only");
}

TEST(jinja_template, if_elif_else) {
  const char* src = "{% if n > 1 %}many{% elif n == 1 %}one{% else %}none{% endif %}";
  EXPECT_EQ(render(src, {{"n", 5}}), "many");
  EXPECT_EQ(render(src, {{"n", 1}}), "one");
  EXPECT_EQ(render(src, {{"n", 0}}), "none");
  EXPECT_EQ(render("{% if [] or {} or '' or 0 or none %}t{% else %}f{% endif %}"), "f");
}

TEST(jinja_template, for_loop_variables) {
  EXPECT_EQ(render("{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/"
                   "{{ loop.first }}/{{ loop.last }}/{{ loop.length }}:{{ m.role }};{% endfor %}",
                   {{"messages", messages}}),
            "1/0/3/2/True/False/3:system;2/1/2/1/False/False/3:user;3/2/1/0/False/True/3:assistant;");
  EXPECT_EQ(render("{% for m in messages %}[{{ loop.previtem.role if loop.previtem is defined else '-' }}>{{ m.role }}>"
                   "{{ loop.nextitem.role if loop.nextitem else '-' }}]{% endfor %}",
                   {{"messages", messages}}),
            "[->system>user][system>user>assistant][user>assistant>-]");
  EXPECT_EQ(render("{% for x in range(5) %}{{ loop.cycle('a', 'b') }}{% endfor %}"), "ababa");
  EXPECT_EQ(render("{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}"
                   "{{ loop.index }}|{% endfor %}"),
            "11x 21y 1|12x 22y 2|");
}

TEST(jinja_template, for_loop_filter_else_and_unpacking) {
  EXPECT_EQ(render("{% for m in messages if m.role != 'system' %}{{ loop.index }}:{{ m.role }} {{ loop.last }};{% endfor %}",
                   {{"messages", messages}}),
            "1:user False;2:assistant True;");
  EXPECT_EQ(render("{% for x in [] %}a{% else %}empty{% endfor %}|{% for x in missing %}a{% else %}none{% endfor %}"),
            "empty|none");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
                   {{"d", {{"b", 1}, {"a", 2}}}}),
            "b=1;a=2;ba");
  EXPECT_EQ(render("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}{% for c in 'héllo' %}{{ c }}.{% endfor %}"),
            "37h.é.l.l.o.");
}

TEST(jinja_template, loop_controls_break_and_continue) {
  EXPECT_EQ(render("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 4 %}{% break %}{% endif %}"
                   "{{ x }}{% endfor %}"),
            "0134");
}

TEST(jinja_template, set_and_scoping) {
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1, 2] %}{% set x = i %}{{ x }}{% endfor %}{{ x }}"), "121");
  EXPECT_EQ(render("{% if true %}{% set z = 5 %}{% endif %}{{ z }}"), "5");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}"), "12(1, 2)");
  EXPECT_EQ(render("{% set messages = messages[1:] %}{{ messages | length }}", {{"messages", messages}}), "2");
}

TEST(jinja_template, namespace_mutation_survives_the_loop) {
  EXPECT_EQ(render("{% set ns = namespace(found=false, total=0) %}{% for i in [1, 2, 3] %}{% set ns.total = ns.total + i %}"
                   "{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.total }}"),
            "True 6");
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.items = [] %}{% for m in messages %}"
                   "{% set ns.items = ns.items + [m.role] %}{% endfor %}{{ ns.items | join(',') }} {{ ns.missing }}|",
                   {{"messages", messages}}),
            "system,user,assistant |");
}

TEST(jinja_template, set_block_filter_block_generation_and_do) {
  EXPECT_EQ(render("{% set x %}Hello {{ name }}!{% endset %}[{{ x }}]{% set y | upper %}abc{% endset %}{{ y }}",
                   {{"name", "Bob"}}),
            "[Hello Bob!]ABC");
  EXPECT_EQ(render("{% filter upper %}hello {{ 'x' }}{% endfilter %}|{% generation %}gen {{ 1 }}{% endgeneration %}"),
            "HELLO X|gen 1");
  EXPECT_EQ(render("{% set l = [] %}{% do l.append(1) %}{% do l.append(2) %}{{ l }}"), "[1, 2]");
  EXPECT_EQ(render("{% raw %}{{ not a var }}{% endraw %}"), "{{ not a var }}");
}

TEST(jinja_template, macros_with_defaults_keywords_and_recursion) {
  EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                   "{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C', punct='.') }} {{ greet('D', punct=';') }}"),
            "Hi A! Hi B? Hi C. Hi D;");
  // A macro sees the top level and its arguments, not its caller's loop variables.
  EXPECT_EQ(render("{% set g = 'top' %}{% macro m(x) %}{{ x }}-{{ g }}-{{ y }}{% endmacro %}"
                   "{% for y in [1] %}{{ m(2) }}{% endfor %}"),
            "2-top-");
  EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"), "321");
  EXPECT_EQ(render("{% macro a() %}A{% endmacro %}{% macro b() %}[{{ a() }}]{% endmacro %}{{ b() }}{{ b() | length }}"),
            "[A]3");
  EXPECT_EQ(render("{% macro m(a, b=a ~ '!') %}{{ b }}{% endmacro %}{{ m('x') }}"), "x!");
}

TEST(jinja_template, arithmetic_follows_python) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7 / 2 }} {{ 6 / 2 }} "
                   "{{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}"),
            "3 -4 1 2 -2 3.5 3.0 1024 0.5 3.0 0.5");
  EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'a' + 'b' }} {{ [1] + [2] }} {{ 'ab' * 3 }} {{ 3 * 'x' }} "
                   "{{ 1 + 2.5 }} {{ true + 1 }}"),
            "7 9 ab [1, 2] ababab xxx 3.5 2");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none ~ true ~ missing }}"), "a1NoneTrue");
}

TEST(jinja_template, comparisons_membership_logic_and_conditionals) {
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 != 2 }} "
                   "{{ 2 >= 2 }} {{ true == 1 }}"),
            "True False True True True True True True");
  EXPECT_EQ(render("{{ 'a' in 'cat' }} {{ 1 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ 'z' not in 'abc' }} "
                   "{{ 'x' in missing }}"),
            "True True True True True False");
  EXPECT_EQ(render("{{ 0 or 'b' }} {{ 'a' and 'b' }} [{{ '' and 'b' }}] {{ none or [] }} {{ not 0 }} {{ not 'x' }}"),
            "b b [] [] True False");
  EXPECT_EQ(render("{{ 'y' if true else 'n' }} {{ 'y' if false else 'n' }} [{{ 'y' if false }}] "
                   "{{ 'a' if 0 else 'b' if 1 else 'c' }}"),
            "y n [] b");
  // Filters bind tighter than operators; unary minus applies before a filter.
  EXPECT_EQ(render("{{ -3 | abs }} {{ 1 + [1, 2, 3] | length }} {{ 'abc' | upper ~ 'X' | lower }} {{ not 1 is string }}"),
            "3 4 ABCx True");
}

TEST(jinja_template, subscripts_and_slices) {
  json ctx = {{"l", {1, 2, 3, 4}}, {"s", "héllo"}, {"d", {{"a", 1}, {"b", {1, 2}}, {"items", "I"}}}};
  EXPECT_EQ(render("{{ l[0] }} {{ l[-1] }} {{ l[1:] }} {{ l[::-1] }} {{ l[:-1] }} {{ l[5:] }} {{ l[-2:] }} {{ l.0 }} "
                   "{{ l[::-2] }} {{ l[3:0:-1] }} [{{ l[9] }}]",
                   ctx),
            "1 4 [2, 3, 4] [4, 3, 2, 1] [1, 2, 3] [] [3, 4] 1 [4, 2] [4, 3, 2] []");
  EXPECT_EQ(render("{{ s[0] }} {{ s[1] }} {{ s[-1] }} {{ s[1:] }} {{ s[::-1] }} {{ s[:-1] }} {{ s[1:3] }} {{ s | length }}",
                   ctx),
            "h é o éllo olléh héll él 5");
  EXPECT_EQ(render("{{ d.a }} {{ d['b'][1] }} [{{ d.c }}] [{{ d.a.x }}] {{ d['items'] }}", ctx), "1 2 [] [] I");
}

TEST(jinja_template, tests_each) {
  EXPECT_EQ(render("{% for v in [none, true, 0, 2.5, 'x', [], {}, missing] %}{{ v is none }}{{ v is boolean }}"
                   "{{ v is number }}{{ v is integer }}{{ v is float }}{{ v is string }}{{ v is mapping }}"
                   "{{ v is iterable }}{{ v is sequence }}{{ v is true }}{{ v is false }}{{ v is defined }};{% endfor %}"
                   "{{ missing is undefined }}"),
            "TrueFalseFalseFalseFalseFalseFalseFalseFalseFalseFalseTrue;"
            "FalseTrueTrueFalseFalseFalseFalseFalseFalseTrueFalseTrue;"
            "FalseFalseTrueTrueFalseFalseFalseFalseFalseFalseFalseTrue;"
            "FalseFalseTrueFalseTrueFalseFalseFalseFalseFalseFalseTrue;"
            "FalseFalseFalseFalseFalseTrueFalseTrueTrueFalseFalseTrue;"
            "FalseFalseFalseFalseFalseFalseFalseTrueTrueFalseFalseTrue;"
            "FalseFalseFalseFalseFalseFalseTrueTrueTrueFalseFalseTrue;"
            "FalseFalseFalseFalseFalseFalseFalseTrueTrueFalseFalseFalse;True");
  EXPECT_EQ(render("{{ 3 is odd }} {{ 4 is even }} {{ -3 is odd }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }} "
                   "{{ 'a' is equalto 'a' }} {{ 1 is eq 1 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 2 is ge 2 }} "
                   "{{ 1 is in [1] }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ none is sameas none }}"),
            "True True True True False True True True True True True True True True");
  EXPECT_EQ(render("{{ missing is not defined }} {{ 1 is not string }} {{ range is defined }}"), "True True True");
}

TEST(jinja_template, text_filters) {
  EXPECT_EQ(render("[{{ '  a b \\n' | trim }}] [{{ 'xxaxx' | trim('x') }}] {{ 'hello world' | title }} "
                   "{{ 'hELLO wORLD' | capitalize }} {{ 'a-b c(d' | title }} {{ 'abc' | upper }} {{ 'ABC' | lower }}"),
            "[a b] [a] Hello World Hello world A-B C(D ABC abc");
  EXPECT_EQ(render("{{ 'aaa' | replace('a', 'b') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 'ab' | replace('', '-') }}"),
            "bbb bba -a-b-");
  EXPECT_EQ(render("{{ '<a href=\"x\">&\\'</a>' | e }} {{ '<b>' | escape }} {{ '<i>' | safe }} {{ 'a b  c' | wordcount }}"),
            "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt; &lt;b&gt; <i> 3");
  EXPECT_EQ(render("{{ '%s-%d' | format('a', 3) }} {{ '%5.2f|%-4s|%04d|%x|%%' | format(3.14159, 'ab', 7, 255) }} "
                   "{{ '%(a)s=%(b)d' | format(a='x', b=2) }} {{ 'n=%s' % 5 }} {{ '%s and %s' % ('a', 'b') }}"),
            "a-3  3.14|ab  |0007|ff|% x=2 n=5 a and b");
  EXPECT_EQ(render("{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}"
                   "|{{ 'x\\ny' | indent('> ') }}"),
            "a\n    b\n\n    c|  a\n  b|a\n  \n  b|x\n> y");
}

TEST(jinja_template, default_and_conversion_filters) {
  EXPECT_EQ(render("{{ x | default('d') }} [{{ '' | default('d') }}] {{ '' | default('d', true) }} {{ none | default('d') }} "
                   "{{ 0 | d('z', boolean=true) }} [{{ x | d }}]"),
            "d [] d None z []");
  EXPECT_EQ(render("{{ 1 | string ~ 2.0 | string }} {{ '42' | int + 1 }} {{ '4.7' | int }} {{ 'x' | int }} "
                   "{{ 'x' | int(7) }} {{ 3.9 | int }} {{ '0x1A' | int(base=16) }} {{ true | int }} {{ ' 12 ' | int }}"),
            "12.0 43 4 0 7 3 26 1 12");
  EXPECT_EQ(render("{{ '3.5' | float }} {{ 2 | float }} {{ 'x' | float }} {{ 'abc' | list }} {{ {'a': 1} | list }}"),
            "3.5 2.0 0.0 ['a', 'b', 'c'] ['a']");
  EXPECT_EQ(render("{{ -5 | abs }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 2.675 | round(2) }} "
                   "{{ 2.1 | round(0, 'ceil') }} {{ 2.9 | round(method='floor') }} {{ 7 | round }}"),
            "5 2.0 4.0 2.67 3.0 2.0 7");
}

TEST(jinja_template, sequence_filters) {
  json ctx = {{"users", users}, {"d", {{"b", 2}, {"A", 3}, {"c", 1}}}};
  EXPECT_EQ(render("{{ [1, 2, 3] | join(', ') }} {{ users | join(',', attribute='name') }} {{ [1, none, 'x'] | join }}", ctx),
            "1, 2, 3 bob,Alice,carl 1Nonex");
  EXPECT_EQ(render("{{ (users | first).name }} {{ (users | last).name }} {{ 'abc' | first }} [{{ [] | first }}] "
                   "{{ users | length }} {{ users | count }} {{ missing | length }}",
                   ctx),
            "bob carl a [] 3 3 0");
  EXPECT_EQ(render("{{ d | items | list }} {{ d | dictsort }} {{ d | dictsort(by='value') }} {{ d | dictsort(reverse=true) }}",
                   ctx),
            "[('b', 2), ('A', 3), ('c', 1)] [('A', 3), ('b', 2), ('c', 1)] [('c', 1), ('b', 2), ('A', 3)] "
            "[('c', 1), ('b', 2), ('A', 3)]");
  EXPECT_EQ(render("{{ users | selectattr('age', 'gt', 26) | map(attribute='name') | list }} "
                   "{{ users | rejectattr('tags', 'defined') | map(attribute='name') | join }} "
                   "{{ users | selectattr('tags') | list | length }} "
                   "{{ users | selectattr('name', 'equalto', 'bob') | list | length }} "
                   "{{ users | map(attribute='tags.0', default='-') | list }}",
                   ctx),
            "['bob', 'carl'] Alice 1 1 ['a', '-', '-']");
  EXPECT_EQ(render("{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('even') | list }} "
                   "{{ [0, 1, '', none, 'a'] | select | list }} {{ ['a', 'B'] | map('upper') | list }}"),
            "[1, 3] [1, 3] [1, 'a'] ['A', 'B']");
  EXPECT_EQ(render("{{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] | sort(case_sensitive=true) }} "
                   "{{ [3, 1, 2] | sort(reverse=true) }} {{ users | sort(attribute='age') | map(attribute='name') | join(',') }}",
                   ctx),
            "[1, 2, 3] ['A', 'b', 'c'] ['A', 'b', 'c'] [3, 2, 1] Alice,bob,carl");
  EXPECT_EQ(render("{{ [1, 2, 1, 3, 2] | unique | list }} {{ ['a', 'A', 'b'] | unique | list }} "
                   "{{ [1, 2, 3] | reverse | list }} {{ 'abc' | reverse }}"),
            "[1, 2, 3] ['a', 'b'] [3, 2, 1] cba");
  EXPECT_EQ(render("{{ [3, 1, 2] | min }} {{ [3, 1, 2] | max }} {{ ['b', 'A'] | min }} {{ (users | max(attribute='age')).name }} "
                   "{{ [1, 2, 3] | sum }} {{ users | sum(attribute='age') }} {{ [0.5, 1] | sum(start=1) }}",
                   ctx),
            "1 3 A carl 6 90 2.5");
}

TEST(jinja_template, tojson_matches_python_json_dumps) {
  json d = json::parse(R"({"a": "é中😀", "b": [1, 2.5, true, null, {"c": "q\"\\\n\t\u0001/"}], "e": {}, "f": [], "w": 0.1})");
  EXPECT_EQ(render("{{ d | tojson }}", {{"d", d}}),
            R"({"a": "é中😀", "b": [1, 2.5, true, null, {"c": "q\"\\\n\t\u0001/"}], "e": {}, "f": [], "w": 0.1})");
  json tool = json::parse(R"({"name": "f", "parameters": {"type": "object", "properties": {"x": {"enum": ["a", "b"]}},
                               "required": []}})");
  EXPECT_EQ(render("{{ t | tojson(indent=4) }}", {{"t", tool}}),
            "{\n"
            "    \"name\": \"f\",\n"
            "    \"parameters\": {\n"
            "        \"type\": \"object\",\n"
            "        \"properties\": {\n"
            "            \"x\": {\n"
            "                \"enum\": [\n"
            "                    \"a\",\n"
            "                    \"b\"\n"
            "                ]\n"
            "            }\n"
            "        },\n"
            "        \"required\": []\n"
            "    }\n"
            "}");
  json small = json::parse(R"({"b": [1, {"y": 2, "x": "é😀"}], "a": {}})");
  EXPECT_EQ(render("{{ d | tojson(sort_keys=true) }}|{{ d | tojson(separators=(',', ':')) }}|{{ d | tojson(ensure_ascii=true) }}",
                   {{"d", small}}),
            R"({"a": {}, "b": [1, {"x": "é😀", "y": 2}]}|{"b":[1,{"y":2,"x":"é😀"}],"a":{}}|)"
            R"({"b": [1, {"y": 2, "x": "\u00e9\ud83d\ude00"}], "a": {}})");
  EXPECT_EQ(render("{{ 'x' | tojson }} {{ 3 | tojson }} {{ none | tojson }} {{ 1.0 | tojson }} {{ (1, 2) | tojson }} "
                   "{{ [1, [2, []]] | tojson(indent=0) }}"),
            "\"x\" 3 null 1.0 [1, 2] [\n1,\n[\n2,\n[]\n]\n]");
}

TEST(jinja_template, string_dict_and_list_methods) {
  EXPECT_EQ(render("[{{ '  x  '.strip() }}][{{ '  x  '.lstrip() }}][{{ '  x  '.rstrip() }}][{{ 'xxhixx'.strip('x') }}] "
                   "{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('z', 'c')) }} {{ 'a,b,,c'.split(',') }} "
                   "{{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }}"),
            "[x][x  ][  x][hi] True True ['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c']");
  EXPECT_EQ(render("{{ 'Hello'.lower() }} {{ 'Hello'.upper() }} {{ 'hello wORLD'.title() }} {{ 'hELLO'.capitalize() }} "
                   "{{ 'aXa'.replace('a', 'b') }} {{ 'héllo'.find('l') }} {{ 'abc'.find('z') }} {{ 'aaa'.count('a') }} "
                   "{{ '-'.join(['a', 'b']) }}"),
            "hello HELLO Hello World Hello bXb 2 -1 3 a-b");
  EXPECT_EQ(render("{{ d.items() | list }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.get('a') }} {{ d.get('z') }} "
                   "{{ d.get('z', 5) }}",
                   {{"d", {{"a", 1}, {"b", 2}}}}),
            "[('a', 1), ('b', 2)] ['a', 'b'] [1, 2] 1 None 5");
  EXPECT_EQ(render("{% set l = [3, 1] %}{% set _ = l.append(3) %}{{ l }} {{ l.count(3) }} {{ l.index(1) }}"), "[3, 1, 3] 2 1");
}

TEST(jinja_template, global_functions) {
  EXPECT_EQ(render("{{ range(3) | list }} {{ range(1, 4) | list }} {{ range(10, 0, -3) | list }} {{ range(0) | list }}"),
            "[0, 1, 2] [1, 2, 3] [10, 7, 4, 1] []");
  EXPECT_EQ(render("{{ dict(a=1, b='x') }} {% set n = namespace(a=1) %}{{ n.a }}{% set n.a = 2 %}{{ n.a }}"),
            "{'a': 1, 'b': 'x'} 12");
  std::string year = render("{{ strftime_now('%Y') }}");
  EXPECT_EQ(year.size(), 4u);
  EXPECT_EQ(year.substr(0, 2), "20");
}

TEST(jinja_template, whitespace_control_markers) {
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("a\n  {{- 'x' -}}\n  b"), "axb");
  EXPECT_EQ(render("a {#- c -#} b"), "ab");
  EXPECT_EQ(render("{% for i in range(2) -%}\n  {{ i }}\n{%- endfor %}"), "01");
}

TEST(jinja_template, trim_blocks_and_lstrip_blocks_as_transformers_renders) {
  json ctx = {{"messages", messages}};
  // trim_blocks drops the newline after a block tag; lstrip_blocks drops the indent before one; {{ }} keeps both.
  EXPECT_EQ(render("{% for m in messages %}\n  {{ m.role }}\n{% endfor %}\n", ctx), "  system\n  user\n  assistant\n");
  EXPECT_EQ(render("{% for m in messages %}\n    {% if m.role == 'user' %}\n        <{{ m.content }}>\n    {% endif %}\n"
                   "{% endfor %}\nend\n\n",
                   ctx),
            "        <Hi>\nend\n");
  EXPECT_EQ(render("line1\n{# comment #}\nline2\n  {# indented comment #}\nline3"), "line1\nline2\nline3");
  EXPECT_EQ(render("x {% if true %}y{% endif %} z\n  {% if true %}q{% endif %}  \n"), "x y z\nq  ");
  // {%+ keeps the indent, +%} keeps the newline.
  EXPECT_EQ(render("a\n    {%+ if true %}x{% endif %}\n"), "a\n    x");
  EXPECT_EQ(render("a\n  {% if true +%}\nx{% endif %}"), "a\n\nx");
  // One trailing newline of the template is dropped; CRLF reads as LF.
  EXPECT_EQ(render("{{ 'a' }}\n{{ 'b' }}\n"), "a\nb");
  EXPECT_EQ(render("text\r\nmore\r\n{% if true %}\r\nyes\r\n{% endif %}\r\n"), "text\nmore\nyes\n");
}

TEST(jinja_template, undefined_values_are_lenient) {
  json ctx = {{"m", {{"role", "user"}}}};
  EXPECT_EQ(render("[{{ x }}|{{ x.y }}|{{ x['y'] }}|{{ m.content }}|{{ m.content.deeper }}|{{ x | length }}]", ctx),
            "[|||||0]");
  EXPECT_EQ(render("{{ x is defined }} {{ m.content is defined }} {{ m.role is defined }} {{ not x }} {{ x == x }}", ctx),
            "False False True True True");
  EXPECT_EQ(render("{% for i in x %}never{% endfor %}{% if x %}never{% endif %}{{ x ~ 'ok' }}", ctx), "ok");
}

TEST(jinja_template, compiled_template_renders_many_contexts) {
  auto tmpl = jinja_template::compile("{{ greeting }}, {{ name | default('world') }}!");
  ASSERT_TRUE(tmpl.ok());
  jinja_template copy = *tmpl;
  EXPECT_EQ(*tmpl->render({{"greeting", "Hi"}}), "Hi, world!");
  EXPECT_EQ(*copy.render({{"greeting", "Hello"}, {"name", "Ada"}}), "Hello, Ada!");
  auto bad = tmpl->render(json::array());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::bad_request);
}

TEST(jinja_template, unsupported_constructs_fail_at_compile_naming_the_line) {
  auto e = compile_error("a\nb\nc\nd\ne\nf\n{{ x | wordwrap }}");
  EXPECT_EQ(e.code, errc::unsupported);
  EXPECT_EQ(e.message.rfind("chat template line 7: unsupported filter 'wordwrap'", 0), 0u) << e.message;
  for (const char* tag : {"include 'x'", "extends 'base'", "import 'm' as m", "from 'm' import x", "call m()",
                          "block b"}) {
    auto err = compile_error(std::string("one\n{% ") + tag + " %}");
    EXPECT_EQ(err.code, errc::unsupported) << tag;
    std::string word = std::string(tag).substr(0, std::string(tag).find(' '));
    EXPECT_NE(err.message.find("line 2: unsupported tag '" + word + "'"), std::string::npos) << err.message;
  }
  auto t = compile_error("\n{{ x is frobbed }}");
  EXPECT_EQ(t.code, errc::unsupported);
  EXPECT_NE(t.message.find("line 2: unsupported test 'frobbed'"), std::string::npos) << t.message;
  EXPECT_NE(compile_error("{{ foo(1) }}").message.find("line 1: unsupported function 'foo'"), std::string::npos);
  EXPECT_NE(compile_error("{{ 'abc'.nope() }}").message.find("unsupported method 'nope'"), std::string::npos);
  EXPECT_NE(compile_error("{{ [1] | select('nonexistent') | list }}").message.find("unsupported test 'nonexistent'"),
            std::string::npos);
  EXPECT_NE(compile_error("{% for x in y recursive %}{% endfor %}").message.find("recursive"), std::string::npos);
}

TEST(jinja_template, syntax_errors_fail_at_compile_naming_the_line) {
  auto open_if = compile_error("a\n{% if x %}\nb\n{% for y in z %}{% endfor %}\n");
  EXPECT_EQ(open_if.code, errc::bad_request);
  EXPECT_NE(open_if.message.find("line 2: unterminated 'if' block: no 'endif'"), std::string::npos) << open_if.message;
  auto crossed = compile_error("{% for x in y %}\n{% if x %}\n{% endfor %}");
  EXPECT_NE(crossed.message.find("line 3: unexpected 'endfor'"), std::string::npos) << crossed.message;
  EXPECT_NE(compile_error("{% endif %}").message.find("line 1: unexpected 'endif'"), std::string::npos);
  EXPECT_NE(compile_error("\n\n{{ 1 + }}").message.find("line 3: expected an expression"), std::string::npos);
  EXPECT_NE(compile_error("{{ x").message.find("unclosed tag '{{'"), std::string::npos);
  EXPECT_NE(compile_error("{{ 'open }}").message.find("unclosed string"), std::string::npos);
  EXPECT_NE(compile_error("{# open").message.find("unclosed comment"), std::string::npos);
  EXPECT_NE(compile_error("{% break %}").message.find("'break' outside a loop"), std::string::npos);
  EXPECT_EQ(compile_error("{% set %}").code, errc::bad_request);
}

TEST(jinja_template, raise_exception_fails_render_with_its_message) {
  auto e = render_error("{% for m in messages %}\n{% if m.role == 'assistant' %}\n"
                        "{{ raise_exception('Roles must alternate user/assistant!') }}\n{% endif %}\n{% endfor %}",
                        {{"messages", messages}});
  EXPECT_EQ(e.code, errc::bad_request);
  EXPECT_EQ(e.message.rfind("chat template line 3: Roles must alternate user/assistant!", 0), 0u) << e.message;
}

TEST(jinja_template, runtime_errors_name_the_line) {
  auto type = render_error("ok\n{{ 'a' + 1 }}");
  EXPECT_EQ(type.code, errc::bad_request);
  EXPECT_NE(type.message.find("line 2: unsupported operand type(s) for +: 'str' and 'int'"), std::string::npos)
      << type.message;
  auto method = render_error("\n\n{{ messages[0].content.nope() }}", {{"messages", messages}});
  EXPECT_NE(method.message.find("line 3: 'str' object has no method 'nope'"), std::string::npos) << method.message;
  auto undefined_method = render_error("{{ x.strip() }}");
  EXPECT_NE(undefined_method.message.find("'x' is undefined"), std::string::npos) << undefined_method.message;
  EXPECT_NE(render_error("{{ 1 / 0 }}").message.find("division by zero"), std::string::npos);
  EXPECT_NE(render_error("{{ missing | tojson }}").message.find("not JSON serializable"), std::string::npos);
  EXPECT_NE(render_error("{% set x = 1 %}{% set x.y = 2 %}").message.find("not a namespace"), std::string::npos);
  EXPECT_NE(render_error("{{ range(1000000) | length }}").message.find("range too big"), std::string::npos);
}

}  // namespace
}  // namespace yard::backends::chat::jinja
