// actors/worker_faults.hpp — the test seam for faults a prefill worker injects.
//
// Owns: the prefill_faults interface and the three faults `yard worker
// --fault NAME` can ask for (drop-release, corrupt-block, exit-after-reply),
// used by the disaggregation chaos tests. Production workers carry a null
// pointer: the request path checks it once and runs no fault code, and no
// request or run struct carries a fault flag (the seam is handed to the
// prefill_server and the KV transfer agent at start).
// Must not touch: anything but the three hooks below.
// Thread-safety: immutable after creation.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include "common/status.hpp"

namespace yard::actors {

class prefill_faults {
 public:
  virtual ~prefill_faults() = default;
  // kv_release messages are ignored (blocks stay until their lease expires).
  virtual bool drop_release() const { return false; }
  // Called by the KV transfer agent with each staged lease's first block, after
  // its checksum was taken (corrupt-block flips a byte: the pull's checksum must
  // catch it). Returns true when it changed the bytes.
  virtual bool tamper_staged(std::span<std::byte> /*block*/) const { return false; }
  // Called right after a remote prefill reply went out (e.g. to kill the process).
  virtual void after_reply() const {}
};

// The fault named `name` ("" = none: a null pointer). Unknown names fail.
result<std::shared_ptr<const prefill_faults>> make_prefill_faults(std::string_view name);

}  // namespace yard::actors
