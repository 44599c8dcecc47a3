// bench/indexer_bench.cpp — `yard bench indexer`: the KV indexer beside a naive baseline, and a trace replay.
//
// Owns: the benchmark workload and its report. Must not touch: the indexer's
// internals (it calls the public kv/ API only).
// Thread-safety: single-threaded (the indexer has one owner, as in the router).
//
// Phases, all in one run:
//  0. Phase 1 at 64 workers once, untimed but for its ingest: the process's
//     first touch of its memory, reported as cold_ingest_events_per_s_64.
//  1. For 64 and 512 workers: index ~1M distinct blocks (10240 chains of 128
//     blocks; chains in groups of 8 share a 32-block prefix; each chain held by
//     1-3 workers) through kv_indexer::apply_batch, then time find_matches of
//     128-block prompts (half full hits, half diverging at a random block).
//     The baseline (a std::unordered_set of hashes per worker; a match checks
//     every worker) ingests and answers the same events and prompts.
//  2. At 512 workers, match latency again while events are ingested between
//     matches (one 128-event churn batch before each), on the index's one owner
//     thread as in the router actor.
//  3. The memory limit: the same number of prefetched random reads into an
//     array the size of the index's slots (match_vs_limit_p50 = match / limit);
//     route() throughput through kv_router_core at 512 workers.
//  4. Mooncake conversation trace replay: 8 workers with real block pools
//     (kv/block_pool.hpp) behind kv_router_core ("ttft"); each request is
//     routed, its blocks stored in the chosen pool, the pool's KV events fed
//     back; ops = routed requests + block events applied, over the time spent
//     in the router core.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unordered_set>

#include "kv/block_pool.hpp"
#include "kv/indexer.hpp"
#include "kv/kv_router_core.hpp"
#include "tools/commands.hpp"

namespace yard::cmd {

namespace {

using clk = std::chrono::steady_clock;
using kv::block_hash;

double secs(clk::time_point a, clk::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

struct workload {
  std::vector<std::vector<block_hash>> chains;            // [chain][128]
  std::vector<std::vector<kv::worker_index>> holders;     // [chain] -> workers
  std::vector<std::vector<block_hash>> prompts;           // [query][128]
};

workload make_workload(std::uint32_t workers, std::uint32_t chains, std::uint32_t queries, std::uint64_t seed) {
  workload w;
  std::uint64_t s = seed;
  const std::uint32_t len = 128, shared = 32, group = 8;
  w.chains.resize(chains);
  w.holders.resize(chains);
  for (std::uint32_t c = 0; c < chains; ++c) {
    auto& ch = w.chains[c];
    ch.resize(len);
    for (std::uint32_t i = 0; i < len; ++i) {
      // Blocks [0, 32) are the group's shared prefix: the same hash for every chain of the group.
      std::uint64_t id = i < shared ? (std::uint64_t{c / group} << 20) | i : (std::uint64_t{c + 1} << 40) | i;
      std::uint64_t t = id;
      ch[i] = splitmix(t);
    }
    std::uint32_t r = 1 + static_cast<std::uint32_t>(splitmix(s) % 3);
    for (std::uint32_t k = 0; k < r; ++k) w.holders[c].push_back(static_cast<kv::worker_index>(splitmix(s) % workers));
  }
  for (std::uint32_t q = 0; q < queries; ++q) {
    auto p = w.chains[splitmix(s) % chains];
    if (q % 2) {
      std::uint32_t cut = static_cast<std::uint32_t>(splitmix(s) % len);
      for (std::uint32_t i = cut; i < len; ++i) p[i] = splitmix(s);
    }
    w.prompts.push_back(std::move(p));
  }
  return w;
}

// Per-worker KV event batches that store every chain on its holders, 32 blocks per event.
std::vector<msg::kv_event_batch> store_batches(const workload& w, std::uint32_t workers) {
  std::vector<msg::kv_event_batch> out;
  std::vector<std::uint64_t> seq(workers, 0);
  for (std::size_t c = 0; c < w.chains.size(); ++c) {
    for (auto wk : w.holders[c]) {
      msg::kv_event_batch b;
      b.worker_id = std::to_string(wk);
      b.seq = seq[wk]++;
      for (std::size_t off = 0; off < w.chains[c].size(); off += 32) {
        msg::kv_event e;
        e.kind = msg::kv_event_kind::stored;
        e.block_hashes.assign(w.chains[c].begin() + off, w.chains[c].begin() + off + 32);
        if (off) e.parent_hash = w.chains[c][off - 1];
        b.events.push_back(std::move(e));
      }
      out.push_back(std::move(b));
    }
  }
  return out;
}

struct naive_index {
  std::vector<std::unordered_set<block_hash>> sets;
  explicit naive_index(std::uint32_t workers) : sets(workers) {}
  void apply(kv::worker_index w, const msg::kv_event_batch& b) {
    for (const auto& e : b.events) {
      if (e.kind == msg::kv_event_kind::stored) sets[w].insert(e.block_hashes.begin(), e.block_hashes.end());
      else if (e.kind == msg::kv_event_kind::removed)
        for (auto h : e.block_hashes) sets[w].erase(h);
      else if (e.kind == msg::kv_event_kind::cleared) sets[w].clear();
    }
  }
  void find_matches(const std::vector<block_hash>& q, std::vector<kv::overlap>& out) const {
    out.clear();
    for (kv::worker_index w = 0; w < sets.size(); ++w) {
      std::uint32_t n = 0;
      while (n < q.size() && sets[w].count(q[n])) ++n;
      if (n) out.push_back(kv::overlap{w, n, n});
    }
  }
};

struct percentiles {
  double p50 = 0, p99 = 0;
};
percentiles pct(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}

template <class F>
percentiles time_matches(const workload& w, F&& match, std::uint64_t& checksum) {
  std::vector<double> us;
  us.reserve(w.prompts.size());
  std::vector<kv::overlap> out;
  std::vector<block_hash> q;
  for (const auto& p : w.prompts) {
    q.assign(p.begin(), p.end());  // a router matches hashes it has just computed: they are in cache
    auto t0 = clk::now();
    match(q, out);
    auto t1 = clk::now();
    us.push_back(secs(t0, t1) * 1e6);
    for (auto& o : out) checksum += o.blocks;
  }
  return pct(std::move(us));
}

struct scale_result {
  double ingest = 0, base_ingest = 0;
  percentiles match, base_match, match_during_ingest;
  std::size_t blocks = 0;
};

scale_result run_scale(std::uint32_t workers, std::uint32_t chains, std::uint32_t queries, bool concurrent,
                       std::uint32_t shards) {
  scale_result r;
  auto w = make_workload(workers, chains, queries, 42 + workers);
  auto batches = store_batches(w, workers);
  std::uint64_t events = 0;
  std::vector<kv::worker_index> owner;
  for (const auto& b : batches) {
    owner.push_back(static_cast<kv::worker_index>(std::stoul(b.worker_id)));
    for (const auto& e : b.events) events += e.block_hashes.size();
  }

  kv::indexer_options io;
  io.max_workers = workers;
  io.shards = shards;
  io.initial_capacity = 1u << 14;  // growth is part of the measured ingest
  kv::kv_indexer ix(io);
  auto t0 = clk::now();
  for (std::size_t i = 0; i < batches.size(); ++i) ix.apply_batch(owner[i], batches[i].seq, batches[i].events);
  auto t1 = clk::now();
  r.ingest = events / secs(t0, t1);
  r.blocks = ix.num_blocks();

  naive_index nv(workers);
  t0 = clk::now();
  for (std::size_t i = 0; i < batches.size(); ++i) nv.apply(owner[i], batches[i]);
  t1 = clk::now();
  r.base_ingest = events / secs(t0, t1);

  std::uint64_t ck_a = 0, ck_b = 0;
  r.match = time_matches(w, [&](const auto& p, auto& out) { ix.find_matches(p, out); }, ck_a);
  r.base_match = time_matches(w, [&](const auto& p, auto& out) { nv.find_matches(p, out); }, ck_b);
  if (ck_a != ck_b) std::fprintf(stderr, "bench indexer: WARNING: indexer and baseline disagree (%llu vs %llu)\n",
                                 static_cast<unsigned long long>(ck_a), static_cast<unsigned long long>(ck_b));

  if (concurrent) {
    // Ingest while matching, as the router actor does it: the index has one owner, so
    // events are applied between matches on the same thread (never concurrently, never
    // behind a lock). Before every match, one churn batch (remove and re-store the second
    // half of a chain: 128 block events) goes in; only the match is timed.
    std::vector<std::uint64_t> seq(workers, 1u << 30);
    std::size_t c = 0;
    std::vector<double> us;
    std::vector<kv::overlap> out;
    std::vector<block_hash> q;
    for (const auto& p : w.prompts) {
      auto wk = w.holders[c][0];
      msg::kv_event rm, st;
      rm.kind = msg::kv_event_kind::removed;
      rm.block_hashes.assign(w.chains[c].begin() + 64, w.chains[c].end());
      st = rm;
      st.kind = msg::kv_event_kind::stored;
      std::vector<msg::kv_event> ev{rm, st};
      ix.apply_events(wk, ev);
      c = (c + 1) % w.chains.size();
      q.assign(p.begin(), p.end());
      auto t0 = clk::now();
      ix.find_matches(q, out);
      us.push_back(secs(t0, clk::now()) * 1e6);
    }
    r.match_during_ingest = pct(std::move(us));
  }
  return r;
}

// The hardware's limit for one match: `blocks` independent random cache-line reads from an
// array as large as the index's slot tables, every read prefetched before the first is
// used (what an ideal match overlapping all its misses costs). Same prompts count, same
// timer, same thread as the indexer's matches.
percentiles memory_limit(std::size_t bytes, std::uint32_t blocks, std::uint32_t queries) {
  struct alignas(32) line {
    std::uint64_t key;
    std::uint32_t pad[6];
  };
  std::size_t n = std::max<std::size_t>(1, bytes / sizeof(line));
  std::vector<line> a(n);
  for (std::size_t i = 0; i < n; ++i) a[i].key = i | 1;
  std::uint64_t s = 99, sum = 0;
  std::vector<std::size_t> idx(blocks);
  std::vector<double> us;
  us.reserve(queries);
  for (std::uint32_t q = 0; q < queries; ++q) {
    for (auto& i : idx) i = splitmix(s) % n;
    auto t0 = clk::now();
    for (auto i : idx) __builtin_prefetch(&a[i]);
    for (auto i : idx) sum += a[i].key;
    us.push_back(secs(t0, clk::now()) * 1e6);
  }
  if (sum == 42) std::fprintf(stderr, " ");  // keeps the reads
  return pct(std::move(us));
}

// route() through kv_router_core (hash chain given -> find_matches -> policy over every
// candidate -> load bookkeeping) at `workers` workers holding the workload's blocks.
double route_throughput(std::uint32_t workers, std::uint32_t chains, std::uint32_t queries) {
  auto w = make_workload(workers, chains, queries, 7 + workers);
  kv::kv_router_options o;
  o.policy = "ttft";
  o.index.max_workers = workers;
  auto core_r = kv::kv_router_core::create(o);
  if (!core_r) return 0;
  auto& core = **core_r;
  for (std::uint32_t i = 0; i < workers; ++i) core.add_worker(std::to_string(i));
  for (auto& b : store_batches(w, workers)) core.on_kv_events(std::move(b));
  while (core.queued_events()) core.pump(1u << 20);
  std::vector<kv::route_input> in(w.prompts.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    in[i].request_id = "q" + std::to_string(i);
    in[i].hashes = w.prompts[i];
    in[i].prompt_tokens = static_cast<std::uint32_t>(w.prompts[i].size() * o.block_size);
    in[i].max_tokens = 128;
  }
  std::uint64_t ok = 0;
  auto t0 = clk::now();
  for (std::size_t i = 0; i < in.size(); ++i) {
    in[i].now_ms = static_cast<double>(i);
    if (core.route(in[i])) ++ok;
    core.on_first_token(in[i].request_id);
    core.on_complete(in[i].request_id);
  }
  double s = secs(t0, clk::now());
  return s > 0 ? ok / s : 0;
}

std::string find_trace(const std::string& flag) {
  namespace fs = std::filesystem;
  if (!flag.empty()) return flag;
  const char* name = "data/mooncake/conversation_trace.jsonl";
  std::error_code ec;
  if (const char* d = std::getenv("YARD_SHARED_DIR"); d && *d && fs::exists(fs::path(d) / name, ec))
    return (fs::path(d) / name).string();
  for (auto p = fs::current_path(ec); !ec && !p.empty(); p = p.parent_path()) {
    auto cand = p / ".." / "shared" / name;
    if (fs::exists(cand, ec)) return cand.string();
    if (p == p.root_path()) break;
  }
  return {};
}

struct trace_result {
  bool ran = false;
  double ops_per_s = 0;
  std::uint64_t requests = 0, block_events = 0;
  double hit_rate = 0;
};

trace_result replay_trace(const std::string& path, std::size_t max_requests, std::uint32_t block_size) {
  trace_result r;
  std::ifstream in(path);
  if (!in) return r;
  const std::uint32_t workers = 8, sub = 512 / block_size;
  kv::kv_router_options o;
  o.policy = "ttft";
  o.block_size = block_size;
  auto core_r = kv::kv_router_core::create(o);
  if (!core_r) return r;
  auto& core = **core_r;
  std::vector<std::unique_ptr<kv::block_pool>> pools;
  std::vector<std::uint64_t> seqs(workers, 0);
  for (std::uint32_t i = 0; i < workers; ++i) {
    kv::block_pool_options po;
    po.num_blocks = 32768;
    po.block_size = block_size;
    pools.push_back(std::make_unique<kv::block_pool>(po));
    core.add_worker("w" + std::to_string(i));
  }
  double core_s = 0;
  std::uint64_t hit = 0, total = 0, lineno = 0, bad = 0;
  std::string line;
  std::vector<kv::block_id> ids;
  while (r.requests < max_requests && std::getline(in, line)) {
    ++lineno;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("hash_ids") || !j["hash_ids"].is_array()) {
      ++bad;
      continue;
    }
    std::uint64_t input = j.value("input_length", 0ull);
    kv::route_input q;
    q.request_id = std::to_string(lineno);
    q.prompt_tokens = static_cast<std::uint32_t>(input);
    q.max_tokens = j.value("output_length", 0u);
    q.now_ms = j.value("timestamp", 0.0);
    // Each 512-token hash_id becomes 512/block_size chained sub-block hashes.
    std::uint64_t full = input / block_size;
    block_hash parent = kv::root_seed;
    for (const auto& id : j["hash_ids"]) {
      if (!id.is_number_unsigned()) break;
      for (std::uint32_t k = 0; k < sub && q.hashes.size() < full; ++k) {
        std::uint64_t hid = id.get<std::uint64_t>();
        kv::token_id toks[3] = {static_cast<kv::token_id>(hid), static_cast<kv::token_id>(hid >> 32), k};
        parent = kv::hash_block(parent, toks, 3);
        q.hashes.push_back(parent);
      }
    }
    auto t0 = clk::now();
    auto d = core.route(q);
    core_s += secs(t0, clk::now());
    if (!d) continue;
    ++r.requests;
    auto& pool = *pools[d->worker];
    std::size_t n = pool.match_prefix(q.hashes);
    hit += n;
    total += q.hashes.size();
    ids.clear();
    pool.acquire_cached(q.hashes, n, q.hashes.size(), ids);
    std::size_t need = q.hashes.size() - n;
    if (need <= pool.num_free() && pool.allocate(need, ids)) {
      for (std::size_t i = n; i < q.hashes.size(); ++i)
        pool.commit(ids[i], q.hashes[i], i ? std::optional<block_hash>(q.hashes[i - 1]) : std::nullopt);
    }
    pool.release_all(ids);
    msg::kv_event_batch b;
    b.worker_id = d->worker_id;
    b.seq = seqs[d->worker]++;
    b.events = pool.drain_events();
    for (const auto& e : b.events) r.block_events += e.block_hashes.size();
    t0 = clk::now();
    core.on_first_token(q.request_id);
    core.on_complete(q.request_id);
    core.on_kv_events(std::move(b));
    core.pump(1u << 16);
    core_s += secs(t0, clk::now());
  }
  while (core.queued_events()) {
    auto t0 = clk::now();
    core.pump(1u << 16);
    core_s += secs(t0, clk::now());
  }
  if (bad) std::fprintf(stderr, "bench indexer: %llu malformed trace lines skipped\n", static_cast<unsigned long long>(bad));
  r.ran = r.requests > 0;
  r.ops_per_s = core_s > 0 ? (r.requests + r.block_events) / core_s : 0;
  r.hit_rate = total ? static_cast<double>(hit) / total : 0;
  return r;
}

}  // namespace

int run_bench_indexer(int argc, char** argv) {
  CLI::App app{"yard bench indexer: KV indexer ingest and find_matches vs a per-worker hash-set baseline, plus a Mooncake trace replay"};
  bool quick = false;
  std::string trace;
  std::uint32_t block_size = 16;
  std::size_t trace_requests = 0;
  std::uint32_t shards = kv::indexer_options{}.shards;
  app.add_flag("--quick", quick, "smaller run (about 1/8 of the blocks, 2000 trace requests)");
  app.add_option("--trace", trace, "Mooncake conversation trace (default $YARD_SHARED_DIR or ../shared, data/mooncake/conversation_trace.jsonl)");
  app.add_option("--block-size", block_size, "tokens per block for the trace replay (default 16; must divide 512)");
  app.add_option("--trace-requests", trace_requests, "max trace requests to replay (default all, 2000 with --quick)");
  app.add_option("--shards", shards, "indexer shards (default 4)")->check(CLI::Range(1, 256));
  try {
    app.parse(argc, argv);
    // A trace named on the command line must be there (the default one is skipped when absent: CI has no data).
    if (!trace.empty() && !std::filesystem::is_regular_file(trace)) {
      std::fprintf(stderr, "yard bench indexer: --trace %s: no such file\n", trace.c_str());
      return 2;
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (block_size == 0 || 512 % block_size != 0) {
    std::fprintf(stderr, "bench indexer: --block-size must divide 512\n");
    return 2;
  }
  // 96 own + 32 shared-per-8 blocks per chain: 10240 chains = 1,024,000 distinct blocks.
  const std::uint32_t chains = quick ? 1280 : 10240;
  const std::uint32_t queries = quick ? 5000 : 20000;
  if (trace_requests == 0) trace_requests = quick ? 2000 : SIZE_MAX;

  // Pass 0, reported only as the cold figure: the first pass in a process pays the
  // kernel's first touch of every page its heap grows into (page faults and zeroing:
  // a quarter of `perf`'s samples in that pass). A router pays that once in its life
  // and then ingests into memory it has touched; the passes below measure that.
  double cold64 = run_scale(64, chains, queries, false, shards).ingest;
  std::printf("workers=64  first pass in a fresh process (cold pages): ingest=%.3gM ev/s\n", cold64 / 1e6);
  auto r64 = run_scale(64, chains, queries, false, shards);
  std::printf("workers=64  blocks=%zu ingest=%.3gM ev/s (baseline %.3gM)  match p50=%.2fus p99=%.2fus (baseline p50=%.2fus p99=%.2fus)\n",
              r64.blocks, r64.ingest / 1e6, r64.base_ingest / 1e6, r64.match.p50, r64.match.p99, r64.base_match.p50,
              r64.base_match.p99);
  auto r512 = run_scale(512, chains, queries, true, shards);
  std::printf("workers=512 blocks=%zu ingest=%.3gM ev/s (baseline %.3gM)  match p50=%.2fus p99=%.2fus (baseline p50=%.2fus p99=%.2fus)\n",
              r512.blocks, r512.ingest / 1e6, r512.base_ingest / 1e6, r512.match.p50, r512.match.p99,
              r512.base_match.p50, r512.base_match.p99);
  std::printf("workers=512 match with a 128-event batch ingested before each: p50=%.2fus p99=%.2fus\n", r512.match_during_ingest.p50,
              r512.match_during_ingest.p99);
  // 32-byte slots at most 70% full in tables that double: the index's slot bytes, rounded as it grows.
  std::size_t slot_bytes = 32;
  while (slot_bytes * 7 / 10 < r512.blocks * 32) slot_bytes *= 2;
  auto limit = memory_limit(slot_bytes, 128, queries);
  std::printf("memory limit (128 prefetched random reads in %zu MiB): p50=%.2fus p99=%.2fus -> match is %.1fx the limit at p50\n",
              slot_bytes >> 20, limit.p50, limit.p99, limit.p50 > 0 ? r512.match.p50 / limit.p50 : 0.0);
  double route_per_s = route_throughput(512, chains, queries);
  std::printf("route() at 512 workers: %.0f/s\n", route_per_s);

  double trace_ops = 0;
  auto path = find_trace(trace);
  if (path.empty()) {
    std::printf("trace replay skipped: conversation_trace.jsonl not found (set YARD_SHARED_DIR or --trace)\n");
  } else {
    auto t = replay_trace(path, trace_requests, block_size);
    if (!t.ran) {
      std::printf("trace replay skipped: no readable requests in %s\n", path.c_str());
    } else {
      trace_ops = t.ops_per_s;
      std::printf("trace replay: %llu requests, %llu block events, prefix hit rate %.1f%%, %.3gM ops/s in the router core\n",
                  static_cast<unsigned long long>(t.requests), static_cast<unsigned long long>(t.block_events),
                  t.hit_rate * 100, t.ops_per_s / 1e6);
    }
  }
  std::printf(
      "indexer: ingest_events_per_s=%.0f match_p50_us_512=%.2f match_p99_us_512=%.2f match_p50_us_64=%.2f "
      "match_p99_us_64=%.2f baseline_ingest_events_per_s=%.0f baseline_match_p50_us_512=%.2f "
      "baseline_match_p99_us_512=%.2f match_p99_us_512_during_ingest=%.2f limit_match_p50_us=%.2f "
      "match_vs_limit_p50=%.2f route_per_s=%.0f trace_ops_per_s=%.0f ingest_events_per_s_64=%.0f "
      "cold_ingest_events_per_s_64=%.0f\n",
      r512.ingest, r512.match.p50, r512.match.p99, r64.match.p50, r64.match.p99, r512.base_ingest,
      r512.base_match.p50, r512.base_match.p99, r512.match_during_ingest.p99, limit.p50,
      limit.p50 > 0 ? r512.match.p50 / limit.p50 : 0.0, route_per_s, trace_ops, r64.ingest, cold64);
  return 0;
}

}  // namespace yard::cmd
