// backends/sampling_checks.cpp — see sampling_checks.hpp.
#include "backends/sampling_checks.hpp"

#include <cmath>
#include <string>

namespace yard::backends {

namespace {

std::string field(std::string_view prefix, const char* name) {
  return "field '" + std::string(prefix) + name + "'";
}

status in_range(std::string_view prefix, const char* name, double v, double lo, double hi, bool lo_open = false) {
  const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi;
  if (ok) return status::success();
  auto num = [](double x) {
    std::string s = std::to_string(x);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  };
  return make_error(errc::bad_request, field(prefix, name) + " must be in " + (lo_open ? "(" : "[") + num(lo) + ", " +
                                           num(hi) + "]");
}

}  // namespace

status check_sampling(const msg::sampling_params& s, std::uint32_t max_tokens, std::string_view p) {
  if (auto r = in_range(p, "temperature", s.temperature, 0, 2); !r) return r;
  if (auto r = in_range(p, "top_p", s.top_p, 0, 1, true); !r) return r;
  if (s.top_k < -1) return make_error(errc::bad_request, field(p, "top_k") + " must be -1, 0 (off) or positive");
  if (auto r = in_range(p, "presence_penalty", s.presence_penalty, -2, 2); !r) return r;
  if (auto r = in_range(p, "frequency_penalty", s.frequency_penalty, -2, 2); !r) return r;
  if (auto r = in_range(p, "repetition_penalty", s.repetition_penalty, 0, 2, true); !r) return r;
  if (s.top_logprobs > 20) return make_error(errc::bad_request, field(p, "top_logprobs") + " must be in [0, 20]");
  for (const auto& b : s.logit_bias)
    if (!std::isfinite(b.bias) || b.bias < -100 || b.bias > 100)
      return make_error(errc::bad_request, field(p, "logit_bias") + " values must be in [-100, 100] (token " +
                                               std::to_string(b.token) + ")");
  if (max_tokens > 0 && s.min_tokens > max_tokens)
    return make_error(errc::bad_request, field(p, "min_tokens") + " (" + std::to_string(s.min_tokens) +
                                             ") exceeds 'max_tokens' (" + std::to_string(max_tokens) + ")");
  return status::success();
}

}  // namespace yard::backends
