// backends/chat/jinja/jinja_error.hpp — the failure the chat-template engine throws inside itself.
//
// Owns: template_error (an error code, a message and the template position it is about) and the one
// conversion to yard::error, whose message reads "chat template line 7: unsupported filter 'wordwrap' (column 12)".
// Must not touch: anything outside the engine; template_error never leaves it: jinja_template::compile and
// ::render catch it and return a yard::error instead, so callers only ever see error values.
// Thread-safety: plain values.
#pragma once

#include <exception>
#include <string>
#include <utility>

#include "common/status.hpp"

namespace yard::backends::chat::jinja {

// A source position, 1-based; line 0 means "not known yet" (filled in by the innermost node that catches it).
struct source_pos {
  int line = 0;
  int col = 0;
};

class template_error : public std::exception {
 public:
  template_error(errc code, std::string message, source_pos pos = {})
      : code_(code), message_(std::move(message)), pos_(pos) {}

  const char* what() const noexcept override { return message_.c_str(); }
  errc code() const { return code_; }
  const std::string& message() const { return message_; }
  source_pos pos() const { return pos_; }
  // Sets the position only when none is known, so the innermost construct that failed is the one named.
  void locate(source_pos pos) {
    if (pos_.line == 0) pos_ = pos;
  }

  yard::error to_error() const {
    std::string text = "chat template";
    if (pos_.line > 0) text += " line " + std::to_string(pos_.line);
    text += ": " + message_;
    if (pos_.line > 0 && pos_.col > 0) text += " (column " + std::to_string(pos_.col) + ")";
    return make_error(code_, std::move(text));
  }

 private:
  errc code_;
  std::string message_;
  source_pos pos_;
};

// A construct this engine does not implement (unknown tag, filter, test, function, method).
[[noreturn]] inline void fail_unsupported(std::string message, source_pos pos = {}) {
  throw template_error(errc::unsupported, std::move(message), pos);
}
// A syntax error, or a runtime failure (type error, raise_exception, bad argument).
[[noreturn]] inline void fail(std::string message, source_pos pos = {}) {
  throw template_error(errc::bad_request, std::move(message), pos);
}

}  // namespace yard::backends::chat::jinja
