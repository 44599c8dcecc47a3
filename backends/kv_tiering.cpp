// backends/kv_tiering.cpp — see kv_tiering.hpp.
#include "backends/kv_tiering.hpp"

#include "backends/kv_exchange.hpp"
#include "common/log.hpp"

namespace yard::backends {

kv_tiering::~kv_tiering() { pool_.set_evict_callback({}); }

result<std::unique_ptr<kv_tiering>> kv_tiering::create(const kv_tier_options& opts, kv::block_allocator& pool, executor& ex,
                                                       prefill_cost_fn prefill_cost, bool overlapped) {
  auto store = kv_tier_store::create(opts, ex.kv_block_bytes(), pool.block_size(), std::move(prefill_cost), overlapped);
  if (!store) return store.err();
  std::unique_ptr<kv_tiering> t(new kv_tiering(pool, ex));
  t->store_ = std::move(store.value());
  t->scratch_.resize(ex.kv_block_bytes());
  forward_evictions(pool, ex, [s = t->store_.get()](kv::block_hash h, std::span<const std::byte> b) { s->offload(h, b); });
  return t;
}

std::unique_ptr<kv_tier_store> kv_tiering::release() {
  pool_.set_evict_callback({});
  return std::move(store_);
}

onboard_outcome kv_tiering::onboard(std::span<const kv::block_hash> hashes, std::size_t prompt_tokens) {
  onboard_outcome out;
  const auto ask = make_onboard_ask(pool_, hashes, prompt_tokens);
  out.g1_blocks = ask.g1_blocks;
  const auto hot = store_->note_hits(std::span<const kv::block_hash>(ask.hashes).first(ask.g1_blocks));
  if (!hot.empty() && !scratch_.empty()) {
    const auto ids = pool_.blocks_of(hot);
    for (std::size_t i = 0; i < hot.size(); ++i)
      if (ids[i] != kv::no_block && ex_.read_block(ids[i], hot[i], scratch_)) store_->write_through(hot[i], scratch_);
  }
  const auto f = store_->fetch(ask);
  if (f.blocks() == 0) return out;
  auto r = import_onboarded(pool_, ex_, ask, f);
  if (!r) component_logger("kv_tiers")->warn("onboarding {} blocks: {}", f.blocks(), r.err().describe());
  const std::size_t done = r ? *r : 0;
  for (std::size_t j = 0; j < done; ++j) {
    out.g2_blocks += f.tier_of[j] == 2;
    out.g3_blocks += f.tier_of[j] == 3;
  }
  out.modelled_ms = double(out.g2_blocks) * store_->block_ms(2) + double(out.g3_blocks) * store_->block_ms(3);
  return out;
}

}  // namespace yard::backends
