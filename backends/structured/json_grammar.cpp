// backends/structured/json_grammar.cpp — building and finalizing a json_grammar (see json_grammar.hpp).
#include "backends/structured/json_grammar.hpp"

#include <algorithm>
#include <cassert>
#include <limits>

namespace yard::backends::structured {

namespace {

constexpr std::size_t max_shortest_bytes = 64 * 1024;

// Inserts `text` into the trie rooted at `root`; returns the node it ends at.
std::int32_t trie_insert(std::vector<trie_node>& tries, std::int32_t root, const std::string& text) {
  std::int32_t n = root;
  for (unsigned char b : text) {
    std::int32_t c = tries[n].child(b);
    if (c < 0) {
      c = static_cast<std::int32_t>(tries.size());
      tries.emplace_back();
      auto& edges = tries[n].edges;
      auto at = std::lower_bound(edges.begin(), edges.end(), b, [](const trie_edge& e, unsigned char v) { return e.byte < v; });
      edges.insert(at, trie_edge{b, c});
    }
    n = c;
  }
  return n;
}

// Children are created after their parents, so a reverse sweep over the
// indices of one trie sees every child before its parent.
void compute_to_end(std::vector<trie_node>& tries, std::int32_t first, std::int32_t last) {
  for (std::int32_t i = last - 1; i >= first; --i) {
    auto& n = tries[i];
    if (n.value >= 0) { n.to_end = 0; continue; }
    n.to_end = std::numeric_limits<std::uint32_t>::max();
    for (const auto& e : n.edges)
      if (tries[e.next].to_end + 1 < n.to_end) { n.to_end = tries[e.next].to_end + 1; n.toward_end = e.byte; }
  }
}

// Collects the non-alternation nodes reachable through alternations from `i`.
void flatten(const std::vector<grammar_node>& nodes, std::int32_t i, std::vector<bool>& seen, std::vector<std::int32_t>& out) {
  if (seen[i]) return;
  seen[i] = true;
  if (nodes[i].kind != node_kind::alternation) { out.push_back(i); return; }
  for (auto b : nodes[i].branches) flatten(nodes, b, seen, out);
}

struct candidate {
  bool ok = false;
  std::string text;
  std::uint8_t depth = 0;
};

candidate shortest_of(const json_grammar& g, const grammar_node& n, const std::vector<bool>& known) {
  candidate c;
  auto known_value = [&](std::int32_t i) { return known[i]; };
  switch (n.kind) {
    case node_kind::object: {
      c.text = "{";
      std::uint8_t deepest = 0;
      bool first = true;
      for (const auto& p : n.props) {
        if (!p.required) continue;
        if (!known_value(p.value)) return {};
        if (!first) c.text += ',';
        first = false;
        c.text += '"' + p.spelled + "\":" + g.nodes[p.value].shortest;
        deepest = std::max(deepest, g.nodes[p.value].depth);
      }
      c.text += '}';
      c.depth = static_cast<std::uint8_t>(1 + deepest);
      break;
    }
    case node_kind::array: {
      c.depth = 1;
      if (n.min_items == 0) { c.text = "[]"; break; }
      if (!known_value(n.items)) return {};
      const auto& s = g.nodes[n.items].shortest;
      if (static_cast<std::size_t>(n.min_items) * (s.size() + 1) > max_shortest_bytes) return {};
      c.text = "[" + s;
      for (std::uint32_t k = 1; k < n.min_items; ++k) c.text += "," + s;
      c.text += ']';
      c.depth = static_cast<std::uint8_t>(1 + g.nodes[n.items].depth);
      break;
    }
    case node_kind::string:
      if (n.min_length > max_shortest_bytes) return {};
      c.text = "\"" + std::string(n.min_length, 'a') + "\"";
      c.depth = 1;
      break;
    case node_kind::number:
    case node_kind::integer:
      c.text = "0";
      c.depth = 1;
      break;
    case node_kind::literal: {
      std::int32_t t = n.literal_trie;
      while (g.tries[t].value < 0) {
        c.text += static_cast<char>(g.tries[t].toward_end);
        t = g.tries[t].child(g.tries[t].toward_end);
      }
      c.depth = 1;
      break;
    }
    case node_kind::alternation: {
      for (auto l : n.leaves) {
        if (!known[l]) continue;
        const auto& ln = g.nodes[l];
        if (!c.ok || ln.shortest.size() < c.text.size() || (ln.shortest.size() == c.text.size() && ln.depth < c.depth)) {
          c.ok = true;
          c.text = ln.shortest;
          c.depth = ln.depth;
        }
      }
      return c;
    }
  }
  c.ok = c.text.size() <= max_shortest_bytes;
  return c;
}

void build_object_tables(json_grammar& g, grammar_node& n) {
  const std::size_t np = n.props.size();
  n.next_required.assign(np + 1, static_cast<std::uint32_t>(np));
  n.required_tail.assign(np + 1, 1);  // `}`
  for (std::size_t i = np; i-- > 0;) {
    const auto& p = n.props[i];
    n.next_required[i] = p.required ? static_cast<std::uint32_t>(i) : n.next_required[i + 1];
    n.required_tail[i] = n.required_tail[i + 1];
    if (p.required) n.required_tail[i] += static_cast<std::uint32_t>(1 + p.spelled.size() + 3 + g.nodes[p.value].shortest.size());
  }
  for (int room = 0; room <= max_nesting; ++room) {
    std::uint64_t m = 0;
    for (std::size_t p = 0; p < np; ++p)
      if (g.nodes[n.props[p].value].depth <= room) m |= std::uint64_t{1} << p;
    n.fit_props[room] = m;
  }
  if (np > 0 && n.key_trie < 0) {
    n.key_trie = static_cast<std::int32_t>(g.tries.size());
    g.tries.emplace_back();
    for (std::size_t p = 0; p < np; ++p) {
      std::int32_t t = n.key_trie;
      g.tries[t].props_below |= std::uint64_t{1} << p;
      for (unsigned char b : n.props[p].spelled) {
        t = trie_insert(g.tries, t, std::string(1, static_cast<char>(b)));
        g.tries[t].props_below |= std::uint64_t{1} << p;
      }
      g.tries[t].value = static_cast<std::int32_t>(p);
    }
  }
  // The spare key must not be a declared name: "", then "a".."z", then "k0"...
  auto declared = [&](const std::string& k) {
    return std::any_of(n.props.begin(), n.props.end(), [&](const property_def& p) { return p.spelled == k; });
  };
  n.spare_key.clear();
  for (int i = 0; declared(n.spare_key); ++i)
    n.spare_key = i < 26 ? std::string(1, static_cast<char>('a' + i)) : "k" + std::to_string(i);
}

}  // namespace

std::int32_t json_grammar::add(grammar_node n) {
  nodes.push_back(std::move(n));
  return static_cast<std::int32_t>(nodes.size() - 1);
}

std::int32_t json_grammar::add_literals(const std::vector<std::string>& texts) {
  grammar_node n;
  n.kind = node_kind::literal;
  n.literal_trie = static_cast<std::int32_t>(tries.size());
  tries.emplace_back();
  for (const auto& t : texts) tries[trie_insert(tries, n.literal_trie, t)].value = 0;
  compute_to_end(tries, n.literal_trie, static_cast<std::int32_t>(tries.size()));
  return add(std::move(n));
}

std::int32_t json_grammar::add_any() {
  if (any_ >= 0) return any_;
  any_ = add(grammar_node{});  // alternation, branches below
  grammar_node obj;
  obj.kind = node_kind::object;
  obj.additional = any_;
  grammar_node arr;
  arr.kind = node_kind::array;
  arr.items = any_;
  grammar_node str;
  str.kind = node_kind::string;
  grammar_node num;
  num.kind = node_kind::number;
  std::vector<std::int32_t> b;
  b.push_back(add(std::move(obj)));
  b.push_back(add(std::move(arr)));
  b.push_back(add(std::move(str)));
  b.push_back(add(std::move(num)));
  b.push_back(add_literals({"true", "false", "null"}));
  nodes[any_].branches = std::move(b);
  return any_;
}

json_grammar json_grammar::any_object() {
  json_grammar g;
  const auto any = g.add_any();
  g.root = g.nodes[any].branches[0];  // the object branch: no declared keys, any values
  [[maybe_unused]] auto s = g.finalize();
  assert(s.ok());
  return g;
}

status json_grammar::finalize() {
  if (root < 0 || root >= static_cast<std::int32_t>(nodes.size()))
    return make_error(errc::internal, "json grammar has no root");
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].kind != node_kind::alternation) continue;
    std::vector<bool> seen(nodes.size(), false);
    std::vector<std::int32_t> leaves;
    flatten(nodes, static_cast<std::int32_t>(i), seen, leaves);
    nodes[i].leaves = std::move(leaves);
  }
  // Shortest instances: a fixed point over the (possibly recursive) graph.
  // A node's (length, depth) only ever decreases, so the sweep ends.
  std::vector<bool> known(nodes.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      auto c = shortest_of(*this, nodes[i], known);
      if (!c.ok) continue;
      auto& n = nodes[i];
      if (!known[i] || c.text.size() < n.shortest.size() || (c.text.size() == n.shortest.size() && c.depth < n.depth)) {
        known[i] = true;
        n.shortest = std::move(c.text);
        n.depth = c.depth;
        changed = true;
      }
    }
  }
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (!known[i])
      return make_error(errc::bad_request, "the schema has a part no finite JSON value (under 64 KiB) satisfies");
  if (1 + nodes[root].depth > max_nesting)
    return make_error(errc::unsupported, "the schema's smallest value nests deeper than " +
                                             std::to_string(max_nesting - 1) + " levels");
  for (auto& n : nodes)
    if (n.kind == node_kind::object) build_object_tables(*this, n);
  return status::success();
}

}  // namespace yard::backends::structured
