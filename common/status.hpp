// common/status.hpp — the error value every module returns at its edges.
//
// Owns: yard::errc (the shared error codes), yard::error and yard::result<T>.
// Must not touch: I/O, logging, actors. Header-only, no global state.
// Thread-safety: plain values; safe to copy between threads.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace yard {

// Error codes that cross module edges. The numeric values travel on the wire
// (error_reply.code) and must never be renumbered.
enum class errc : int {
  ok = 0,
  bad_request = 400,        // malformed body, missing/invalid field
  unauthorized = 401,       // no or a wrong API key
  not_found = 404,          // unknown model, subject or endpoint
  timeout = 408,            // a peer or stream did not answer in time
  conflict = 409,           // duplicate id or out-of-order sequence
  payload_too_large = 413,  // body over the configured limit
  rate_limited = 429,       // a tenant's request or token budget is spent for now
  cancelled = 499,          // the client went away
  internal = 500,           // a bug or an unexpected state
  unavailable = 503,        // no worker, NATS down, peer dead
  io_error = 520,           // file or device I/O failed
  corrupt = 521,            // checksum or format mismatch
  unsupported = 522,        // feature or format this build cannot handle
  resource_exhausted = 529, // pool or disk full
};

std::string_view to_string(errc code);

struct error {
  errc code = errc::internal;
  std::string message;

  error() = default;
  error(errc c, std::string msg) : code(c), message(std::move(msg)) {}
  std::string describe() const { return std::string(to_string(code)) + ": " + message; }
};

// result<T>: a T or an error. result<void> is spelled `status`.
template <class T>
class result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  result(error err) : v_(std::in_place_index<1>, std::move(err)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  const error& err() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

class status {
 public:
  status() = default;
  status(error err) : err_(std::move(err)), failed_(true) {}
  static status success() { return {}; }
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const error& err() const { assert(failed_); return err_; }

 private:
  error err_;
  bool failed_ = false;
};

inline error make_error(errc c, std::string msg) { return error{c, std::move(msg)}; }

inline std::string_view to_string(errc code) {
  switch (code) {
    case errc::ok: return "ok";
    case errc::bad_request: return "bad_request";
    case errc::unauthorized: return "unauthorized";
    case errc::not_found: return "not_found";
    case errc::rate_limited: return "rate_limited";
    case errc::timeout: return "timeout";
    case errc::conflict: return "conflict";
    case errc::payload_too_large: return "payload_too_large";
    case errc::cancelled: return "cancelled";
    case errc::internal: return "internal";
    case errc::unavailable: return "unavailable";
    case errc::io_error: return "io_error";
    case errc::corrupt: return "corrupt";
    case errc::unsupported: return "unsupported";
    case errc::resource_exhausted: return "resource_exhausted";
  }
  return "unknown";
}

}  // namespace yard
