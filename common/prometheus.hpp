// common/prometheus.hpp — Prometheus text exposition and the metric values behind it.
//
// Owns: the text format (https://prometheus.io/docs/instrumenting/exposition_formats/):
// families grouped under one HELP/TYPE pair whatever order samples arrive in
// (several workers of one process render into the same families), label
// escaping, and three thread-safe values — a fixed-bucket histogram, a counter
// keyed by label values, and a gauge keyed by label values.
// Must not touch: HTTP, NATS, actors (cluster/metrics_endpoint serves the text;
// each component owns its metrics struct and renders into an exposition).
// Thread-safety: exposition is a plain value (one renderer); histogram and
// labelled_counter are safe to update and render from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace yard::prom {

// Label pairs in the order they are written: {{"worker", "w1"}, {"role", "decode"}}.
using labels = std::vector<std::pair<std::string, std::string>>;

// `v` escaped as a label value (backslash, double quote, newline).
std::string escape_label(std::string_view v);

class exposition {
 public:
  // Declares a family (first declaration wins; later ones only add samples).
  // type: counter | gauge | histogram.
  void family(const std::string& name, std::string_view type, std::string_view help);
  // One sample of a declared family; `series` is the family name, or for a
  // histogram the family name plus _bucket/_sum/_count.
  void sample(const std::string& family_name, std::string_view series, const labels& l, double value);
  void sample(const std::string& family_name, const labels& l, double value) { sample(family_name, family_name, l, value); }
  // Shorthand: declare and write one sample.
  void counter(const std::string& name, std::string_view help, const labels& l, double value);
  void gauge(const std::string& name, std::string_view help, const labels& l, double value);
  // Text already in exposition format with its own families (appended as is).
  void raw(std::string text) { raw_ += std::move(text); }
  std::string text() const;

 private:
  struct fam {
    std::string type, help;
    std::string lines;
  };
  std::vector<std::string> order_;
  std::map<std::string, fam> families_;
  std::string raw_;
};

// A histogram with fixed upper bounds (base units: seconds, blocks, sequences).
class histogram {
 public:
  explicit histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  std::uint64_t count() const;
  double sum() const;
  // Writes the _bucket/_sum/_count series of `name` (declares the family).
  void render(exposition& out, const std::string& name, std::string_view help, const labels& l) const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;
  double sum_ = 0;
  std::uint64_t n_ = 0;
};

// Counters by label values, e.g. decisions by (policy, worker). Keys are the
// label values in the order of `names`.
class labelled_counter {
 public:
  explicit labelled_counter(std::vector<std::string> names) : names_(std::move(names)) {}
  void add(const std::vector<std::string>& values, double n = 1);
  double get(const std::vector<std::string>& values) const;
  // Writes one sample per key, with `base` labels first (declares the family).
  // `always` label values are written as 0 when never counted, so the series
  // exists from the start (rate() needs its first sample).
  void render(exposition& out, const std::string& name, std::string_view help, const labels& base,
              const std::vector<std::vector<std::string>>& always = {}) const;

 private:
  std::vector<std::string> names_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, double> values_;
};

// Default buckets.
std::vector<double> latency_buckets();        // 1 ms .. 60 s
std::vector<double> fast_latency_buckets();   // 50 µs .. 2.5 s (steps, transfers)
std::vector<double> count_buckets(double max);  // 0, 1, 2, 4, ... up to max

}  // namespace yard::prom
