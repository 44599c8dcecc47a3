// kv/pool_call.cpp — see pool_call.hpp.
#include "kv/pool_call.hpp"

#include <algorithm>
#include <span>

namespace yard::kv {

namespace {

bool held(const block_pool& pool, block_id b) { return b < pool.num_blocks() && pool.ref_count(b) > 0; }

void apply(block_pool& pool, const pool_write& w, pool_answer& a) {
  if (!held(pool, w.block)) {
    ++a.refused;
    return;
  }
  if (w.what == pool_write::kind::commit) pool.commit(w.block, w.hash, w.parent);
  else pool.release(w.block);
}

}  // namespace

pool_answer serve(block_pool& pool, const pool_call& call, std::vector<msg::kv_event>& drained) {
  pool_answer a;
  pool.set_evict_callback([&a](block_id b, block_hash h, std::optional<block_hash> parent) {
    a.evicted.push_back(evicted_block{b, h, parent});
  });
  for (const auto& w : call.writes) apply(pool, w, a);
  const std::span<const block_hash> hashes(call.hashes);
  switch (call.query) {
    case pool_query::sync:
      break;
    case pool_query::match_prefix:
      a.count = pool.match_prefix(hashes);
      break;
    case pool_query::block_of:
      if (!hashes.empty())
        if (auto b = pool.block_of(hashes[0])) a.blocks.push_back(*b);
      break;
    case pool_query::blocks_of:
      a.blocks = pool.blocks_of(hashes);
      break;
    case pool_query::acquire_cached:
      pool.acquire_cached(hashes, std::min(call.n, pool.match_prefix(hashes)), call.lookup, a.blocks);
      break;
    case pool_query::pin_cached:
      pool.pin_cached(hashes, std::min(call.n, pool.match_prefix(hashes)), a.blocks);
      break;
    case pool_query::allocate:
      a.ok = pool.allocate(call.n, a.blocks);
      if (a.ok && call.extra > 0) pool.allocate(std::min<std::size_t>(call.extra, pool.num_clean()), a.blocks);
      break;
    case pool_query::drain_events:
      for (auto& e : pool.drain_events()) drained.push_back(std::move(e));
      break;
    case pool_query::snapshot:
      a.events = pool.snapshot();
      break;
  }
  pool.set_evict_callback({});
  a.num_free = pool.num_free();
  a.num_referenced = pool.num_referenced();
  return a;
}

}  // namespace yard::kv
