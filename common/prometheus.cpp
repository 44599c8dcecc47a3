#include "common/prometheus.hpp"

#include <cmath>

#include <fmt/format.h>

namespace yard::prom {

namespace {

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

std::string help_text(std::string_view h) {
  std::string out;
  for (char c : h) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void write_labels(std::string& out, const labels& l, const std::pair<std::string, std::string>* extra = nullptr) {
  if (l.empty() && extra == nullptr) return;
  out += '{';
  bool first = true;
  auto one = [&](const std::string& k, const std::string& v) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    out += escape_label(v);
    out += '"';
  };
  for (const auto& [k, v] : l) one(k, v);
  if (extra) one(extra->first, extra->second);
  out += '}';
}

}  // namespace

std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void exposition::family(const std::string& name, std::string_view type, std::string_view help) {
  if (families_.count(name)) return;
  order_.push_back(name);
  families_[name] = fam{std::string(type), help_text(help), {}};
}

void exposition::sample(const std::string& family_name, std::string_view series, const labels& l, double value) {
  auto it = families_.find(family_name);
  if (it == families_.end()) {
    family(family_name, "untyped", family_name);
    it = families_.find(family_name);
  }
  auto& lines = it->second.lines;
  lines += series;
  write_labels(lines, l);
  lines += ' ';
  lines += number(value);
  lines += '\n';
}

void exposition::counter(const std::string& name, std::string_view help, const labels& l, double value) {
  family(name, "counter", help);
  sample(name, l, value);
}

void exposition::gauge(const std::string& name, std::string_view help, const labels& l, double value) {
  family(name, "gauge", help);
  sample(name, l, value);
}

std::string exposition::text() const {
  std::string out;
  for (const auto& name : order_) {
    const auto& f = families_.at(name);
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, f.type);
    out += f.lines;
  }
  out += raw_;
  return out;
}

void histogram::observe(double v) {
  std::lock_guard<std::mutex> lock(mu_);
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i]++;
  sum_ += v;
  ++n_;
}

std::uint64_t histogram::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return n_;
}

double histogram::sum() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sum_;
}

void histogram::render(exposition& out, const std::string& name, std::string_view help, const labels& l) const {
  out.family(name, "histogram", help);
  std::vector<std::uint64_t> counts;
  double sum = 0;
  std::uint64_t n = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    counts = counts_;
    sum = sum_;
    n = n_;
  }
  const std::string bucket = name + "_bucket";
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cum += counts[i];
    labels with = l;
    with.emplace_back("le", i < bounds_.size() ? number(bounds_[i]) : "+Inf");
    out.sample(name, bucket, with, static_cast<double>(cum));
  }
  out.sample(name, name + "_sum", l, sum);
  out.sample(name, name + "_count", l, static_cast<double>(n));
}

void labelled_counter::add(const std::vector<std::string>& values, double n) {
  std::lock_guard<std::mutex> lock(mu_);
  values_[values] += n;
}

double labelled_counter::get(const std::vector<std::string>& values) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = values_.find(values);
  return it == values_.end() ? 0.0 : it->second;
}

void labelled_counter::render(exposition& out, const std::string& name, std::string_view help, const labels& base,
                              const std::vector<std::vector<std::string>>& always) const {
  out.family(name, "counter", help);
  std::map<std::vector<std::string>, double> snapshot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot = values_;
  }
  for (const auto& key : always) snapshot.emplace(key, 0.0);
  for (const auto& [key, v] : snapshot) {
    labels l = base;
    for (std::size_t i = 0; i < names_.size() && i < key.size(); ++i) l.emplace_back(names_[i], key[i]);
    out.sample(name, l, v);
  }
}

std::vector<double> latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::vector<double> fast_latency_buckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
}

std::vector<double> count_buckets(double max) {
  std::vector<double> b{0};
  for (double v = 1; v <= max; v *= 2) b.push_back(v);
  return b;
}

}  // namespace yard::prom
