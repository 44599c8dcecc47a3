// actors/g1_pool_client.cpp — see g1_pool_client.hpp.
#include "actors/g1_pool_client.hpp"

#include <algorithm>

#include <caf/all.hpp>

namespace yard::actors {

g1_pool_client::g1_pool_client(const kv::block_pool& pool)
    : num_blocks_(pool.num_blocks()),
      block_size_(pool.block_size()),
      spare_target_(std::clamp<std::size_t>(pool.num_blocks() / 64, 1, 32)),
      log_(component_logger("g1_pool_client")) {
  // A pool is handed over before the engine serves anything: it holds no block.
  if (pool.num_referenced() != 0)
    log_->error("a G1 pool handed over with {} blocks held: they are not the engine's any more",
                pool.num_referenced());
}

void g1_pool_client::bind(kv_block_manager_actor manager) { manager_ = std::move(manager); }

std::uint32_t g1_pool_client::num_referenced() const {
  return lost_ ? num_blocks_ : static_cast<std::uint32_t>(refs_.size());
}

kv::pool_answer g1_pool_client::ask(kv::pool_call call) const {
  call.writes = std::exchange(writes_, {});
  kv::pool_answer a;
  a.ok = false;
  if (lost_) return a;
  ++calls_;
  dirty_ = true;  // an allocation may evict, a commit stores: either is an event the next drain publishes
  caf::error err;
  self()
      // No timeout: a manager that is gone bounces the request at once (an error below), and one that is slow
      // (behind a G3 read) is waited for — a timeout would leave a stale timeout message in this actor's
      // mailbox for every answered question, and a late answer's blocks held at the manager for good.
      ->request(manager_, caf::infinite, g1_atom::value, std::move(call))
      .receive([&](kv::pool_answer& x) { a = std::move(x); }, [&](caf::error& e) { err = std::move(e); });
  if (err) {
    lost_ = true;  // nothing can be granted: the worker reports its KV full, so routers send it nothing
    log_->error("the kv_block_manager owning this worker's G1 pool did not answer ({}): no block is granted from "
                "now on (the worker is going down with it)",
                caf::to_string(err));
    a = kv::pool_answer{};
    a.ok = false;
    return a;
  }
  if (a.refused) log_->error("{} G1 block write(s) refused by the kv_block_manager", a.refused);
  if (on_evict_)
    for (const auto& e : a.evicted) on_evict_(e.block, e.hash, e.parent);
  return a;
}

caf::scoped_actor& g1_pool_client::self() const {
  if (!self_) self_.emplace(manager_->home_system());  // on the first call, on the engine's thread
  return *self_;
}

void g1_pool_client::hold(const std::vector<kv::block_id>& blocks) {
  for (auto b : blocks) ++refs_[b];
}

std::size_t g1_pool_client::match_prefix(std::span<const kv::block_hash> hashes) const {
  if (hashes.empty()) return 0;
  kv::pool_call c;
  c.query = kv::pool_query::match_prefix;
  c.hashes.assign(hashes.begin(), hashes.end());
  return ask(std::move(c)).count;
}

std::optional<kv::block_id> g1_pool_client::block_of(kv::block_hash h) const {
  kv::pool_call c;
  c.query = kv::pool_query::block_of;
  c.hashes.push_back(h);
  auto a = ask(std::move(c));
  if (a.blocks.empty()) return std::nullopt;
  return a.blocks[0];
}

void g1_pool_client::take_cached(kv::pool_query q, std::span<const kv::block_hash> hashes, std::size_t n,
                                 std::size_t lookup, std::vector<kv::block_id>& out) {
  kv::pool_call c;
  c.query = q;
  c.hashes.assign(hashes.begin(), hashes.begin() + static_cast<std::ptrdiff_t>(std::min(n, hashes.size())));
  c.n = n;
  c.lookup = lookup;
  auto a = ask(std::move(c));
  hold(a.blocks);
  out.insert(out.end(), a.blocks.begin(), a.blocks.end());
}

void g1_pool_client::acquire_cached(std::span<const kv::block_hash> hashes, std::size_t n, std::size_t lookup,
                                    std::vector<kv::block_id>& out) {
  if (n > 0 || lookup > 0) take_cached(kv::pool_query::acquire_cached, hashes, n, lookup, out);
}

void g1_pool_client::pin_cached(std::span<const kv::block_hash> hashes, std::size_t n, std::vector<kv::block_id>& out) {
  if (n > 0) take_cached(kv::pool_query::pin_cached, hashes, n, 0, out);
}

bool g1_pool_client::allocate(std::size_t n, std::vector<kv::block_id>& out) {
  if (n == 0) return true;
  if (n > num_free()) return false;  // known here (spares count as free): no message
  std::vector<kv::block_id> got;
  if (n > spare_.size()) {
    // The manager has the rest: num_free() = its free blocks + our spares.
    const std::size_t need = n - spare_.size();
    kv::pool_call c;
    c.query = kv::pool_query::allocate;
    c.n = need;
    c.extra = spare_target_;
    auto a = ask(std::move(c));
    if (!a.ok || a.blocks.size() < need) return false;
    got.assign(a.blocks.begin(), a.blocks.begin() + static_cast<std::ptrdiff_t>(need));
    spare_.insert(spare_.end(), a.blocks.begin() + static_cast<std::ptrdiff_t>(need), a.blocks.end());
  }
  while (got.size() < n) {  // spent newest first: the grant's blocks stay together
    got.push_back(spare_.back());
    spare_.pop_back();
  }
  hold(got);
  out.insert(out.end(), got.begin(), got.end());
  return true;
}

void g1_pool_client::commit(kv::block_id b, kv::block_hash hash, std::optional<kv::block_hash> parent) {
  writes_.push_back(kv::pool_write{kv::pool_write::kind::commit, b, hash, parent});
}

void g1_pool_client::release(kv::block_id b) {
  auto it = refs_.find(b);
  if (it == refs_.end()) {
    // Not held by the engine (a double release): never sent, since the manager would apply it to a spare.
    log_->error("release of G1 block {} that the engine does not hold: ignored", b);
    return;
  }
  writes_.push_back(kv::pool_write{kv::pool_write::kind::release, b, 0, std::nullopt});
  if (--it->second == 0) refs_.erase(it);
}

void g1_pool_client::release_all(std::span<const kv::block_id> blocks) {
  // Tail first, as block_pool::release_all does (a sequence's deepest blocks are evicted first).
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) release(*it);
}

std::vector<kv::block_id> g1_pool_client::blocks_of(std::span<const kv::block_hash> hashes) const {
  if (hashes.empty()) return {};
  kv::pool_call c;
  c.query = kv::pool_query::blocks_of;
  c.hashes.assign(hashes.begin(), hashes.end());
  auto a = ask(std::move(c));
  if (a.blocks.size() != hashes.size()) a.blocks.assign(hashes.size(), kv::no_block);  // lost: nothing is here
  return std::move(a.blocks);
}

std::vector<msg::kv_event> g1_pool_client::drain_events() {
  if (lost_ || (!dirty_ && writes_.empty())) return {};  // nothing can have happened since the last drain
  dirty_ = false;
  kv::pool_call c;
  c.writes = std::exchange(writes_, {});
  c.query = kv::pool_query::drain_events;
  self()->send(manager_, kv_events_atom::value, std::move(c));  // no answer: the manager publishes them
  return {};
}

std::vector<msg::kv_event> g1_pool_client::snapshot() const {
  kv::pool_call c;
  c.query = kv::pool_query::snapshot;
  return ask(std::move(c)).events;
}

}  // namespace yard::actors
