// Weights kept in their own precision: the gemm_wt kernels of every width against a double-precision
// reference (SIMD and plain loops, one and several rows, odd sizes, beta 0 and 1); f16/bf16 models loaded
// at 2 bytes a weight decoding as the same weights widened to f32; int8 per-row quantisation at load
// against the f32 model (top-1 agreement and logprob tolerance, stated below).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include "backends/native/model.hpp"
#include "backends/native/weight_kernels.hpp"
#include "backends/tests/native_test_util.hpp"

namespace yard::backends::native {
namespace {

using testing::temp_dir;

// ---- kernels ----

// A random matrix stored as `type` (int8 through quantize_int8), and its buffers.
struct test_matrix {
  std::vector<float> f32;
  std::vector<std::uint16_t> half;
  std::vector<std::int8_t> q;
  std::vector<float> scales;
  weight_matrix view;

  test_matrix(wdtype type, int rows, int cols, std::uint32_t seed) : f32(static_cast<std::size_t>(rows) * cols) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (auto& v : f32) v = nd(rng);
    view = {wdtype::f32, f32.data(), nullptr, rows, cols};
    if (type == wdtype::f16 || type == wdtype::bf16) {
      half.resize(f32.size());
      for (std::size_t i = 0; i < f32.size(); ++i) half[i] = type == wdtype::f16 ? f32_to_f16(f32[i]) : f32_to_bf16(f32[i]);
      view = {type, half.data(), nullptr, rows, cols};
    } else if (type == wdtype::i8) {
      q.resize(f32.size());
      scales.resize(static_cast<std::size_t>(rows));
      view = quantize_int8(view, q.data(), scales.data());
    }
  }
};

// Element (r, c) of a view, widened independently of weight_matrix::row_to_f32.
double element(const weight_matrix& W, int r, int c) {
  std::size_t i = static_cast<std::size_t>(r) * W.cols + c;
  switch (W.type) {
    case wdtype::f32: return static_cast<const float*>(W.data)[i];
    case wdtype::f16: return f16_to_f32(static_cast<const std::uint16_t*>(W.data)[i]);
    case wdtype::bf16: return bf16_to_f32(static_cast<const std::uint16_t*>(W.data)[i]);
    case wdtype::i8: return static_cast<double>(static_cast<const std::int8_t*>(W.data)[i]) * W.scales[r];
  }
  return 0;
}

// Runs gemm_wt and checks every output against sum in double (+ beta * old out):
// |got - want| <= 2e-6 * sum |w x| + 1e-6, f32 rounding over k terms with room to spare. int8 decode with SIMD
// (T <= 4) quantises each input row to 16 bits: plus half a step of x per weight, sum |w| * max|x| / 32766.
void check_gemm(wdtype type, int T, int n, int k, float beta, thread_pool* pool) {
  SCOPED_TRACE(std::string(wdtype_name(type)) + " T=" + std::to_string(T) + " n=" + std::to_string(n) +
               " k=" + std::to_string(k) + " beta=" + std::to_string(beta) + (pool ? " pooled" : "") +
               (weight_kernels_simd() ? " simd" : " scalar"));
  test_matrix m(type, n, k, static_cast<std::uint32_t>(n * 131 + k));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
  std::vector<float> in(static_cast<std::size_t>(T) * k), out(static_cast<std::size_t>(T) * n);
  for (auto& v : in) v = ud(rng);
  for (auto& v : out) v = ud(rng);
  const std::vector<float> old = out;
  if (beta == 0.0f) std::fill(out.begin(), out.end(), NAN);  // beta 0 must not read out
  gemm_wt(in.data(), T, m.view, out.data(), beta, pool);
  double worst = 0;
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < n; ++r) {
      double want = 0, mag = 0, wsum = 0, xmax = 0;
      for (int c = 0; c < k; ++c) {
        const double w = element(m.view, r, c), x = in[static_cast<std::size_t>(t) * k + c];
        want += w * x;
        mag += std::fabs(w * x);
        wsum += std::fabs(w);
        xmax = std::max(xmax, std::fabs(x));
      }
      std::size_t o = static_cast<std::size_t>(t) * n + r;
      if (beta != 0.0f) want += beta * old[o];
      const bool x_quantised = type == wdtype::i8 && T <= 4 && weight_kernels_simd();
      double err = std::fabs(out[o] - want), tol = 2e-6 * mag + 1e-6 + (x_quantised ? wsum * xmax / 32766.0 : 0.0);
      worst = std::max(worst, err / tol);
      ASSERT_LE(err, tol) << "t=" << t << " row=" << r << " got " << out[o] << " want " << want;
    }
  EXPECT_LE(worst, 1.0);
}

TEST(native_weight_kernels, every_width_matches_double_reference) {
  thread_pool pool(3);
  for (bool scalar : {false, true}) {
    force_scalar_weight_kernels(scalar);
    for (wdtype type : {wdtype::f32, wdtype::f16, wdtype::bf16, wdtype::i8})
      for (int T : {1, 3, 6})  // 1 and 3: row-dot kernels; 6: widened tiles through sgemm
        for (auto [n, k] : {std::pair{37, 67}, std::pair{129, 1000}, std::pair{5, 7}})
          for (float beta : {0.0f, 1.0f})
            for (thread_pool* p : {static_cast<thread_pool*>(nullptr), &pool}) check_gemm(type, T, n, k, beta, p);
  }
  force_scalar_weight_kernels(false);
}

TEST(native_weight_kernels, large_matrix_splits_rows_over_the_pool) {
  // Big enough that the decode kernel splits rows into several jobs (>= 64 KiB of weights per job).
  thread_pool pool(4);
  check_gemm(wdtype::bf16, 1, 1000, 777, 1.0f, &pool);
  check_gemm(wdtype::i8, 1, 1000, 777, 0.0f, &pool);
  check_gemm(wdtype::f16, 2, 700, 1031, 0.0f, &pool);
}

TEST(native_weight_kernels, int8_quantisation_is_per_row_round_to_nearest) {
  test_matrix m(wdtype::i8, 9, 50, 3);
  for (int r = 0; r < 9; ++r) {
    float mx = 0;
    for (int c = 0; c < 50; ++c) mx = std::max(mx, std::fabs(m.f32[static_cast<std::size_t>(r) * 50 + c]));
    EXPECT_FLOAT_EQ(m.scales[r], mx / 127.0f);
    for (int c = 0; c < 50; ++c) {
      const float w = m.f32[static_cast<std::size_t>(r) * 50 + c];
      EXPECT_LE(std::fabs(element(m.view, r, c) - w), m.scales[r] * 0.5f * (1 + 1e-5f)) << r << "," << c;
    }
  }
  EXPECT_EQ(m.view.bytes(), 9u * 50u + 9u * sizeof(float));
  // An all-zero row quantises to zeros with a finite scale.
  std::vector<float> zero(16, 0.0f);
  std::vector<std::int8_t> q(16, 5);
  float s = 0;
  auto v = quantize_int8({wdtype::f32, zero.data(), nullptr, 1, 16}, q.data(), &s);
  EXPECT_EQ(s, 1.0f);
  for (auto x : q) EXPECT_EQ(x, 0);
  std::vector<float> row(16, 1.0f);
  v.row_to_f32(0, row.data());
  for (float x : row) EXPECT_EQ(x, 0.0f);
}

TEST(native_weight_kernels, unknown_quantize_value_is_a_clear_error) {
  EXPECT_EQ(*parse_weight_quant("int8"), weight_quant::int8);
  EXPECT_EQ(*parse_weight_quant("none"), weight_quant::none);
  for (const char* bad : {"int4", "INT8", "fp8", "8"}) {
    auto r = parse_weight_quant(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.err().code, errc::bad_request);
    EXPECT_NE(r.err().message.find(std::string("'") + bad + "'"), std::string::npos) << r.err().message;
    EXPECT_NE(r.err().message.find("none or int8"), std::string::npos) << r.err().message;
  }
}

// ---- models ----

std::vector<std::uint32_t> prompt(int n, std::uint32_t salt, int vocab) {
  std::vector<std::uint32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = (salt * 131 + static_cast<std::uint32_t>(i) * 37 + 11) % static_cast<std::uint32_t>(vocab);
  return p;
}

std::shared_ptr<const model_weights> load(const std::string& dir, load_options o = {}) {
  auto r = load_model_weights(dir, o);
  if (!r) throw std::runtime_error(r.err().describe());
  return std::shared_ptr<const model_weights>(std::move(*r));
}

double log_softmax_at(const float* logits, int V, std::uint32_t t) {
  double mx = logits[0];
  for (int i = 1; i < V; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double z = 0;
  for (int i = 0; i < V; ++i) z += std::exp(logits[i] - mx);
  return logits[t] - mx - std::log(z);
}

// One run of a model over a prompt then `steps` decode steps. `forced` (if not empty) are the tokens fed
// after the prompt (teacher forcing); otherwise its own greedy tokens. Records the greedy pick, its logprob,
// the logprob of the forced token, and the step's logits.
struct decode_trace {
  std::vector<std::uint32_t> greedy;
  std::vector<double> greedy_logprob, forced_logprob;
  std::vector<std::vector<float>> logits;
};

decode_trace run(std::shared_ptr<const model_weights> w, std::vector<std::uint32_t> tokens, int steps,
                 const std::vector<std::uint32_t>& forced = {}) {
  const auto& c = w->config;
  kv_cache cache({c.num_hidden_layers, 32, 4, c.num_key_value_heads, c.head_dim});
  model m(w, 2);
  std::vector<std::uint32_t> table(32);
  for (int i = 0; i < 32; ++i) table[i] = static_cast<std::uint32_t>((i * 7 + 3) % 32);
  std::vector<float> logits;
  decode_trace tr;
  int pos = 0;
  batch_item first{tokens.data(), static_cast<int>(tokens.size()), 0, table, true};  // prefill: the tile path
  m.forward({first}, cache, logits);
  pos = static_cast<int>(tokens.size());
  for (int s = 0; s < steps; ++s) {
    std::vector<float> last(logits.begin(), logits.begin() + c.vocab_size);
    auto g = testing::argmax(last);
    tr.greedy.push_back(g);
    tr.greedy_logprob.push_back(log_softmax_at(last.data(), c.vocab_size, g));
    auto next = forced.empty() ? g : forced[static_cast<std::size_t>(s)];
    tr.forced_logprob.push_back(log_softmax_at(last.data(), c.vocab_size, next));
    tr.logits.push_back(std::move(last));
    tokens.push_back(next);
    batch_item it{tokens.data() + pos, 1, pos, table, true};  // decode: the row-dot kernels
    m.forward({it}, cache, logits);
    ++pos;
  }
  return tr;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

constexpr int k_steps = 24;

// Half models: the same 2-byte weights kept vs widened to f32 at load give the same greedy tokens over
// 24 steps and logprobs within 1e-4 (only the summation order differs: f32 rounding, ~1e-6 relative).
void check_half(dtype type, wdtype kept) {
  temp_dir d;
  mkmodel_options o;
  o.type = type;
  o.tied = 0;
  auto dir = testing::make_model(d, "m", o);
  auto half = load(dir);
  load_options wide_opts;
  wide_opts.widen_to_f32 = true;
  auto wide = load(dir, wide_opts);
  EXPECT_EQ(half->layers[0].wq.type, kept);
  EXPECT_EQ(half->layers[1].w_down.type, kept);
  EXPECT_EQ(half->lm_head.type, kept);
  EXPECT_EQ(half->embed.type, kept);
  EXPECT_EQ(wide->layers[0].wq.type, wdtype::f32);
  EXPECT_EQ(wide->weight_bytes, wide->weight_bytes_f32);
  // 2 bytes a weight: half of f32, plus the f32 norm vectors.
  const double ratio = static_cast<double>(half->weight_bytes) / static_cast<double>(half->weight_bytes_f32);
  EXPECT_GE(ratio, 0.5);
  EXPECT_LT(ratio, 0.51);
  auto p = prompt(11, 3, half->config.vocab_size);
  auto a = run(half, p, k_steps), b = run(wide, p, k_steps);
  EXPECT_EQ(a.greedy, b.greedy);
  EXPECT_LT(max_abs_diff(a.greedy_logprob, b.greedy_logprob), 1e-4);
  // And the kept model against the dense double reference of the same weights (a prompt and 3 steps).
  auto ref = testing::reference_logits(*half, p);
  auto one = run(half, p, 1);
  EXPECT_LT(testing::rel_error(one.logits[0].data(), ref.back()), 1e-4);
}

TEST(native_weight_precision, bf16_model_keeps_two_byte_weights_and_decodes_as_widened) {
  check_half(dtype::bf16, wdtype::bf16);
}

TEST(native_weight_precision, f16_model_keeps_two_byte_weights_and_decodes_as_widened) {
  check_half(dtype::f16, wdtype::f16);
}

TEST(native_weight_precision, scalar_kernels_decode_like_simd) {
  temp_dir d;
  mkmodel_options o;
  o.type = dtype::bf16;
  auto w = load(testing::make_model(d, "m", o));
  auto p = prompt(9, 5, w->config.vocab_size);
  auto simd = run(w, p, 8);
  force_scalar_weight_kernels(true);
  auto plain = run(w, p, 8);
  force_scalar_weight_kernels(false);
  EXPECT_EQ(simd.greedy, plain.greedy);
  EXPECT_LT(max_abs_diff(simd.greedy_logprob, plain.greedy_logprob), 1e-4);
}

// int8 against f32 on the tiny preset, 6 prompts x 24 steps. Random weights give logits of standard
// deviation ~4 and some near-ties (top-2 margins down to 0.004), and per-row int8 moves a logit by up
// to ~0.27 (measured), so exact greedy identity over 24 free-running steps holds only where the
// margin allows. Stated tolerance, teacher-forced on the f32 greedy tokens:
//  - every logit within 0.1 x the step's logit standard deviation of f32's;
//  - |logprob(int8) - logprob(f32)| of the f32 pick <= 0.25 nats;
//  - top-1 identical at every step whose f32 top-2 margin is >= 0.6 (over 2x the largest logit move),
//    and overall top-1 agreement >= 90%;
// and free-running, int8 greedy output identical to f32 up to f32's first step with a margin < 0.6.
TEST(native_weight_precision, int8_tracks_f32_within_stated_tolerance) {
  constexpr double k_safe_margin = 0.6;
  temp_dir d;
  mkmodel_options o;
  o.tied = 0;
  auto dir = testing::make_model(d, "m", o);
  auto f32 = load(dir);
  load_options qo;
  qo.quantize = weight_quant::int8;
  auto q8 = load(dir, qo);
  EXPECT_EQ(q8->layers[0].wq.type, wdtype::i8);
  EXPECT_EQ(q8->lm_head.type, wdtype::i8);
  EXPECT_EQ(q8->embed.type, wdtype::f32) << "the embedding table stays as stored";
  const double ratio = static_cast<double>(q8->weight_bytes) / static_cast<double>(f32->weight_bytes);
  EXPECT_GE(ratio, 0.25);
  EXPECT_LT(ratio, 0.27);
  const int prompts = 6, V = f32->config.vocab_size;
  int agree = 0, checked_prefix = 0;
  double worst_lp = 0, worst_logit = 0, moved = 0;
  for (int s = 0; s < prompts; ++s) {
    SCOPED_TRACE("prompt " + std::to_string(s));
    auto p = prompt(7 + s, 10 + static_cast<std::uint32_t>(s), V);
    auto ref = run(f32, p, k_steps);
    auto q = run(q8, p, k_steps, ref.greedy);
    int first_tight = k_steps;
    for (int i = 0; i < k_steps; ++i) {
      const auto& l = ref.logits[static_cast<std::size_t>(i)];
      double mean = 0, var = 0, diff = 0;
      for (float v : l) mean += v;
      mean /= V;
      for (int j = 0; j < V; ++j) {
        var += (l[j] - mean) * (l[j] - mean);
        diff = std::max(diff, static_cast<double>(std::fabs(q.logits[i][j] - l[j])));
      }
      const double sd = std::sqrt(var / V);
      auto sorted = l;
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
      const double margin = sorted[0] - sorted[1];
      if (margin < k_safe_margin) first_tight = std::min(first_tight, i);
      EXPECT_LE(diff, 0.1 * sd) << "step " << i;
      EXPECT_LE(std::fabs(q.forced_logprob[i] - ref.greedy_logprob[i]), 0.25) << "step " << i;
      if (margin >= k_safe_margin) EXPECT_EQ(q.greedy[i], ref.greedy[i]) << "step " << i << ", margin " << margin;
      agree += q.greedy[i] == ref.greedy[i];
      worst_logit = std::max(worst_logit, diff / sd);
      worst_lp = std::max(worst_lp, std::fabs(q.forced_logprob[i] - ref.greedy_logprob[i]));
      moved = std::max(moved, diff);
    }
    // Free-running: identical until f32 itself is within the margin of a tie.
    auto free = run(q8, p, k_steps);
    for (int i = 0; i <= std::min(first_tight, k_steps - 1); ++i, ++checked_prefix)
      ASSERT_EQ(free.greedy[i], ref.greedy[i]) << "free-running step " << i << " (first tight step " << first_tight << ")";
  }
  EXPECT_GE(agree, prompts * k_steps * 9 / 10);
  EXPECT_GT(moved, 1e-4) << "quantisation really happened: the logits move";
  EXPECT_GT(checked_prefix, prompts) << "the free-running check compared something";
  std::printf("int8 vs f32: top-1 agreement %d/%d, worst logprob diff %.4g nats, worst logit move %.3g sd, "
              "free-running prefix checked %d steps\n",
              agree, prompts * k_steps, worst_lp, worst_logit, checked_prefix);
}

TEST(native_weight_precision, int8_of_a_bf16_model_and_a_tied_head) {
  temp_dir d;
  mkmodel_options o;
  o.type = dtype::bf16;  // tiny preset: tied embeddings
  auto dir = testing::make_model(d, "m", o);
  load_options qo;
  qo.quantize = weight_quant::int8;
  auto q8 = load(dir, qo);
  ASSERT_TRUE(q8->config.tie_word_embeddings);
  EXPECT_EQ(q8->embed.type, wdtype::bf16);
  EXPECT_EQ(q8->lm_head.type, wdtype::i8);
  EXPECT_NE(q8->lm_head.data, q8->embed.data);
  // The int8 model against the dense reference of its own (dequantised) weights.
  auto p = prompt(10, 4, q8->config.vocab_size);
  auto ref = testing::reference_logits(*q8, p);
  auto one = run(q8, p, 1);
  EXPECT_LT(testing::rel_error(one.logits[0].data(), ref.back()), 1e-4);
}

}  // namespace
}  // namespace yard::backends::native
