#include "backends/native/model.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <immintrin.h>

#include "backends/native/weight_kernels.hpp"

namespace yard::backends::native {

void rms_norm(const float* x, const float* w, float* out, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  float scale = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
  for (int i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void apply_rope(float* v, int n_heads, int head_dim, const float* cos, const float* sin) {
  int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* p = v + h * head_dim;
    for (int i = 0; i < half; ++i) {
      float a = p[i], b = p[i + half];
      p[i] = a * cos[i] - b * sin[i];
      p[i + half] = b * cos[i] + a * sin[i];
    }
  }
}

namespace {

// Dot product with 8 independent partial sums, so the compiler can use SIMD
// without -ffast-math (a single running sum is a strict sequential reduction).
inline float dot(const float* a, const float* b, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// The same two loops on 8-lane AVX registers, picked at run time: bit-identical to the loops above (lane k
// is acc[k], the lanes are folded in the same order, and multiply then add are separate instructions:
// the target has no FMA, so the compiler cannot contract them either).
#define YARD_AVX __attribute__((target("avx2")))

YARD_AVX float dot_avx(const float* a, const float* b, int n) {
  __m256 acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  alignas(32) float l[8];
  _mm256_store_ps(l, acc);
  float s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// out[d] += a * v[d]
YARD_AVX void add_scaled_avx(float* out, float a, const float* v, int n) {
  const __m256 va = _mm256_set1_ps(a);
  int d = 0;
  for (; d + 8 <= n; d += 8)
    _mm256_storeu_ps(out + d, _mm256_add_ps(_mm256_loadu_ps(out + d), _mm256_mul_ps(va, _mm256_loadu_ps(v + d))));
  for (; d < n; ++d) out[d] += a * v[d];
}

#undef YARD_AVX

// out[T][n] += bias (none: nothing).
void add_bias(float* out, int T, int n, const float* bias) {
  if (bias)
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < n; ++i) out[static_cast<std::size_t>(t) * n + i] += bias[i];
}

}  // namespace

model::model(std::shared_ptr<const model_weights> w, int n_threads)
    : w_(std::move(w)), pool_(n_threads), inv_freq_(rope_inv_freq(w_->config)) {}

void model::attention(int layer, const std::vector<batch_item>& batch, const kv_cache& cache) {
  const auto& c = w_->config;
  const int nh = c.num_attention_heads, nkv = c.num_key_value_heads, hd = c.head_dim, group = nh / nkv;
  const int bs = cache.shape().block_size;
  const int T = static_cast<int>(pos_.size());
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const bool avx = weight_kernels_simd();  // AVX2 is part of what that checks
  pool_.parallel_for(T * nh, [&](int job) {
    int t = job / nh, h = job % nh, kvh = h / group;
    const auto& it = batch[item_of_[t]];
    const auto& table = it.block_table;
    int n_ctx = pos_[t] + 1;  // causal: positions 0..pos
    thread_local std::vector<float> scores;
    scores.resize(static_cast<std::size_t>(n_ctx));
    const float* q = q_.data() + (static_cast<std::size_t>(t) * nh + h) * hd;
    float mx = -INFINITY;
    for (int p = 0; p < n_ctx; ++p) {
      const float* kp = cache.k(layer, table[p / bs], p % bs) + kvh * hd;
      float s = (avx ? dot_avx(q, kp, hd) : dot(q, kp, hd)) * scale;
      scores[p] = s;
      mx = std::max(mx, s);
    }
    float sum = 0;
    for (int p = 0; p < n_ctx; ++p) sum += (scores[p] = std::exp(scores[p] - mx));
    float inv = 1.0f / sum;
    float* out = att_.data() + (static_cast<std::size_t>(t) * nh + h) * hd;
    std::fill(out, out + hd, 0.0f);
    for (int p = 0; p < n_ctx; ++p) {
      const float* vp = cache.v(layer, table[p / bs], p % bs) + kvh * hd;
      float a = scores[p] * inv;
      if (avx)
        add_scaled_avx(out, a, vp, hd);
      else
        for (int d = 0; d < hd; ++d) out[d] += a * vp[d];
    }
  });
}

void model::forward(const std::vector<batch_item>& batch, kv_cache& cache, std::vector<float>& logits) {
  const auto& c = w_->config;
  const int H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), I = c.intermediate_size, hd = c.head_dim,
            half = hd / 2, V = c.vocab_size, bs = cache.shape().block_size;
  int T = 0;
  for (const auto& it : batch) T += it.n_tokens;
  pos_.resize(T);
  item_of_.resize(T);
  x_.resize(static_cast<std::size_t>(T) * H);
  xn_.resize(x_.size());
  q_.resize(static_cast<std::size_t>(T) * Q);
  att_.resize(q_.size());
  k_.resize(static_cast<std::size_t>(T) * KV);
  v_.resize(k_.size());
  gate_.resize(static_cast<std::size_t>(T) * I);
  up_.resize(gate_.size());
  cos_.resize(static_cast<std::size_t>(T) * half);
  sin_.resize(cos_.size());
  int t = 0;
  for (int b = 0; b < static_cast<int>(batch.size()); ++b) {
    const auto& it = batch[b];
    for (int i = 0; i < it.n_tokens; ++i, ++t) {
      pos_[t] = it.start_pos + i;
      item_of_[t] = b;
      auto tok = std::min<std::uint32_t>(it.tokens[i], static_cast<std::uint32_t>(V - 1));
      w_->embed.row_to_f32(static_cast<int>(tok), &x_[static_cast<std::size_t>(t) * H]);
      for (int j = 0; j < half; ++j) {
        double ang = static_cast<double>(pos_[t]) * inv_freq_[j];
        cos_[static_cast<std::size_t>(t) * half + j] = static_cast<float>(std::cos(ang));
        sin_[static_cast<std::size_t>(t) * half + j] = static_cast<float>(std::sin(ang));
      }
    }
  }
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const auto& L = w_->layers[l];
    for (int i = 0; i < T; ++i) rms_norm(&x_[static_cast<std::size_t>(i) * H], L.attn_norm, &xn_[static_cast<std::size_t>(i) * H], H, c.rms_norm_eps);
    const wt_product qkv[] = {{&L.wq, q_.data()}, {&L.wk, k_.data()}, {&L.wv, v_.data()}};
    gemm_wt_many(xn_.data(), T, qkv, &pool_);  // one pass over the pool for the three
    add_bias(q_.data(), T, L.wq.rows, L.bq);
    add_bias(k_.data(), T, L.wk.rows, L.bk);
    add_bias(v_.data(), T, L.wv.rows, L.bv);
    for (int i = 0; i < T; ++i) {
      const float* cs = &cos_[static_cast<std::size_t>(i) * half];
      const float* sn = &sin_[static_cast<std::size_t>(i) * half];
      apply_rope(&q_[static_cast<std::size_t>(i) * Q], c.num_attention_heads, hd, cs, sn);
      apply_rope(&k_[static_cast<std::size_t>(i) * KV], c.num_key_value_heads, hd, cs, sn);
      const auto& table = batch[item_of_[i]].block_table;
      int p = pos_[i];
      std::memcpy(cache.k(l, table[p / bs], p % bs), &k_[static_cast<std::size_t>(i) * KV], sizeof(float) * KV);
      std::memcpy(cache.v(l, table[p / bs], p % bs), &v_[static_cast<std::size_t>(i) * KV], sizeof(float) * KV);
    }
    attention(l, batch, cache);
    // x += att Wo^T
    gemm_wt(att_.data(), T, L.wo, x_.data(), 1.0f, &pool_);
    for (int i = 0; i < T; ++i) rms_norm(&x_[static_cast<std::size_t>(i) * H], L.ffn_norm, &xn_[static_cast<std::size_t>(i) * H], H, c.rms_norm_eps);
    const wt_product gate_up[] = {{&L.w_gate, gate_.data()}, {&L.w_up, up_.data()}};
    gemm_wt_many(xn_.data(), T, gate_up, &pool_);
    for (std::size_t i = 0; i < gate_.size(); ++i) {
      float g = gate_[i];
      gate_[i] = g / (1.0f + std::exp(-g)) * up_[i];
    }
    gemm_wt(gate_.data(), T, L.w_down, x_.data(), 1.0f, &pool_);
  }
  // Final norm + LM head for the last token of items that want logits.
  std::vector<int> rows;
  t = 0;
  for (const auto& it : batch) {
    t += it.n_tokens;
    if (it.want_logits && it.n_tokens > 0) rows.push_back(t - 1);
  }
  int R = static_cast<int>(rows.size());
  for (int r = 0; r < R; ++r)
    rms_norm(&x_[static_cast<std::size_t>(rows[r]) * H], w_->final_norm, &xn_[static_cast<std::size_t>(r) * H], H, c.rms_norm_eps);
  logits.resize(static_cast<std::size_t>(R) * V);
  if (R) gemm_wt(xn_.data(), R, w_->lm_head, logits.data(), 0.0f, &pool_);
}

}  // namespace yard::backends::native
