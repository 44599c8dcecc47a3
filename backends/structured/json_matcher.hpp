// backends/structured/json_matcher.hpp — byte-level incremental recognizer of one JSON value.
//
// Owns: the matching state of one value against a json_grammar: up to
// max_threads pushdown stacks ("threads", one per alternation branch still
// alive) of small fixed-size frames, byte steps, completion checks and the
// shortest completion. Copying is cheap (only live frames are copied): the
// token mask copies a matcher once per vocabulary trie node it visits.
// Must not touch: tokens and logits (token_mask, json_constraint), schema
// parsing (json_schema_compiler).
// Thread-safety: a value type; the grammar it points at is immutable and
// must outlive it. One matcher is used by one thread at a time.
//
// Accepted text (a subset of JSON, so every completed text parses):
// - no whitespace before or after the value; between tokens (after { [ : ,
//   and before : , } ]) at most one space or newline, so a model cannot loop
//   on whitespace;
// - strings: UTF-8 checked strictly (no overlongs, no surrogates, nothing
//   over U+10FFFF), no raw control bytes, escapes \" \\ \/ \b \f \n \r \t and
//   \uXXXX except surrogates (\uD800-\uDFFF: write the UTF-8 instead);
//   keys of an object with declared properties have no escapes except the
//   ones in a declared name's canonical spelling;
// - numbers: JSON syntax, at most 16 integer digits, 16 fraction digits and
//   2 exponent digits (every number fits a double); integers have no fraction or exponent;
// - objects: declared properties in declaration order (optional ones may be
//   skipped), all required ones before `}`; extra keys where allowed, never a
//   declared name;
// - enum/const values, true, false, null: their compact canonical text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "backends/structured/json_grammar.hpp"

namespace yard::backends::structured {

class json_matcher {
 public:
  // Alternation branches matched at once; further ones sharing a first byte
  // are dropped (the value still validates, those branches are not produced).
  static constexpr int max_threads = 8;

  json_matcher() = default;  // no grammar: only an assignment target
  explicit json_matcher(const json_grammar& g);  // before the first byte
  json_matcher(const json_matcher& o);
  json_matcher& operator=(const json_matcher& o);

  // False (state unchanged) when `b` may not come next.
  bool accept(unsigned char b);
  // All bytes or none: false leaves the state unchanged.
  bool accept(std::string_view bytes);
  // accept() for hot loops: on false the matcher is left unusable (assign to it).
  bool try_advance(unsigned char b);

  // The value is finished: the text so far is a valid instance.
  bool complete() const;
  // Some byte may still follow (a complete top-level number may grow).
  bool can_continue() const;

  // The shortest bytes that make the value complete from here ("" when
  // complete()): closes strings, adds required properties and minItems items
  // with minimal values, closes arrays and objects.
  std::string shortest_completion() const;
  std::size_t shortest_completion_size() const;

  // True when the matcher is inside a string (value or key) where any run of
  // plain characters — no quote, backslash or control byte, whole UTF-8
  // characters — is accepted and changes nothing but the character count;
  // `room` is how many more characters the string takes (maxLength).
  bool in_plain_string(std::uint32_t& room) const;

  bool has_grammar() const { return g_ != nullptr; }

 private:
  enum class frame_kind : std::uint8_t { root, object, array, string, key, number, literal };
  // All fields are set when a frame is pushed; 16 bytes, no padding.
  struct frame {
    std::int32_t node;    // grammar node (a key frame: its object's node)
    std::int32_t aux;     // literal/key: trie node (-1: off the trie); object: current property (-1: extra key)
    std::uint32_t count;  // object: next property; array: items begun; string: code points; key: bytes on the trie
    frame_kind kind;
    std::uint8_t state;   // per kind, see json_matcher.cpp
    std::uint8_t sub;     // string/key: pending UTF-8 bytes or \u digits; number: digits in the current part
    std::uint8_t flags;   // whitespace used in this gap, \uD restriction, UTF-8 continuation range
  };
  struct thread {
    std::uint8_t depth;
    frame f[max_nesting];
  };
  struct sink;

  static void copy_thread(thread& dst, const thread& src);
  static bool lex_byte(frame& f, unsigned char b);
  bool step(int ti, unsigned char b);
  bool start_value(int ti, std::int32_t node, unsigned char b);
  void push_leaf(thread& t, std::int32_t leaf, unsigned char b) const;
  bool object_step(int ti, unsigned char b);
  bool array_step(int ti, unsigned char b);
  bool key_step(thread& t, unsigned char b);
  bool string_step(thread& t, unsigned char b);
  bool number_step(frame& f, unsigned char b) const;
  void dedupe();

  bool fits(int slot, std::int32_t node) const;
  std::uint64_t allowed_props(const grammar_node& o, std::uint32_t next, int slot) const;
  bool extra_key_ok(const grammar_node& o, int slot) const;
  bool key_possible(const grammar_node& o, std::uint32_t next, int slot) const;

  // Completion (json_matcher_completion.cpp).
  void finish_thread(const thread& t, sink& out) const;
  void finish_key(const thread& t, sink& out) const;
  void finish_object(const thread& t, int i, sink& out) const;
  void finish_array(const frame& f, sink& out) const;
  void put_required(const grammar_node& o, std::uint32_t from, bool comma, sink& out) const;
  bool extra_key_suffix(const frame& k, const grammar_node& o, std::string& out) const;

  const json_grammar* g_ = nullptr;
  std::uint8_t n_ = 0;  // live threads
  thread t_[max_threads];
};

}  // namespace yard::backends::structured
