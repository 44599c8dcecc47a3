#include "backends/native/weight_kernels.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include <immintrin.h>

#include "backends/native/safetensors.hpp"

namespace yard::backends::native {

namespace {

std::atomic<bool> g_force_scalar{false};

bool cpu_has_simd() {
  static const bool v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return v;
}

// Up to this many input rows the half/int8 kernels dot each weight row with every input row (the row stays in
// L1 between them); above it, widening a tile once and handing it to sgemm wins.
constexpr int k_max_dot_rows = 4;

// ---- plain loops (any x86-64, and the reference for the SIMD ones) ----

template <class Widen>
float dot_scalar(const Widen& w, const float* x, int k) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= k; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += w(i + j) * x[i + j];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < k; ++i) s += w(i) * x[i];
  return s;
}

float row_dot_scalar(const weight_matrix& W, int r, const float* x) {
  const int k = W.cols;
  const std::size_t off = static_cast<std::size_t>(r) * k;
  switch (W.type) {
    case wdtype::f32: {
      const float* p = static_cast<const float*>(W.data) + off;
      return dot_scalar([p](int i) { return p[i]; }, x, k);
    }
    case wdtype::f16: {
      const auto* p = static_cast<const std::uint16_t*>(W.data) + off;
      return dot_scalar([p](int i) { return f16_to_f32(p[i]); }, x, k);
    }
    case wdtype::bf16: {
      const auto* p = static_cast<const std::uint16_t*>(W.data) + off;
      return dot_scalar([p](int i) { return bf16_to_f32(p[i]); }, x, k);
    }
    case wdtype::i8: {
      const auto* p = static_cast<const std::int8_t*>(W.data) + off;
      return dot_scalar([p](int i) { return static_cast<float>(p[i]); }, x, k) * W.scales[r];
    }
  }
  return 0;
}

// ---- AVX2 + FMA (+ F16C): 8 weights widened per load, 4 independent accumulators ----

#define YARD_SIMD __attribute__((target("avx2,fma,f16c")))

YARD_SIMD inline __m256 load8_bf16(const std::uint16_t* p) {
  __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
YARD_SIMD inline __m256 load8_f16(const std::uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
YARD_SIMD inline __m256 load8_i8(const std::int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
YARD_SIMD inline __m256 load8_f32(const float* p) { return _mm256_loadu_ps(p); }

YARD_SIMD inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// sum_i w[i] * x[i] with the weights widened by Load; Scalar widens one element (the tail).
template <class T, __m256 (*Load)(const T*), class Scalar>
YARD_SIMD float dot_simd(const T* w, const float* x, int k, const Scalar& scalar) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int i = 0;
  for (; i + 32 <= k; i += 32) {
    a0 = _mm256_fmadd_ps(Load(w + i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(Load(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(Load(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(Load(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= k; i += 8) a0 = _mm256_fmadd_ps(Load(w + i), _mm256_loadu_ps(x + i), a0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < k; ++i) s += scalar(w[i]) * x[i];
  return s;
}

YARD_SIMD float row_dot_simd(const weight_matrix& W, int r, const float* x) {
  const int k = W.cols;
  const std::size_t off = static_cast<std::size_t>(r) * k;
  switch (W.type) {
    case wdtype::f32:
      return dot_simd<float, load8_f32>(static_cast<const float*>(W.data) + off, x, k, [](float v) { return v; });
    case wdtype::f16:
      return dot_simd<std::uint16_t, load8_f16>(static_cast<const std::uint16_t*>(W.data) + off, x, k,
                                                [](std::uint16_t v) { return f16_to_f32(v); });
    case wdtype::bf16:
      return dot_simd<std::uint16_t, load8_bf16>(static_cast<const std::uint16_t*>(W.data) + off, x, k,
                                                 [](std::uint16_t v) { return bf16_to_f32(v); });
    case wdtype::i8:
      return dot_simd<std::int8_t, load8_i8>(static_cast<const std::int8_t*>(W.data) + off, x, k,
                                             [](std::int8_t v) { return static_cast<float>(v); }) *
             W.scales[r];
  }
  return 0;
}

// ---- int8 decode: integer dot products ----
// Widening int8 to float costs three instructions per 8 weights and made int8 decode compute-bound. Instead each
// input row is quantised once per product to 16-bit integers (scale max|x| / k_x_max, per row), and a weight row
// is dotted with it by vpmaddwd: 16 multiply-adds per instruction, summed in int32 over blocks of k_i8_block
// (|w| <= 127 and |x| <= k_x_max keep a block's sum under 2^31), each block sum then added in float. The error
// this adds is at most half a step of x per weight: |sum w (x - x_q)| <= sum|w| * max|x| / (2 k_x_max).
constexpr int k_x_max = 16383;
constexpr int k_i8_block = 1024;

struct quantized_rows {
  std::vector<std::int16_t> q;  // [T][k]
  std::vector<float> scale;     // [T]: x = q * scale
};

void quantize_rows_i16(const float* in, int T, int k, quantized_rows& out) {
  out.q.resize(static_cast<std::size_t>(T) * k);
  out.scale.resize(static_cast<std::size_t>(T));
  for (int t = 0; t < T; ++t) {
    const float* x = in + static_cast<std::size_t>(t) * k;
    float mx = 0;
    for (int i = 0; i < k; ++i) mx = std::max(mx, std::fabs(x[i]));
    const float s = mx > 0 ? mx / k_x_max : 1.0f, inv = 1.0f / s;
    std::int16_t* q = out.q.data() + static_cast<std::size_t>(t) * k;
    for (int i = 0; i < k; ++i) q[i] = static_cast<std::int16_t>(std::lrintf(x[i] * inv));
    out.scale[static_cast<std::size_t>(t)] = s;
  }
}

YARD_SIMD inline std::int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

YARD_SIMD float dot_i8_i16(const std::int8_t* w, const std::int16_t* x, int k) {
  float total = 0;
  int i = 0;
  while (i + 32 <= k) {
    const int end = std::min(k, i + k_i8_block);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    for (; i + 32 <= end; i += 32) {
      __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
      __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 16)));
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(w0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(w1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 16))));
    }
    total += static_cast<float>(hsum_i32(a0) + static_cast<std::int64_t>(hsum_i32(a1)));
  }
  std::int32_t tail = 0;
  for (; i < k; ++i) tail += static_cast<std::int32_t>(w[i]) * x[i];
  return total + static_cast<float>(tail);
}

// ---- bf16 decode without widening: a bf16 weight is the top half of an f32 ----
// A 32-bit lane of bf16 weights holds w[2j] in its low half and w[2j+1] in its high half: shifted left by 16 the
// lane is w[2j] as an f32, masked to its high half it is w[2j+1]. With the input split once per product into its
// even and odd elements, 16 weights cost one load, one shift, one and and two FMAs.
struct split_rows {
  std::vector<float> even, odd;  // [T][k/2]
};

void split_rows_even_odd(const float* in, int T, int k, split_rows& out) {
  const int h = k / 2;
  out.even.resize(static_cast<std::size_t>(T) * h);
  out.odd.resize(static_cast<std::size_t>(T) * h);
  for (int t = 0; t < T; ++t) {
    const float* x = in + static_cast<std::size_t>(t) * k;
    float* e = out.even.data() + static_cast<std::size_t>(t) * h;
    float* o = out.odd.data() + static_cast<std::size_t>(t) * h;
    for (int j = 0; j < h; ++j) {
      e[j] = x[2 * j];
      o[j] = x[2 * j + 1];
    }
  }
}

YARD_SIMD float dot_bf16_split(const std::uint16_t* w, const float* x, const float* xe, const float* xo, int k) {
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int i = 0;
  for (; i + 32 <= k; i += 32) {
    const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i));
    const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16));
    const int j = i / 2;
    a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)), _mm256_loadu_ps(xe + j), a0);
    a1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v0, high)), _mm256_loadu_ps(xo + j), a1);
    a2 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)), _mm256_loadu_ps(xe + j + 8), a2);
    a3 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v1, high)), _mm256_loadu_ps(xo + j + 8), a3);
  }
  float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < k; ++i) s += bf16_to_f32(w[i]) * x[i];
  return s;
}

// One row widened to f32 (8 at a time; the scalar tail as row_to_f32 does it).
YARD_SIMD void widen_row_simd(const weight_matrix& W, int r, float* out) {
  const int k = W.cols;
  const std::size_t off = static_cast<std::size_t>(r) * k;
  int i = 0;
  switch (W.type) {
    case wdtype::f32:
      std::memcpy(out, static_cast<const float*>(W.data) + off, sizeof(float) * k);
      return;
    case wdtype::f16: {
      const auto* p = static_cast<const std::uint16_t*>(W.data) + off;
      for (; i + 8 <= k; i += 8) _mm256_storeu_ps(out + i, load8_f16(p + i));
      for (; i < k; ++i) out[i] = f16_to_f32(p[i]);
      return;
    }
    case wdtype::bf16: {
      const auto* p = static_cast<const std::uint16_t*>(W.data) + off;
      for (; i + 8 <= k; i += 8) _mm256_storeu_ps(out + i, load8_bf16(p + i));
      for (; i < k; ++i) out[i] = bf16_to_f32(p[i]);
      return;
    }
    case wdtype::i8: {
      const auto* p = static_cast<const std::int8_t*>(W.data) + off;
      const float s = W.scales[r];
      const __m256 vs = _mm256_set1_ps(s);
      for (; i + 8 <= k; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(load8_i8(p + i), vs));
      for (; i < k; ++i) out[i] = static_cast<float>(p[i]) * s;
      return;
    }
  }
}

#undef YARD_SIMD

// Rows [r0, r1) of out for every input row. `xq`: int8 weights with SIMD take the inputs quantised (above).
// `xs`: bf16 weights with SIMD take the inputs split into even and odd elements (above).
void dot_rows(const float* in, int T, const weight_matrix& W, float* out, float beta, int r0, int r1, bool simd,
              const quantized_rows* xq, const split_rows* xs) {
  const int k = W.cols, n = W.rows;
  for (int r = r0; r < r1; ++r)
    for (int t = 0; t < T; ++t) {
      const float* x = in + static_cast<std::size_t>(t) * k;
      float v;
      if (xs)
        v = dot_bf16_split(static_cast<const std::uint16_t*>(W.data) + static_cast<std::size_t>(r) * k, x,
                           xs->even.data() + static_cast<std::size_t>(t) * (k / 2),
                           xs->odd.data() + static_cast<std::size_t>(t) * (k / 2), k);
      else if (xq)
        v = dot_i8_i16(static_cast<const std::int8_t*>(W.data) + static_cast<std::size_t>(r) * k,
                       xq->q.data() + static_cast<std::size_t>(t) * k, k) *
            (W.scales[r] * xq->scale[static_cast<std::size_t>(t)]);
      else
        v = simd ? row_dot_simd(W, r, x) : row_dot_scalar(W, r, x);
      float& o = out[static_cast<std::size_t>(t) * n + r];
      o = beta == 0.0f ? v : v + beta * o;
    }
}

// Rows [r0, r0 + rows) of out (all T input rows) by sgemm: f32 weights in place; others widened a tile at a
// time (~1 MiB of f32: big enough for sgemm to run at speed, small enough to stay in cache).
void sgemm_rows(const float* in, int T, const weight_matrix& W, float* out, float beta, int r0, int rows, bool simd) {
  const int k = W.cols, n = W.rows;
  if (W.type == wdtype::f32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, rows, k, 1.0f, in, k, W.f32() + static_cast<std::size_t>(r0) * k,
                k, beta, out + r0, n);
    return;
  }
  const int tile = std::clamp((1 << 18) / std::max(1, k), 16, 1024);
  thread_local std::vector<float> buf;
  buf.resize(static_cast<std::size_t>(std::min(tile, rows)) * k);
  for (int t0 = r0; t0 < r0 + rows; t0 += tile) {
    const int m = std::min(tile, r0 + rows - t0);
    for (int r = 0; r < m; ++r) {
      float* dst = buf.data() + static_cast<std::size_t>(r) * k;
      if (simd) widen_row_simd(W, t0 + r, dst);
      else W.row_to_f32(t0 + r, dst);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, m, k, 1.0f, in, k, buf.data(), k, beta, out + t0, n);
  }
}

}  // namespace

bool weight_kernels_simd() { return cpu_has_simd() && !g_force_scalar.load(std::memory_order_relaxed); }

void force_scalar_weight_kernels(bool on) { g_force_scalar.store(on, std::memory_order_relaxed); }

void gemm_wt_many(const float* in, int T, std::span<const wt_product> products, thread_pool* pool) {
  if (T <= 0 || products.empty()) return;
  const bool simd = weight_kernels_simd();
  const int threads = pool ? pool->size() : 1;
  // One job list over every product's rows: one barrier for all of them (q, k and v share their input).
  struct plan {
    const weight_matrix* W;
    float* out;
    float beta;
    int chunk, first_job;
    bool dot;
    const quantized_rows* xq;
    const split_rows* xs;
  };
  // Inputs quantised for int8 row-dots, shared with the pool's threads through the plans (a thread_local named
  // inside the job lambda would be each thread's own, empty one).
  thread_local quantized_rows xq_storage;
  thread_local split_rows xs_storage;
  bool quantised = false, split = false;
  std::vector<plan> plans;
  plans.reserve(products.size());
  int jobs = 0;
  for (const auto& pr : products) {
    const weight_matrix& W = *pr.W;
    const int k = W.cols, n = W.rows;
    if (n <= 0) continue;
    // Rows in chunks, a few per thread so uneven threads even out, each at least ~64 KiB of weights.
    const std::size_t row_bytes = static_cast<std::size_t>(k) * wdtype_size(W.type);
    const int min_rows = static_cast<int>(std::max<std::size_t>(1, (64u << 10) / std::max<std::size_t>(1, row_bytes)));
    const int chunk = std::max(min_rows, (n + 4 * threads - 1) / (4 * threads));
    // Up to k_max_dot_rows input rows (decode): each weight row is dotted with every input row while it is in L1.
    // Above that (prefill): sgemm over row chunks. Without AVX2, f32 decode goes to BLAS's gemv.
    const bool dot = T <= k_max_dot_rows && (simd || W.type != wdtype::f32);
    const quantized_rows* xq = nullptr;
    if (dot && simd && W.type == wdtype::i8) {
      if (!quantised) quantize_rows_i16(in, T, k, xq_storage);
      quantised = true;
      xq = &xq_storage;
    }
    const split_rows* xs = nullptr;
    if (dot && simd && W.type == wdtype::bf16) {
      if (!split) split_rows_even_odd(in, T, k, xs_storage);
      split = true;
      xs = &xs_storage;
    }
    plans.push_back(plan{&W, pr.out, pr.beta, chunk, jobs, dot, xq, xs});
    jobs += (n + chunk - 1) / chunk;
  }
  auto run_job = [&](int j) {
    auto it = std::upper_bound(plans.begin(), plans.end(), j, [](int v, const plan& p) { return v < p.first_job; }) - 1;
    const plan& p = *it;
    const weight_matrix& W = *p.W;
    const int k = W.cols, n = W.rows;
    const int r0 = (j - p.first_job) * p.chunk, r1 = std::min(n, r0 + p.chunk);
    if (p.dot) dot_rows(in, T, W, p.out, p.beta, r0, r1, simd, p.xq, p.xs);
    else if (T == 1 && W.type == wdtype::f32)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, r1 - r0, k, 1.0f, W.f32() + static_cast<std::size_t>(r0) * k, k, in, 1,
                  p.beta, p.out + r0, 1);
    else sgemm_rows(in, T, W, p.out, p.beta, r0, r1 - r0, simd);
  };
  if (jobs <= 1 || threads <= 1) {
    for (int j = 0; j < jobs; ++j) run_job(j);
    return;
  }
  pool->parallel_for(jobs, run_job);
}

void gemm_wt(const float* in, int T, const weight_matrix& W, float* out, float beta, thread_pool* pool) {
  const wt_product p{&W, out, beta};
  gemm_wt_many(in, T, std::span<const wt_product>(&p, 1), pool);
}

}  // namespace yard::backends::native
