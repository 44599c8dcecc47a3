// backends/native/plan_glue.hpp — what the CPU and CUDA executors share around a forward pass.
//
// Owns: turning a scheduler batch_plan into model batch_items, and sampling
// every entry that wants a token from the forward pass's logits rows
// (deterministic per (seed, output index): the same token alone, batched,
// chunked or after preemption).
// Must not touch: the forward pass itself, KV memory, scheduling.
// Thread-safety: pure functions.
#pragma once

#include <vector>

#include "backends/native/model.hpp"
#include "backends/scheduler/batch_plan.hpp"

namespace yard::backends::native {

std::vector<batch_item> batch_items(const batch_plan& plan);

// Fills r.sampled / r.logprobs (sized to the plan) from `logits`: one row of
// `vocab` floats per entry that asked for logits, in plan order.
void sample_plan(const batch_plan& plan, const float* logits, int vocab, execution_result& r);

}  // namespace yard::backends::native
