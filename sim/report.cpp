// sim/report.cpp — see report.hpp.
#include "sim/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "sim/png_writer.hpp"

namespace yard::sim {

namespace {

std::string fmt(double v, int prec = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

}  // namespace

std::vector<std::string> csv_columns() {
  return {"policy",      "workers",     "rate_scale", "requests",   "completed",  "rejected",  "preempted",
          "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p90_ms", "itl_p99_ms", "e2e_p50_ms",
          "e2e_p90_ms",  "e2e_p99_ms",  "throughput_tok_s", "requests_per_s", "hit_rate", "ideal_hit_rate",
          "imbalance",   "makespan_s"};
}

std::string format_csv(const std::vector<sim_result>& rows) {
  std::string s;
  auto cols = csv_columns();
  for (std::size_t i = 0; i < cols.size(); ++i) s += (i ? "," : "") + cols[i];
  s += "\n";
  for (const auto& r : rows) {
    std::vector<std::string> v = {r.policy,
                                  std::to_string(r.workers),
                                  fmt(r.rate_scale, 4),
                                  std::to_string(r.requests),
                                  std::to_string(r.completed),
                                  std::to_string(r.rejected),
                                  std::to_string(r.preempted),
                                  fmt(r.ttft_ms.p50), fmt(r.ttft_ms.p90), fmt(r.ttft_ms.p99),
                                  fmt(r.itl_ms.p50), fmt(r.itl_ms.p90), fmt(r.itl_ms.p99),
                                  fmt(r.e2e_ms.p50), fmt(r.e2e_ms.p90), fmt(r.e2e_ms.p99),
                                  fmt(r.throughput_tok_s, 1), fmt(r.requests_per_s, 4),
                                  fmt(r.hit_rate, 4), fmt(r.ideal_hit_rate, 4), fmt(r.imbalance, 4),
                                  fmt(r.makespan_ms / 1000.0, 3)};
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
    s += "\n";
  }
  return s;
}

std::string format_table(const std::vector<sim_result>& rows) {
  char buf[512];
  std::string s;
  std::snprintf(buf, sizeof buf, "%-13s %8s %9s %9s %9s %7s %7s %9s %9s %6s %6s %6s %5s %5s\n", "policy", "requests",
                "ttft_p50", "ttft_p90", "ttft_p99", "itl_p50", "itl_p99", "e2e_p90", "tok/s", "hit", "ideal", "imbal",
                "rej", "pre");
  s += buf;
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, "%-13s %8llu %9.1f %9.1f %9.1f %7.2f %7.2f %9.1f %9.0f %6.3f %6.3f %6.2f %5llu %5llu\n",
                  r.policy.c_str(), (unsigned long long)r.requests, r.ttft_ms.p50, r.ttft_ms.p90, r.ttft_ms.p99,
                  r.itl_ms.p50, r.itl_ms.p99, r.e2e_ms.p90, r.throughput_tok_s, r.hit_rate, r.ideal_hit_rate,
                  r.imbalance, (unsigned long long)r.rejected, (unsigned long long)r.preempted);
    s += buf;
  }
  s += "(times in ms; hit = prefix-cache hit rate of prompt tokens, ideal = one infinite shared cache; imbal = max/mean worker busy time)\n";
  return s;
}

std::string format_tier_table(const std::vector<sim_result>& rows) {
  char buf[512];
  std::string s;
  std::snprintf(buf, sizeof buf, "%-13s %5s %9s %9s %9s %6s %6s %6s %6s\n", "policy", "tiers", "ttft_p50", "ttft_p90",
                "ttft_p99", "hit", "g1", "g2", "g3");
  s += buf;
  auto frac = [](std::uint64_t x, std::uint64_t of) { return of ? double(x) / double(of) : 0.0; };
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, "%-13s %5s %9.1f %9.1f %9.1f %6.3f %6.3f %6.3f %6.3f\n", r.policy.c_str(),
                  r.tiers ? "on" : "off", r.ttft_ms.p50, r.ttft_ms.p90, r.ttft_ms.p99, r.hit_rate,
                  frac(r.g1_hit_tokens, r.prompt_tokens), frac(r.g2_hit_tokens, r.prompt_tokens),
                  frac(r.g3_hit_tokens, r.prompt_tokens));
    s += buf;
  }
  s += "(times in ms; g1/g2/g3 = prompt tokens served from the engine's cache / onboarded from host / from disk)\n";
  for (const auto& off : rows) {
    if (off.tiers) continue;
    for (const auto& on : rows) {
      if (!on.tiers || on.policy != off.policy + "+tiers" || on.workers != off.workers || on.rate_scale != off.rate_scale) continue;
      auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
      std::snprintf(buf, sizeof buf,
                    "tiers[%s]: ttft_p50_off=%.1f ttft_p50_on=%.1f ttft_p50_speedup=%.2f ttft_p90_off=%.1f "
                    "ttft_p90_on=%.1f ttft_p90_speedup=%.2f hit_off=%.3f hit_on=%.3f g1=%.3f g2=%.3f g3=%.3f\n",
                    off.policy.c_str(), off.ttft_ms.p50, on.ttft_ms.p50, ratio(off.ttft_ms.p50, on.ttft_ms.p50),
                    off.ttft_ms.p90, on.ttft_ms.p90, ratio(off.ttft_ms.p90, on.ttft_ms.p90), off.hit_rate, on.hit_rate,
                    frac(on.g1_hit_tokens, on.prompt_tokens), frac(on.g2_hit_tokens, on.prompt_tokens),
                    frac(on.g3_hit_tokens, on.prompt_tokens));
      s += buf;
    }
  }
  return s;
}

std::string format_hint_table(const std::vector<sim_result>& rows) {
  char buf[512];
  std::string s;
  std::snprintf(buf, sizeof buf, "%-20s %11s %9s %9s %9s %9s\n", "policy", "interactive", "i_p50", "i_p90", "b_p50",
                "b_p90");
  s += buf;
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, "%-20s %11llu %9.1f %9.1f %9.1f %9.1f\n", r.policy.c_str(),
                  (unsigned long long)r.interactive_requests, r.ttft_interactive_ms.p50, r.ttft_interactive_ms.p90,
                  r.ttft_batch_ms.p50, r.ttft_batch_ms.p90);
    s += buf;
  }
  s += "(TTFT ms of interactive (i_) and batch (b_) requests)\n";
  for (const auto& off : rows) {
    const auto cut = off.policy.rfind("-hints");
    if (cut == std::string::npos || cut + 6 != off.policy.size()) continue;
    for (const auto& on : rows) {
      if (on.policy != off.policy.substr(0, cut) || on.workers != off.workers || on.rate_scale != off.rate_scale) continue;
      std::snprintf(buf, sizeof buf,
                    "hints[%s]: interactive_ttft_p90_off=%.1f interactive_ttft_p90_on=%.1f interactive_p90_ratio=%.3f "
                    "batch_ttft_p90_off=%.1f batch_ttft_p90_on=%.1f ttft_p90_off=%.1f ttft_p90_on=%.1f\n",
                    on.policy.c_str(), off.ttft_interactive_ms.p90, on.ttft_interactive_ms.p90,
                    off.ttft_interactive_ms.p90 > 0 ? on.ttft_interactive_ms.p90 / off.ttft_interactive_ms.p90 : 0.0,
                    off.ttft_batch_ms.p90, on.ttft_batch_ms.p90, off.ttft_ms.p90, on.ttft_ms.p90);
      s += buf;
    }
  }
  return s;
}

status write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  if (!f) return make_error(errc::io_error, "cannot write '" + path + "'");
  f << text;
  if (!f) return make_error(errc::io_error, "short write to '" + path + "'");
  return status::success();
}

status write_plot(const std::string& path, const std::vector<sim_result>& rows, const std::string& title) {
  const int W = 1200, H = 520, top = 50, bottom = 450, l1 = 70, r1 = 560, l2 = 680, r2 = 1170;
  canvas c(W, H);
  const rgb black{0, 0, 0}, grey{215, 215, 215};
  const rgb palette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};
  c.text(l1, 12, title, black, 2);
  // Panel 1: TTFT CDF on a log10 x axis.
  double lo = 1e9, hi = 0;
  for (const auto& r : rows)
    if (!r.ttft_sorted_ms.empty()) {
      lo = std::min(lo, std::max(1.0, r.ttft_sorted_ms.front()));
      hi = std::max(hi, r.ttft_sorted_ms.back());
    }
  if (hi <= lo) { lo = 1; hi = 10; }
  double llo = std::floor(std::log10(lo)), lhi = std::ceil(std::log10(hi));
  if (lhi <= llo) lhi = llo + 1;
  auto xmap = [&](double v) { return l1 + (std::log10(std::max(v, 1e-9)) - llo) / (lhi - llo) * (r1 - l1); };
  auto ymap = [&](double f) { return bottom - f * (bottom - top); };
  for (double d = llo; d <= lhi; d += 1) {
    double x = l1 + (d - llo) / (lhi - llo) * (r1 - l1);
    c.line(x, top, x, bottom, grey);
    c.text(static_cast<int>(x) - 12, bottom + 8, "1E" + std::to_string(static_cast<int>(d)), black);
  }
  for (int k = 0; k <= 4; ++k) {
    c.line(l1, ymap(k / 4.0), r1, ymap(k / 4.0), grey);
    c.text(l1 - 36, static_cast<int>(ymap(k / 4.0)) - 3, fmt(k / 4.0, 2), black);
  }
  c.rect(l1, top, r1, bottom, black);
  c.text(l1 + 120, bottom + 24, "TTFT MS (LOG) - CDF PER POLICY", black);
  // Panel 2: hit rate over time.
  double tmax = 0;
  for (const auto& r : rows)
    for (auto& p : r.hit_rate_series) tmax = std::max(tmax, p.first);
  if (tmax <= 0) tmax = 1;
  auto x2 = [&](double t) { return l2 + t / tmax * (r2 - l2); };
  for (int k = 0; k <= 4; ++k) {
    c.line(l2, ymap(k / 4.0), r2, ymap(k / 4.0), grey);
    c.text(l2 - 36, static_cast<int>(ymap(k / 4.0)) - 3, fmt(k / 4.0, 2), black);
    c.text(static_cast<int>(x2(tmax * k / 4.0)) - 10, bottom + 8, fmt(tmax * k / 4.0, 0), black);
  }
  c.rect(l2, top, r2, bottom, black);
  c.text(l2 + 120, bottom + 24, "ARRIVAL TIME S - PREFIX HIT RATE", black);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    rgb col = palette[i % 8];
    const auto& v = r.ttft_sorted_ms;
    double px = -1, py = -1;
    std::size_t stride = std::max<std::size_t>(1, v.size() / 2000);
    for (std::size_t k = 0; k < v.size(); k += stride) {
      double x = xmap(std::max(v[k], std::pow(10.0, llo))), y = ymap(double(k + 1) / double(v.size()));
      if (px >= 0) c.line(px, py, x, y, col, 2);
      px = x;
      py = y;
    }
    px = -1;
    for (auto& p : r.hit_rate_series) {
      double x = x2(p.first), y = ymap(p.second);
      if (px >= 0) c.line(px, py, x, y, col, 2);
      px = x;
      py = y;
    }
    int ly = H - 24 + 0;
    int lx = 20 + static_cast<int>(i) * 190;
    c.fill(lx, ly, lx + 14, ly + 8, col);
    c.text(lx + 20, ly, r.policy, black);
  }
  return c.save_png(path);
}

status write_sweep_plot(const std::string& path, const std::vector<sim_result>& rows, std::size_t per_point,
                        const std::vector<double>& xs, const std::string& xlabel, const std::string& title) {
  if (per_point == 0 || xs.empty() || rows.size() != per_point * xs.size())
    return make_error(errc::bad_request, "sweep plot: rows do not match the sweep grid");
  const int W = 900, H = 560, top = 50, bottom = 460, left = 90, right = 860;
  canvas c(W, H);
  const rgb black{0, 0, 0}, grey{215, 215, 215};
  const rgb palette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};
  c.text(left, 12, title, black, 2);
  double lo = 1e18, hi = 0;
  for (const auto& r : rows) {
    lo = std::min(lo, std::max(1.0, r.ttft_ms.p90));
    hi = std::max(hi, std::max(1.0, r.ttft_ms.p90));
  }
  double llo = std::floor(std::log10(lo)), lhi = std::ceil(std::log10(hi));
  if (lhi <= llo) lhi = llo + 1;
  auto ymap = [&](double v) { return bottom - (std::log10(std::max(v, 1.0)) - llo) / (lhi - llo) * (bottom - top); };
  auto xmap = [&](std::size_t k) { return xs.size() == 1 ? (left + right) / 2.0 : left + double(k) / double(xs.size() - 1) * (right - left); };
  for (double d = llo; d <= lhi; d += 1) {
    double y = ymap(std::pow(10.0, d));
    c.line(left, y, right, y, grey);
    c.text(left - 40, static_cast<int>(y) - 3, "1E" + std::to_string(static_cast<int>(d)), black);
  }
  for (std::size_t k = 0; k < xs.size(); ++k) {
    c.line(xmap(k), top, xmap(k), bottom, grey);
    c.text(static_cast<int>(xmap(k)) - 10, bottom + 8, fmt(xs[k], xs[k] == std::floor(xs[k]) ? 0 : 2), black);
  }
  c.rect(left, top, right, bottom, black);
  c.text(left + 200, bottom + 24, xlabel + " - TTFT P90 MS (LOG)", black);
  for (std::size_t p = 0; p < per_point; ++p) {
    rgb col = palette[p % 8];
    for (std::size_t k = 0; k + 1 < xs.size(); ++k)
      c.line(xmap(k), ymap(rows[k * per_point + p].ttft_ms.p90), xmap(k + 1), ymap(rows[(k + 1) * per_point + p].ttft_ms.p90), col, 2);
    for (std::size_t k = 0; k < xs.size(); ++k) {
      int x = static_cast<int>(xmap(k)), y = static_cast<int>(ymap(rows[k * per_point + p].ttft_ms.p90));
      c.fill(x - 3, y - 3, x + 3, y + 3, col);
    }
    int lx = 20 + static_cast<int>(p) * 140, ly = H - 24;
    c.fill(lx, ly, lx + 14, ly + 8, col);
    c.text(lx + 20, ly, rows[p].policy, black);
  }
  return c.save_png(path);
}

}  // namespace yard::sim
