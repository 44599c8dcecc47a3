// backends/native/cuda/cuda_device.hpp — is there a usable CUDA device?
//
// Owns: the device probe and page-locking host memory for it. probe_cuda_device() never aborts: no driver, an
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

#include <cstddef>
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

// Page-locks [p, p + n) for the CUDA runtime (cudaHostRegister, portable to
// every device), so host<->device copies into it run as DMA without a bounce
// buffer: the KV transfer staging region and G2's slab are pinned this way on
// a GPU host. Every page is committed at once and cannot be reclaimed, so a
// region over half of this host's memory is refused (left pageable rather
// than invite the OOM killer). False, and nothing done, then, without a usable
// device, or in a build without CUDA.
bool pin_host_memory(void* p, std::size_t n);
void unpin_host_memory(void* p);  // only after pin_host_memory(p, ...) returned true

// Bytes per second device 0 streams out of its own memory, read only (a kernel summing a `bytes` buffer
// with 16-byte loads, best of several passes, timed with CUDA events): the bound a decode step, which reads
// every weight once, is measured against (`yard bench engine --device cuda`). 0 without a usable device,
// in a build without CUDA, or when the buffer cannot be allocated.
double device_read_bandwidth(std::size_t bytes);

}  // namespace yard::backends::native
