// transport/nats_connection.hpp — the process's one NATS connection.
//
// Owns: a natsConnection (nats.c) with reconnect, auth (user/password, token,
// credentials file, TLS) and subscriptions. natsStatus is converted to
// yard::error here, once, with context; nothing above this file sees nats.c.
// Must not touch: message schemas (bytes in, bytes out), actors.
// Thread-safety: every method is thread-safe. Handlers run on nats.c delivery
// threads and must not block for long.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.hpp"

struct __natsConnection;
struct __natsSubscription;

namespace yard::transport {

struct nats_options {
  std::vector<std::string> servers = {"nats://127.0.0.1:4222"};  // tried in order; a cluster lists all
  std::string name = "yard";            // client name shown by the server
  std::string user, password;           // user/password auth (default none)
  std::string token;                    // token auth (default none)
  std::string creds_file;               // NATS credentials file (JWT + nkey seed) (default none)
  bool tls = false;                     // require TLS (default off)
  std::string tls_ca_file, tls_cert_file, tls_key_file;  // PEM files (default none)
  int connect_timeout_ms = 2000;        // per attempt (default 2 s)
  int max_reconnect = -1;               // reconnect attempts after a loss, -1 = forever (default)
  int reconnect_wait_ms = 250;          // between attempts (default 250 ms)
  int ping_interval_ms = 2000;          // detects a dead server (default 2 s)
  // Prefix of this connection's reply inboxes (default "_INBOX"). A permissioned
  // bus gives each user its own (e.g. "_INBOX_frontend") so no one else can read
  // or write its replies.
  std::string inbox_prefix;
  bool send_asap = true;                // write each publish at once instead of waiting for the flusher (~1 ms a hop) (default on)
};

// Where a server URL's userinfo lies: url[begin, at) with url[at] == '@'
// ("nats://u:p@h" -> "u:p"); nullopt when it has none ('@' after the first
// '/' of the path does not count). The one parser for redact_url and
// cluster::strip_url_credentials.
struct userinfo_span {
  std::size_t begin = 0, at = 0;
};
std::optional<userinfo_span> find_userinfo(const std::string& url);

// "nats://user:secret@host:4222" -> "nats://user:***@host:4222" (also tokens:
// "nats://secret@host" -> "nats://***@host"); for every log line and argv.
std::string redact_url(const std::string& url);
std::string redact_urls(const std::vector<std::string>& urls);

// Parses "nats://a:4222,nats://b:4222" into nats_options::servers.
std::vector<std::string> split_servers(const std::string& urls);

struct nats_message {
  std::string subject;
  std::string reply;         // reply inbox, empty when none
  std::string data;          // body bytes
  std::string content_type;  // Content-Type header, empty when none
  // The server's "no responders" status (503): a request was published with
  // this reply subject and nobody subscribes to its subject right now.
  bool no_responders = false;
};

using message_handler = std::function<void(nats_message)>;

// Unsubscribed nats.c handles waiting to be destroyed (see nats_connection.cpp).
struct retired_subscriptions;

// An active subscription; unsubscribes when destroyed and waits (up to 5 s) for a
// handler that is running to return, so the handler is never called after the
// destructor returns — except when the subscription is destroyed from inside its
// own handler, which it then does not wait for.
class subscription {
 public:
  subscription() = default;
  ~subscription();
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;
  subscription(subscription&& other) noexcept;
  subscription& operator=(subscription&& other) noexcept;
  bool active() const { return sub_ != nullptr; }
  struct closure;  // the handler; freed by the last of this object's reset() and nats.c's on-complete call

 private:
  friend class nats_connection;
  subscription(__natsSubscription* sub, closure* c, std::shared_ptr<retired_subscriptions> retired)
      : sub_(sub), closure_(c), retired_(std::move(retired)) {}
  void reset();
  __natsSubscription* sub_ = nullptr;
  closure* closure_ = nullptr;
  std::shared_ptr<retired_subscriptions> retired_;
};

class nats_connection {
 public:
  // Connects to the first reachable server. Fails with errc::unavailable and
  // the servers tried when none answers; nothing is left open on failure.
  static result<std::unique_ptr<nats_connection>> connect(const nats_options& opts);
  ~nats_connection();

  // A content type other than msgpack (the bus default, sent bare) goes out as a
  // `Content-Type` header.
  status publish(const std::string& subject, std::string_view data, const std::string& reply = {},
                 std::string_view content_type = {});
  // `queue_group` non-empty: one member of the group gets each message.
  result<subscription> subscribe(const std::string& subject, message_handler handler,
                                 const std::string& queue_group = {});
  // One request, one reply (or errc::timeout / errc::unavailable when no one listens).
  result<nats_message> request(const std::string& subject, std::string_view data, int timeout_ms,
                               std::string_view content_type = {});
  status flush(int timeout_ms = 2000);

  std::string new_inbox() const;
  bool connected() const;
  std::string connected_url() const;
  // Counts of reconnects seen (for tests and /metrics).
  std::uint64_t reconnects() const;
  // Asynchronous errors the server reported (permission violations among them).
  std::uint64_t async_errors() const;
  std::uint64_t permission_violations() const;
  // nats.c's asynchronous error callback (through a trampoline); not for callers.
  static void on_async_error(__natsConnection*, __natsSubscription*, int status, void* state);

 private:
  // What nats.c's connection callbacks see. It outlives this object: nats.c
  // may run the disconnected callback of our own close() after the destructor
  // returned, so the closed callback (always the last one) frees it.
  struct callback_state;
  nats_connection() = default;
  static void on_disconnected(__natsConnection*, void* state);
  static void on_reconnected(__natsConnection*, void* state);
  static void on_closed(__natsConnection*, void* state);

  __natsConnection* nc_ = nullptr;
  callback_state* cb_ = nullptr;
  std::shared_ptr<retired_subscriptions> retired_;
  std::string inbox_prefix_ = "_INBOX";
};

}  // namespace yard::transport
