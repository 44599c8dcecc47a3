// backends/kv_exchange.cpp — see kv_exchange.hpp.
#include "backends/kv_exchange.hpp"

#include <string>
#include <vector>

namespace yard::backends {

std::size_t cached_blocks(const kv::block_pool& pool, std::span<const kv::block_hash> hashes) {
  return pool.match_prefix(hashes);
}

std::size_t export_blocks(const kv::block_pool& pool, const executor& ex, std::span<const kv::block_hash> hashes,
                          std::span<std::byte> out) {
  const std::size_t bb = ex.kv_block_bytes();
  if (bb == 0) return 0;
  std::size_t n = std::min(hashes.size(), out.size() / bb);
  n = std::min(n, pool.match_prefix(hashes.first(n)));
  for (std::size_t i = 0; i < n; ++i) {
    auto b = pool.block_of(hashes[i]);
    ex.read_block(*b, hashes[i], out.subspan(i * bb, bb));
  }
  return n;
}

result<std::size_t> import_blocks(kv::block_pool& pool, executor& ex, std::span<const kv::block_hash> hashes,
                                  std::optional<kv::block_hash> parent, std::span<const std::byte> data) {
  const std::size_t bb = ex.kv_block_bytes();
  if (bb == 0) return make_error(errc::bad_request, "this engine has no KV block bytes to import into");
  if (data.size() != hashes.size() * bb)
    return make_error(errc::bad_request, "KV import: " + std::to_string(data.size()) + " bytes for " +
                                             std::to_string(hashes.size()) + " blocks of " + std::to_string(bb));
  std::size_t done = 0;
  std::vector<kv::block_id> got;
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    std::optional<kv::block_hash> par = i == 0 ? parent : std::optional<kv::block_hash>(hashes[i - 1]);
    if (pool.block_of(hashes[i])) {  // already here (computed or imported before)
      ++done;
      continue;
    }
    got.clear();
    if (!pool.allocate(1, got)) break;
    if (auto s = ex.write_block(got[0], hashes[i], data.subspan(i * bb, bb)); !s) {
      pool.release(got[0]);
      return s.err();
    }
    pool.commit(got[0], hashes[i], par);
    pool.release(got[0]);
    ++done;
  }
  return done;
}

}  // namespace yard::backends
