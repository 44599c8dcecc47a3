// backends/kv_exchange.cpp — see kv_exchange.hpp.
#include "backends/kv_exchange.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace yard::backends {

std::size_t cached_blocks(const kv::block_allocator& pool, std::span<const kv::block_hash> hashes) {
  return pool.match_prefix(hashes);
}

std::size_t export_blocks(const kv::block_allocator& pool, const executor& ex, std::span<const kv::block_hash> hashes,
                          std::span<std::byte> out) {
  const std::size_t bb = ex.kv_block_bytes();
  if (bb == 0) return 0;
  std::size_t n = std::min(hashes.size(), out.size() / bb);
  n = std::min(n, pool.match_prefix(hashes.first(n)));
  for (std::size_t i = 0; i < n; ++i) {
    auto b = pool.block_of(hashes[i]);
    if (!ex.read_block(*b, hashes[i], out.subspan(i * bb, bb))) return i;  // the blocks before it are good
  }
  return n;
}

namespace {

// Imports hashes[i] from block_at(i) (each `bb` bytes): the loop import_blocks and import_onboarded share.
template <class BlockAt>
result<std::size_t> import_each(kv::block_allocator& pool, executor& ex, std::span<const kv::block_hash> hashes,
                                std::optional<kv::block_hash> parent, std::size_t bb, BlockAt block_at) {
  std::size_t done = 0;
  std::vector<kv::block_id> got;
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    std::optional<kv::block_hash> par = i == 0 ? parent : std::optional<kv::block_hash>(hashes[i - 1]);
    if (pool.block_of(hashes[i])) {  // already here (computed or imported before)
      ++done;
      continue;
    }
    const std::span<const std::byte> bytes = block_at(i);
    if (bytes.size() != bb) return make_error(errc::bad_request, "KV import: block " + std::to_string(i) + " has " +
                                                                     std::to_string(bytes.size()) + " bytes, not " +
                                                                     std::to_string(bb));
    got.clear();
    if (!pool.allocate(1, got)) break;
    if (auto s = ex.write_block(got[0], hashes[i], bytes); !s) {
      pool.release(got[0]);
      return s.err();
    }
    pool.commit(got[0], hashes[i], par);
    pool.release(got[0]);
    ++done;
  }
  return done;
}

}  // namespace

result<std::size_t> import_blocks(kv::block_allocator& pool, executor& ex, std::span<const kv::block_hash> hashes,
                                  std::optional<kv::block_hash> parent, std::span<const std::byte> data) {
  const std::size_t bb = ex.kv_block_bytes();
  if (bb == 0) return make_error(errc::bad_request, "this engine has no KV block bytes to import into");
  if (data.size() != hashes.size() * bb)
    return make_error(errc::bad_request, "KV import: " + std::to_string(data.size()) + " bytes for " +
                                             std::to_string(hashes.size()) + " blocks of " + std::to_string(bb));
  return import_each(pool, ex, hashes, parent, bb, [&](std::size_t i) { return data.subspan(i * bb, bb); });
}

void forward_evictions(kv::block_allocator& pool, const executor& ex,
                       std::function<void(kv::block_hash, std::span<const std::byte>)> sink) {
  const std::size_t bb = ex.kv_block_bytes();
  if (!sink || bb == 0) {
    pool.set_evict_callback({});
    return;
  }
  pool.set_evict_callback([&ex, sink = std::move(sink), scratch = std::vector<std::byte>(bb)](
                              kv::block_id b, kv::block_hash h, std::optional<kv::block_hash>) mutable {
    if (ex.read_block(b, h, scratch)) sink(h, scratch);  // an unreadable block is dropped, not offloaded as garbage
  });
}

onboard_ask make_onboard_ask(const kv::block_allocator& pool, std::span<const kv::block_hash> hashes, std::size_t prompt_tokens) {
  onboard_ask a;
  a.prompt_tokens = prompt_tokens;
  if (prompt_tokens == 0 || pool.block_size() == 0) return a;
  const std::size_t usable = std::min(hashes.size(), (prompt_tokens - 1) / pool.block_size());
  a.hashes.assign(hashes.begin(), hashes.begin() + static_cast<std::ptrdiff_t>(usable));
  a.g1_blocks = pool.match_prefix(a.hashes);
  for (std::size_t j = a.g1_blocks; j < usable; ++j) a.in_g1.push_back(pool.block_of(a.hashes[j]).has_value());
  return a;
}

result<std::size_t> import_onboarded(kv::block_allocator& pool, executor& ex, const onboard_ask& ask, const onboard_fetch& f) {
  const std::size_t bb = ex.kv_block_bytes();
  const std::size_t n1 = std::min(ask.g1_blocks, ask.hashes.size());
  const auto all = std::span<const kv::block_hash>(ask.hashes);
  const auto rest = all.subspan(n1);
  std::size_t k = std::min(f.blocks(), rest.size());
  if (k == 0 || bb == 0) return std::size_t{0};
  std::vector<kv::block_id> pins;
  pool.pin_cached(all, pool.match_prefix(all.first(n1)), pins);
  for (std::size_t j = 0; j < k; ++j) {
    if (f.tier_of[j] != 1) continue;
    if (!pool.block_of(rest[j])) {
      k = j;
      break;
    }
    pool.pin_cached(rest.subspan(j, 1), 1, pins);
  }
  result<std::size_t> r = std::size_t{0};
  if (k > 0) {
    const std::optional<kv::block_hash> parent = n1 ? std::optional<kv::block_hash>(all[n1 - 1]) : std::nullopt;
    r = import_each(pool, ex, rest.first(k), parent, bb, [&](std::size_t j) { return f.block(j, bb); });
  }
  pool.release_all(pins);
  return r;
}

}  // namespace yard::backends
