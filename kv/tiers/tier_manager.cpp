// kv/tiers/tier_manager.cpp — see tier_manager.hpp.
#include "kv/tiers/tier_manager.hpp"

#include <algorithm>
#include <cstring>
#include <future>

namespace yard::kv::tiers {

tier_manager::tier_manager(tier_manager_options opts) : opts_(std::move(opts)) {}

result<std::unique_ptr<tier_manager>> tier_manager::create(tier_manager_options opts) {
  std::unique_ptr<tier_manager> m(new tier_manager(opts));
  m->g2_ = std::make_unique<host_tier>(opts.g2);
  if (opts.g3) {
    auto d = disk_tier::open(*opts.g3);
    if (!d.ok()) return d.err();
    m->g3_ = std::move(d.value());
    m->g3_->set_evict_callback([p = m.get()](block_hash h) { p->emit(msg::kv_event_kind::removed, 3, h); });
  }
  m->g2_->set_evict_callback([p = m.get()](block_hash h, bytes&& b) {
    p->emit(msg::kv_event_kind::removed, 2, h);
    if (p->g3_ && !p->g3_->disabled()) p->put_g3(h, std::move(b));
  });
  return m;
}

bool tier_manager::put_g3(block_hash h, bytes data) {
  auto f = g3_->try_put_async(h, std::move(data));  // completes on the pool; the event is recorded now
  if (!f) return false;                             // back-pressure: G3 does not keep it
  if (opts_.sync_g3_writes) f->get();
  emit(msg::kv_event_kind::stored, 3, h);
  return true;
}

void tier_manager::emit(msg::kv_event_kind kind, std::uint8_t tier, block_hash h) {
  if (!opts_.emit_events) return;
  std::lock_guard lk(ev_mu_);
  // Coalesce with the previous event of the same kind and tier.
  if (!events_.empty() && events_.back().kind == kind && events_.back().tier == tier) {
    events_.back().block_hashes.push_back(h);
    return;
  }
  msg::kv_event e;
  e.kind = kind;
  e.tier = tier;
  e.block_hashes.push_back(h);
  events_.push_back(std::move(e));
}

result<std::vector<block_hash>> tier_manager::recover() {
  if (!g3_) return std::vector<block_hash>{};
  auto r = g3_->recover();
  if (!r.ok()) return r;
  for (auto h : *r) emit(msg::kv_event_kind::stored, 3, h);
  return r;
}

void tier_manager::offload(block_hash hash, std::span<const std::byte> data) {
  if (g2_->capacity() > 0) {
    g2_->put(hash, data);
    emit(msg::kv_event_kind::stored, 2, hash);
  } else if (g3_ && !g3_->disabled()) {
    put_g3(hash, bytes(data.begin(), data.end()));
  }
}

bool tier_manager::write_through(block_hash hash, std::span<const std::byte> data) {
  if (!g3_ || g3_->disabled() || g3_->contains(hash)) return false;
  return put_g3(hash, bytes(data.begin(), data.end()));
}

prefix_hit tier_manager::lookup_prefix(std::span<const block_hash> hashes) const {
  prefix_hit hit;
  for (auto h : hashes) {
    if (g2_->contains(h)) { ++hit.g2; hit.tier_of.push_back(2); }
    else if (g3_ && g3_->contains(h)) { ++hit.g3; hit.tier_of.push_back(3); }
    else break;
  }
  return hit;
}

std::size_t tier_manager::onboard(std::span<const block_hash> hashes, std::size_t count,
                                  std::span<const std::span<std::byte>> out) {
  count = std::min({count, hashes.size(), out.size()});
  std::vector<std::optional<std::future<result<bytes>>>> pending(count);
  for (std::size_t i = 0; i < count; ++i)  // issue G3 reads first so they overlap the G2 copies
    if (!g2_->contains(hashes[i]) && g3_) pending[i] = g3_->get_async(hashes[i]);
  std::size_t done = 0;
  bool ok = true;
  for (std::size_t i = 0; i < count; ++i) {
    bool got = false;
    if (pending[i]) {
      auto r = pending[i]->get();
      if (ok && r.ok() && r->size() == out[i].size()) {
        if (!r->empty()) std::memcpy(out[i].data(), r->data(), r->size());
        got = true;
      }
    } else if (ok) {
      got = g2_->get_into(hashes[i], out[i]).ok();
    }
    if (ok && got) ++done;
    else ok = false;  // keep draining futures
  }
  return done;
}

std::size_t tier_manager::plan_onboard(std::size_t prompt_tokens, std::size_t g1_tokens, const prefix_hit& hit,
                                       const onboard_cost_model& m) {
  if (!m.prefill_ms || m.block_tokens == 0 || hit.total() == 0 || g1_tokens >= prompt_tokens) return 0;
  auto copy_ms = [&](double bw) { return bw > 0 ? double(m.block_bytes) / bw : 1e300; };
  const double g2c = copy_ms(m.g2_bytes_per_ms), g3c = copy_ms(m.g3_bytes_per_ms);
  std::size_t best = 0;
  double best_ms = m.prefill_ms(prompt_tokens - g1_tokens);
  double io = 0;
  for (std::size_t k = 1; k <= hit.total(); ++k) {
    const std::uint8_t tier = hit.tier(k - 1);
    io += tier == 1 ? 0.0 : tier == 2 ? g2c : g3c;
    std::size_t cached = g1_tokens + k * m.block_tokens;
    if (cached > prompt_tokens) break;
    const double pf = m.prefill_ms(prompt_tokens - cached);
    double t = m.overlap ? std::max(pf, io) : pf + io;
    if (t < best_ms) { best_ms = t; best = k; }
  }
  return best;
}

std::uint8_t tier_manager::tier_of(block_hash hash) const {
  if (g2_->contains(hash)) return 2;
  if (g3_ && g3_->contains(hash)) return 3;
  return 0;
}

std::vector<msg::kv_event> tier_manager::snapshot() const {
  std::vector<msg::kv_event> out;
  auto add = [&](std::uint8_t tier, std::vector<block_hash> hs) {
    if (hs.empty()) return;
    msg::kv_event e;
    e.kind = msg::kv_event_kind::stored;
    e.tier = tier;
    e.block_hashes = std::move(hs);
    out.push_back(std::move(e));
  };
  add(2, g2_->hashes());
  if (g3_) add(3, g3_->hashes());
  return out;
}

std::vector<msg::kv_event> tier_manager::drain_events() {
  std::lock_guard lk(ev_mu_);
  return std::exchange(events_, {});
}

}  // namespace yard::kv::tiers
