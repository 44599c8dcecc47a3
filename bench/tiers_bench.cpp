// bench/tiers_bench.cpp — `yard bench tiers`: G3 throughput beside plain sequential
// disk I/O, and TTFT of a multi-turn workload with KV tiers on vs off.
//
// Owns: the benchmark workload and its report. Must not touch: the tiers'
// internals (it uses kv/tiers/tier_manager.hpp and kv/block_pool.hpp only).
// Thread-safety: single-threaded driver; disk_tier runs its own I/O pool.
//
// (a) disk: N blocks of --mib MiB written through disk_tier (put_async, each file
//     fdatasync'd before its rename) and read back (get_async, page cache dropped with
//     posix_fadvise(DONTNEED) per file first), versus the same bytes written with
//     sequential pwrite into one file + fdatasync, and read back with sequential
//     pread after fadvise(DONTNEED) — same directory, same run, --reps passes
//     alternating (medians: the disk is shared). Ratios are tier MB/s ÷ sequential MB/s.
// (b) TTFT: S sessions × T turns, each turn's prompt = previous prompt + previous
//     answer + new user tokens, sessions interleaved round-robin. G1 is a real
//     block_pool of C blocks (--g1-frac of the working set); its evictions feed a
//     real tier_manager (G2 in memory, G3 on disk) holding small proxy payloads,
//     while time is model time: prefill ms = 4.209989e-7·t² + 1.518344e-2·t +
//     16.50142 for t uncached tokens, onboarding = model block bytes ÷ measured
//     bandwidth (G2: memcpy measured here; G3: read bandwidth from (a)).
//     Tiers off: evicted prefixes are recomputed. Tiers on: tier_manager's
//     plan_onboard decides per request how many leading blocks to bring back.
//     Onboarded proxy bytes are checked against what was offloaded.
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "kv/block_hash.hpp"
#include "kv/block_pool.hpp"
#include "kv/tiers/tier_manager.hpp"
#include "tools/commands.hpp"

namespace yard::cmd {
namespace {

namespace fs = std::filesystem;
using kv::block_hash;
using kv::tiers::bytes;
using clk = std::chrono::steady_clock;

double ms_since(clk::time_point t0) {
  return std::chrono::duration<double, std::milli>(clk::now() - t0).count();
}

double prefill_ms(std::size_t t) {
  double x = static_cast<double>(t);
  return 4.209989e-7 * x * x + 1.518344e-2 * x + 16.50142;
}

void drop_cache(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

std::string hex_file(block_hash h) {
  char b[32];
  std::snprintf(b, sizeof b, "%016llx.ykvb", static_cast<unsigned long long>(h));
  return b;
}

struct disk_result {
  double tier_write_mbs = 0, tier_read_mbs = 0, seq_write_mbs = 0, seq_read_mbs = 0;
  bool ok = false;
};

// Block i's bytes: the shared random base with i stamped in the first 8 bytes.
void stamp(bytes& b, std::uint64_t i) { std::memcpy(b.data(), &i, sizeof i); }

disk_result disk_pass(const fs::path& dir, std::size_t n, std::size_t block, std::uint32_t threads) {
  disk_result res;
  bytes base(block);
  std::mt19937_64 rng(7);
  for (std::size_t i = 0; i + 8 <= block; i += 8) {
    std::uint64_t v = rng();
    std::memcpy(base.data() + i, &v, 8);
  }
  const double mb = double(n) * double(block) / 1e6;
  const std::size_t window = 2 * threads + 2;

  // Through disk_tier.
  kv::tiers::disk_tier_options o;
  o.dir = dir / "g3_disk";
  o.capacity_blocks = n + 1;
  o.io_threads = threads;
  o.sync_each_write = true;  // durable like the sequential file's fdatasync, without syncfs of the whole shared filesystem
  auto t = kv::tiers::disk_tier::open(o);
  if (!t.ok()) {
    std::fprintf(stderr, "disk_tier: %s\n", t.err().describe().c_str());
    return res;
  }
  auto& tier = *t.value();
  auto t0 = clk::now();
  std::deque<std::future<status>> puts;
  for (std::size_t i = 0; i < n; ++i) {
    bytes b = base;
    stamp(b, i + 1);
    puts.push_back(tier.put_async(i + 1, std::move(b)));
    while (puts.size() >= window) { puts.front().get(); puts.pop_front(); }
  }
  while (!puts.empty()) { puts.front().get(); puts.pop_front(); }
  double tw = ms_since(t0);
  if (tier.disabled() || tier.size() != n) {
    std::fprintf(stderr, "disk_tier write failed\n");
    return res;
  }
  for (std::size_t i = 0; i < n; ++i) drop_cache(o.dir / hex_file(i + 1));
  t0 = clk::now();
  std::deque<std::pair<std::uint64_t, std::future<result<bytes>>>> gets;
  bool ok = true;
  auto check = [&](std::uint64_t id, result<bytes> r) {
    std::uint64_t got = 0;
    if (!r.ok() || r->size() != block) { ok = false; return; }
    std::memcpy(&got, r->data(), 8);
    ok = ok && got == id && std::memcmp(r->data() + 8, base.data() + 8, 64) == 0;
  };
  for (std::size_t i = 0; i < n; ++i) {
    gets.emplace_back(i + 1, tier.get_async(i + 1));
    while (gets.size() >= window) { check(gets.front().first, gets.front().second.get()); gets.pop_front(); }
  }
  while (!gets.empty()) { check(gets.front().first, gets.front().second.get()); gets.pop_front(); }
  double tr = ms_since(t0);
  for (std::size_t i = 0; i < n; ++i) tier.erase(i + 1);
  t.value().reset();

  // Plain sequential file, same bytes.
  auto seq = dir / "sequential.bin";
  int fd = ::open(seq.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return res;
  t0 = clk::now();
  bytes b = base;
  for (std::size_t i = 0; i < n && ok; ++i) {
    stamp(b, i + 1);
    ok = ::pwrite(fd, b.data(), block, off_t(i * block)) == ssize_t(block);
  }
  ok = ok && ::fdatasync(fd) == 0;
  double sw = ms_since(t0);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  t0 = clk::now();
  for (std::size_t i = 0; i < n && ok; ++i) {
    ok = ::pread(fd, b.data(), block, off_t(i * block)) == ssize_t(block);
    std::uint64_t got = 0;
    std::memcpy(&got, b.data(), 8);
    ok = ok && got == i + 1;
  }
  double sr = ms_since(t0);
  ::close(fd);
  fs::remove(seq);
  res.tier_write_mbs = mb / (tw / 1e3);
  res.tier_read_mbs = mb / (tr / 1e3);
  res.seq_write_mbs = mb / (sw / 1e3);
  res.seq_read_mbs = mb / (sr / 1e3);
  res.ok = ok;
  return res;
}

double memcpy_bytes_per_ms(std::size_t block) {
  const std::size_t n = 32;
  std::vector<bytes> src(n, bytes(block, std::byte{1})), dst(n, bytes(block, std::byte{2}));  // pages touched
  double best = 0;
  for (int rep = 0; rep < 8; ++rep) {  // best of 8: the copy engine's bandwidth, not the noise
    auto t0 = clk::now();
    for (std::size_t i = 0; i < n; ++i) std::memcpy(dst[i].data(), src[i].data(), block);
    best = std::max(best, double(n * block) / ms_since(t0));
  }
  return best;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Alternates disk_tier and sequential passes `reps` times; each figure is the median.
disk_result bench_disk(const fs::path& dir, std::size_t n, std::size_t block, std::uint32_t threads, int reps) {
  std::vector<double> tw, tr, sw, sr;
  disk_result out;
  for (int i = 0; i < reps; ++i) {
    auto r = disk_pass(dir, n, block, threads);
    if (!r.ok) return r;
    tw.push_back(r.tier_write_mbs); tr.push_back(r.tier_read_mbs);
    sw.push_back(r.seq_write_mbs); sr.push_back(r.seq_read_mbs);
    std::printf("  pass %d: write tier %.0f / seq %.0f MB/s, read tier %.0f / seq %.0f MB/s\n", i + 1,
                r.tier_write_mbs, r.seq_write_mbs, r.tier_read_mbs, r.seq_read_mbs);
  }
  out.tier_write_mbs = median(tw); out.tier_read_mbs = median(tr);
  out.seq_write_mbs = median(sw); out.seq_read_mbs = median(sr);
  out.ok = true;
  return out;
}

struct turn {
  std::size_t session;
  std::vector<kv::token_id> prompt;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * double(v.size() - 1) + 0.5));
  return v[i];
}

constexpr std::size_t proxy_bytes = 4096;

bytes proxy_payload(block_hash h) {
  bytes b(proxy_bytes);
  std::mt19937_64 rng(h);
  for (std::size_t i = 0; i + 8 <= b.size(); i += 8) {
    std::uint64_t v = rng();
    std::memcpy(b.data() + i, &v, 8);
  }
  return b;
}

struct ttft_stats {
  std::vector<double> ttft;
  std::size_t g1_blocks = 0, g2_blocks = 0, g3_blocks = 0, recomputed_blocks = 0;
  bool verified = true;
};

ttft_stats run_ttft(const std::vector<turn>& work, std::uint32_t g1_blocks, kv::tiers::tier_manager* tiers,
                    const kv::tiers::onboard_cost_model& cm, double model_block_bytes) {
  ttft_stats st;
  kv::block_pool g1({.num_blocks = g1_blocks, .block_size = cm.block_tokens, .enable_prefix_caching = true,
                     .emit_events = true});
  auto offload_evicted = [&] {
    for (auto& e : g1.drain_events())
      if (tiers && e.kind == "removed")
        for (auto h : e.block_hashes) tiers->offload(h, proxy_payload(h));
  };
  for (auto& w : work) {
    auto hashes = kv::hash_blocks(w.prompt, cm.block_tokens);
    const std::size_t n1 = g1.match_prefix(hashes);
    std::vector<kv::block_id> held;
    g1.acquire_cached(hashes, n1, hashes.size(), held);
    std::size_t k = 0;
    double io_ms = 0;
    if (tiers) {
      auto rest = std::span<const block_hash>(hashes).subspan(n1);
      auto hit = tiers->lookup_prefix(rest);
      k = kv::tiers::tier_manager::plan_onboard(w.prompt.size(), n1 * cm.block_tokens, hit, cm);
      if (k > 0) {
        std::vector<bytes> bufs(k, bytes(proxy_bytes));
        std::vector<std::span<std::byte>> out(bufs.begin(), bufs.end());
        std::size_t got = tiers->onboard(rest, k, out);
        for (std::size_t i = 0; i < got; ++i) st.verified = st.verified && bufs[i] == proxy_payload(rest[i]);
        k = got;
        std::size_t in_g2 = 0;
        for (std::size_t i = 0; i < k; ++i) in_g2 += hit.tier(i) == 2 ? 1 : 0;
        io_ms = double(in_g2) * model_block_bytes / cm.g2_bytes_per_ms +
                double(k - in_g2) * model_block_bytes / cm.g3_bytes_per_ms;
        st.g2_blocks += in_g2;
        st.g3_blocks += k - in_g2;
      }
    }
    const std::size_t cached = (n1 + k) * cm.block_tokens;
    st.g1_blocks += n1;
    st.recomputed_blocks += hashes.size() - n1 - k;
    st.ttft.push_back(prefill_ms(w.prompt.size() - cached) + io_ms);
    // Allocate the rest of the prompt (onboarded + recomputed + a partial block), commit full ones.
    const std::size_t partial = w.prompt.size() % cm.block_tokens ? 1 : 0;
    std::vector<kv::block_id> fresh;
    if (g1.allocate(hashes.size() - n1 + partial, fresh)) {
      offload_evicted();
      for (std::size_t i = n1; i < hashes.size(); ++i)
        g1.commit(fresh[i - n1], hashes[i], i ? std::optional(hashes[i - 1]) : std::nullopt);
      g1.release_all(fresh);
    }
    g1.release_all(held);
    offload_evicted();
  }
  return st;
}

}  // namespace

int run_bench_tiers(int argc, char** argv) {
  CLI::App app{"yard bench tiers: KV tiers TTFT on vs off, G3 vs sequential disk"};
  double mib = 2;
  std::size_t nblocks = 256, sessions = 32, turns = 8;
  double g1_frac = 0.1, g2_frac = 0.5;
  std::uint32_t io_threads = 4, block_tokens = 64;
  std::string dir_arg;
  std::uint64_t seed = 1;
  int reps = 3;
  app.add_option("--reps", reps, "disk passes (tier and sequential alternating); medians reported (default 3)");
  app.add_option("--mib", mib, "disk block size in MiB (also the model's KV block size) (default 2)");
  app.add_option("--blocks", nblocks, "blocks written/read in the disk part (default 256)");
  app.add_option("--dir", dir_arg, "scratch directory (default /tmp/yard_tiers_bench_<pid>, removed at the end)");
  app.add_option("--io-threads", io_threads, "disk_tier I/O threads (default 4)");
  app.add_option("--sessions", sessions, "multi-turn sessions (default 32)");
  app.add_option("--turns", turns, "turns per session (default 8)");
  app.add_option("--g1-frac", g1_frac, "G1 capacity as a fraction of the working set (default 0.1)");
  app.add_option("--g2-frac", g2_frac, "G2 capacity as a fraction of the working set (default 0.5)");
  app.add_option("--block-tokens", block_tokens, "tokens per KV block (default 64)");
  app.add_option("--seed", seed, "workload seed (default 1)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const std::size_t block_bytes = static_cast<std::size_t>(mib * 1024 * 1024);
  if (block_bytes < 4096 || nblocks == 0 || sessions == 0 || turns == 0 || block_tokens == 0) {
    std::fprintf(stderr, "bench tiers: bad arguments\n");
    return 2;
  }
  fs::path dir = dir_arg.empty() ? fs::temp_directory_path() / ("yard_tiers_bench_" + std::to_string(::getpid()))
                                 : fs::path(dir_arg);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "bench tiers: cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  struct cleanup {
    fs::path d;
    bool owned;
    ~cleanup() { std::error_code e; if (owned) fs::remove_all(d, e); else { fs::remove_all(d / "g3_disk", e); fs::remove_all(d / "g3_ttft", e); } }
  } cleaner{dir, dir_arg.empty()};

  // (a) disk.
  std::printf("disk: %zu blocks x %.1f MiB in %s, %u I/O threads\n", nblocks, mib, dir.c_str(), io_threads);
  auto d = bench_disk(dir, nblocks, block_bytes, io_threads, std::max(1, reps));
  if (!d.ok) {
    std::fprintf(stderr, "bench tiers: disk part failed\n");
    return 1;
  }
  std::printf("  median write: disk_tier %.0f MB/s, sequential %.0f MB/s\n", d.tier_write_mbs, d.seq_write_mbs);
  std::printf("  median read:  disk_tier %.0f MB/s, sequential %.0f MB/s\n", d.tier_read_mbs, d.seq_read_mbs);

  // (b) TTFT.
  std::mt19937_64 rng(seed);
  std::vector<std::vector<kv::token_id>> ctx(sessions);
  std::vector<turn> work;
  std::size_t max_blocks = 0;
  for (std::size_t t = 0; t < turns; ++t)
    for (std::size_t s = 0; s < sessions; ++s) {
      std::size_t user = t == 0 ? 1024 + rng() % 512 : 256 + rng() % 512;
      for (std::size_t i = 0; i < user; ++i) ctx[s].push_back(static_cast<kv::token_id>(rng() % 32000));
      work.push_back({s, ctx[s]});
      max_blocks = std::max(max_blocks, ctx[s].size() / block_tokens + 1);
      for (std::size_t i = 0; i < 128; ++i) ctx[s].push_back(static_cast<kv::token_id>(rng() % 32000));  // answer
    }
  std::size_t ws = 0;
  for (auto& c : ctx) ws += c.size() / block_tokens;
  auto g1_cap = static_cast<std::uint32_t>(std::max<double>(double(max_blocks + 1), g1_frac * double(ws)));
  auto g2_cap = static_cast<std::size_t>(g2_frac * double(ws));

  kv::tiers::onboard_cost_model cm;
  cm.block_bytes = block_bytes;
  cm.block_tokens = block_tokens;
  cm.g2_bytes_per_ms = memcpy_bytes_per_ms(block_bytes);
  cm.g3_bytes_per_ms = d.tier_read_mbs * 1e3;  // MB/s -> bytes/ms
  cm.prefill_ms = prefill_ms;
  std::printf("ttft: %zu sessions x %zu turns, working set %zu blocks, G1 %u blocks, G2 %zu blocks, G3 on disk\n",
              sessions, turns, ws, g1_cap, g2_cap);
  std::printf("  bandwidths: G2 (memcpy) %.0f MB/s, G3 (read) %.0f MB/s\n", cm.g2_bytes_per_ms / 1e3,
              cm.g3_bytes_per_ms / 1e3);

  auto off = run_ttft(work, g1_cap, nullptr, cm, double(block_bytes));
  kv::tiers::tier_manager_options to;
  to.g2.capacity_blocks = g2_cap;
  kv::tiers::disk_tier_options g3o;
  g3o.dir = dir / "g3_ttft";
  g3o.capacity_blocks = ws * 2;
  to.g3 = g3o;
  to.emit_events = false;
  auto tm = kv::tiers::tier_manager::create(to);
  if (!tm.ok()) {
    std::fprintf(stderr, "bench tiers: %s\n", tm.err().describe().c_str());
    return 1;
  }
  auto on = run_ttft(work, g1_cap, tm.value().get(), cm, double(block_bytes));
  if (!on.verified) {
    std::fprintf(stderr, "bench tiers: onboarded bytes differ from offloaded bytes\n");
    return 1;
  }
  double p50_off = percentile(off.ttft, 0.5), p90_off = percentile(off.ttft, 0.9);
  double p50_on = percentile(on.ttft, 0.5), p90_on = percentile(on.ttft, 0.9);
  std::printf("  tiers off: TTFT p50 %.1f ms p90 %.1f ms (blocks: G1 %zu, recomputed %zu)\n", p50_off, p90_off,
              off.g1_blocks, off.recomputed_blocks);
  std::printf("  tiers on:  TTFT p50 %.1f ms p90 %.1f ms (blocks: G1 %zu, G2 %zu, G3 %zu, recomputed %zu)\n", p50_on,
              p90_on, on.g1_blocks, on.g2_blocks, on.g3_blocks, on.recomputed_blocks);
  std::printf("tiers: ttft_p50_speedup=%.2f ttft_p90_speedup=%.2f disk_read_ratio=%.2f disk_write_ratio=%.2f\n",
              p50_off / p50_on, p90_off / p90_on, d.tier_read_mbs / d.seq_read_mbs, d.tier_write_mbs / d.seq_write_mbs);
  return 0;
}

}  // namespace yard::cmd
