// backends/native/weight_kernels.hpp — `out = in x W^T` for weights of any kept precision.
//
// Owns: the matrix products of the forward pass over a weight_matrix, split
// over output rows on the caller's thread pool (BLAS runs single-threaded
// inside its jobs). At a few rows (decode) row-dot kernels read each weight
// row once: f32, f16 and bf16 widen on the fly and accumulate in f32
// (AVX2+FMA+F16C when the CPU has them, checked at run time; plain loops and
// BLAS's sgemv otherwise); int8 with AVX2 dots the weights with the input
// rows quantised to 16 bits per row (vpmaddwd, int32 blocks summed in f32;
// the error bound is in weight_kernels.cpp). At more rows (prefill) row
// chunks go to sgemm, half/int8 tiles widened to f32 first. Debian 12's
// OpenBLAS 0.3.21 exports no sbgemm, and sbgemm would round the activations to
// bf16 too, so there is no BLAS half-precision path.
// Must not touch: the weights (read only), anything but `out`.
// Thread-safety: gemm_wt may run on several threads at once as long as each
// has its own `out` and pool; the scalar switch is for tests, set while no
// product runs.
#pragma once

#include <span>

#include "backends/native/thread_pool.hpp"
#include "backends/native/weight_matrix.hpp"

namespace yard::backends::native {

// out[T][W.rows] = in[T][W.cols] x W^T + beta * out (beta 0: `out` is not read;
// 1: residual add). `pool` (may be null: the calling thread alone) splits the
// output rows.
void gemm_wt(const float* in, int T, const weight_matrix& W, float* out, float beta, thread_pool* pool = nullptr);

// Several products of the same input in one pass over the pool (one barrier):
// products[i].out = in x products[i].W^T + products[i].beta * products[i].out.
// Every W must have in's row width as its cols.
struct wt_product {
  const weight_matrix* W = nullptr;
  float* out = nullptr;
  float beta = 0.0f;
};
void gemm_wt_many(const float* in, int T, std::span<const wt_product> products, thread_pool* pool = nullptr);

// True when the SIMD kernels run (the CPU has AVX2, FMA and F16C and they are not switched off).
bool weight_kernels_simd();
// Tests: true forces the plain-loop kernels, false restores run-time detection (default false).
void force_scalar_weight_kernels(bool on);

}  // namespace yard::backends::native
