// kv/approx_indexer.hpp — the router's guess of what each worker caches, for engines without KV events.
//
// Owns: (block hash, worker) entries for prompts this router sent, each with
// the time it was last routed; entries expire after a TTL and the whole index
// holds at most `capacity` entries (least recently routed dropped first).
// Must not touch: real KV events (kv/indexer.hpp), routing choices, clocks
// (time comes in as `now_ms`), I/O.
// Thread-safety: not thread-safe; one owner (a router core or the "approx" policy).
//
// find_matches has kv_indexer's meaning, with every entry treated as tier 1.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

#include "kv/indexer.hpp"

namespace yard::kv {

struct approx_indexer_options {
  double ttl_ms = 120000;             // entry lifetime since last routed (default 120 s)
  std::uint64_t capacity = 1u << 20;  // max (hash, worker) entries (default 1Mi)
};

class approx_indexer {
 public:
  explicit approx_indexer(approx_indexer_options opts = {});

  // The router sent a prompt with these block hashes to `worker` at now_ms.
  void record(worker_index worker, std::span<const block_hash> hashes, double now_ms);
  // Drops expired entries, then matches like kv_indexer::find_matches.
  void find_matches(std::span<const block_hash> hashes, double now_ms, std::vector<overlap>& out);
  std::vector<overlap> find_matches(std::span<const block_hash> hashes, double now_ms);
  void remove_worker(worker_index worker);
  // Drops entries last routed before now_ms - ttl_ms.
  void expire(double now_ms);

  std::size_t size() const { return lru_.size(); }
  std::uint64_t worker_blocks(worker_index w) const;

 private:
  struct entry {
    block_hash hash;
    worker_index worker;
    double t;
  };
  using list_t = std::list<entry>;
  void erase(list_t::iterator it);

  approx_indexer_options opts_;
  list_t lru_;  // oldest first
  std::unordered_map<block_hash, std::vector<list_t::iterator>> by_hash_;
  std::unordered_map<worker_index, std::uint64_t> per_worker_;
};

}  // namespace yard::kv
