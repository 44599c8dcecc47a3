#include "common/log.hpp"

#include <cstdio>
#include <mutex>
#include <string_view>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace yard {

namespace {

constexpr const char* text_pattern = "%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v";
constexpr const char* json_pattern =
    R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","component":"%n","pid":%P,"msg":"%*"})";

// %* : the message with JSON string escaping, so every line stays valid JSON.
class json_escaped_message final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      switch (c) {
        case '"': dest.append(std::string_view("\\\"")); break;
        case '\\': dest.append(std::string_view("\\\\")); break;
        case '\n': dest.append(std::string_view("\\n")); break;
        case '\r': dest.append(std::string_view("\\r")); break;
        case '\t': dest.append(std::string_view("\\t")); break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\u%04x", c);
            dest.append(std::string_view(buf));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<json_escaped_message>(); }
};

}  // namespace

void configure_logging(const log_options& opts) {
  spdlog::set_level(spdlog::level::from_str(opts.level));
  if (opts.json) {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<json_escaped_message>('*').set_pattern(json_pattern);
    spdlog::set_formatter(std::move(f));
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
