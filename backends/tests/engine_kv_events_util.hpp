// backends/tests/engine_kv_events_util.hpp — test helpers: msgpack KV-event batches as vLLM and
// SGLang write them (msgspec array_like / map layouts; see backends/external/engine_kv_events.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "messages/types.hpp"

namespace yard::backends::external::testing {

using packer = msgpack::packer<msgpack::sbuffer>;
using writer = std::function<void(packer&)>;  // packs one msgpack value

inline std::string pack(const writer& w) {
  msgpack::sbuffer buf;
  packer pk(buf);
  w(pk);
  return std::string(buf.data(), buf.size());
}

inline void str(packer& pk, const std::string& s) {
  pk.pack_str(static_cast<std::uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}
inline void bin(packer& pk, const std::string& b) {
  pk.pack_bin(static_cast<std::uint32_t>(b.size()));
  pk.pack_bin_body(b.data(), static_cast<std::uint32_t>(b.size()));
}
inline void u64s(packer& pk, const std::vector<std::uint64_t>& v) {
  pk.pack_array(static_cast<std::uint32_t>(v.size()));
  for (auto x : v) pk.pack_uint64(x);
}
inline void tokens(packer& pk, const std::vector<msg::token_id>& v) {
  pk.pack_array(static_cast<std::uint32_t>(v.size()));
  for (auto x : v) pk.pack_uint32(x);
}

// A tagged array_like event: [tag, fields...].
inline writer tagged(const std::string& tag, std::vector<writer> fields) {
  return [tag, fields](packer& pk) {
    pk.pack_array(static_cast<std::uint32_t>(fields.size() + 1));
    str(pk, tag);
    for (const auto& f : fields) f(pk);
  };
}

// vLLM v0.9 / SGLang BlockStored with int hashes: [tag, hashes, parent, tokens, block_size, lora_id].
inline writer stored(std::vector<std::uint64_t> hashes, std::optional<std::uint64_t> parent,
                     std::vector<msg::token_id> toks, std::uint32_t block_size = 16, std::vector<writer> more = {}) {
  std::vector<writer> f{[hashes](packer& pk) { u64s(pk, hashes); },
                        [parent](packer& pk) { parent ? pk.pack_uint64(*parent) : pk.pack_nil(); },
                        [toks](packer& pk) { tokens(pk, toks); },
                        [block_size](packer& pk) { pk.pack_uint32(block_size); },
                        [](packer& pk) { pk.pack_nil(); }};
  for (auto& m : more) f.push_back(std::move(m));
  return tagged("BlockStored", std::move(f));
}
inline writer removed(std::vector<std::uint64_t> hashes, std::vector<writer> more = {}) {
  std::vector<writer> f{[hashes](packer& pk) { u64s(pk, hashes); }};
  for (auto& m : more) f.push_back(std::move(m));
  return tagged("BlockRemoved", std::move(f));
}
inline writer cleared() { return tagged("AllBlocksCleared", {}); }
inline writer nil() { return [](packer& pk) { pk.pack_nil(); }; }
inline writer text(std::string s) { return [s](packer& pk) { str(pk, s); }; }
inline writer integer(std::int64_t v) { return [v](packer& pk) { pk.pack_int64(v); }; }

// An array_like batch [ts, events, rank?].
inline std::string batch(std::vector<writer> events, std::optional<std::int64_t> rank = std::nullopt) {
  return pack([&](packer& pk) {
    pk.pack_array(rank ? 3 : 2);
    pk.pack_double(1700000000.5);
    pk.pack_array(static_cast<std::uint32_t>(events.size()));
    for (const auto& e : events) e(pk);
    if (rank) pk.pack_int64(*rank);
  });
}

// `n` blocks of `block_size` distinct tokens starting at `first`.
inline std::vector<msg::token_id> token_run(msg::token_id first, std::size_t n_tokens) {
  std::vector<msg::token_id> t(n_tokens);
  for (std::size_t i = 0; i < n_tokens; ++i) t[i] = first + static_cast<msg::token_id>(i);
  return t;
}

}  // namespace yard::backends::external::testing
