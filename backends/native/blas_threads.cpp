// backends/native/blas_threads.cpp — see blas_threads.hpp.
#include "backends/native/blas_threads.hpp"

#include <dlfcn.h>

namespace yard::backends::native {

bool set_blas_threads(int threads) {
  if (threads <= 0) return false;
  using set_fn = void (*)(int);
  auto* f = reinterpret_cast<set_fn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (f == nullptr) return false;
  f(threads);
  return true;
}

}  // namespace yard::backends::native
