// backends/structured/json_grammar.hpp — the compiled form of a JSON schema.
//
// Owns: json_grammar, the value graph a json_matcher walks: one node per
// schema (object, array, string, number, integer, a set of literal values,
// an alternation), the byte tries of literal values and of property names,
// and what finalize() derives once (flattened alternations, each node's
// shortest instance and the nesting it needs, per-object tables).
// Must not touch: JSON Schema parsing (json_schema_compiler), matching state
// (json_matcher), tokens (token_trie, token_mask).
// Thread-safety: immutable once finalize() succeeded; share one grammar
// between requests and threads as std::shared_ptr<const json_grammar>.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace yard::backends::structured {

// Frames one matcher thread may stack: the root, then one per open object,
// array, string, key, number or literal. Bounds $ref recursion and the cost
// of copying a matcher; a value whose shortest instance would nest deeper is
// not started.
inline constexpr int max_nesting = 32;

// Declared properties per object (a 64-bit mask tracks them).
inline constexpr std::size_t max_properties = 64;

enum class node_kind : std::uint8_t { object, array, string, number, integer, literal, alternation };

struct trie_edge {
  unsigned char byte = 0;
  std::int32_t next = -1;  // index into json_grammar::tries
};

// One node of a byte trie: literal values (canonical JSON text) or property
// names (as typed between the quotes).
struct trie_node {
  std::vector<trie_edge> edges;   // sorted by byte
  std::int32_t value = -1;        // literal tries: 0 where a value ends; key tries: the property index
  std::uint64_t props_below = 0;  // key tries: bit p when property p's name ends here or below
  std::uint32_t to_end = 0;       // literal tries: bytes to the nearest value end
  unsigned char toward_end = 0;   // literal tries: the first byte on that path

  std::int32_t child(unsigned char b) const {
    for (const auto& e : edges)
      if (e.byte == b) return e.next;
    return -1;
  }
};

struct property_def {
  std::string name;         // decoded
  std::string spelled;      // as typed between the quotes (nlohmann's escaping, UTF-8 kept)
  std::int32_t value = -1;  // node of its value
  bool required = false;
};

struct grammar_node {
  node_kind kind = node_kind::alternation;

  // object: properties in declaration order; the matcher accepts them in
  // that order, optional ones may be skipped, other keys (when `additional`
  // allows them) anywhere.
  std::vector<property_def> props;  // at most max_properties
  std::int32_t additional = -1;     // node for undeclared keys; -1: none allowed
  std::int32_t key_trie = -1;       // trie of props' spelled names; -1 when props is empty
  std::string spare_key;            // a short key that is no declared name (completions)
  std::vector<std::uint32_t> next_required;  // [props+1] first required index >= i, else props.size()
  std::vector<std::uint32_t> required_tail;  // [props+1] bytes of `,"k":v` per required from i, plus `}`
  std::array<std::uint64_t, max_nesting + 1> fit_props{};  // [room] props whose shortest value needs <= room frames

  // array
  std::int32_t items = -1;
  std::uint32_t min_items = 0;
  std::uint32_t max_items = UINT32_MAX;

  // string (code points)
  std::uint32_t min_length = 0;
  std::uint32_t max_length = UINT32_MAX;

  // literal: the values' canonical texts in one trie
  std::int32_t literal_trie = -1;

  // alternation
  std::vector<std::int32_t> branches;  // as compiled (may be alternations themselves)
  std::vector<std::int32_t> leaves;    // finalize(): flattened, no alternations, no repeats

  // finalize()
  std::string shortest;    // the shortest instance, compact (alternation: its shortest leaf's)
  std::uint8_t depth = 0;  // frames that instance needs
};

// Built by compile_json_schema (or any_object), then finalize()d once.
struct json_grammar {
  std::int32_t root = -1;
  std::vector<grammar_node> nodes;
  std::vector<trie_node> tries;

  // Any JSON object (response_format json_object): keys free, values any JSON.
  static json_grammar any_object();

  std::int32_t add(grammar_node n);
  // A literal node over these canonical JSON texts (each a whole value).
  std::int32_t add_literals(const std::vector<std::string>& texts);
  // The node for any JSON value (made once per grammar).
  std::int32_t add_any();

  // Derives leaves, shortest instances, depths and object tables. Errors:
  // bad_request when a node has no finite instance (or none under 64 KiB),
  // unsupported when the root's shortest instance nests over max_nesting.
  // On error the grammar must not be used.
  status finalize();

 private:
  std::int32_t any_ = -1;
};

}  // namespace yard::backends::structured
