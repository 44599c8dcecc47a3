#include "common/log.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace yard {

namespace {

constexpr const char* text_pattern = "%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v";
constexpr const char* json_pattern =
    R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","component":"%n","pid":%P,"msg":"%v"})";

}  // namespace

void configure_logging(const log_options& opts) {
  spdlog::set_level(spdlog::level::from_str(opts.level));
  if (opts.json) {
    spdlog::set_pattern(json_pattern, spdlog::pattern_time_type::utc);
  } else {
    spdlog::set_pattern(text_pattern);
  }
}

std::shared_ptr<spdlog::logger> component_logger(const std::string& component) {
  static std::mutex mu;  // guards creation only; spdlog's registry is the owner
  std::lock_guard<std::mutex> lock(mu);
  if (auto existing = spdlog::get(component)) return existing;
  // Logs go to stderr so stdout stays for command output (bench lines, tables).
  auto logger = spdlog::stderr_color_mt(component);
  return logger;
}

}  // namespace yard
