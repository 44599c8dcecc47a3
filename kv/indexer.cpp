// kv/indexer.cpp — see indexer.hpp.
//
// Layout: each shard is an open-addressing table (linear probing, backward-shift
// deletion, no tombstones) of 32-byte slots: the block hash, a fingerprint of
// its holder set, and up to three holders inline; a block with more holders
// keeps them in the shard's flat arena (one dependent load from the slot).
// A holder is (worker << 2) | (tier - 1). Key 0 marks an empty slot, so a block
// hash of 0 is stored as `zero_key` (a collision chance of 2^-64, accepted).
//
// find_matches runs a software pipeline over the prompt's blocks (prefetch the
// slot's cache line and the next far ahead, look it up and prefetch its arena list near ahead, fold it in
// now), so a match's cache misses overlap. A block whose holder set equals the
// previous block's (same count, same fingerprint: the sum of a 64-bit mix of
// each holder, kept as holders come and go) only extends every live run, so a
// prefix chain costs one slot read per block, not a pass over its holders.
// Two different sets with equal count and sum: about 2^-64 per comparison, the
// same order of chance as two blocks sharing a hash, accepted likewise.
#include "kv/indexer.hpp"

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <new>
#include <shared_mutex>
#include <sys/mman.h>

#include "common/log.hpp"

namespace yard::kv {

namespace {

constexpr std::uint64_t mix_mul = 0x9E3779B97F4A7C15ULL;
constexpr std::uint64_t zero_key = 0x5a5a5a5a5a5a5a5aULL;
constexpr std::uint32_t inline_holders = 3;

inline std::uint64_t key_of(block_hash h) { return h ? h : zero_key; }
inline std::uint64_t mixed(std::uint64_t k) { return k * mix_mul; }
inline std::uint32_t holder_of(worker_index w, std::uint8_t tier) { return (w << 2) | (tier - 1u); }
inline worker_index holder_worker(std::uint32_t h) { return h >> 2; }
inline std::uint8_t holder_tier(std::uint32_t h) { return static_cast<std::uint8_t>((h & 3u) + 1u); }
// A holder's term in its block's holder-set fingerprint (the sum of the terms
// of every holder, kept as holders come and go): splitmix64's finalizer.
inline std::uint64_t holder_term(std::uint32_t h) {
  std::uint64_t z = h + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

enum class ev_kind : std::uint8_t { stored, removed, cleared, bad };
ev_kind kind_of(const msg::kv_event& e) {
  if (e.tier < 1 || e.tier > 3) return ev_kind::bad;
  if (e.kind == msg::kv_event_kind::stored) return ev_kind::stored;
  if (e.kind == msg::kv_event_kind::removed) return ev_kind::removed;
  if (e.kind == msg::kv_event_kind::cleared) return ev_kind::cleared;
  return ev_kind::bad;
}

// A zeroed array of T that asks for transparent huge pages when large: at 1M
// blocks the slots span tens of MiB and 4 KiB pages make every probe a TLB miss.
template <class T>
class huge_array {
 public:
  huge_array() = default;
  huge_array(const huge_array&) = delete;
  huge_array& operator=(const huge_array&) = delete;
  ~huge_array() { std::free(p_); }
  void assign(std::size_t n) {
    std::free(p_);
    constexpr std::size_t huge = std::size_t{2} << 20;
    std::size_t bytes = n * sizeof(T);
    std::size_t align = bytes >= huge ? huge : alignof(std::max_align_t) * 4;
    bytes = (bytes + align - 1) / align * align;
    p_ = static_cast<T*>(std::aligned_alloc(align, bytes));
    if (!p_) throw std::bad_alloc();
    if (align == huge) ::madvise(p_, bytes, MADV_HUGEPAGE);  // a hint: failure is harmless
    for (std::size_t i = 0; i < n; ++i) new (p_ + i) T{};
    n_ = n;
  }
  void swap(huge_array& o) {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
  }
  std::size_t size() const { return n_; }
  T& operator[](std::size_t i) { return p_[i]; }
  const T& operator[](std::size_t i) const { return p_[i]; }
  const T* begin() const { return p_; }
  const T* end() const { return p_ + n_; }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

}  // namespace

struct kv_indexer::shard {
  struct slot {
    std::uint64_t key = 0;
    std::uint64_t holder_set = 0;           // sum of holder_term over the holders: equal sets, equal sums
    std::uint32_t n = 0;                    // holders
    std::uint32_t h[inline_holders] = {};   // inline holders; when n > inline_holders: h[0] = arena offset, h[1] = size class
  };
  static_assert(sizeof(slot) == 32);

  mutable std::shared_mutex mu;
  huge_array<slot> slots;
  std::uint64_t mask = 0;
  std::uint32_t bits = 0;
  std::uint32_t shard_bits = 0;
  std::size_t size = 0;
  // Holder lists too long to sit in their slot live in one flat arena, in
  // extents of 8 << class entries (a freed extent is reused by its class), so a
  // long list is one dependent load away from its slot, not two.
  static constexpr std::uint32_t classes = 22;  // 8 << 21 > 3 tiers x (1 << 22) workers
  std::vector<std::uint32_t> arena;
  std::vector<std::uint32_t> arena_free[classes];

  static constexpr std::uint32_t extent_cap(std::uint32_t cls) { return 8u << cls; }
  std::uint32_t extent_alloc(std::uint32_t cls) {
    auto& fl = arena_free[cls];
    if (!fl.empty()) {
      std::uint32_t off = fl.back();
      fl.pop_back();
      return off;
    }
    auto off = static_cast<std::uint32_t>(arena.size());
    arena.resize(arena.size() + extent_cap(cls));
    return off;
  }
  void extent_free(std::uint32_t off, std::uint32_t cls) { arena_free[cls].push_back(off); }

  shard(std::size_t cap, std::uint32_t sbits) : shard_bits(sbits) {
    bits = 4;
    while ((std::size_t{1} << bits) < cap) ++bits;
    slots.assign(std::size_t{1} << bits);
    mask = slots.size() - 1;
  }

  std::uint64_t home(std::uint64_t key) const {
    // Skip the bits that chose the shard.
    return ((mixed(key) << shard_bits) >> (64 - bits)) & mask;
  }

  // The slot holding `key`, probing from its home slot `from` (home(key)).
  const slot* find(std::uint64_t key, std::uint64_t from) const {
    for (std::uint64_t i = from;; i = (i + 1) & mask) {
      const slot& s = slots[i];
      if (s.key == key) return &s;
      if (s.key == 0) return nullptr;
    }
  }

  std::span<const std::uint32_t> holders(const slot& s) const {
    if (s.n <= inline_holders) return {s.h, s.n};
    return {arena.data() + s.h[0], s.n};
  }

  void grow() {
    huge_array<slot> old;
    old.swap(slots);
    ++bits;
    slots.assign(std::size_t{1} << bits);
    mask = slots.size() - 1;
    for (const slot& s : old) {
      if (!s.key) continue;
      std::uint64_t i = home(s.key);
      while (slots[i].key) i = (i + 1) & mask;
      slots[i] = s;
    }
  }

  // Adds the holder; true when it was new.
  bool add(std::uint64_t key, std::uint32_t holder) {
    if ((size + 1) * 10 > slots.size() * 7) grow();
    std::uint64_t i = home(key);
    while (slots[i].key && slots[i].key != key) i = (i + 1) & mask;
    slot& s = slots[i];
    if (!s.key) {
      s.key = key;
      s.holder_set = holder_term(holder);
      s.n = 1;
      s.h[0] = holder;
      ++size;
      return true;
    }
    if (!add_holder(s, holder)) return false;
    s.holder_set += holder_term(holder);
    return true;
  }

  bool add_holder(slot& s, std::uint32_t holder) {
    if (s.n < inline_holders) {
      for (std::uint32_t j = 0; j < s.n; ++j)
        if (s.h[j] == holder) return false;
      s.h[s.n++] = holder;
      return true;
    }
    if (s.n == inline_holders) {
      for (std::uint32_t j = 0; j < s.n; ++j)
        if (s.h[j] == holder) return false;
      std::uint32_t off = extent_alloc(0);
      std::copy(s.h, s.h + inline_holders, arena.begin() + off);
      arena[off + inline_holders] = holder;
      s.h[0] = off;
      s.h[1] = 0;
      s.n = inline_holders + 1;
      return true;
    }
    std::uint32_t* v = arena.data() + s.h[0];
    if (std::find(v, v + s.n, holder) != v + s.n) return false;
    if (s.n == extent_cap(s.h[1])) {
      assert(s.h[1] + 1 < classes);
      std::uint32_t off = extent_alloc(s.h[1] + 1);  // may move the arena: v is stale after this
      std::copy(arena.begin() + s.h[0], arena.begin() + s.h[0] + s.n, arena.begin() + off);
      extent_free(s.h[0], s.h[1]);
      s.h[0] = off;
      ++s.h[1];
    }
    arena[s.h[0] + s.n++] = holder;
    return true;
  }

  // Removes the holder; true when it was there.
  bool remove(std::uint64_t key, std::uint32_t holder) {
    std::uint64_t i = home(key);
    for (;; i = (i + 1) & mask) {
      if (slots[i].key == key) break;
      if (slots[i].key == 0) return false;
    }
    slot& s = slots[i];
    if (!remove_holder(s, holder)) return false;
    if (s.n == 0) erase_at(i);
    return true;
  }

  bool remove_holder(slot& s, std::uint32_t holder) {
    if (!unlink_holder(s, holder)) return false;
    s.holder_set -= holder_term(holder);
    return true;
  }

  bool unlink_holder(slot& s, std::uint32_t holder) {
    if (s.n <= inline_holders) {
      for (std::uint32_t j = 0; j < s.n; ++j) {
        if (s.h[j] == holder) {
          s.h[j] = s.h[--s.n];
          return true;
        }
      }
      return false;
    }
    std::uint32_t* v = arena.data() + s.h[0];
    std::uint32_t* it = std::find(v, v + s.n, holder);
    if (it == v + s.n) return false;
    *it = v[--s.n];
    if (s.n == inline_holders) {
      std::uint32_t off = s.h[0], cls = s.h[1];
      std::copy(v, v + inline_holders, s.h);
      extent_free(off, cls);
    }
    return true;
  }

  // Backward-shift deletion keeps every probe chain unbroken.
  void erase_at(std::uint64_t i) {
    --size;
    std::uint64_t j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (!slots[j].key) break;
      std::uint64_t k = home(slots[j].key);
      // Move j back to i when i lies cyclically in [k, j).
      bool movable = (i <= j) ? (k <= i || k > j) : (k <= i && k > j);
      if (movable) {
        slots[i] = slots[j];
        i = j;
      }
    }
    slots[i] = slot{};
  }

  // Drops every holder of `worker`; returns how many were dropped.
  std::uint64_t drop_worker(worker_index worker) {
    std::uint64_t dropped = 0;
    for (std::uint64_t i = 0; i < slots.size();) {
      slot& s = slots[i];
      if (!s.key) {
        ++i;
        continue;
      }
      bool changed = false;
      for (std::uint8_t t = 1; t <= 3; ++t) {
        if (remove_holder(s, holder_of(worker, t))) {
          ++dropped;
          changed = true;
        }
      }
      if (changed && s.n == 0) {
        erase_at(i);  // a later slot may have shifted into i: look at it again
        continue;
      }
      ++i;
    }
    return dropped;
  }
};

kv_indexer::kv_indexer(indexer_options opts) : opts_(opts) {
  if (opts_.shards == 0) opts_.shards = 1;
  std::uint32_t sbits = 0;
  while ((1u << sbits) < opts_.shards) ++sbits;
  opts_.shards = 1u << sbits;
  shard_shift_ = sbits;
  if (opts_.max_workers == 0) opts_.max_workers = 1;
  assert(opts_.max_workers <= (1u << 22));
  if (opts_.max_events_per_lock == 0) opts_.max_events_per_lock = 1;
  for (std::uint32_t i = 0; i < opts_.shards; ++i)
    shards_.push_back(std::make_unique<shard>(opts_.initial_capacity, sbits));
  seq_.resize(opts_.max_workers);
  worker_blocks_ = std::make_unique<std::atomic<std::int64_t>[]>(opts_.max_workers);
}

kv_indexer::~kv_indexer() = default;

kv_indexer::shard& kv_indexer::shard_for(block_hash h) const {
  if (shard_shift_ == 0) return *shards_[0];
  return *shards_[mixed(key_of(h)) >> (64 - shard_shift_)];
}

std::unique_lock<std::shared_mutex> kv_indexer::exclusive(shard& s) const {
  std::unique_lock<std::shared_mutex> lk(s.mu, std::defer_lock);
  if (opts_.shared_readers) lk.lock();
  return lk;
}

std::shared_lock<std::shared_mutex> kv_indexer::shared(const shard& s) const {
  std::shared_lock<std::shared_mutex> lk(s.mu, std::defer_lock);
  if (opts_.shared_readers) lk.lock();
  return lk;
}

void kv_indexer::apply_unlocked_range(worker_index worker, std::span<const msg::kv_event> events, bool& malformed) {
  // Events up to the next "cleared" are bucketed by shard (order within one
  // hash is kept because one hash always lives in one shard), then each shard
  // is updated under its lock in slices of max_events_per_lock.
  struct op {
    std::uint64_t key;
    std::uint32_t holder;
    bool add;
  };
  thread_local std::vector<std::vector<op>> buckets;
  buckets.resize(shards_.size());
  std::int64_t delta = 0;
  std::uint64_t applied = 0;

  auto flush = [&] {
    for (std::size_t s = 0; s < buckets.size(); ++s) {
      auto& b = buckets[s];
      for (std::size_t off = 0; off < b.size(); off += opts_.max_events_per_lock) {
        std::size_t end = std::min(b.size(), off + opts_.max_events_per_lock);
        auto lk = exclusive(*shards_[s]);
        for (std::size_t k = off; k < end; ++k) {
          if (b[k].add) delta += shards_[s]->add(b[k].key, b[k].holder) ? 1 : 0;
          else delta -= shards_[s]->remove(b[k].key, b[k].holder) ? 1 : 0;
        }
      }
      b.clear();
    }
  };

  for (const auto& e : events) {
    switch (kind_of(e)) {
      case ev_kind::bad:
        malformed = true;
        malformed_.fetch_add(1, std::memory_order_relaxed);
        break;
      case ev_kind::cleared:
        flush();
        clear_worker_blocks(worker);
        delta = 0;
        worker_blocks_[worker].store(0, std::memory_order_relaxed);
        break;
      case ev_kind::stored:
      case ev_kind::removed: {
        bool add = kind_of(e) == ev_kind::stored;
        std::uint32_t holder = holder_of(worker, e.tier);
        for (block_hash h : e.block_hashes) {
          std::uint64_t key = key_of(h);
          std::size_t s = shard_shift_ ? (mixed(key) >> (64 - shard_shift_)) : 0;
          buckets[s].push_back(op{key, holder, add});
        }
        applied += e.block_hashes.size();
        break;
      }
    }
  }
  flush();
  worker_blocks_[worker].fetch_add(delta, std::memory_order_relaxed);
  block_events_.fetch_add(applied, std::memory_order_relaxed);
}

void kv_indexer::clear_worker_blocks(worker_index worker) {
  for (auto& s : shards_) {
    auto lk = exclusive(*s);
    s->drop_worker(worker);
  }
  worker_blocks_[worker].store(0, std::memory_order_relaxed);
}

batch_action kv_indexer::apply_batch(worker_index worker, std::uint64_t seq, std::span<const msg::kv_event> events,
                                     std::uint64_t stream) {
  if (worker >= opts_.max_workers) {
    component_logger("kv_indexer")->warn("batch from worker index {} >= max_workers {}: dropped", worker,
                                               opts_.max_workers);
    malformed_.fetch_add(1, std::memory_order_relaxed);
    return batch_action::ignored_stale;
  }
  batches_.fetch_add(1, std::memory_order_relaxed);
  bool gap = false;
  {
    std::lock_guard lk(seq_mu_);
    auto& st = seq_[worker];
    // Batch 0 opening with "cleared" starts a new stream (the worker restarted):
    // its numbering starts over and nothing older is worth keeping.
    bool new_stream = seq == 0 && !events.empty() && events.front().kind == msg::kv_event_kind::cleared;
    if (stream && st.stream && stream != st.stream && !new_stream) {
      if (stream < st.stream) {  // a dead incarnation's late batch
        stale_.fetch_add(1, std::memory_order_relaxed);
        return batch_action::ignored_stale;
      }
      st.known = false;  // a newer stream joined mid-way: its numbering is not ours
    }
    if (stream) st.stream = stream;
    if (new_stream && st.known && st.next != 0) streams_.fetch_add(1, std::memory_order_relaxed);
    if (new_stream) st.known = false;
    if (st.known && seq < st.next) {
      stale_.fetch_add(1, std::memory_order_relaxed);
      return batch_action::ignored_stale;
    }
    if ((!st.known && seq != 0) || (st.known && seq != st.next)) gap = true;
    st.known = true;
    st.next = seq + 1;
  }
  bool malformed = false;
  apply_unlocked_range(worker, events, malformed);
  if (gap || malformed) {
    if (gap) gaps_.fetch_add(1, std::memory_order_relaxed);
    auto lg = component_logger("kv_indexer");
    if (gap) lg->warn("worker {}: kv event seq {} out of order: requesting snapshot", worker, seq);
    if (malformed) lg->warn("worker {}: malformed kv event in batch {}: requesting snapshot", worker, seq);
    std::lock_guard lk(seq_mu_);
    seq_[worker].resync = true;
    return batch_action::request_snapshot;
  }
  std::lock_guard lk(seq_mu_);
  return seq_[worker].resync ? batch_action::request_snapshot : batch_action::none;
}

bool kv_indexer::apply_events(worker_index worker, std::span<const msg::kv_event> events) {
  if (worker >= opts_.max_workers) return false;
  bool malformed = false;
  apply_unlocked_range(worker, events, malformed);
  return !malformed;
}

bool kv_indexer::stale_stream(worker_index worker, std::uint64_t stream) const {
  if (worker >= opts_.max_workers || stream == 0) return false;
  std::lock_guard lk(seq_mu_);
  return seq_[worker].stream && stream < seq_[worker].stream;
}

bool kv_indexer::apply_snapshot(worker_index worker, std::uint64_t seq, std::span<const msg::kv_event> events,
                                std::uint64_t stream) {
  if (worker >= opts_.max_workers) return false;
  if (stale_stream(worker, stream)) {
    stale_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  clear_worker_blocks(worker);
  bool malformed = false;
  apply_unlocked_range(worker, events, malformed);
  snapshots_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lk(seq_mu_);
  auto& st = seq_[worker];
  st.known = true;
  st.next = seq + 1;
  st.resync = malformed;
  if (stream) st.stream = stream;
  return true;
}

void kv_indexer::remove_worker(worker_index worker) {
  if (worker >= opts_.max_workers) return;
  clear_worker_blocks(worker);
  std::lock_guard lk(seq_mu_);
  seq_[worker] = seq_state{};
}

bool kv_indexer::needs_resync(worker_index worker) const {
  if (worker >= opts_.max_workers) return false;
  std::lock_guard lk(seq_mu_);
  return seq_[worker].resync;
}

std::size_t kv_indexer::num_blocks() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    auto lk = shared(*s);
    n += s->size;
  }
  return n;
}

std::uint64_t kv_indexer::worker_blocks(worker_index w) const {
  if (w >= opts_.max_workers) return 0;
  auto v = worker_blocks_[w].load(std::memory_order_relaxed);
  return v > 0 ? static_cast<std::uint64_t>(v) : 0;
}

indexer_stats kv_indexer::stats() const {
  indexer_stats s;
  s.block_events = block_events_.load();
  s.batches = batches_.load();
  s.gaps = gaps_.load();
  s.stale = stale_.load();
  s.new_streams = streams_.load();
  s.malformed = malformed_.load();
  s.snapshots = snapshots_.load();
  return s;
}

std::vector<overlap> kv_indexer::find_matches(std::span<const block_hash> hashes) const {
  std::vector<overlap> out;
  find_matches(hashes, out);
  return out;
}

void kv_indexer::find_matches(std::span<const block_hash> hashes, std::vector<overlap>& out) const {
  out.clear();
  if (hashes.empty()) return;
  // Per-thread scratch. mark[w] = (stamp << 2) | (best tier - 1) for the block being
  // looked at: one array, valid only where its stamp is the current one, so nothing is
  // cleared between blocks or calls. runs: one per worker holding block 0, in the order
  // first seen; alive: the runs still extending.
  thread_local std::vector<std::uint32_t> mark;
  thread_local std::uint32_t stamp = 0;
  thread_local std::vector<overlap> runs;
  thread_local std::vector<std::uint32_t> alive;
  thread_local std::vector<std::uint8_t> run_tier;  // [run] the worker's best tier in the last block folded in
  if (mark.size() < opts_.max_workers) {
    mark.assign(opts_.max_workers, 0);
    stamp = 0;
  }
  runs.clear();
  alive.clear();
  run_tier.clear();

  if (opts_.shared_readers)
    for (const auto& s : shards_) s->mu.lock_shared();

  // A three-stage software pipeline over the prompt's blocks: block i+ahead's
  // home slot is prefetched, block i+near's slot is looked up (it has had time
  // to arrive) and its out-of-line holder list prefetched, and block i is folded
  // into the runs. Up to `ahead` misses are in flight at once, and a prompt that
  // stops matching early has fetched at most `ahead` slots it did not need.
  constexpr std::size_t ahead = 64, near = 16, ring_size = 128;
  static_assert(near < ahead && ahead < ring_size && (ring_size & (ring_size - 1)) == 0);
  struct stage {
    const shard* sh;
    std::uint64_t key, home;
    const shard::slot* found;
  };
  stage ring[ring_size];
  const std::size_t n = hashes.size();
  auto prefetch_slot = [&](std::size_t i) {
    stage& st = ring[i & (ring_size - 1)];
    st.key = key_of(hashes[i]);
    st.sh = &shard_for(hashes[i]);
    st.home = st.sh->home(st.key);
    // The home slot's cache line and the next one: a probe that runs past its
    // home line (about one in four at the table's load) would otherwise take a
    // second, serial miss. Measured side by side in `yard bench indexer`: p50
    // 2.35 -> 2.06 us at 512 workers; a third line gained nothing.
    __builtin_prefetch(&st.sh->slots[st.home]);
    __builtin_prefetch(&st.sh->slots[(st.home + 2) & st.sh->mask]);
  };
  auto look_up = [&](std::size_t i) {
    stage& st = ring[i & (ring_size - 1)];
    st.found = st.sh->find(st.key, st.home);
    if (st.found && st.found->n > inline_holders) __builtin_prefetch(st.sh->arena.data() + st.found->h[0]);
  };
  for (std::size_t i = 0; i < std::min(ahead, n); ++i) prefetch_slot(i);
  for (std::size_t i = 0; i < std::min(near, n); ++i) look_up(i);
  // Along a prefix chain, consecutive blocks usually have the same holders.
  // A block whose holder set (its count and fingerprint sum) equals the last
  // folded block's changes no run but extends each by one: such blocks are only
  // counted, and the count is applied to every live run at the next change.
  std::uint64_t last_set = 0;
  std::uint32_t last_n = 0, same = 0;
  auto extend_alive = [&](std::uint32_t u) {
    for (std::uint32_t r : alive) {
      overlap& o = runs[r];
      if (run_tier[r] == 1) {
        if (o.blocks == o.blocks_any) o.blocks += u;
      } else if (run_tier[r] == 2) {
        o.blocks_g2 += u;
      } else {
        o.blocks_g3 += u;
      }
      o.blocks_any += u;
    }
  };
  for (std::size_t i = 0; i < n; ++i) {
    if (i + ahead < n) prefetch_slot(i + ahead);
    if (i + near < n) look_up(i + near);
    const stage& pr = ring[i & (ring_size - 1)];
    const shard::slot* found = pr.found;
    if (!found) break;
    if (i > 0 && found->holder_set == last_set && found->n == last_n) {
      ++same;
      continue;
    }
    if (same) {
      extend_alive(same);
      same = 0;
    }
    last_set = found->holder_set;
    last_n = found->n;
    if (++stamp >= (1u << 30)) {
      std::fill(mark.begin(), mark.end(), 0);
      stamp = 1;
    }
    const std::uint32_t tag = stamp << 2;
    const auto holders = pr.sh->holders(*found);
    for (std::uint32_t h : holders) {
      worker_index w = holder_worker(h);
      if (w >= opts_.max_workers) continue;
      std::uint32_t code = tag | (holder_tier(h) - 1u);
      std::uint32_t& mk = mark[w];
      if ((mk & ~3u) != tag || code < mk) mk = code;
    }
    if (i == 0) {
      for (std::uint32_t h : holders) {
        worker_index w = holder_worker(h);
        if (w >= opts_.max_workers || (mark[w] & ~3u) != tag) continue;
        std::uint32_t tier = (mark[w] & 3u) + 1u;
        mark[w] = 0;  // one run per worker, whatever tiers it holds the block in
        alive.push_back(static_cast<std::uint32_t>(runs.size()));
        runs.push_back(overlap{w, tier == 1 ? 1u : 0u, 1, tier == 2 ? 1u : 0u, tier == 3 ? 1u : 0u});
        run_tier.push_back(static_cast<std::uint8_t>(tier));
      }
    } else {
      std::size_t kept = 0;
      for (std::uint32_t r : alive) {
        overlap& o = runs[r];
        std::uint32_t mk = mark[o.worker];
        if ((mk & ~3u) != tag) continue;  // the worker lacks block i: its run ends at i
        std::uint32_t tier = (mk & 3u) + 1u;
        o.blocks_any = static_cast<std::uint32_t>(i + 1);
        if (tier == 1) {
          if (o.blocks == i) o.blocks = static_cast<std::uint32_t>(i + 1);
        } else if (tier == 2) {
          ++o.blocks_g2;
        } else {
          ++o.blocks_g3;
        }
        run_tier[r] = static_cast<std::uint8_t>(tier);
        alive[kept++] = r;
      }
      alive.resize(kept);
    }
    if (alive.empty()) break;
  }
  if (same) extend_alive(same);

  if (opts_.shared_readers)
    for (auto it = shards_.rbegin(); it != shards_.rend(); ++it) (*it)->mu.unlock_shared();
  out.assign(runs.begin(), runs.end());
}

}  // namespace yard::kv
