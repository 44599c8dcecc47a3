// backends/chat/jinja/jinja_filters.hpp — how the filter table is split between its two source files.
//
// Owns: filter_entry and the accessor for the sequence filters (jinja_seq_filters.cpp: join, map, select,
// sort, ...), which find_filter (jinja_filters.cpp, with the text and number filters) searches after its own.
// Must not touch: anything but the filter tables.
// Thread-safety: immutable tables.
#pragma once

#include <span>
#include <string_view>

#include "backends/chat/jinja/jinja_call.hpp"

namespace yard::backends::chat::jinja {

struct filter_entry {
  std::string_view name;
  filter_fn fn;
};

std::span<const filter_entry> sequence_filters();

}  // namespace yard::backends::chat::jinja
