// common/log.hpp — component loggers over spdlog.
//
// Owns: the log format (text or JSON lines) and the level, both set once by
// main through configure_logging(). Every component asks for its own named
// logger (`component_logger("router")`) so each line carries the component.
// Must not touch: anything but spdlog's registry.
// Thread-safety: spdlog loggers are thread-safe; configure_logging() must be
// called before other threads log.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace yard {

struct log_options {
  std::string level = "info";  // trace|debug|info|warn|error|off (default info)
  bool json = false;           // one JSON object per line (default off)
};

void configure_logging(const log_options& opts);

// Returns the logger named `component`, creating it with the configured sink,
// format and level on first use.
std::shared_ptr<spdlog::logger> component_logger(const std::string& component);

}  // namespace yard
