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
  const std::size_t n = std::min(hashes.size(), out.size() / bb);
  const auto ids = pool.blocks_of(hashes.first(n));  // one question, however many blocks
  for (std::size_t i = 0; i < n; ++i) {
    if (ids[i] == kv::no_block) return i;  // the cached prefix ends here
    if (!ex.read_block(ids[i], hashes[i], out.subspan(i * bb, bb))) return i;  // the blocks before it are good
  }
  return n;
}

namespace {

// Imports hashes[i] from block_at(i) (each `bb` bytes): the loop import_blocks and import_onboarded share.
// `have` is pool.blocks_of(hashes), looked up by the caller; the blocks already here are held while the
// missing ones are allocated together (so that allocation cannot evict them); a pool with fewer free blocks
// than are missing imports what fits, in order, and stops there.
template <class BlockAt>
result<std::size_t> import_each(kv::block_allocator& pool, executor& ex, std::span<const kv::block_hash> hashes,
                                std::span<const kv::block_id> have, std::optional<kv::block_hash> parent,
                                std::size_t bb, BlockAt block_at) {
  std::vector<kv::block_id> pins, fresh;
  std::size_t missing = 0;
  for (std::size_t i = 0; i < hashes.size();) {
    if (have[i] == kv::no_block) {
      ++missing;
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < hashes.size() && have[j] != kv::no_block) ++j;
    pool.pin_cached(hashes.subspan(i, j - i), j - i, pins);  // a run of blocks already here, held
    i = j;
  }
  const std::size_t take = std::min<std::size_t>(missing, pool.num_free());
  if (take > 0 && !pool.allocate(take, fresh)) fresh.clear();
  std::size_t done = 0, used = 0;
  status failed = status::success();
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    if (have[i] != kv::no_block) {  // already here (computed or imported before)
      ++done;
      continue;
    }
    if (used == fresh.size()) break;  // no free block left: the rest is recomputed
    const std::span<const std::byte> bytes = block_at(i);
    if (bytes.size() != bb) {
      failed = make_error(errc::bad_request, "KV import: block " + std::to_string(i) + " has " +
                                                 std::to_string(bytes.size()) + " bytes, not " + std::to_string(bb));
      break;
    }
    const kv::block_id b = fresh[used++];
    if (auto s = ex.write_block(b, hashes[i], bytes); !s) {
      pool.release(b);
      failed = s;
      break;
    }
    pool.commit(b, hashes[i], i == 0 ? parent : std::optional<kv::block_hash>(hashes[i - 1]));
    pool.release(b);
    ++done;
  }
  for (std::size_t k = used; k < fresh.size(); ++k) pool.release(fresh[k]);  // allocated, never written
  pool.release_all(pins);
  if (!failed) return failed.err();
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
  return import_each(pool, ex, hashes, pool.blocks_of(hashes), parent, bb,
                     [&](std::size_t i) { return data.subspan(i * bb, bb); });
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
  const auto ids = pool.blocks_of(a.hashes);  // one question for the whole prefix
  while (a.g1_blocks < usable && ids[a.g1_blocks] != kv::no_block) ++a.g1_blocks;
  for (std::size_t j = a.g1_blocks; j < usable; ++j) a.in_g1.push_back(ids[j] != kv::no_block);
  return a;
}

result<std::size_t> import_onboarded(kv::block_allocator& pool, executor& ex, const onboard_ask& ask, const onboard_fetch& f) {
  const std::size_t bb = ex.kv_block_bytes();
  const std::size_t n1 = std::min(ask.g1_blocks, ask.hashes.size());
  const auto all = std::span<const kv::block_hash>(ask.hashes);
  const auto rest = all.subspan(n1);
  std::size_t k = std::min(f.blocks(), rest.size());
  if (k == 0 || bb == 0) return std::size_t{0};
  // One question for the prefix and the run: the prefix blocks still here are held; the run's blocks that
  // are here are held by import_each while it allocates the others.
  const auto ids = pool.blocks_of(all.first(n1 + k));
  std::size_t held = 0;
  while (held < n1 && ids[held] != kv::no_block) ++held;
  std::vector<kv::block_id> pins;
  pool.pin_cached(all, held, pins);
  const auto have = std::span<const kv::block_id>(ids).subspan(n1);
  for (std::size_t j = 0; j < k; ++j)
    if (f.tier_of[j] == 1 && have[j] == kv::no_block) {  // left G1 since the ask: its bytes were never read
      k = j;
      break;
    }
  result<std::size_t> r = std::size_t{0};
  if (k > 0) {
    const std::optional<kv::block_hash> parent = n1 ? std::optional<kv::block_hash>(all[n1 - 1]) : std::nullopt;
    r = import_each(pool, ex, rest.first(k), have.first(k), parent, bb, [&](std::size_t j) { return f.block(j, bb); });
  }
  pool.release_all(pins);
  return r;
}

}  // namespace yard::backends
