// backends/structured/json_matcher.cpp — byte steps of json_matcher (see json_matcher.hpp).
//
// Every step mutates a thread in place; a thread whose step fails is dropped
// (garbage included), which is why accept() keeps a copy to restore.
#include "backends/structured/json_matcher.hpp"

#include <cassert>
#include <cstring>

#include "backends/structured/json_matcher_states.hpp"

namespace yard::backends::structured {

using namespace matcher_states;

namespace {

bool is_ws(unsigned char b) { return b == ' ' || b == '\n'; }
bool is_digit(unsigned char b) { return b >= '0' && b <= '9'; }

}  // namespace

json_matcher::json_matcher(const json_grammar& g) : g_(&g), n_(1) {
  t_[0].depth = 1;
  t_[0].f[0] = frame{-1, -1, 0, frame_kind::root, root_before, 0, 0};
}

json_matcher::json_matcher(const json_matcher& o) : g_(o.g_), n_(o.n_) {
  for (int i = 0; i < n_; ++i) copy_thread(t_[i], o.t_[i]);
}

json_matcher& json_matcher::operator=(const json_matcher& o) {
  if (this == &o) return *this;
  g_ = o.g_;
  n_ = o.n_;
  for (int i = 0; i < n_; ++i) copy_thread(t_[i], o.t_[i]);
  return *this;
}

// Fixed 64-byte chunks: a variable-length memcpy of a few frames compiles to
// `rep movs`, whose start-up cost dominated the token mask walk. Up to three
// frames past the depth are copied along; they are never read.
void json_matcher::copy_thread(thread& dst, const thread& src) {
  static_assert(max_nesting % 4 == 0);
  dst.depth = src.depth;
  for (int k = 0; k < src.depth; k += 4) std::memcpy(&dst.f[k], &src.f[k], 4 * sizeof(frame));
}

bool json_matcher::accept(unsigned char b) {
  json_matcher keep(*this);
  if (try_advance(b)) return true;
  *this = keep;
  return false;
}

bool json_matcher::accept(std::string_view bytes) {
  json_matcher keep(*this);
  for (unsigned char b : bytes)
    if (!try_advance(b)) { *this = keep; return false; }
  return true;
}

bool json_matcher::try_advance(unsigned char b) {
  const int n0 = n_;
  bool ok[max_threads];
  for (int i = 0; i < n0; ++i) ok[i] = step(i, b);  // forks land at n0.. and are already stepped
  int w = 0;
  for (int i = 0; i < n_; ++i) {
    if (i < n0 && !ok[i]) continue;
    if (w != i) copy_thread(t_[w], t_[i]);
    ++w;
  }
  n_ = static_cast<std::uint8_t>(w);
  if (n_ > 1) dedupe();
  return n_ > 0;
}

void json_matcher::dedupe() {
  int w = 0;
  for (int i = 0; i < n_; ++i) {
    bool dup = false;
    for (int j = 0; j < w && !dup; ++j)
      dup = t_[j].depth == t_[i].depth && std::memcmp(t_[j].f, t_[i].f, sizeof(frame) * t_[i].depth) == 0;
    if (dup) continue;
    if (w != i) copy_thread(t_[w], t_[i]);
    ++w;
  }
  n_ = static_cast<std::uint8_t>(w);
}

bool json_matcher::complete() const {
  for (int i = 0; i < n_; ++i) {
    const auto& t = t_[i];
    const frame& top = t.f[t.depth - 1];
    if (top.kind == frame_kind::root && top.state == root_done) return true;
    if (t.depth != 2) continue;
    if (top.kind == frame_kind::literal && g_->tries[top.aux].value >= 0) return true;
    if (top.kind == frame_kind::number &&
        (top.state == num_zero || top.state == num_int || top.state == num_frac || top.state == num_exp))
      return true;
  }
  return false;
}

bool json_matcher::can_continue() const {
  json_matcher probe;
  for (int b = 0; b < 256; ++b) {
    probe = *this;
    if (probe.try_advance(static_cast<unsigned char>(b))) return true;
  }
  return false;
}

bool json_matcher::in_plain_string(std::uint32_t& room) const {
  if (n_ != 1) return false;
  const auto& t = t_[0];
  const frame& top = t.f[t.depth - 1];
  if (top.state != lex_plain) return false;
  if (top.kind == frame_kind::string) {
    room = g_->nodes[top.node].max_length - top.count;
    return true;
  }
  if (top.kind == frame_kind::key && (top.aux < 0 || g_->nodes[top.node].key_trie < 0)) {
    room = UINT32_MAX;
    return true;
  }
  return false;
}

// ---- grammar helpers --------------------------------------------------------

bool json_matcher::fits(int slot, std::int32_t node) const { return slot + g_->nodes[node].depth <= max_nesting; }

// Declared properties that may come next: from `next` up to the first
// required one (a required property cannot be skipped), whose values fit.
std::uint64_t json_matcher::allowed_props(const grammar_node& o, std::uint32_t next, int slot) const {
  const std::uint32_t np = static_cast<std::uint32_t>(o.props.size());
  if (next >= np) return 0;
  const std::uint32_t hi = o.next_required[next] < np ? o.next_required[next] : np - 1;
  const std::uint64_t upto = hi >= 63 ? ~std::uint64_t{0} : (std::uint64_t{1} << (hi + 1)) - 1;
  const std::uint64_t range = upto & ~((std::uint64_t{1} << next) - 1);
  const int room = max_nesting - slot;
  return room < 0 ? 0 : range & o.fit_props[room];
}

bool json_matcher::extra_key_ok(const grammar_node& o, int slot) const {
  return o.additional >= 0 && fits(slot, o.additional);
}

bool json_matcher::key_possible(const grammar_node& o, std::uint32_t next, int slot) const {
  return allowed_props(o, next, slot) != 0 || extra_key_ok(o, slot);
}

// ---- steps ------------------------------------------------------------------

bool json_matcher::step(int ti, unsigned char b) {
  thread& t = t_[ti];
  for (;;) {
    frame& f = t.f[t.depth - 1];
    switch (f.kind) {
      case frame_kind::root:
        if (f.state != root_before) return false;
        f.state = root_done;
        return start_value(ti, g_->root, b);
      case frame_kind::literal: {
        const trie_node& n = g_->tries[f.aux];
        const std::int32_t c = n.child(b);
        if (c >= 0) {
          f.aux = c;
          if (g_->tries[c].value >= 0 && g_->tries[c].edges.empty()) --t.depth;
          return true;
        }
        if (n.value < 0) return false;
        --t.depth;  // a finished literal that could have gone on (enum 1 and 12): the parent takes b
        continue;
      }
      case frame_kind::number:
        if (number_step(f, b)) return true;
        if (f.state != num_zero && f.state != num_int && f.state != num_frac && f.state != num_exp) return false;
        --t.depth;  // the number ends here: the parent takes b
        continue;
      case frame_kind::string: return string_step(t, b);
      case frame_kind::key: return key_step(t, b);
      case frame_kind::object: return object_step(ti, b);
      case frame_kind::array: return array_step(ti, b);
    }
    return false;
  }
}

// Starts a value of `node` with byte b on thread ti: every alternation leaf
// that can begin with b and fits gets a thread (the first keeps ti).
bool json_matcher::start_value(int ti, std::int32_t node, unsigned char b) {
  const grammar_node& n = g_->nodes[node];
  const std::int32_t single[1] = {node};
  const std::int32_t* leaves = n.kind == node_kind::alternation ? n.leaves.data() : single;
  const std::size_t count = n.kind == node_kind::alternation ? n.leaves.size() : 1;
  const int slot = t_[ti].depth;
  std::int32_t first = -1;
  for (std::size_t i = 0; i < count; ++i) {
    const std::int32_t leaf = leaves[i];
    const grammar_node& l = g_->nodes[leaf];
    bool starts = false;
    switch (l.kind) {
      case node_kind::object: starts = b == '{'; break;
      case node_kind::array: starts = b == '['; break;
      case node_kind::string: starts = b == '"'; break;
      case node_kind::number:
      case node_kind::integer: starts = b == '-' || is_digit(b); break;
      case node_kind::literal: starts = g_->tries[l.literal_trie].child(b) >= 0; break;
      case node_kind::alternation: break;
    }
    if (!starts || !fits(slot, leaf)) continue;
    if (first < 0) { first = leaf; continue; }
    if (n_ >= max_threads) continue;
    copy_thread(t_[n_], t_[ti]);
    push_leaf(t_[n_], leaf, b);
    ++n_;
  }
  if (first < 0) return false;
  push_leaf(t_[ti], first, b);
  return true;
}

void json_matcher::push_leaf(thread& t, std::int32_t leaf, unsigned char b) const {
  const grammar_node& l = g_->nodes[leaf];
  frame f{leaf, -1, 0, frame_kind::root, 0, 0, 0};
  switch (l.kind) {
    case node_kind::object: f.kind = frame_kind::object; f.state = obj_open; break;
    case node_kind::array: f.kind = frame_kind::array; f.state = arr_open; break;
    case node_kind::string: f.kind = frame_kind::string; f.state = lex_plain; break;
    case node_kind::number:
    case node_kind::integer:
      f.kind = frame_kind::number;
      f.state = b == '-' ? num_minus : b == '0' ? num_zero : num_int;
      f.sub = f.state == num_int ? 1 : 0;
      break;
    case node_kind::literal: {
      const std::int32_t c = g_->tries[l.literal_trie].child(b);
      if (g_->tries[c].value >= 0 && g_->tries[c].edges.empty()) return;  // a one-byte literal is already done
      f.kind = frame_kind::literal;
      f.aux = c;
      break;
    }
    case node_kind::alternation: assert(false); return;
  }
  t.f[t.depth++] = f;
}

bool json_matcher::object_step(int ti, unsigned char b) {
  thread& t = t_[ti];
  const int oi = t.depth - 1;
  frame& f = t.f[oi];
  const grammar_node& o = g_->nodes[f.node];
  if (is_ws(b)) {
    if (f.flags & ws_used) return false;
    f.flags |= ws_used;
    return true;
  }
  const bool nothing_required = f.count >= o.props.size() || o.next_required[f.count] >= o.props.size();
  switch (f.state) {
    case obj_open:
    case obj_after_comma:
      if (b == '"') {
        if (!key_possible(o, f.count, oi + 1)) return false;
        f.state = obj_in_key;
        f.flags &= ~ws_used;
        t.f[t.depth++] = frame{f.node, o.key_trie, 0, frame_kind::key, lex_plain, 0, 0};
        return true;
      }
      if (b == '}' && f.state == obj_open && nothing_required) { --t.depth; return true; }
      return false;
    case obj_after_key:
      if (b != ':') return false;
      f.state = obj_after_colon;
      f.flags &= ~ws_used;
      return true;
    case obj_after_colon: {
      f.state = obj_after_value;
      f.flags &= ~ws_used;
      const std::int32_t value = f.aux >= 0 ? o.props[f.aux].value : o.additional;
      return start_value(ti, value, b);
    }
    case obj_after_value:
      if (b == ',') {
        if (!key_possible(o, f.count, oi + 1)) return false;
        f.state = obj_after_comma;
        f.flags &= ~ws_used;
        return true;
      }
      if (b == '}' && nothing_required) { --t.depth; return true; }
      return false;
    default: return false;
  }
}

bool json_matcher::array_step(int ti, unsigned char b) {
  thread& t = t_[ti];
  frame& f = t.f[t.depth - 1];
  const grammar_node& a = g_->nodes[f.node];
  if (is_ws(b)) {
    if (f.flags & ws_used) return false;
    f.flags |= ws_used;
    return true;
  }
  switch (f.state) {
    case arr_open:
      if (b == ']') {
        if (a.min_items > 0) return false;
        --t.depth;
        return true;
      }
      if (a.max_items == 0) return false;
      [[fallthrough]];
    case arr_after_comma:
      ++f.count;
      f.state = arr_after_value;
      f.flags &= ~ws_used;
      return start_value(ti, a.items, b);
    case arr_after_value:
      if (b == ',') {
        if (f.count >= a.max_items || !fits(t.depth, a.items)) return false;
        f.state = arr_after_comma;
        f.flags &= ~ws_used;
        return true;
      }
      if (b == ']' && f.count >= a.min_items) { --t.depth; return true; }
      return false;
    default: return false;
  }
}

// A key is matched against the trie of declared names while it follows one;
// it leaves the trie only when extra keys are allowed and never mid-escape,
// and then takes no backslash, so an extra key is never a declared name.
bool json_matcher::key_step(thread& t, unsigned char b) {
  frame& k = t.f[t.depth - 1];
  const int oi = t.depth - 2;
  frame& of = t.f[oi];
  const grammar_node& o = g_->nodes[k.node];
  if (k.state == lex_plain && b == '"') {
    const std::int32_t p = k.aux >= 0 ? g_->tries[k.aux].value : -1;
    if (p >= 0) {
      if (!((allowed_props(o, of.count, oi + 1) >> p) & 1)) return false;
      of.aux = p;
      of.count = static_cast<std::uint32_t>(p + 1);
    } else {
      if (!extra_key_ok(o, oi + 1)) return false;
      of.aux = -1;
    }
    --t.depth;
    of.state = obj_after_key;
    of.flags &= ~ws_used;
    return true;
  }
  const std::uint8_t before = k.state;
  if (!lex_byte(k, b)) return false;
  if (o.key_trie < 0) return true;  // no declared names: any key
  if (k.aux < 0) return b != '\\';
  const bool escaping = before == lex_escape || before == lex_hex || b == '\\';
  const std::int32_t c = g_->tries[k.aux].child(b);
  if (c >= 0 && (g_->tries[c].props_below & allowed_props(o, of.count, oi + 1))) {
    k.aux = c;
    ++k.count;
    return true;
  }
  if (escaping || !extra_key_ok(o, oi + 1)) return false;
  k.aux = c;  // still tracked when c >= 0: the key may yet spell a name that is not allowed here
  if (c >= 0) ++k.count;
  return true;
}

}  // namespace yard::backends::structured
