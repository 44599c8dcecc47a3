// messages/wire_enum.hpp — enums that travel as strings.
//
// Owns: the pattern by which a core enum (KV event kinds, finish reasons,
// worker roles) has one list of wire names: `wire_names(E{})` (found by ADL)
// returns them in the enum's order, and the codec (messages/codec.hpp) reads
// and writes the names, failing a decode with the allowed list on anything
// else. Strings stay at the wire and the CLI; the core compares enums.
// Must not touch: I/O. Thread-safety: constexpr data and pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace yard::msg {

// The wire name of `e` (names of E in enum order).
template <class E> constexpr std::string_view wire_name(E e) {
  return wire_names(E{})[static_cast<std::size_t>(e)];
}

// Parses a wire name; false when `s` names no value of E.
template <class E> constexpr bool wire_enum_from(std::string_view s, E& out) {
  const auto names = wire_names(E{});
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == s) {
      out = static_cast<E>(i);
      return true;
    }
  return false;
}

}  // namespace yard::msg
