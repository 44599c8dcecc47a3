// bench/engine_bench.cpp — `yard bench engine`: native engine throughput vs the memory-bandwidth bound.
//
// Owns: generating (or opening) a model, timing batch-1 and batch-16 decode and
// a long prefill through the real native_engine, and measuring read-only memory
// bandwidth with the engine's thread count in the same run. The bound: decode
// must read every weight once per step, so bw_bound_tok_s = read bandwidth /
// bytes of weights read per step; a ratio above 1 fails the bench (probe bug).
// Also constrained decoding (a JSON-schema grammar masking the logits every
// step, backends/structured) against free decoding on the same model, the two
// interleaved and timed over the same steps with the same batch: constrained_decode_ratio = constrained / free tok/s (batch 16;
// _b1 at batch 1), with the vocabulary size the mask walks; and the mask's
// own cost per step on synthetic 32K and 128K vocabularies (mask_us_vocab*),
// since the bench model's vocabulary is small.
// Weight precision: the same preset saved as bf16 (kept 2 bytes a weight) and
// the f32 model loaded with --quantize int8, each decoding at batch 1
// interleaved with the f32 engine in the same run (best of three rounds each,
// decode_tok_s_b1_f32_same_run for f32): decode_tok_s_b1_bf16,
// decode_tok_s_b1_int8, their speedups over that f32 figure, and the bytes of
// weights one decode step reads in each (bytes_per_token* ; _bw_ratio = tok/s x
// bytes / read bandwidth, how close each gets to the memory bound).
// --device cuda: the same preset on the GPU: decode_tok_s_b1, decode_tok_s_b64
// and the bf16 model's b1, against the device's own read bandwidth measured in
// the same run (backends/native/cuda: a kernel streaming a buffer):
// hbm_bound_ratio = decode tok/s x weight bytes per step / that bandwidth.
// Without a usable GPU it fails with the reason (no figure is made up).
// Must not touch: anything outside the engine it creates.
// Thread-safety: single-threaded driver.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include <immintrin.h>
#include <unistd.h>

#include "backends/native/cuda/cuda_device.hpp"
#include "backends/native/mkmodel.hpp"
#include "backends/native/native_engine.hpp"
#include "backends/structured/json_constraint.hpp"
#include "backends/structured/json_schema_compiler.hpp"

namespace yard::cmd {

namespace {

using clk = std::chrono::steady_clock;

double seconds_since(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

// Bytes per second that `threads` threads can stream out of memory, read only (each
// sums its part of a buffer as large as the weights one decode step reads, 8
// independent accumulators), best of several passes. Decode reads every weight once
// per step and writes almost nothing, so this — not a copy, which moves each byte
// twice — is its bound: same bytes, same thread count, and the same share of them a
// large last-level cache can hold between passes (between steps).
// Sums n words (n a multiple of 8) with the widest loads the CPU has, as BLAS
// kernels read weights: a scalar loop would measure the core, not the memory.
__attribute__((target("avx2"))) std::uint64_t sum_words_avx2(const std::uint64_t* p, std::size_t n) {
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  for (std::size_t i = 0; i + 16 <= n; i += 16) {
    s0 = _mm256_add_epi64(s0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    s1 = _mm256_add_epi64(s1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    s2 = _mm256_add_epi64(s2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    s3 = _mm256_add_epi64(s3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  alignas(32) std::uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3)));
  return out[0] + out[1] + out[2] + out[3];
}

std::uint64_t sum_words(const std::uint64_t* p, std::size_t n) {
  if (__builtin_cpu_supports("avx2")) return sum_words_avx2(p, n / 16 * 16);
  std::uint64_t s[8] = {};
  for (std::size_t i = 0; i + 8 <= n; i += 8)
    for (std::size_t k = 0; k < 8; ++k) s[k] += p[i + k];
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

double read_bandwidth(int threads, std::size_t bytes) {
  const std::size_t n = std::max<std::size_t>(bytes / sizeof(std::uint64_t), 64 * static_cast<std::size_t>(threads));
  std::vector<std::uint64_t> a(n);
  for (std::size_t i = 0; i < n; ++i) a[i] = i;  // pages touched
  double best = 0;
  std::uint64_t keep = 0;
  for (int rep = 0; rep < 8; ++rep) {
    std::vector<std::uint64_t> sums(static_cast<std::size_t>(threads));
    std::size_t part = n / static_cast<std::size_t>(threads) / 16 * 16;
    auto t0 = clk::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        sums[static_cast<std::size_t>(t)] = sum_words(a.data() + static_cast<std::size_t>(t) * part, part);
      });
    for (auto& t : ts) t.join();
    double sec = seconds_since(t0);
    for (auto v : sums) keep += v;
    best = std::max(best, double(part) * threads * sizeof(std::uint64_t) / sec);
  }
  if (keep == 42) std::fprintf(stderr, " ");
  return best;
}

std::vector<backends::token_id> make_prompt(std::size_t n, std::uint32_t salt, std::uint32_t vocab) {
  std::vector<backends::token_id> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<backends::token_id>((salt * 7919 + i * 131 + 17) % (vocab - 16));
  return p;
}

// Decode tokens/s at `batch` concurrent sequences over `decode_tokens` steps
// after every prefill is done. `constrained`: every sequence's output follows a
// JSON schema ({"text": a string of at least 4 x decode_tokens characters}),
// the grammar masking the logits at every step; no sequence can end inside
// the window, so both modes time the same batch for the same steps.
double decode_rate(backends::native_engine& e, int batch, int decode_tokens, bool constrained = false) {
  static int round = 0;
  ++round;
  std::shared_ptr<const backends::structured::json_grammar> grammar;
  if (constrained) {
    auto g = backends::structured::compile_json_schema(nlohmann::ordered_json{
        {"type", "object"},
        {"properties", {{"text", {{"type", "string"}, {"minLength", 4 * decode_tokens}}}}},
        {"required", {"text"}}});
    if (!g) {
      std::fprintf(stderr, "bench engine: %s\n", g.err().describe().c_str());
      return 0;
    }
    grammar = std::make_shared<const backends::structured::json_grammar>(std::move(*g));
  }
  std::vector<std::string> ids;
  for (int i = 0; i < batch; ++i) {
    backends::engine_request r;
    r.request_id = "d" + std::to_string(round) + "_" + std::to_string(i);
    ids.push_back(r.request_id);
    r.prompt = make_prompt(16, static_cast<std::uint32_t>(round * 100 + i), static_cast<std::uint32_t>(e.config().vocab_size));
    r.max_tokens = static_cast<std::uint32_t>(8 * decode_tokens + 16);
    if (constrained) r.constraint = std::make_shared<backends::structured::json_constraint>(grammar, e.vocabulary());
    if (auto st = e.add_request(std::move(r)); !st) {
      std::fprintf(stderr, "bench engine: %s\n", st.err().describe().c_str());
      return 0;
    }
  }
  e.step();  // prefill of every sequence (fits one step's token budget)
  std::size_t tokens = 0;
  auto t0 = clk::now();
  for (int k = 0; k < decode_tokens && e.has_work(); ++k) {
    auto r = e.step();
    for (const auto& o : r.outputs) tokens += o.new_tokens.size();
  }
  const double rate = tokens / seconds_since(t0);
  for (const auto& id : ids) e.cancel(id);
  while (e.has_work()) e.step();
  return rate;
}

// Microseconds per json_constraint::mask over a synthetic vocabulary of
// `size` tokens shaped like a real BPE one (every byte, then word pieces with
// and without a leading space, digits, punctuation runs, quoted fragments):
// the bench model's own vocabulary is small, a Llama 3 one is 128K. Walks a
// JSON object grammar, taking the first allowed token after a seeded skip.
double mask_us(std::size_t size) {
  std::vector<std::string> bytes;
  bytes.reserve(size);
  for (int b = 0; b < 256; ++b) bytes.emplace_back(1, static_cast<char>(b));
  std::uint64_t x = 88172645463325252ULL;
  auto rnd = [&] { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; };
  const char* pieces[] = {"\"", "\":", "\": ", ", \"", "{\"", "}", "]", "[", "true", "false", "null", ".", "0", "12", "e"};
  while (bytes.size() < size) {
    std::string t;
    const auto kind = rnd() % 10;
    if (kind < 2) t = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
    if (kind < 7 && (rnd() & 1)) t += ' ';
    for (std::size_t n = 2 + rnd() % 7; n > 0; --n) t += static_cast<char>(kind == 8 ? '0' + rnd() % 10 : 'a' + rnd() % 26);
    bytes.push_back(std::move(t));
  }
  auto vocab = std::make_shared<const backends::structured::token_vocabulary>(std::move(bytes), std::vector<backends::token_id>{});
  auto grammar = std::make_shared<const backends::structured::json_grammar>(backends::structured::json_grammar::any_object());
  std::vector<float> logits(vocab->size());
  double total = 0;
  std::size_t masks = 0;
  for (int walk = 0; walk < 4; ++walk) {
    backends::structured::json_constraint c(grammar, vocab);
    for (std::uint32_t left = 256; left > 0 && !c.finished(); --left) {
      std::fill(logits.begin(), logits.end(), 0.0f);
      auto t0 = clk::now();
      c.mask(logits, left);
      total += seconds_since(t0);
      ++masks;
      std::vector<backends::token_id> ok;
      for (std::size_t t = 0; t < logits.size(); ++t)
        if (logits[t] == 0.0f) ok.push_back(static_cast<backends::token_id>(t));
      if (ok.empty()) break;
      c.advance(ok[rnd() % ok.size()]);
    }
  }
  return masks ? total / masks * 1e6 : 0.0;
}

}  // namespace

// Opens an engine, or says why not (null).
std::unique_ptr<backends::native_engine> open_engine(const std::string& dir, const backends::native_engine_options& eo) {
  auto r = backends::native_engine::open(dir, eo);
  if (!r) {
    std::fprintf(stderr, "bench engine: --device %s: %s\n", eo.device.empty() ? "cpu" : eo.device.c_str(),
                 r.err().describe().c_str());
    return nullptr;
  }
  return std::move(*r);
}

// --device cuda: decode on the GPU at batch 1 and 64 against the device's read bandwidth.
int bench_on_cuda(const std::string& model_dir, const std::string& bf16_dir, backends::native_engine_options eo,
                  int decode_tokens) {
  eo.device = "cuda";
  auto eng = open_engine(model_dir, eo);
  if (!eng) return 1;
  auto& e = *eng;
  const double hbm = backends::native::device_read_bandwidth(std::size_t{2} << 30);
  if (hbm <= 0) {
    std::fprintf(stderr, "bench engine: --device cuda: the device read-bandwidth probe failed\n");
    return 1;
  }
  const int steps = std::max(decode_tokens, 64);
  decode_rate(e, 1, 4);  // warm-up
  double b1 = 0, b64 = 0, bf16_b1 = 0;
  std::size_t bytes_bf16 = 0;
  std::unique_ptr<backends::native_engine> eb;
  if (!bf16_dir.empty()) {
    if (!(eb = open_engine(bf16_dir, eo))) return 1;
    bytes_bf16 = eb->weights().weight_bytes;
    decode_rate(*eb, 1, 4);
  }
  for (int rep = 0; rep < 3; ++rep) {  // best of three interleaved rounds
    b1 = std::max(b1, decode_rate(e, 1, steps));
    b64 = std::max(b64, decode_rate(e, 64, steps));
    if (eb) bf16_b1 = std::max(bf16_b1, decode_rate(*eb, 1, steps));
  }
  const std::size_t bytes = e.weights().weight_bytes;
  std::fprintf(stderr, "bench engine: cuda: %.1f MB weights per decode step, device read bandwidth %.1f GB/s\n",
               bytes / 1e6, hbm / 1e9);
  std::printf("engine: device=cuda decode_tok_s_b1=%.2f decode_tok_s_b64=%.2f decode_tok_s_b1_bf16=%.2f "
              "bytes_per_token=%zu bytes_per_token_bf16=%zu hbm_gbs=%.1f hbm_bound_ratio=%.3f hbm_bound_ratio_bf16=%.3f "
              "bf16_speedup=%.3f\n",
              b1, b64, bf16_b1, bytes, bytes_bf16, hbm / 1e9, b1 * bytes / hbm, bf16_b1 * bytes_bf16 / hbm,
              b1 > 0 ? bf16_b1 / b1 : 0.0);
  return 0;
}

int run_bench_engine(int argc, char** argv) {
  CLI::App app{"native engine decode/prefill throughput vs the memory-bandwidth bound"};
  std::string model_dir, preset = "100m";
  std::string device = "cpu";
  int decode_tokens = 32, prefill_tokens = 512, threads = 0;
  app.add_option("--model", model_dir, "model folder (default: generate --preset into a temp folder)");
  app.add_option("--preset", preset, "mkmodel preset when no --model (default 100m)");
  app.add_option("--decode-tokens", decode_tokens, "decode steps per measurement (default 32)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--prefill-tokens", prefill_tokens, "prompt length for the prefill measurement (default 512)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--device", device, "cpu (default) or cuda: decode on the GPU against its read bandwidth")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--threads", threads, "engine threads: attention and BLAS, and the bandwidth probe (default: all cores)")
      ->check(CLI::Range(0, 1024));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::string tmp, bf16_dir;
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
    o.type = backends::native::dtype::bf16;  // the same weights (same seed), stored as bf16
    o.out = tmp + "/model_bf16";
    if (auto st = backends::native::write_random_model(o); !st) {
      std::fprintf(stderr, "bench engine: %s\n", st.err().describe().c_str());
      return 1;
    }
    bf16_dir = o.out;
  }
  backends::native_engine_options eo;
  eo.threads = threads;
  eo.max_num_batched_tokens = static_cast<std::uint32_t>(std::max(prefill_tokens, 16 * 16));
  eo.kv_cache_mb = 512;
  if (device == "cuda") {
    eo.max_num_batched_tokens = std::max<std::uint32_t>(eo.max_num_batched_tokens, 64 * 16);
    eo.kv_cache_mb = 4096;
    eo.max_num_seqs = std::max<std::uint32_t>(eo.max_num_seqs, 64);
    const int rc = bench_on_cuda(model_dir, bf16_dir, eo, decode_tokens);
    if (!tmp.empty()) std::filesystem::remove_all(tmp);
    return rc;
  }
  auto eng = open_engine(model_dir, eo);
  if (!eng) return 1;
  auto& e = *eng;
  const int probe_threads = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Bytes as the weights are kept (a bf16 --model reads half of what it would as f32).
  const double weight_bytes = static_cast<double>(e.weights().weight_bytes);
  const double bw = read_bandwidth(probe_threads, e.weights().weight_bytes);
  const double bound = bw / weight_bytes;
  decode_rate(e, 1, 4);  // warm-up: page in the weights
  double b1 = decode_rate(e, 1, decode_tokens);
  double b16 = decode_rate(e, 16, decode_tokens);
  // Constrained decoding (JSON object grammar masking every step) side by side with free decoding,
  // interleaved so machine noise hits both alike.
  e.vocabulary();  // built once per model, outside the timing
  double free1 = 0, json1 = 0, free16 = 0, json16 = 0;
  for (int rep = 0; rep < 2; ++rep) {
    free1 += decode_rate(e, 1, decode_tokens);
    json1 += decode_rate(e, 1, decode_tokens, true);
    free16 += decode_rate(e, 16, decode_tokens);
    json16 += decode_rate(e, 16, decode_tokens, true);
  }
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
  // Weight precision at batch 1: f32 (this engine), bf16 kept, int8 quantised at load, interleaved so machine
  // noise hits all alike. Without a generated preset (--model) only int8 of that model is measured.
  double f32_b1 = 0, bf16_b1 = 0, int8_b1 = 0;
  std::size_t bytes_bf16 = 0, bytes_int8 = 0;
  {
    std::unique_ptr<backends::native_engine> eb, eq;
    if (!bf16_dir.empty()) {
      if (!(eb = open_engine(bf16_dir, eo))) return 1;
      bytes_bf16 = eb->weights().weight_bytes;
    }
    auto qo = eo;
    qo.quantize = backends::native::weight_quant::int8;
    if (!(eq = open_engine(model_dir, qo))) return 1;
    bytes_int8 = eq->weights().weight_bytes;
    if (eb) decode_rate(*eb, 1, 4);
    decode_rate(*eq, 1, 4);
    // Best of five interleaved rounds of at least 64 steps: other load on the machine only ever slows a round
    // down, and each precision gets the same chances at a quiet moment.
    const int steps = std::max(decode_tokens, 64);
    for (int rep = 0; rep < 5; ++rep) {
      f32_b1 = std::max(f32_b1, decode_rate(e, 1, steps));
      if (eb) bf16_b1 = std::max(bf16_b1, decode_rate(*eb, 1, steps));
      int8_b1 = std::max(int8_b1, decode_rate(*eq, 1, steps));
    }
  }
  if (!tmp.empty()) std::filesystem::remove_all(tmp);
  std::fprintf(stderr,
               "bench engine: %.1fM params, %.1f MB weights read per decode step, read bandwidth %.2f GB/s (%d threads, "
               "as the engine)\n",
               e.weights().num_params / 1e6, weight_bytes / 1e6, bw / 1e9, probe_threads);
  const double ratio = bound > 0 ? b1 / bound : 0.0;
  std::fprintf(stderr, "bench engine: constrained decode (JSON schema) vs free: b1 %.1f vs %.1f tok/s, b16 %.1f vs %.1f tok/s, vocab %zu\n",
               json1 / 2, free1 / 2, json16 / 2, free16 / 2, e.vocabulary()->size());
  const double mask_32k = mask_us(32000), mask_128k = mask_us(128256);
  const std::size_t bytes_f32 = e.weights().weight_bytes;
  std::fprintf(stderr,
               "bench engine: batch-1 decode by weight precision: f32 %.1f tok/s (%.1f MB/step), bf16 %.1f tok/s (%.1f MB/step), "
               "int8 %.1f tok/s (%.1f MB/step)\n",
               f32_b1, bytes_f32 / 1e6, bf16_b1, bytes_bf16 / 1e6, int8_b1, bytes_int8 / 1e6);
  std::printf("engine: decode_tok_s_b1=%.2f decode_tok_s_b16=%.2f prefill_tok_s=%.2f bw_bound_tok_s=%.2f decode_bw_ratio=%.3f "
              "read_bw_gbs=%.2f threads=%d constrained_decode_ratio=%.3f constrained_decode_ratio_b1=%.3f vocab=%zu "
              "mask_us_vocab32k=%.1f mask_us_vocab128k=%.1f decode_tok_s_b1_bf16=%.2f decode_tok_s_b1_int8=%.2f "
              "bytes_per_token=%zu bytes_per_token_bf16=%zu bytes_per_token_int8=%zu decode_tok_s_b1_f32_same_run=%.2f "
              "bf16_speedup=%.3f int8_speedup=%.3f f32_bw_ratio=%.3f bf16_bw_ratio=%.3f int8_bw_ratio=%.3f\n",
              b1, b16, prefill, bound, ratio, bw / 1e9, probe_threads, free16 > 0 ? json16 / free16 : 0.0,
              free1 > 0 ? json1 / free1 : 0.0, e.vocabulary()->size(), mask_32k, mask_128k, bf16_b1, int8_b1, bytes_f32,
              bytes_bf16, bytes_int8, f32_b1, f32_b1 > 0 ? bf16_b1 / f32_b1 : 0.0, f32_b1 > 0 ? int8_b1 / f32_b1 : 0.0,
              f32_b1 * bytes_f32 / bw, bf16_b1 * bytes_bf16 / bw, int8_b1 * bytes_int8 / bw);
  if (ratio > 1.0) {
    // Decode cannot read its weights faster than memory streams: the probe is wrong.
    std::fprintf(stderr, "bench engine: decode_bw_ratio %.3f > 1: the bandwidth probe under-measures; failing\n", ratio);
    return 1;
  }
  return 0;
}

}  // namespace yard::cmd
