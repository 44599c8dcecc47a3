#include "backends/native/weight_kernels.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
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

// Rows [r0, r1) of out for every input row.
void dot_rows(const float* in, int T, const weight_matrix& W, float* out, float beta, int r0, int r1, bool simd) {
  const int k = W.cols, n = W.rows;
  for (int r = r0; r < r1; ++r)
    for (int t = 0; t < T; ++t) {
      const float* x = in + static_cast<std::size_t>(t) * k;
      float v = simd ? row_dot_simd(W, r, x) : row_dot_scalar(W, r, x);
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

void gemm_wt(const float* in, int T, const weight_matrix& W, float* out, float beta, thread_pool* pool) {
  const int k = W.cols, n = W.rows;
  if (T <= 0 || n <= 0) return;
  const bool simd = weight_kernels_simd();
  const int threads = pool ? pool->size() : 1;
  // Every matrix product runs on the engine's pool (BLAS itself is kept single-threaded: its own spinning
  // threads would fight this pool for the cores). Rows are split in chunks, a few per thread so uneven
  // threads even out, each at least ~64 KiB of weights.
  const std::size_t row_bytes = static_cast<std::size_t>(k) * wdtype_size(W.type);
  const int min_rows = static_cast<int>(std::max<std::size_t>(1, (64u << 10) / std::max<std::size_t>(1, row_bytes)));
  const int chunk = std::max(min_rows, (n + 4 * threads - 1) / (4 * threads));
  const int jobs = (n + chunk - 1) / chunk;
  // Up to k_max_dot_rows input rows (decode): each weight row is dotted with every input row while it is in L1.
  // Above that (prefill): sgemm over row chunks. Without AVX2, f32 decode goes to BLAS's gemv.
  const bool dot = T <= k_max_dot_rows && (simd || W.type != wdtype::f32);
  auto run = [&](int r0, int r1) {
    if (dot) dot_rows(in, T, W, out, beta, r0, r1, simd);
    else if (T == 1 && W.type == wdtype::f32)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, r1 - r0, k, 1.0f, W.f32() + static_cast<std::size_t>(r0) * k, k, in, 1, beta,
                  out + r0, 1);
    else sgemm_rows(in, T, W, out, beta, r0, r1 - r0, simd);
  };
  if (jobs <= 1 || threads <= 1) return run(0, n);
  pool->parallel_for(jobs, [&](int j) { run(j * chunk, std::min(n, (j + 1) * chunk)); });
}

}  // namespace yard::backends::native
