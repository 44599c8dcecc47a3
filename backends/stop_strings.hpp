// backends/stop_strings.hpp — stop strings over streamed output text.
//
// Owns: one sequence's stop strings and the tail of its output text that a
// stop string could still match. feed() takes each step's new text and says
// what may go to the client: text up to the earliest match (the stop string
// itself is never sent), and, while no stop matched, everything except a tail
// that may be the start of a stop string (held back until the next text
// decides it). Every engine (mock, native, the simulator's) goes through this
// one type, so stop strings behave alike everywhere.
// Must not touch: tokens, the scheduler (the caller ends the sequence).
// Thread-safety: a per-sequence value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace yard::backends {

class stop_strings {
 public:
  stop_strings() = default;
  explicit stop_strings(std::vector<std::string> stops);  // empty strings are ignored

  struct cut {
    std::string text;      // what may be sent now
    bool matched = false;  // a stop string matched: the sequence ends with `text`
  };
  // New output text. `last`: the sequence ends anyway, so nothing is held
  // back. `armed`: stop strings count (false before min_tokens or when
  // cancelled: the text passes through).
  cut feed(std::string_view more, bool last, bool armed = true);

  bool empty() const { return stops_.empty(); }

 private:
  std::vector<std::string> stops_;
  std::size_t longest_ = 0;
  std::string text_;         // output not yet sent, plus up to longest_ - 1 bytes before it
  std::size_t sent_ = 0;     // of text_, the bytes already sent
};

}  // namespace yard::backends
