// bench/tiers_bench.cpp — `yard bench tiers`: G3 throughput beside plain sequential
// disk I/O, and TTFT of a multi-turn workload through an engine with KV tiers on vs off.
//
// Owns: the benchmark workload and its report. Must not touch: the tiers'
// internals (it drives kv/tiers/disk_tier.hpp directly for (a) and a
// backends::mock_engine with kv_tier_options for (b)).
// Thread-safety: single-threaded driver; disk_tier runs its own I/O pool.
//
// (a) disk: N blocks of --mib MiB written through disk_tier (put_async into its
//     slab with O_DIRECT, then one tier.sync() = fdatasync, inside the timing) and
//     read back (get_async: O_DIRECT pread of each slot, checksum, copy out),
//     versus the same bytes written with sequential O_DIRECT pwrite into one file +
//     one fdatasync and read back with sequential O_DIRECT pread (block-sized
//     requests, one at a time) — no page cache on either side, same directory, same
//     run, interleaved in rounds of 16 blocks (tier, then file) so both sides see the
//     same moments of a shared disk; --reps such passes, medians. Ratios are tier
//     MB/s ÷ sequential MB/s paired per round (the file's time ÷ the tier's for the
//     same 16 blocks), the median over every round of every pass.
// (b) TTFT: S sessions x T turns, each turn's prompt = previous prompt + the
//     engine's answer (--answer tokens) + new user tokens, sessions interleaved
//     round-robin, one request at a time. Both runs go through a real
//     backends::mock_engine in profile mode (production scheduler, block_pool,
//     timing model); G1 is its pool of C blocks (--g1-frac of the working set).
//     Tiers on = the same options plus backends::kv_tier_options (G2 in memory,
//     G3 on disk under --dir): G1 evictions are offloaded through the pool's
//     eviction hook, prefixes onboarded before prefill when the engine predicts
//     a gain. TTFT = model time from add_request to the first token, including
//     the onboarding time the engine charges (modelled block bytes = --mib, G2
//     bandwidth = memcpy measured here, G3 bandwidth = disk_tier read from (a)),
//     with the copy overlapped with the prefill (layer-wise loading, the
//     engine's default); a third run without overlap is printed for reference.
//     The engine's blocks carry small synthetic payloads (verified at every
//     onboarding) so (b) does not write gigabytes; (a) measured the bandwidths
//     at the full block size.
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "backends/mock/mock_engine.hpp"
#include "kv/block_hash.hpp"
#include "kv/tiers/disk_tier.hpp"
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

void drop_cache(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

struct disk_result {
  double tier_write_mbs = 0, tier_read_mbs = 0, seq_write_mbs = 0, seq_read_mbs = 0;
  // Per round: the sequential file's time ÷ the tier's time for the same blocks
  // at the same moment (tier MB/s ÷ sequential MB/s, paired).
  std::vector<double> write_ratios, read_ratios;
  double write_ratio = 0, read_ratio = 0;  // bench_disk: the median over every round of every pass
  bool ok = false;
};

// Block i's bytes: the shared random base with i stamped in the first 8 bytes.
void stamp(bytes& b, std::uint64_t i) { std::memcpy(b.data(), &i, sizeof i); }

// One pass, interleaved in rounds of `round` blocks: the tier writes a round (puts
// pipelined `window` deep, then tier.sync()), the sequential file writes the same
// bytes (then fdatasync); later the tier reads a round back, then the file. Each
// side's time is the sum of its rounds, so both see the same moments of a shared disk.
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
  const std::size_t round = 16;

  kv::tiers::disk_tier_options o;
  o.dir = dir / "g3_disk";
  o.capacity_blocks = n + 1;
  o.io_threads = threads;
  o.block_bytes = block;
  auto t = kv::tiers::disk_tier::open(o);
  if (!t.ok()) {
    std::fprintf(stderr, "disk_tier: %s\n", t.err().describe().c_str());
    return res;
  }
  auto& tier = *t.value();

  // The sequential file, with O_DIRECT (no page cache either way: the device's own
  // speed, whatever the kernel's readahead or fadvise would do).
  auto seq = dir / "sequential.bin";
  int fd = ::open(seq.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0600);
  bool direct = fd >= 0;
  if (!direct) {
    std::fprintf(stderr, "bench tiers: O_DIRECT refused on %s (%s): sequential baseline with fadvise(DONTNEED)\n",
                 dir.c_str(), std::strerror(errno));
    fd = ::open(seq.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  }
  if (fd < 0) return res;
  constexpr std::size_t align = 4096;
  const std::size_t padded = (block + align - 1) / align * align;
  std::unique_ptr<std::byte, decltype(&std::free)> buf(static_cast<std::byte*>(std::aligned_alloc(align, padded)), &std::free);
  std::memset(buf.get(), 0, padded);
  std::memcpy(buf.get(), base.data(), block);

  double tw = 0, tr = 0, sw = 0, sr = 0;
  bool ok = true;
  for (std::size_t r0 = 0; r0 < n && ok; r0 += round) {
    const std::size_t r1 = std::min(n, r0 + round);
    auto t0 = clk::now();
    std::deque<std::future<status>> puts;
    for (std::size_t i = r0; i < r1; ++i) {
      bytes b = base;  // the caller hands the tier a block it owns, as an offload does
      stamp(b, i + 1);
      puts.push_back(tier.put_async(i + 1, std::move(b)));
      while (puts.size() >= window) { ok = ok && puts.front().get().ok(); puts.pop_front(); }
    }
    while (!puts.empty()) { ok = ok && puts.front().get().ok(); puts.pop_front(); }
    ok = ok && tier.sync().ok();
    const double tier_ms = ms_since(t0);
    tw += tier_ms;
    t0 = clk::now();
    for (std::size_t i = r0; i < r1 && ok; ++i) {
      std::uint64_t id = i + 1;
      std::memcpy(buf.get(), &id, sizeof id);
      ok = ::pwrite(fd, buf.get(), padded, off_t(i * padded)) == ssize_t(padded);
    }
    ok = ok && ::fdatasync(fd) == 0;
    const double seq_ms = ms_since(t0);
    sw += seq_ms;
    if (tier_ms > 0) res.write_ratios.push_back(seq_ms / tier_ms);
  }
  if (!ok || tier.disabled() || tier.size() != n) {
    std::fprintf(stderr, "disk write failed (tier disabled: %d, held %zu of %zu)\n", int(tier.disabled()), tier.size(), n);
    ::close(fd);
    return res;
  }
  if (!tier.direct_io()) drop_cache(tier.slab_path());
  if (!direct) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  auto check = [&](std::uint64_t id, result<bytes> r) {
    std::uint64_t got = 0;
    if (!r.ok() || r->size() != block) { ok = false; return; }
    std::memcpy(&got, r->data(), 8);
    ok = ok && got == id && std::memcmp(r->data() + 8, base.data() + 8, 64) == 0;
  };
  for (std::size_t r0 = 0; r0 < n && ok; r0 += round) {
    const std::size_t r1 = std::min(n, r0 + round);
    auto t0 = clk::now();
    std::deque<std::pair<std::uint64_t, std::future<result<bytes>>>> gets;
    for (std::size_t i = r0; i < r1; ++i) {
      gets.emplace_back(i + 1, tier.get_async(i + 1));
      while (gets.size() >= window) { check(gets.front().first, gets.front().second.get()); gets.pop_front(); }
    }
    while (!gets.empty()) { check(gets.front().first, gets.front().second.get()); gets.pop_front(); }
    const double tier_ms = ms_since(t0);
    tr += tier_ms;
    t0 = clk::now();
    for (std::size_t i = r0; i < r1 && ok; ++i) {
      ok = ::pread(fd, buf.get(), padded, off_t(i * padded)) == ssize_t(padded);
      std::uint64_t got = 0;
      std::memcpy(&got, buf.get(), 8);
      ok = ok && got == i + 1;
    }
    const double seq_ms = ms_since(t0);
    sr += seq_ms;
    if (tier_ms > 0) res.read_ratios.push_back(seq_ms / tier_ms);
  }
  ::close(fd);
  fs::remove(seq);
  for (std::size_t i = 0; i < n; ++i) tier.erase(i + 1);
  t.value().reset();
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
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// `reps` passes. Each MB/s figure is the median over passes; each ratio is the
// median of the per-round paired ratios over every round of every pass: a round
// compares the tier and the file over the same blocks a moment apart, so a
// neighbour's burst on the shared disk moves one round's ratio, not the figure.
disk_result bench_disk(const fs::path& dir, std::size_t n, std::size_t block, std::uint32_t threads, int reps) {
  std::vector<double> tw, tr, sw, sr;
  disk_result out;
  for (int i = 0; i < reps; ++i) {
    auto r = disk_pass(dir, n, block, threads);
    if (!r.ok) return r;
    tw.push_back(r.tier_write_mbs); tr.push_back(r.tier_read_mbs);
    sw.push_back(r.seq_write_mbs); sr.push_back(r.seq_read_mbs);
    out.write_ratios.insert(out.write_ratios.end(), r.write_ratios.begin(), r.write_ratios.end());
    out.read_ratios.insert(out.read_ratios.end(), r.read_ratios.begin(), r.read_ratios.end());
    std::printf("  pass %d: write tier %.0f / seq %.0f MB/s, read tier %.0f / seq %.0f MB/s\n", i + 1,
                r.tier_write_mbs, r.seq_write_mbs, r.tier_read_mbs, r.seq_read_mbs);
  }
  out.tier_write_mbs = median(tw); out.tier_read_mbs = median(tr);
  out.seq_write_mbs = median(sw); out.seq_read_mbs = median(sr);
  out.write_ratio = median(out.write_ratios);
  out.read_ratio = median(out.read_ratios);
  out.ok = true;
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * double(v.size() - 1) + 0.5));
  return v[i];
}

struct workload {
  std::size_t sessions = 32, turns = 8, answer = 128;
  std::uint64_t seed = 1;
  // New user tokens of turn t (the first turn carries a long system/document prefix).
  static std::size_t user_tokens(std::size_t t, std::mt19937_64& rng) { return t == 0 ? 1024 + rng() % 512 : 256 + rng() % 512; }
};

struct ttft_stats {
  std::vector<double> ttft;
  std::uint64_t prompt_tokens = 0, cached_tokens = 0;
  backends::kv_tiering_stats tiers;
  bool ok = true;
};

// Runs the multi-turn workload through `eng`, one request at a time.
ttft_stats run_ttft(backends::mock_engine& eng, const workload& w) {
  ttft_stats st;
  std::mt19937_64 rng(w.seed);
  std::vector<std::vector<kv::token_id>> ctx(w.sessions);
  for (std::size_t t = 0; t < w.turns && st.ok; ++t)
    for (std::size_t s = 0; s < w.sessions && st.ok; ++s) {
      std::size_t user = workload::user_tokens(t, rng);
      for (std::size_t i = 0; i < user; ++i) ctx[s].push_back(static_cast<kv::token_id>(rng() % 32000));
      backends::engine_request r;
      r.request_id = std::to_string(s) + "." + std::to_string(t);
      r.prompt = ctx[s];
      r.max_tokens = static_cast<std::uint32_t>(w.answer);
      r.sampling.seed = s;
      if (!eng.add_request(r).ok()) {
        st.ok = false;
        break;
      }
      double now = 0;
      bool first = false;
      while (eng.has_work()) {
        auto o = eng.step();
        now += o.model_time_ms;
        for (auto& out : o.outputs) {
          if (!first && !out.new_tokens.empty()) {
            first = true;
            st.ttft.push_back(now);
          }
          ctx[s].insert(ctx[s].end(), out.new_tokens.begin(), out.new_tokens.end());  // the answer joins the context
          if (out.finish_reason) {
            st.prompt_tokens += out.usage_info.prompt_tokens;
            st.cached_tokens += out.usage_info.cached_tokens;
            if (*out.finish_reason == msg::finish_kind::error) st.ok = false;
          }
        }
      }
      st.ok = st.ok && first;
    }
  if (eng.tiering()) st.tiers = eng.tiering()->stats();
  return st;
}

}  // namespace

int run_bench_tiers(int argc, char** argv) {
  CLI::App app{"yard bench tiers: KV tiers TTFT on vs off through the mock engine, G3 vs sequential disk"};
  double mib = 2;
  std::size_t nblocks = 256;
  workload wl;
  bool quick = false;
  double g1_frac = 0.1, g2_frac = 0.5;
  std::uint32_t io_threads = 4, block_tokens = 64;
  std::string dir_arg;
  int reps = 3;
  app.add_option("--reps", reps, "disk passes (tier and sequential alternating); medians reported (default 3)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--mib", mib, "disk block size in MiB (also the modelled KV block size) (default 2)")->check(CLI::Range(1, 1024));
  app.add_option("--blocks", nblocks, "blocks written/read in the disk part (default 256)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--dir", dir_arg, "scratch directory (default /tmp/yard_tiers_bench_<pid>, removed at the end)");
  app.add_option("--io-threads", io_threads, "disk_tier I/O threads (default 4)");
  app.add_option("--sessions", wl.sessions, "multi-turn sessions (default 32)");
  app.add_option("--turns", wl.turns, "turns per session (default 8)");
  app.add_option("--answer", wl.answer, "answer tokens per turn (default 128)");
  app.add_option("--g1-frac", g1_frac, "G1 capacity as a fraction of the working set (default 0.1)");
  app.add_option("--g2-frac", g2_frac, "G2 capacity as a fraction of the working set (default 0.5)");
  app.add_option("--block-tokens", block_tokens, "tokens per KV block (default 64)");
  app.add_option("--seed", wl.seed, "workload seed (default 1)");
  app.add_flag("--quick", quick, "smoke-test sizes: 1 disk pass of 32 x 1 MiB, 8 sessions x 4 turns, 32-token answers");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (quick) {
    reps = 1;
    nblocks = 32;
    mib = 1;
    wl.sessions = 8;
    wl.turns = 4;
    wl.answer = 32;
  }
  const std::size_t block_bytes = static_cast<std::size_t>(mib * 1024 * 1024);
  if (block_bytes < 4096 || nblocks == 0 || wl.sessions == 0 || wl.turns == 0 || block_tokens == 0) {
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
    ~cleanup() { std::error_code e; if (owned) fs::remove_all(d, e); else { fs::remove_all(d / "g3_disk", e); fs::remove_all(d / "g3_ttft", e); fs::remove_all(d / "g3_ttft_serial", e); } }
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
  std::printf("  paired per-round ratios (median of %zu rounds): write %.2f, read %.2f (ratio of the medians above: %.2f, %.2f)\n",
              d.read_ratios.size(), d.write_ratio, d.read_ratio, d.tier_write_mbs / d.seq_write_mbs,
              d.tier_read_mbs / d.seq_read_mbs);

  // (b) TTFT. Working set = every session's final context in blocks (answers
  // are exactly wl.answer tokens: the mock never stops early).
  std::size_t ws = 0, max_blocks = 0;
  {
    std::mt19937_64 rng(wl.seed);
    std::vector<std::size_t> len(wl.sessions, 0);
    for (std::size_t t = 0; t < wl.turns; ++t)
      for (std::size_t s = 0; s < wl.sessions; ++s) {
        std::size_t user = workload::user_tokens(t, rng);
        for (std::size_t i = 0; i < user; ++i) rng();
        len[s] += user + wl.answer;
        max_blocks = std::max(max_blocks, len[s] / block_tokens + 1);
      }
    for (auto l : len) ws += l / block_tokens;
  }
  auto g1_cap = static_cast<std::uint32_t>(std::max<double>(double(max_blocks + 2), g1_frac * double(ws)));
  auto g2_cap = static_cast<std::size_t>(g2_frac * double(ws));
  const double g2_gbps = memcpy_bytes_per_ms(block_bytes) / 1e6, g3_gbps = d.tier_read_mbs / 1e3;
  std::printf("ttft: %zu sessions x %zu turns (+%zu answer tokens), working set %zu blocks of %u tokens, G1 %u blocks, "
              "G2 %zu blocks, G3 on disk\n",
              wl.sessions, wl.turns, wl.answer, ws, block_tokens, g1_cap, g2_cap);
  std::printf("  modelled block %.1f MiB; bandwidths: G2 (memcpy) %.0f MB/s, G3 (disk_tier read) %.0f MB/s\n", mib,
              g2_gbps * 1e3, g3_gbps * 1e3);

  backends::engine_profile prof = backends::default_profile();
  prof.block_size = block_tokens;
  prof.num_blocks = g1_cap;
  auto eo = backends::mock_options_from_profile(prof);
  backends::mock_engine off_engine(eo);
  auto off = run_ttft(off_engine, wl);
  eo.tiers.host_blocks = g2_cap;
  eo.tiers.disk_dir = (dir / "g3_ttft").string();
  eo.tiers.disk_blocks = ws * 2;
  eo.tiers.modelled_block_bytes = block_bytes;
  // The mock steps in modelled time, far faster than wall time, so evictions outrun any real disk; a live
  // engine's steps take real time. Let every offload queue instead of measuring back-pressure drops.
  eo.tiers.disk_max_pending_writes = std::size_t{1} << 20;
  eo.tiers.g2_gbps = g2_gbps;
  eo.tiers.g3_gbps = g3_gbps;
  auto on_engine = backends::mock_engine::create(eo);
  if (!on_engine.ok()) {
    std::fprintf(stderr, "bench tiers: %s\n", on_engine.err().describe().c_str());
    return 1;
  }
  auto on = run_ttft(**on_engine, wl);
  // For reference: the same tiers with the copy charged before the prefill (no overlap).
  eo.tiers.overlap_onboarding = false;
  eo.tiers.disk_dir = (dir / "g3_ttft_serial").string();
  auto serial_engine = backends::mock_engine::create(eo);
  if (!serial_engine.ok()) {
    std::fprintf(stderr, "bench tiers: %s\n", serial_engine.err().describe().c_str());
    return 1;
  }
  auto serial = run_ttft(**serial_engine, wl);
  if (!off.ok || !on.ok || !serial.ok || off.ttft.size() != on.ttft.size()) {
    std::fprintf(stderr, "bench tiers: a request failed\n");
    return 1;
  }
  auto pct = [](std::uint64_t a, std::uint64_t b) { return b ? 100.0 * double(a) / double(b) : 0.0; };
  const std::uint64_t bt = block_tokens;
  double p50_off = percentile(off.ttft, 0.5), p90_off = percentile(off.ttft, 0.9);
  double p50_on = percentile(on.ttft, 0.5), p90_on = percentile(on.ttft, 0.9);
  std::printf("  tiers off: TTFT p50 %.1f ms p90 %.1f ms (prompt tokens cached %.1f%%)\n", p50_off, p90_off,
              pct(off.cached_tokens, off.prompt_tokens));
  std::printf("  tiers on:  TTFT p50 %.1f ms p90 %.1f ms (prompt tokens cached %.1f%%; at admission G1 %.1f%%, "
              "onboarded G2 %.1f%%, G3 %.1f%%; %llu blocks offloaded)\n",
              p50_on, p90_on, pct(on.cached_tokens, on.prompt_tokens), pct(on.tiers.g1_hit_blocks * bt, on.prompt_tokens),
              pct(on.tiers.g2_hit_blocks * bt, on.prompt_tokens), pct(on.tiers.g3_hit_blocks * bt, on.prompt_tokens),
              (unsigned long long)on.tiers.offloaded_blocks);
  std::printf("  tiers on, copy not overlapped with prefill: TTFT p50 %.1f ms p90 %.1f ms (speedup p50 %.2f p90 %.2f)\n",
              percentile(serial.ttft, 0.5), percentile(serial.ttft, 0.9), p50_off / percentile(serial.ttft, 0.5),
              p90_off / percentile(serial.ttft, 0.9));
  std::printf("tiers: ttft_p50_speedup=%.2f ttft_p90_speedup=%.2f disk_read_ratio=%.2f disk_write_ratio=%.2f\n",
              p50_off / p50_on, p90_off / p90_on, d.read_ratio, d.write_ratio);
  return 0;
}

}  // namespace yard::cmd
