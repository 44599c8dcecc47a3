// backends/native/weight_kernels.hpp — `out = in x W^T` for weights of any kept precision.
//
// Owns: the matrix products of the forward pass over a weight_matrix. f32 goes
// to OpenBLAS (sgemv for one row, sgemm otherwise). f16, bf16 and int8 at a few
// rows (decode) use row-dot kernels that widen the weights on the fly and
// accumulate in f32 (AVX2+FMA+F16C when the CPU has them, checked at run time;
// plain loops otherwise), split over output rows on the caller's thread pool;
// at more rows (prefill) they widen row tiles to f32 and call sgemm. Debian 12's
// OpenBLAS 0.3.21 exports no sbgemm, and sbgemm would round the activations to
// bf16 too, so there is no BLAS half-precision path.
// Must not touch: the weights (read only), anything but `out`.
// Thread-safety: gemm_wt may run on several threads at once as long as each
// has its own `out` and pool; the scalar switch is for tests, set while no
// product runs.
#pragma once

#include "backends/native/thread_pool.hpp"
#include "backends/native/weight_matrix.hpp"

namespace yard::backends::native {

// out[T][W.rows] = in[T][W.cols] x W^T + beta * out (beta 0: `out` is not read;
// 1: residual add). `pool` (may be null: the calling thread alone) splits the
// rows of the half/int8 decode kernels.
void gemm_wt(const float* in, int T, const weight_matrix& W, float* out, float beta, thread_pool* pool = nullptr);

// True when the SIMD kernels run (the CPU has AVX2, FMA and F16C and they are not switched off).
bool weight_kernels_simd();
// Tests: true forces the plain-loop kernels, false restores run-time detection (default false).
void force_scalar_weight_kernels(bool on);

}  // namespace yard::backends::native
