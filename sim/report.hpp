// sim/report.hpp — turns simulation results into a table, a CSV and a PNG plot.
//
// Owns: the output formats of `yard sim`. The CSV holds only simulated
// quantities (no wall-clock times), printed with fixed precision, so the same
// seed gives a byte-identical file.
// Must not touch: simulation state.
// Thread-safety: pure functions (write_* touch only the named file).
#pragma once

#include <string>
#include <vector>

#include "common/status.hpp"
#include "sim/simulator.hpp"

namespace yard::sim {

// Column names of the CSV, in order (first: policy, requests, ttft_p50_ms, ...).
std::vector<std::string> csv_columns();
std::string format_csv(const std::vector<sim_result>& rows);
std::string format_table(const std::vector<sim_result>& rows);
// The KV-tier view of rows run with and without tiers: TTFT and the G1/G2/G3
// hit mix (fractions of prompt tokens), then per policy with both runs one line
// `tiers[POLICY]: ttft_p50_off=.. ttft_p50_on=.. ttft_p50_speedup=.. ...`.
std::string format_tier_table(const std::vector<sim_result>& rows);
// TTFT per latency class, and for each policy run with hints off ("P-hints")
// and on ("P") one line: hints[P]: interactive_ttft_p90_off=... _on=... ratio=...
std::string format_hint_table(const std::vector<sim_result>& rows);
status write_text(const std::string& path, const std::string& text);
// Two panels: CDF of TTFT per policy (log-scaled x) and prefix hit rate over time.
status write_plot(const std::string& path, const std::vector<sim_result>& rows, const std::string& title);
// Sweep plot: TTFT p90 (log y) per policy against the sweep points. `rows` is
// point-major: rows[k * per_point + p] is policy p at point k.
status write_sweep_plot(const std::string& path, const std::vector<sim_result>& rows, std::size_t per_point,
                        const std::vector<double>& xs, const std::string& xlabel, const std::string& title);

}  // namespace yard::sim
