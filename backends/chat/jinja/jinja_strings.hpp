// backends/chat/jinja/jinja_strings.hpp — Python string semantics over UTF-8 bytes.
//
// Owns: code point counting and offsets (Python indexes, slices and measures str by code point), and the
// str methods and filters that transform text: strip, split, replace, count, find, case changes, repr()
// quoting and HTML escaping.
// Must not touch: values (jinja_value.hpp); these work on plain strings only.
// Limits: case changes know ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic (other scripts pass through
// unchanged); whitespace is the ASCII set Python uses (" \t\n\r\v\f" and \x1c-\x1f).
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace yard::backends::chat::jinja {

bool is_ascii(std::string_view s);
bool is_py_space(char c);
std::size_t code_point_count(std::string_view s);
// The byte offset where each code point starts, followed by s.size(); invalid bytes count as one code point.
std::vector<std::size_t> code_point_offsets(std::string_view s);
// The code point at byte `pos`; advances `pos` past it.
char32_t decode_utf8(std::string_view s, std::size_t& pos);
void append_utf8(std::string& out, char32_t cp);

std::string py_lower(std::string_view s);
std::string py_upper(std::string_view s);
std::string py_capitalize(std::string_view s);  // str.capitalize() and the `capitalize` filter
std::string py_title(std::string_view s);       // str.title(): every letter after a non-letter is upper
std::string jinja_title(std::string_view s);    // the `title` filter: words start after whitespace - ( { [ <

// str.strip/lstrip/rstrip: `chars` absent strips whitespace, else any of its code points.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split: `sep` absent splits on runs of whitespace and drops empty parts; maxsplit < 0 is unlimited.
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, std::int64_t maxsplit);
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);
// str.replace; count < 0 replaces all; an empty `old` inserts `repl` around every code point.
std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, std::int64_t count);
std::int64_t py_count(std::string_view s, std::string_view sub);  // non-overlapping occurrences
// str.find/rfind as a code point index, -1 when absent.
std::int64_t py_find(std::string_view s, std::string_view sub, bool reverse);

// repr() of a str: single quotes unless the text has ' and no ", backslash escapes for control characters.
void append_py_repr(std::string& out, std::string_view s);
// markupsafe's escape: & < > " ' become &amp; &lt; &gt; &#34; &#39;.
std::string html_escape(std::string_view s);

}  // namespace yard::backends::chat::jinja
