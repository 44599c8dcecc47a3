// backends/structured/json_matcher_completion.cpp — json_matcher's shortest completion (see json_matcher.hpp).
//
// A thread's completion finishes its top frame, then closes every frame
// below it (the root adds nothing). Each piece is the cheapest valid choice
// by the byte lengths finalize() precomputed; the same code counts (sink
// without a string) and writes, so shortest_completion_size() costs a walk
// over the frames and no allocation.
#include <cassert>

#include "backends/structured/json_matcher.hpp"
#include "backends/structured/json_matcher_states.hpp"

namespace yard::backends::structured {

using namespace matcher_states;

struct json_matcher::sink {
  std::string* s = nullptr;  // null: count only
  std::size_t n = 0;
  void put(char c) {
    ++n;
    if (s) s->push_back(c);
  }
  void put(std::string_view v) {
    n += v.size();
    if (s) s->append(v);
  }
  void fill(char c, std::size_t k) {
    n += k;
    if (s) s->append(k, c);
  }
};

namespace {

// Bytes that finish the character or escape a string lexer is inside.
void finish_lexer(std::uint8_t state, std::uint8_t sub, std::uint8_t flags, std::string& out) {
  if (state == lex_utf8) {
    out.push_back(static_cast<char>(range_lo[(flags & range_mask) >> range_shift]));
    out.append(sub - 1, static_cast<char>(0x80));
  } else if (state == lex_escape) {
    out.push_back('n');
  } else if (state == lex_hex) {
    out.append(4 - sub, '0');  // '0' is fine after \uD too (U+D000 is no surrogate)
  }
}

}  // namespace

std::string json_matcher::shortest_completion() const {
  if (n_ == 0) return {};
  int best = 0;
  std::size_t best_n = SIZE_MAX;
  for (int i = 0; i < n_; ++i) {
    sink count;
    finish_thread(t_[i], count);
    if (count.n < best_n) { best_n = count.n; best = i; }
  }
  std::string out;
  out.reserve(best_n);
  sink w{&out};
  finish_thread(t_[best], w);
  return out;
}

std::size_t json_matcher::shortest_completion_size() const {
  std::size_t best = n_ == 0 ? 0 : SIZE_MAX;
  for (int i = 0; i < n_; ++i) {
    sink count;
    finish_thread(t_[i], count);
    best = std::min(best, count.n);
  }
  return best;
}

void json_matcher::finish_thread(const thread& t, sink& out) const {
  int i = t.depth - 1;
  const frame& f = t.f[i];
  switch (f.kind) {
    case frame_kind::root:
      if (f.state == root_before) out.put(g_->nodes[g_->root].shortest);
      return;
    case frame_kind::literal:
      for (std::int32_t n = f.aux; g_->tries[n].value < 0; n = g_->tries[n].child(g_->tries[n].toward_end))
        out.put(static_cast<char>(g_->tries[n].toward_end));
      break;
    case frame_kind::number:
      if (f.state == num_minus || f.state == num_dot || f.state == num_exp_mark || f.state == num_exp_sign) out.put('0');
      break;
    case frame_kind::string: {
      std::string tail;
      finish_lexer(f.state, f.sub, f.flags, tail);
      out.put(tail);
      const auto min = g_->nodes[f.node].min_length;
      if (f.count < min) out.fill('a', min - f.count);
      out.put('"');
      break;
    }
    case frame_kind::key:
      finish_key(t, out);  // closes the object below too
      --i;
      break;
    case frame_kind::object: finish_object(t, i, out); break;
    case frame_kind::array: finish_array(f, out); break;
  }
  // Frames below the top wait in after_value: close each.
  for (--i; i >= 1; --i) {
    const frame& b = t.f[i];
    if (b.kind == frame_kind::object) {
      put_required(g_->nodes[b.node], b.count, true, out);
      out.put('}');
    } else {
      assert(b.kind == frame_kind::array && b.state == arr_after_value);
      finish_array(b, out);
    }
  }
}

void json_matcher::put_required(const grammar_node& o, std::uint32_t from, bool comma, sink& out) const {
  for (std::size_t p = from; p < o.props.size(); ++p) {
    if (!o.props[p].required) continue;
    if (comma) out.put(',');
    comma = true;
    out.put('"');
    out.put(o.props[p].spelled);
    out.put("\":");
    out.put(g_->nodes[o.props[p].value].shortest);
  }
}

void json_matcher::finish_object(const thread& t, int i, sink& out) const {
  const frame& f = t.f[i];
  const grammar_node& o = g_->nodes[f.node];
  const bool more_required = f.count < o.props.size() && o.next_required[f.count] < o.props.size();
  switch (f.state) {
    case obj_open:
      put_required(o, f.count, false, out);
      break;
    case obj_after_comma: {
      if (more_required) { put_required(o, f.count, false, out); break; }
      // A key must follow the comma: the cheapest optional property or extra key.
      const std::uint64_t allowed = allowed_props(o, f.count, i + 1);
      std::size_t best_len = SIZE_MAX;
      const std::string* key = nullptr;
      std::int32_t value = -1;
      for (std::size_t p = 0; p < o.props.size(); ++p) {
        if (!((allowed >> p) & 1)) continue;
        const std::size_t len = o.props[p].spelled.size() + g_->nodes[o.props[p].value].shortest.size();
        if (len < best_len) { best_len = len; key = &o.props[p].spelled; value = o.props[p].value; }
      }
      if (extra_key_ok(o, i + 1) && o.spare_key.size() + g_->nodes[o.additional].shortest.size() < best_len) {
        key = &o.spare_key;
        value = o.additional;
      }
      assert(key);  // the comma was only accepted with a key possible
      if (!key) break;
      out.put('"');
      out.put(*key);
      out.put("\":");
      out.put(g_->nodes[value].shortest);
      break;
    }
    case obj_after_key:
    case obj_after_colon:
      if (f.state == obj_after_key) out.put(':');
      out.put(g_->nodes[f.aux >= 0 ? o.props[f.aux].value : o.additional].shortest);
      put_required(o, f.count, true, out);
      break;
    default:  // after_value
      put_required(o, f.count, true, out);
      break;
  }
  out.put('}');
}

void json_matcher::finish_array(const frame& f, sink& out) const {
  const grammar_node& a = g_->nodes[f.node];
  const std::string& s = g_->nodes[a.items].shortest;
  std::uint32_t done = f.count;
  if (f.state == arr_after_comma || (f.state == arr_open && a.min_items > 0)) {
    out.put(s);  // the item the comma (or min_items) asks for
    ++done;
  }
  for (; done < a.min_items; ++done) {
    out.put(',');
    out.put(s);
  }
  out.put(']');
}

// Candidates: finish a declared name that may come here (its value and the
// remaining required ones follow), or, where extra keys are allowed, close
// the key as it stands (finishing a character, stepping off a declared name).
void json_matcher::finish_key(const thread& t, sink& out) const {
  const frame& k = t.f[t.depth - 1];
  const int oi = t.depth - 2;
  const frame& of = t.f[oi];
  const grammar_node& o = g_->nodes[k.node];
  std::size_t best_len = SIZE_MAX;
  std::int32_t best_p = -1;
  if (k.aux >= 0) {
    const std::uint64_t cand = allowed_props(o, of.count, oi + 1) & g_->tries[k.aux].props_below;
    for (std::size_t p = 0; p < o.props.size(); ++p) {
      if (!((cand >> p) & 1)) continue;
      const std::size_t len = o.props[p].spelled.size() - k.count + 2 + g_->nodes[o.props[p].value].shortest.size() +
                              o.required_tail[p + 1];
      if (len < best_len) { best_len = len; best_p = static_cast<std::int32_t>(p); }
    }
  }
  std::string extra;
  if (extra_key_ok(o, oi + 1) && extra_key_suffix(k, o, extra)) {
    const std::size_t len = extra.size() + 2 + g_->nodes[o.additional].shortest.size() + o.required_tail[of.count];
    if (len < best_len) { best_len = len; best_p = -2; }
  }
  assert(best_len != SIZE_MAX);  // the key step keeps one candidate alive
  if (best_p == -2) {
    out.put(extra);
    out.put("\":");
    out.put(g_->nodes[o.additional].shortest);
    put_required(o, of.count, true, out);
  } else if (best_p >= 0) {
    const auto& p = o.props[best_p];
    out.put(std::string_view(p.spelled).substr(k.count));
    out.put("\":");
    out.put(g_->nodes[p.value].shortest);
    put_required(o, static_cast<std::uint32_t>(best_p + 1), true, out);
  }
  out.put('}');
}

bool json_matcher::extra_key_suffix(const frame& k, const grammar_node& o, std::string& out) const {
  if ((k.state == lex_escape || k.state == lex_hex) && o.key_trie >= 0) return false;
  finish_lexer(k.state, k.sub, k.flags, out);
  if (k.aux < 0) return true;
  std::int32_t n = k.aux;
  for (unsigned char c : out)
    if (n >= 0) n = g_->tries[n].child(c);
  if (n >= 0 && g_->tries[n].value >= 0) {
    // The key would spell a declared name: add a letter that leaves the trie.
    for (char c = 'a'; c <= 'z'; ++c)
      if (g_->tries[n].child(static_cast<unsigned char>(c)) < 0) { out.push_back(c); return true; }
    for (char c = '0'; c <= '9'; ++c)
      if (g_->tries[n].child(static_cast<unsigned char>(c)) < 0) { out.push_back(c); return true; }
    return false;
  }
  return true;
}

}  // namespace yard::backends::structured
