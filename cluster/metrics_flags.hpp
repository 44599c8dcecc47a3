// cluster/metrics_flags.hpp — the --metrics-port / --metrics-host flags every process takes.
//
// Owns: the two flags and starting the endpoint they ask for. Components
// default to off (port 0); `yard up` defaults to on (see its flag text).
// Must not touch: the metrics themselves.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cluster/metrics_endpoint.hpp"

namespace yard::cluster {

// `yard up` serves its metrics here unless told otherwise.
inline constexpr int default_up_metrics_port = 9401;

struct metrics_flags {
  int port = 0;                     // 0 = no endpoint
  std::string host = "0.0.0.0";     // scraped from other hosts by default
};

void add_metrics_flags(CLI::App& app, metrics_flags& f, int default_port = 0, const std::string& default_host = "0.0.0.0");
// True when --metrics-port was given on the command line (a busy default port only warns).
bool metrics_port_given(const CLI::App& app);
// Starts the endpoint when f.port > 0 (null otherwise). Errors name the address.
result<std::unique_ptr<metrics_endpoint>> serve_metrics(const metrics_flags& f,
                                                        std::shared_ptr<const metrics_registry> registry);

}  // namespace yard::cluster
