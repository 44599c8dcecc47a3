// backends/kv_tier_store.cpp — see kv_tier_store.hpp.
#include "backends/kv_tier_store.hpp"

#include <algorithm>

#include "backends/timing_model.hpp"
#include "common/log.hpp"

namespace yard::backends {

kv_tier_store::kv_tier_store(const kv_tier_options& o, std::size_t block_bytes, std::uint32_t block_tokens,
                             prefill_cost_fn f, bool overlapped)
    : opts_(o),
      block_bytes_(block_bytes),
      block_tokens_(block_tokens),
      prefill_cost_(std::move(f)),
      overlapped_(overlapped && o.overlap_onboarding) {}

result<std::unique_ptr<kv_tier_store>> kv_tier_store::create(const kv_tier_options& opts, std::size_t block_bytes,
                                                             std::uint32_t block_tokens, prefill_cost_fn prefill_cost,
                                                             bool overlapped) {
  auto log = component_logger("kv_tiers");
  kv::tiers::tier_manager_options to;
  to.g2.capacity_blocks = opts.host_blocks;
  to.g2.block_bytes = block_bytes;  // the slab is allocated (and page-locked) now, not on the first offload
  to.g2.pinning = opts.g2_pinning;
  to.sync_g3_writes = opts.disk_sync_writes;
  if (!opts.disk_dir.empty()) {
    kv::tiers::disk_tier_options d;
    d.dir = opts.disk_dir;
    d.capacity_blocks = opts.disk_blocks;
    d.block_bytes = block_bytes;  // the slab's slot size; a slab of another model's blocks starts over
    d.io_threads = std::max(1u, opts.disk_io_threads);
    d.max_pending_writes = opts.disk_max_pending_writes;
    if (!opts.disk_key_file.empty()) d.key_file = opts.disk_key_file;
    to.g3 = d;
  }
  auto tm = kv::tiers::tier_manager::create(to);
  if (!tm) return tm.err();
  std::unique_ptr<kv_tier_store> s(new kv_tier_store(opts, block_bytes, block_tokens, std::move(prefill_cost), overlapped));
  s->tm_ = std::move(tm.value());
  auto rec = s->tm_->recover();
  if (!rec) {
    log->error("G3 recovery in '{}': {}", opts.disk_dir, rec.err().describe());
    return rec.err();
  }
  s->stats_.recovered_blocks = rec->size();
  if (opts.host_blocks > 0 && block_bytes > 0) {
    const auto& g2 = s->tm_->g2();
    if (g2.slab_bytes() == 0)
      log->warn("KV tiers: G2's slab ({} blocks x {} bytes) could not be allocated: its blocks are allocated one by "
                "one and cannot be lent to an import without a copy",
                opts.host_blocks, block_bytes);
    else if (opts.g2_pinning.enabled() && !g2.pinned())
      log->warn("KV tiers: G2's slab ({:.1f} MiB) could not be page-locked (over half of this host's memory: lower "
                "--kv-host-blocks; or the driver refused): device copies go through pageable memory",
                g2.slab_bytes() / 1048576.0);
    else
      log->info("KV tiers: G2 slab {:.1f} MiB ({} blocks + 1 spare){}", g2.slab_bytes() / 1048576.0, opts.host_blocks,
                g2.pinned() ? ", page-locked" : "");
  }
  if (!opts.disk_dir.empty())
    log->info("KV tiers: G2 {} blocks, G3 '{}' ({} blocks recovered, capacity {}{})", opts.host_blocks, opts.disk_dir,
              rec->size(), opts.disk_blocks, opts.disk_key_file.empty() ? "" : ", encrypted");
  return s;
}

void kv_tier_store::offload(kv::block_hash h, std::span<const std::byte> data) {
  if (block_bytes_ == 0 || data.size() != block_bytes_) return;  // an executor without block bytes: nothing to keep
  tm_->offload(h, data);
  ++stats_.offloaded_blocks;
}

std::vector<kv::block_hash> kv_tier_store::note_hits(std::span<const kv::block_hash> g1_prefix) {
  std::vector<kv::block_hash> hot;
  if (opts_.write_through_hits == 0 || block_bytes_ == 0 || !tm_->g3()) return hot;
  constexpr std::size_t max_tracked = std::size_t{1} << 16;  // bounded: forget every count when full
  if (hits_.size() > max_tracked) hits_.clear();
  for (auto h : g1_prefix) {
    if (tm_->g3()->contains(h)) continue;
    auto& n = hits_[h];
    if (++n < opts_.write_through_hits) continue;
    hits_.erase(h);
    hot.push_back(h);
  }
  return hot;
}

void kv_tier_store::write_through(kv::block_hash h, std::span<const std::byte> data) {
  if (data.size() == block_bytes_ && tm_->write_through(h, data)) ++stats_.written_through;
}

msg::kv_tier_load kv_tier_store::load() const {
  msg::kv_tier_load load;
  load.g2_kv_blocks = tm_->g2().size();
  load.g3_kv_blocks = tm_->g3() ? tm_->g3()->size() : 0;
  load.kv_offloaded_blocks = stats_.offloaded_blocks;
  load.kv_onboarded_blocks = stats_.g2_hit_blocks + stats_.g3_hit_blocks;
  load.g3_dropped_writes = tm_->g3() ? tm_->g3()->stats().dropped : 0;
  load.g3_disabled = tm_->g3() && tm_->g3()->disabled();
  return load;
}

double kv_tier_store::block_ms(std::uint8_t tier) const {
  const std::size_t bb = opts_.modelled_block_bytes ? opts_.modelled_block_bytes : block_bytes_;
  return onboard_ms(1, bb, tier == 2 ? opts_.g2_gbps : opts_.g3_gbps);
}

onboard_fetch kv_tier_store::fetch(const onboard_ask& ask) {
  onboard_fetch out;
  const std::size_t n1 = std::min(ask.g1_blocks, ask.hashes.size());
  stats_.g1_hit_blocks += n1;
  if (block_bytes_ == 0 || ask.prompt_tokens == 0) return out;
  const auto rest = std::span<const kv::block_hash>(ask.hashes).subspan(n1);
  kv::tiers::prefix_hit hit;
  for (std::size_t j = 0; j < rest.size(); ++j) {
    const std::uint8_t t = j < ask.in_g1.size() && ask.in_g1[j] ? 1 : tm_->tier_of(rest[j]);
    if (t == 0) break;
    hit.tier_of.push_back(t);
    if (t == 2) ++hit.g2;
    if (t == 3) ++hit.g3;
  }
  if (hit.g2 + hit.g3 == 0) return out;
  kv::tiers::onboard_cost_model cm;
  cm.block_bytes = opts_.modelled_block_bytes ? opts_.modelled_block_bytes : block_bytes_;
  cm.block_tokens = block_tokens_;
  cm.g2_bytes_per_ms = opts_.g2_gbps * 1e6;
  cm.g3_bytes_per_ms = opts_.g3_gbps * 1e6;
  cm.prefill_ms = [&](std::size_t uncached) { return prefill_cost_(ask.prompt_tokens, uncached); };
  cm.overlap = overlapped_;
  std::size_t k = kv::tiers::tier_manager::plan_onboard(ask.prompt_tokens, n1 * block_tokens_, hit, cm);
  if (k == 0) return out;
  // G2 blocks in the slab are lent in place (no copy; on a GPU host the import DMAs from
  // the page-locked slab); the rest (G3, G2 blocks on the heap) are read into out.data.
  std::vector<kv::block_hash> wanted;
  std::vector<std::size_t> wanted_at;  // index in the run of each block read into out.data
  for (std::size_t j = 0; j < k; ++j) {
    if (hit.tier_of[j] == 1) continue;
    if (hit.tier_of[j] == 2) {
      if (auto l = tm_->g2().lease(rest[j]); l && l.bytes().size() == block_bytes_) {
        out.lent.resize(k);
        out.lent[j] = std::move(l);
        continue;
      }
    }
    wanted.push_back(rest[j]);
    wanted_at.push_back(j);
  }
  if (!wanted.empty()) out.data.resize(k * block_bytes_);
  std::vector<std::span<std::byte>> outs;
  outs.reserve(wanted.size());
  for (auto j : wanted_at) outs.push_back(std::span<std::byte>(out.data).subspan(j * block_bytes_, block_bytes_));
  const std::size_t got = tm_->onboard(wanted, wanted.size(), outs);
  if (got < wanted.size()) k = wanted_at[got];  // a block that could not be read ends the run
  if (!out.data.empty()) out.data.resize(k * block_bytes_);
  if (out.lent.size() > k) out.lent.resize(k);
  out.tier_of.assign(hit.tier_of.begin(), hit.tier_of.begin() + static_cast<std::ptrdiff_t>(k));
  std::size_t g2 = 0, g3 = 0;
  for (auto t : out.tier_of) {
    g2 += t == 2;
    g3 += t == 3;
  }
  out.modelled_ms = double(g2) * block_ms(2) + double(g3) * block_ms(3);
  stats_.g2_hit_blocks += g2;
  stats_.g3_hit_blocks += g3;
  if (g2 + g3) ++stats_.onboards;
  return out;
}

}  // namespace yard::backends
