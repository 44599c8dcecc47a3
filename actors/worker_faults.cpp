// actors/worker_faults.cpp — see worker_faults.hpp.
#include "actors/worker_faults.hpp"

#include <cstdlib>
#include <string>

#include "common/log.hpp"

namespace yard::actors {

namespace {

struct drop_release_fault final : prefill_faults {
  bool drop_release() const override { return true; }
};

struct corrupt_block_fault final : prefill_faults {
  bool tamper_staged(std::span<std::byte> block) const override {
    if (block.empty()) return false;
    block[block.size() / 2] ^= std::byte{0x5a};
    return true;
  }
};

struct exit_after_reply_fault final : prefill_faults {
  void after_reply() const override {
    component_logger("worker")->warn("fault injection: exiting right after a remote prefill reply");
    std::_Exit(3);
  }
};

}  // namespace

result<std::shared_ptr<const prefill_faults>> make_prefill_faults(std::string_view name) {
  if (name.empty()) return std::shared_ptr<const prefill_faults>();
  if (name == "drop-release") return std::shared_ptr<const prefill_faults>(std::make_shared<drop_release_fault>());
  if (name == "corrupt-block") return std::shared_ptr<const prefill_faults>(std::make_shared<corrupt_block_fault>());
  if (name == "exit-after-reply") return std::shared_ptr<const prefill_faults>(std::make_shared<exit_after_reply_fault>());
  return make_error(errc::bad_request, "unknown fault '" + std::string(name) +
                                           "' (expected drop-release, corrupt-block or exit-after-reply)");
}

}  // namespace yard::actors
