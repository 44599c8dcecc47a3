// bench/engine_bench.cpp — `yard bench engine`: native engine throughput vs the memory-bandwidth bound.
//
// Owns: generating (or opening) a model, timing batch-1 and batch-16 decode and
// a long prefill through the real native_engine, and measuring memcpy
// bandwidth in the same run. The bound: decode must read every weight once per
// step, so bw_bound_tok_s = copy bandwidth / bytes of weights read per step.
// Must not touch: anything outside the engine it creates.
// Thread-safety: single-threaded driver.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include <unistd.h>

#include "backends/native/mkmodel.hpp"
#include "backends/native/native_engine.hpp"

namespace yard::cmd {

namespace {

using clk = std::chrono::steady_clock;

double seconds_since(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

// Bytes per second of a large memcpy split across `threads` threads (the
// engine's decode also reads weights from every core), best of several runs.
double copy_bandwidth(int threads) {
  const std::size_t n = 256u << 20;
  std::vector<char> a(n, 1), b(n, 2);
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    auto t0 = clk::now();
    std::vector<std::thread> ts;
    std::size_t part = n / static_cast<std::size_t>(threads);
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] { std::memcpy(b.data() + t * part, a.data() + t * part, part); });
    for (auto& t : ts) t.join();
    double s = seconds_since(t0);
    a[static_cast<std::size_t>(i)] = b[static_cast<std::size_t>(n - 1 - i)];
    best = std::max(best, part * threads / s);
  }
  return best;
}

std::vector<backends::token_id> make_prompt(std::size_t n, std::uint32_t salt, std::uint32_t vocab) {
  std::vector<backends::token_id> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<backends::token_id>((salt * 7919 + i * 131 + 17) % (vocab - 16));
  return p;
}

// Decode tokens/s at `batch` concurrent sequences (steps after every prefill is done).
double decode_rate(backends::native_engine& e, int batch, int decode_tokens) {
  static int round = 0;
  ++round;
  for (int i = 0; i < batch; ++i) {
    backends::engine_request r;
    r.request_id = "d" + std::to_string(round) + "_" + std::to_string(i);
    r.prompt = make_prompt(16, static_cast<std::uint32_t>(round * 100 + i), static_cast<std::uint32_t>(e.config().vocab_size));
    r.max_tokens = static_cast<std::uint32_t>(decode_tokens + 1);
    if (auto st = e.add_request(std::move(r)); !st) {
      std::fprintf(stderr, "bench engine: %s\n", st.err().describe().c_str());
      return 0;
    }
  }
  e.step();  // prefill of every sequence (fits one step's token budget)
  std::size_t tokens = 0;
  auto t0 = clk::now();
  while (e.has_work()) {
    auto r = e.step();
    for (const auto& o : r.outputs) tokens += o.new_tokens.size();
  }
  return tokens / seconds_since(t0);
}

}  // namespace

int run_bench_engine(int argc, char** argv) {
  CLI::App app{"native engine decode/prefill throughput vs the memory-bandwidth bound"};
  std::string model_dir, preset = "100m";
  int decode_tokens = 32, prefill_tokens = 512, threads = 0;
  app.add_option("--model", model_dir, "model folder (default: generate --preset into a temp folder)");
  app.add_option("--preset", preset, "mkmodel preset when no --model (default 100m)");
  app.add_option("--decode-tokens", decode_tokens, "decode steps per measurement (default 32)");
  app.add_option("--prefill-tokens", prefill_tokens, "prompt length for the prefill measurement (default 512)");
  app.add_option("--threads", threads, "attention threads (default: all cores)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::string tmp;
  if (model_dir.empty()) {
    char buf[] = "/tmp/yard_bench_engine_XXXXXX";
    if (!::mkdtemp(buf)) return 1;
    tmp = buf;
    backends::native::mkmodel_options o;
    o.preset = preset;
    o.out = tmp + "/model";
    std::fprintf(stderr, "bench engine: generating the %s preset in %s\n", preset.c_str(), o.out.c_str());
    if (auto st = backends::native::write_random_model(o); !st) {
      std::fprintf(stderr, "bench engine: %s\n", st.err().describe().c_str());
      return 1;
    }
    model_dir = o.out;
  }
  backends::native_engine_options eo;
  eo.threads = threads;
  eo.max_num_batched_tokens = static_cast<std::uint32_t>(std::max(prefill_tokens, 16 * 16));
  eo.kv_cache_mb = 512;
  auto eng = backends::native_engine::open(model_dir, eo);
  if (!eng) {
    std::fprintf(stderr, "bench engine: %s\n", eng.err().describe().c_str());
    return 1;
  }
  auto& e = **eng;
  const int copy_threads = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // The best of one thread and all threads: on a shared machine either can win.
  const double bw = std::max(copy_bandwidth(1), copy_bandwidth(copy_threads));
  const double weight_bytes = static_cast<double>(e.weights().weight_bytes_f32);
  const double bound = bw / weight_bytes;
  decode_rate(e, 1, 4);  // warm-up: page in the weights
  double b1 = decode_rate(e, 1, decode_tokens);
  double b16 = decode_rate(e, 16, decode_tokens);
  // Prefill: one long prompt, one step.
  backends::engine_request r;
  r.request_id = "prefill";
  r.prompt = make_prompt(static_cast<std::size_t>(prefill_tokens), 99, static_cast<std::uint32_t>(e.config().vocab_size));
  r.max_tokens = 1;
  double prefill = 0;
  if (e.add_request(std::move(r))) {
    auto t0 = clk::now();
    while (e.has_work()) e.step();
    prefill = prefill_tokens / seconds_since(t0);
  }
  if (!tmp.empty()) std::filesystem::remove_all(tmp);
  std::fprintf(stderr,
               "bench engine: %.1fM params, %.1f MB f32 weights read per decode step, copy bandwidth %.2f GB/s (best of 1 and %d threads)\n",
               e.weights().num_params / 1e6, weight_bytes / 1e6, bw / 1e9, copy_threads);
  std::printf("engine: decode_tok_s_b1=%.2f decode_tok_s_b16=%.2f prefill_tok_s=%.2f bw_bound_tok_s=%.2f decode_bw_ratio=%.3f\n",
              b1, b16, prefill, bound, bound > 0 ? b1 / bound : 0.0);
  return 0;
}

}  // namespace yard::cmd
