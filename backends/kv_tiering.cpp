// backends/kv_tiering.cpp — see kv_tiering.hpp.
#include "backends/kv_tiering.hpp"

#include <algorithm>

#include "backends/kv_exchange.hpp"
#include "backends/timing_model.hpp"
#include "common/log.hpp"

namespace yard::backends {

kv_tiering::kv_tiering(const kv_tier_options& o, kv::block_pool& pool, executor& ex, prefill_cost_fn f, bool overlapped)
    : opts_(o), pool_(pool), ex_(ex), prefill_cost_(std::move(f)), overlapped_(overlapped && o.overlap_onboarding) {}

kv_tiering::~kv_tiering() { pool_.set_evict_callback({}); }

result<std::unique_ptr<kv_tiering>> kv_tiering::create(const kv_tier_options& opts, kv::block_pool& pool, executor& ex,
                                                       prefill_cost_fn prefill_cost, bool overlapped) {
  auto log = component_logger("kv_tiers");
  kv::tiers::tier_manager_options to;
  to.g2.capacity_blocks = opts.host_blocks;
  to.sync_g3_writes = opts.disk_sync_writes;
  if (!opts.disk_dir.empty()) {
    kv::tiers::disk_tier_options d;
    d.dir = opts.disk_dir;
    d.capacity_blocks = opts.disk_blocks;
    d.block_bytes = ex.kv_block_bytes();  // the slab's slot size; a slab of another model's blocks starts over
    d.io_threads = std::max(1u, opts.disk_io_threads);
    d.max_pending_writes = opts.disk_max_pending_writes;
    if (!opts.disk_key_file.empty()) d.key_file = opts.disk_key_file;
    to.g3 = d;
  }
  auto tm = kv::tiers::tier_manager::create(to);
  if (!tm) return tm.err();
  std::unique_ptr<kv_tiering> t(new kv_tiering(opts, pool, ex, std::move(prefill_cost), overlapped));
  t->tm_ = std::move(tm.value());
  auto rec = t->tm_->recover();
  if (!rec) {
    log->error("G3 recovery in '{}': {}", opts.disk_dir, rec.err().describe());
    return rec.err();
  }
  t->stats_.recovered_blocks = rec->size();
  if (!opts.disk_dir.empty())
    log->info("KV tiers: G2 {} blocks, G3 '{}' ({} blocks recovered, capacity {}{})", opts.host_blocks, opts.disk_dir,
              rec->size(), opts.disk_blocks, opts.disk_key_file.empty() ? "" : ", encrypted");
  t->scratch_.resize(ex.kv_block_bytes());
  pool.set_evict_callback([p = t.get()](kv::block_id b, kv::block_hash h, std::optional<kv::block_hash>) { p->on_evict(b, h); });
  return t;
}

void kv_tiering::on_evict(kv::block_id b, kv::block_hash h) {
  if (scratch_.empty()) return;  // an executor without block bytes: nothing to keep
  ex_.read_block(b, h, scratch_);
  tm_->offload(h, scratch_);
  ++stats_.offloaded_blocks;
}

void kv_tiering::fill_load(msg::load_report& load) const {
  load.g2_kv_blocks = tm_->g2().size();
  load.g3_kv_blocks = tm_->g3() ? tm_->g3()->size() : 0;
  load.kv_offloaded_blocks = stats_.offloaded_blocks;
  load.kv_onboarded_blocks = stats_.g2_hit_blocks + stats_.g3_hit_blocks;
  load.g3_dropped_writes = tm_->g3() ? tm_->g3()->stats().dropped : 0;
  load.g3_disabled = tm_->g3() && tm_->g3()->disabled();
}

void kv_tiering::note_hits(std::span<const kv::block_hash> g1_prefix) {
  if (opts_.write_through_hits == 0 || scratch_.empty() || !tm_->g3()) return;
  constexpr std::size_t max_tracked = std::size_t{1} << 16;  // bounded: forget every count when full
  if (hits_.size() > max_tracked) hits_.clear();
  for (auto h : g1_prefix) {
    if (tm_->g3()->contains(h)) continue;
    auto& n = hits_[h];
    if (++n < opts_.write_through_hits) continue;
    hits_.erase(h);
    auto b = pool_.block_of(h);
    if (!b) continue;
    ex_.read_block(*b, h, scratch_);
    if (tm_->write_through(h, scratch_)) ++stats_.written_through;
  }
}

double kv_tiering::block_ms(std::uint8_t tier) const {
  const std::size_t bb = opts_.modelled_block_bytes ? opts_.modelled_block_bytes : ex_.kv_block_bytes();
  return onboard_ms(1, bb, tier == 2 ? opts_.g2_gbps : opts_.g3_gbps);
}

onboard_outcome kv_tiering::onboard(std::span<const kv::block_hash> hashes, std::size_t prompt_tokens) {
  onboard_outcome out;
  const std::size_t bb = ex_.kv_block_bytes(), bs = pool_.block_size();
  if (prompt_tokens == 0) return out;
  // Like the scheduler, the last prompt token is always computed.
  const std::size_t usable = std::min(hashes.size(), (prompt_tokens - 1) / bs);
  const std::size_t n1 = pool_.match_prefix(hashes.first(usable));
  out.g1_blocks = n1;
  stats_.g1_hit_blocks += n1;
  note_hits(hashes.first(n1));
  if (bb == 0) return out;
  const auto rest = hashes.subspan(n1, usable - n1);
  kv::tiers::prefix_hit hit;
  for (auto h : rest) {
    std::uint8_t t = pool_.block_of(h) ? 1 : tm_->tier_of(h);
    if (t == 0) break;
    hit.tier_of.push_back(t);
    if (t == 2) ++hit.g2;
    if (t == 3) ++hit.g3;
  }
  if (hit.g2 + hit.g3 == 0) return out;
  kv::tiers::onboard_cost_model cm;
  cm.block_bytes = opts_.modelled_block_bytes ? opts_.modelled_block_bytes : bb;
  cm.block_tokens = static_cast<std::uint32_t>(bs);
  cm.g2_bytes_per_ms = opts_.g2_gbps * 1e6;
  cm.g3_bytes_per_ms = opts_.g3_gbps * 1e6;
  cm.prefill_ms = [&](std::size_t uncached) { return prefill_cost_(prompt_tokens, uncached); };
  cm.overlap = overlapped_;
  std::size_t k = kv::tiers::tier_manager::plan_onboard(prompt_tokens, n1 * bs, hit, cm);
  if (k == 0) return out;

  // Hold the G1 blocks of the run (the prefix and any inside it) so importing
  // the others cannot evict them.
  std::vector<kv::block_id> pins;
  pool_.pin_cached(hashes, n1, pins);
  std::vector<kv::block_hash> fetch;
  std::vector<std::size_t> fetch_at;  // index in rest of each fetched block
  for (std::size_t j = 0; j < k; ++j) {
    if (hit.tier_of[j] == 1) pool_.pin_cached(rest.subspan(j, 1), 1, pins);
    else {
      fetch.push_back(rest[j]);
      fetch_at.push_back(j);
    }
  }
  std::vector<std::byte> data(k * bb);
  std::vector<std::span<std::byte>> outs;
  outs.reserve(fetch.size());
  for (auto j : fetch_at) outs.push_back(std::span<std::byte>(data).subspan(j * bb, bb));
  std::size_t got = tm_->onboard(fetch, fetch.size(), outs);
  if (got < fetch.size()) k = fetch_at[got];  // a block that could not be read ends the run
  std::size_t done = 0;
  if (k > 0) {
    std::optional<kv::block_hash> parent = n1 ? std::optional<kv::block_hash>(hashes[n1 - 1]) : std::nullopt;
    auto r = import_blocks(pool_, ex_, rest.first(k), parent, std::span<const std::byte>(data).first(k * bb));
    if (r) done = *r;
    else component_logger("kv_tiers")->warn("onboarding {} blocks: {}", k, r.err().describe());
  }
  pool_.release_all(pins);
  for (std::size_t j = 0; j < done; ++j) {
    if (hit.tier_of[j] == 2) ++out.g2_blocks;
    if (hit.tier_of[j] == 3) ++out.g3_blocks;
  }
  out.modelled_ms = double(out.g2_blocks) * block_ms(2) + double(out.g3_blocks) * block_ms(3);
  stats_.g2_hit_blocks += out.g2_blocks;
  stats_.g3_hit_blocks += out.g3_blocks;
  if (out.g2_blocks + out.g3_blocks) ++stats_.onboards;
  return out;
}

}  // namespace yard::backends
