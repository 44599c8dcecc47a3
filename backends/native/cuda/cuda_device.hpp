// backends/native/cuda/cuda_device.hpp — is there a usable CUDA device?
//
// Owns: the device probe. probe_cuda_device() never aborts: no driver, an
// old driver or no device all come back as available == false with a reason.
// cuda_available() is the same probe, logged once (component "cuda").
// Must not touch: kernels, weights (cuda_model).
// Thread-safety: probe_cuda_device() is safe from any thread; cuda_available()
// caches its answer (thread-safe static init).
//
// Plain C++ header: does not include cuda_runtime.h, so yard_backends compiles
// without CUDA headers. In a build without CUDA (YARD_HAVE_CUDA undefined) the
// probe reports "built without CUDA".
#pragma once

#include <string>

namespace yard::backends::native {

struct cuda_probe {
  bool available = false;
  int device_count = 0;
  std::string reason;  // why not available (empty when available)
  std::string name;    // device 0's name when available
  int compute_major = 0, compute_minor = 0;
  std::size_t total_memory = 0;
};

cuda_probe probe_cuda_device();
bool cuda_available();

}  // namespace yard::backends::native
