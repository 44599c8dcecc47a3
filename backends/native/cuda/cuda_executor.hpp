// backends/native/cuda/cuda_executor.hpp — runs scheduler plans on a CUDA device.
//
// Owns: the factory for the CUDA executor (same role as native_executor: one
// batched forward per plan over a paged K/V cache indexed by the scheduler's
// block ids, then sampling deterministic per (seed, output index)). The
// forward runs in cuda_model (cuda_model.cu); sampling stays on the host.
// Must not touch: scheduling, block allocation.
// Thread-safety: the executor is not thread-safe; the engine's owner calls it.
//
// Always compiled into yard_backends (plain C++). Without YARD_HAVE_CUDA the
// factory returns errc::unsupported; with it but no usable device it returns
// errc::unavailable with the probe's reason. Never aborts.
#pragma once

#include <memory>

#include "backends/native/kv_cache.hpp"
#include "backends/native/model_weights.hpp"
#include "backends/scheduler/batch_plan.hpp"
#include "common/status.hpp"

namespace yard::backends::native {

// True when this binary was built with CUDA kernels (YARD_HAVE_CUDA).
bool cuda_built();

result<std::unique_ptr<executor>> make_cuda_executor(std::shared_ptr<const model_weights> w, kv_cache_shape shape);

}  // namespace yard::backends::native
