// kv/tiers/host_arena.cpp — see host_arena.hpp.
#include "kv/tiers/host_arena.hpp"

#include <cassert>
#include <new>

namespace yard::kv::tiers {

struct host_lease::hold {
  std::shared_ptr<host_arena> arena;
  std::uint32_t slot = 0;
  ~hold() { arena->end_lease(slot); }
};

std::span<const std::byte> host_lease::bytes() const {
  if (!hold_) return {};
  return hold_->arena->slot(hold_->slot);
}

std::shared_ptr<host_arena> host_arena::create(std::size_t slots, std::size_t slot_bytes, host_pinning pinning) {
  if (slots == 0 || slot_bytes == 0 || slots > UINT32_MAX || slot_bytes > SIZE_MAX / slots) return nullptr;
  // Default-initialised: no page is touched (committed) until a block is written into it.
  std::unique_ptr<std::byte[]> slab(new (std::nothrow) std::byte[slots * slot_bytes]);
  if (!slab) return nullptr;
  return std::shared_ptr<host_arena>(new host_arena(slots, slot_bytes, std::move(slab), std::move(pinning)));
}

host_arena::host_arena(std::size_t slots, std::size_t slot_bytes, std::unique_ptr<std::byte[]> slab,
                       host_pinning pinning)
    : slots_(slots), slot_bytes_(slot_bytes), slab_(std::move(slab)), pinning_(std::move(pinning)), state_(slots) {
  free_.reserve(slots);
  for (std::size_t i = slots; i-- > 0;) free_.push_back(static_cast<std::uint32_t>(i));  // slot 0 first
  if (pinning_.enabled()) pinned_ = pinning_.pin(slab_.get(), slots_ * slot_bytes_);
}

host_arena::~host_arena() {
  if (pinned_ && pinning_.unpin) pinning_.unpin(slab_.get());
}

std::optional<std::uint32_t> host_arena::acquire() {
  std::lock_guard lk(mu_);
  if (free_.empty()) return std::nullopt;
  const std::uint32_t s = free_.back();
  free_.pop_back();
  state_[s].owned = true;
  return s;
}

void host_arena::release(std::uint32_t s) {
  std::lock_guard lk(mu_);
  assert(s < slots_ && state_[s].owned);
  state_[s].owned = false;
  if (state_[s].leases == 0) free_.push_back(s);
}

void host_arena::end_lease(std::uint32_t s) {
  std::lock_guard lk(mu_);
  assert(state_[s].leases > 0);
  if (--state_[s].leases == 0 && !state_[s].owned) free_.push_back(s);
}

std::span<std::byte> host_arena::slot(std::uint32_t s) {
  assert(s < slots_);
  return {slab_.get() + static_cast<std::size_t>(s) * slot_bytes_, slot_bytes_};
}

host_lease host_arena::lease(std::uint32_t s) {
  {
    std::lock_guard lk(mu_);
    assert(s < slots_ && state_[s].owned);
    ++state_[s].leases;
  }
  host_lease l;
  l.hold_ = std::shared_ptr<const host_lease::hold>(new host_lease::hold{shared_from_this(), s});
  return l;
}

std::size_t host_arena::free_slots() const {
  std::lock_guard lk(mu_);
  return free_.size();
}

std::size_t host_arena::leased_slots() const {
  std::lock_guard lk(mu_);
  std::size_t n = 0;
  for (const auto& st : state_) n += st.leases > 0;
  return n;
}

}  // namespace yard::kv::tiers
