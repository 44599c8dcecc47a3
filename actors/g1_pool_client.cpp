// actors/g1_pool_client.cpp — see g1_pool_client.hpp.
#include "actors/g1_pool_client.hpp"

#include <chrono>

#include <caf/all.hpp>

namespace yard::actors {

namespace {
// A manager answers from memory at once; this long only if its thread is stuck behind a G3 read.
constexpr auto answer_timeout = std::chrono::seconds(30);
}  // namespace

g1_pool_client::g1_pool_client(const kv::block_pool& pool)
    : num_blocks_(pool.num_blocks()),
      block_size_(pool.block_size()),
      num_free_(pool.num_free()),
      num_referenced_(pool.num_referenced()),
      rpc_(caf::duration(answer_timeout)),
      log_(component_logger("g1_pool_client")) {}

void g1_pool_client::bind(kv_block_manager_actor manager) { manager_ = std::move(manager); }

kv::pool_answer g1_pool_client::ask(kv::pool_call call) const {
  call.writes = std::exchange(writes_, {});
  kv::pool_answer a;
  a.ok = false;
  if (lost_) return a;
  // The blocking actor behind the view is made here, on the caller's (the engine's) thread.
  if (!rpc_) rpc_.assign(manager_);
  ++calls_;
  auto r = rpc_(g1_atom::value, std::move(call));
  if (!r) {
    lost_ = true;
    num_free_ = 0;  // nothing can be granted: the worker reports its KV full, so routers send it nothing
    num_referenced_ = num_blocks_;
    log_->error("the kv_block_manager owning this worker's G1 pool did not answer ({}): no block is granted from "
                "now on (the worker is going down with it)",
                caf::to_string(r.error()));
    return a;
  }
  a = std::move(*r);
  num_free_ = a.num_free;
  num_referenced_ = a.num_referenced;
  if (a.refused) log_->error("{} G1 block write(s) refused by the kv_block_manager", a.refused);
  if (on_evict_)
    for (const auto& e : a.evicted) on_evict_(e.block, e.hash, e.parent);
  return a;
}

void g1_pool_client::flush() const {
  if (!writes_.empty()) ask(kv::pool_call{});
}

std::uint32_t g1_pool_client::num_free() const {
  flush();
  return num_free_;
}

std::uint32_t g1_pool_client::num_referenced() const {
  flush();
  return num_referenced_;
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

void g1_pool_client::acquire_cached(std::span<const kv::block_hash> hashes, std::size_t n, std::size_t lookup,
                                    std::vector<kv::block_id>& out) {
  if (n == 0 && lookup == 0) return;
  kv::pool_call c;
  c.query = kv::pool_query::acquire_cached;
  c.hashes.assign(hashes.begin(), hashes.begin() + static_cast<std::ptrdiff_t>(std::min(n, hashes.size())));
  c.n = n;
  c.lookup = lookup;
  auto a = ask(std::move(c));
  out.insert(out.end(), a.blocks.begin(), a.blocks.end());
}

void g1_pool_client::pin_cached(std::span<const kv::block_hash> hashes, std::size_t n, std::vector<kv::block_id>& out) {
  if (n == 0) return;
  kv::pool_call c;
  c.query = kv::pool_query::pin_cached;
  c.hashes.assign(hashes.begin(), hashes.begin() + static_cast<std::ptrdiff_t>(std::min(n, hashes.size())));
  c.n = n;
  auto a = ask(std::move(c));
  out.insert(out.end(), a.blocks.begin(), a.blocks.end());
}

bool g1_pool_client::allocate(std::size_t n, std::vector<kv::block_id>& out) {
  if (n == 0) return true;
  kv::pool_call c;
  c.query = kv::pool_query::allocate;
  c.n = n;
  auto a = ask(std::move(c));
  if (!a.ok) return false;
  out.insert(out.end(), a.blocks.begin(), a.blocks.end());
  return true;
}

void g1_pool_client::commit(kv::block_id b, kv::block_hash hash, std::optional<kv::block_hash> parent) {
  writes_.push_back(kv::pool_write{kv::pool_write::kind::commit, b, hash, parent});
}

void g1_pool_client::release(kv::block_id b) {
  writes_.push_back(kv::pool_write{kv::pool_write::kind::release, b, 0, std::nullopt});
}

void g1_pool_client::release_all(std::span<const kv::block_id> blocks) {
  // Tail first, as block_pool::release_all does (a sequence's deepest blocks are evicted first).
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) release(*it);
}

std::vector<msg::kv_event> g1_pool_client::drain_events() {
  kv::pool_call c;
  c.query = kv::pool_query::drain_events;
  ask(std::move(c));
  return {};
}

std::vector<msg::kv_event> g1_pool_client::snapshot() const {
  kv::pool_call c;
  c.query = kv::pool_query::snapshot;
  return ask(std::move(c)).events;
}

}  // namespace yard::actors
