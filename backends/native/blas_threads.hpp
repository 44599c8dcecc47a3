// backends/native/blas_threads.hpp — how many threads the BLAS library may use.
//
// Owns: the one call that sizes the BLAS library's own thread pool (OpenBLAS's
// openblas_set_num_threads, looked up at run time so any CBLAS links).
// Must not touch: the engine's attention pool (native/thread_pool).
// Thread-safety: the setting is process-wide in OpenBLAS; call it before
// stepping (native_engine::open does, when --threads is given).
#pragma once

namespace yard::backends::native {

// Sets the BLAS library's thread count. Returns false when the BLAS in use has
// no such knob (it then runs with its own default).
bool set_blas_threads(int threads);

}  // namespace yard::backends::native
