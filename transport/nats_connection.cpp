#include "transport/nats_connection.hpp"

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "common/log.hpp"

namespace yard::transport {

namespace {

error nats_error(natsStatus s, const std::string& context) {
  errc code = errc::internal;
  switch (s) {
    case NATS_TIMEOUT: code = errc::timeout; break;
    case NATS_NO_RESPONDERS: code = errc::unavailable; break;
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_NOT_YET_CONNECTED: code = errc::unavailable; break;
    case NATS_MAX_PAYLOAD: code = errc::payload_too_large; break;
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_ARG: code = errc::bad_request; break;
    default: break;
  }
  return error{code, context + ": " + natsStatus_GetText(s)};
}

auto& log() {
  static auto l = component_logger("nats");
  return l;
}

}  // namespace

std::optional<userinfo_span> find_userinfo(const std::string& url) {
  auto scheme = url.find("://");
  std::size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  auto at = url.find('@', start);
  if (at == std::string::npos) return std::nullopt;
  auto slash = url.find('/', start);
  if (slash != std::string::npos && slash < at) return std::nullopt;  // '@' in the path, not credentials
  return userinfo_span{start, at};
}

std::string redact_url(const std::string& url) {
  auto info = find_userinfo(url);
  if (!info) return url;
  auto colon = url.find(':', info->begin);
  if (colon != std::string::npos && colon < info->at) return url.substr(0, colon + 1) + "***" + url.substr(info->at);
  return url.substr(0, info->begin) + "***" + url.substr(info->at);
}

std::string redact_urls(const std::vector<std::string>& urls) {
  std::string all;
  for (const auto& u : urls) all += (all.empty() ? "" : ",") + redact_url(u);
  return all;
}

std::vector<std::string> split_servers(const std::string& urls) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= urls.size()) {
    auto end = urls.find(',', start);
    if (end == std::string::npos) end = urls.size();
    if (end > start) out.push_back(urls.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// ---- retired subscriptions -------------------------------------------------

// nats.c 3.4.1 (Debian 12) looks a subscription up by sid under the connection's
// lock, lets go of the lock, and only then locks the subscription
// (natsConn_processMsg; later releases retain it first). Destroying a handle right
// after unsubscribing can free it under the reader thread. So an unsubscribed
// handle waits here for `grace` (the window is a few instructions wide) before
// natsSubscription_Destroy, and whatever is left goes once the connection is
// closed, when nats.c has joined its reader thread.
struct retired_subscriptions {
  using clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds grace{2};

  void retire(natsSubscription* s) {
    std::vector<natsSubscription*> expired;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (closed) {
        expired.push_back(s);
      } else {
        auto now = clock::now();
        while (!waiting.empty() && now - waiting.front().second >= grace) {
          expired.push_back(waiting.front().first);
          waiting.pop_front();
        }
        waiting.emplace_back(s, now);
      }
    }
    for (auto* e : expired) natsSubscription_Destroy(e);
  }
  // The connection is closed: no reader thread is left.
  void close() {
    std::deque<std::pair<natsSubscription*, clock::time_point>> all;
    {
      std::lock_guard<std::mutex> lock(mu);
      closed = true;
      all.swap(waiting);
    }
    for (auto& [e, at] : all) natsSubscription_Destroy(e);
  }

  std::mutex mu;
  std::deque<std::pair<natsSubscription*, clock::time_point>> waiting;
  bool closed = false;
};

// ---- subscription ----------------------------------------------------------

struct subscription::closure {
  message_handler handler;
  // Messages already copied out, freed in batches: nats.c frees each natsMsg through
  // its collector thread, and wakes that thread for every free it finds idle. Only
  // the subscription's own delivery thread touches these (nats.c delivers a
  // subscription's messages one at a time, then calls on_complete).
  std::vector<natsMsg*> spent;
  std::size_t spent_bytes = 0;
  static constexpr std::size_t max_spent = 32, max_spent_bytes = 256 << 10;

  void free_spent() {
    for (auto* m : spent) natsMsg_Destroy(m);
    spent.clear();
    spent_bytes = 0;
  }
  ~closure() { free_spent(); }

  // Unsubscribing does not stop a handler already running: the subscription's
  // owner waits for nats.c's on-complete call (its delivery thread has returned
  // for good), unless it unsubscribes from inside the handler. Whichever of the
  // two comes last frees the closure.
  std::mutex mu;
  std::condition_variable cv;
  bool complete = false;    // nats.c's delivery thread is done
  bool owner_gone = false;  // the subscription stopped waiting
  std::atomic<std::thread::id> delivery_thread{};
};

namespace {

void deliver(natsConnection*, natsSubscription*, natsMsg* m, void* c) {
  auto* cl = static_cast<subscription::closure*>(c);
  cl->delivery_thread.store(std::this_thread::get_id(), std::memory_order_relaxed);
  nats_message msg;
  msg.subject = natsMsg_GetSubject(m);
  if (const char* r = natsMsg_GetReply(m)) msg.reply = r;
  msg.data.assign(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  const char* ct = nullptr;
  if (natsMsgHeader_Get(m, "Content-Type", &ct) == NATS_OK && ct) msg.content_type = ct;
  msg.no_responders = natsMsg_IsNoResponders(m);
  cl->spent.push_back(m);
  cl->spent_bytes += msg.data.size();
  if (cl->spent.size() >= subscription::closure::max_spent || cl->spent_bytes >= subscription::closure::max_spent_bytes)
    cl->free_spent();
  cl->handler(std::move(msg));
}

void on_complete(void* c) {
  auto* cl = static_cast<subscription::closure*>(c);
  std::unique_lock<std::mutex> lock(cl->mu);
  cl->complete = true;
  if (cl->owner_gone) {
    lock.unlock();
    delete cl;
    return;
  }
  cl->cv.notify_all();  // the owner frees it once this returns and unlocks
}

// How long unsubscribing waits for a running handler to return before it lets go.
constexpr auto handler_wait = std::chrono::seconds(5);

void async_error_trampoline(natsConnection* nc, natsSubscription* sub, natsStatus s, void* p) {
  nats_connection::on_async_error(nc, sub, static_cast<int>(s), p);
}

}  // namespace

subscription::~subscription() { reset(); }

subscription::subscription(subscription&& other) noexcept
    : sub_(other.sub_), closure_(other.closure_), retired_(std::move(other.retired_)) {
  other.sub_ = nullptr;
  other.closure_ = nullptr;
}

subscription& subscription::operator=(subscription&& other) noexcept {
  if (this != &other) {
    reset();
    sub_ = other.sub_;
    closure_ = other.closure_;
    retired_ = std::move(other.retired_);
    other.sub_ = nullptr;
    other.closure_ = nullptr;
  }
  return *this;
}

void subscription::reset() {
  if (sub_ == nullptr) return;
  // Only nats_connection::subscribe makes a live subscription, and it hands over its retired list too.
  natsSubscription_Unsubscribe(sub_);
  retired_->retire(sub_);
  sub_ = nullptr;
  retired_.reset();
  auto* cl = std::exchange(closure_, nullptr);
  bool from_handler = cl->delivery_thread.load(std::memory_order_relaxed) == std::this_thread::get_id();
  std::unique_lock<std::mutex> lock(cl->mu);
  if (!from_handler && !cl->cv.wait_for(lock, handler_wait, [cl] { return cl->complete; }))
    log()->warn("a subscription handler still runs {} s after unsubscribing; not waiting any longer",
                std::chrono::duration_cast<std::chrono::seconds>(handler_wait).count());
  if (cl->complete) {
    lock.unlock();
    delete cl;
  } else {
    cl->owner_gone = true;  // on_complete frees it
  }
}

// ---- connection ------------------------------------------------------------

struct nats_connection::callback_state {
  std::string name;
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<bool> closing{false};  // silences the disconnect callback on our own close
  std::atomic<std::uint64_t> async_errors{0};
  std::atomic<std::uint64_t> permission_violations{0};
};

result<std::unique_ptr<nats_connection>> nats_connection::connect(const nats_options& o) {
  std::unique_ptr<nats_connection> self(new nats_connection());
  auto cb = std::make_unique<callback_state>();
  cb->name = o.name;
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s != NATS_OK) return nats_error(s, "creating NATS options");
  std::vector<const char*> servers;
  for (const auto& srv : o.servers) servers.push_back(srv.c_str());
  std::string all = redact_urls(o.servers);
  if (s == NATS_OK && !servers.empty()) s = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
  if (s == NATS_OK) s = natsOptions_SetName(opts, o.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, o.connect_timeout_ms);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, o.max_reconnect);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, o.reconnect_wait_ms);
  if (s == NATS_OK) s = natsOptions_SetPingInterval(opts, o.ping_interval_ms);
  if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts, 2);
  if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(opts, 8 * 1024 * 1024);
  if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, o.send_asap);
  if (s == NATS_OK && !o.user.empty()) s = natsOptions_SetUserInfo(opts, o.user.c_str(), o.password.c_str());
  if (s == NATS_OK && !o.token.empty()) s = natsOptions_SetToken(opts, o.token.c_str());
  if (s == NATS_OK && !o.creds_file.empty()) s = natsOptions_SetUserCredentialsFromFiles(opts, o.creds_file.c_str(), nullptr);
  if (s == NATS_OK && o.tls) s = natsOptions_SetSecure(opts, true);
  if (s == NATS_OK && !o.tls_ca_file.empty()) s = natsOptions_LoadCATrustedCertificates(opts, o.tls_ca_file.c_str());
  if (s == NATS_OK && !o.tls_cert_file.empty())
    s = natsOptions_LoadCertificatesChain(opts, o.tls_cert_file.c_str(), o.tls_key_file.c_str());
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, &nats_connection::on_disconnected, cb.get());
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, &nats_connection::on_reconnected, cb.get());
  if (s == NATS_OK) s = natsOptions_SetClosedCB(opts, &nats_connection::on_closed, cb.get());
  if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, &async_error_trampoline, cb.get());
  if (s == NATS_OK && !o.inbox_prefix.empty()) s = natsOptions_SetCustomInboxPrefix(opts, o.inbox_prefix.c_str());
  if (s != NATS_OK) {
    natsOptions_Destroy(opts);
    return nats_error(s, "configuring NATS options");
  }
  s = natsConnection_Connect(&self->nc_, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    self->nc_ = nullptr;
    return nats_error(s == NATS_TIMEOUT ? NATS_NO_SERVER : s, "cannot connect to NATS at " + all);
  }
  self->cb_ = cb.release();  // from here on the closed callback frees it
  self->retired_ = std::make_shared<retired_subscriptions>();
  if (!o.inbox_prefix.empty()) self->inbox_prefix_ = o.inbox_prefix;
  log()->info("{} connected to {}", o.name, redact_url(self->connected_url()));
  return self;
}

nats_connection::~nats_connection() {
  if (nc_ != nullptr) {
    cb_->closing = true;
    natsConnection_FlushTimeout(nc_, 500);
    natsConnection_Close(nc_);  // joins the reader thread
    retired_->close();
    natsConnection_Destroy(nc_);
  }
}

std::uint64_t nats_connection::reconnects() const { return cb_ ? cb_->reconnects.load() : 0; }
std::uint64_t nats_connection::async_errors() const { return cb_ ? cb_->async_errors.load() : 0; }
std::uint64_t nats_connection::permission_violations() const { return cb_ ? cb_->permission_violations.load() : 0; }

void nats_connection::on_async_error(natsConnection* nc, natsSubscription*, int status, void* p) {
  auto* cb = static_cast<callback_state*>(p);
  cb->async_errors++;
  const char* text = nullptr;
  natsConnection_GetLastError(nc, &text);
  std::string what = text ? text : natsStatus_GetText(static_cast<natsStatus>(status));
  if (static_cast<natsStatus>(status) == NATS_NOT_PERMITTED || what.find("ermission") != std::string::npos) {
    cb->permission_violations++;
    log()->warn("{}: refused by the NATS server: {}", cb->name, what);
  } else {
    log()->warn("{}: NATS error: {}", cb->name, what);
  }
}

void nats_connection::on_disconnected(natsConnection*, void* p) {
  auto* cb = static_cast<callback_state*>(p);
  if (cb->closing) return;
  log()->warn("{} lost its NATS connection; reconnecting", cb->name);
}

void nats_connection::on_reconnected(natsConnection* nc, void* p) {
  auto* cb = static_cast<callback_state*>(p);
  cb->reconnects++;
  char url[256] = {0};
  natsConnection_GetConnectedUrl(nc, url, sizeof(url));
  log()->info("{} reconnected to {}", cb->name, redact_url(url));
}

void nats_connection::on_closed(natsConnection*, void* p) { delete static_cast<callback_state*>(p); }

status nats_connection::publish(const std::string& subject, std::string_view data, const std::string& reply,
                                std::string_view content_type) {
  if (content_type.empty() || content_type == "application/msgpack") {
    // msgpack is the default body format: no header to carry, so no natsMsg either. (Each
    // natsMsg is freed through nats.c's collector thread: one more thread woken per publish.)
    natsStatus s = reply.empty() ? natsConnection_Publish(nc_, subject.c_str(), data.data(), static_cast<int>(data.size()))
                                 : natsConnection_PublishRequest(nc_, subject.c_str(), reply.c_str(), data.data(),
                                                                 static_cast<int>(data.size()));
    if (s != NATS_OK) return nats_error(s, "publish on '" + subject + "'");
    return status::success();
  }
  natsMsg* m = nullptr;
  natsStatus s = natsMsg_Create(&m, subject.c_str(), reply.empty() ? nullptr : reply.c_str(), data.data(),
                                static_cast<int>(data.size()));
  if (s == NATS_OK && !content_type.empty()) s = natsMsgHeader_Set(m, "Content-Type", std::string(content_type).c_str());
  if (s == NATS_OK) s = natsConnection_PublishMsg(nc_, m);
  natsMsg_Destroy(m);
  if (s != NATS_OK) return nats_error(s, "publish on '" + subject + "'");
  return status::success();
}

result<subscription> nats_connection::subscribe(const std::string& subject, message_handler handler,
                                                const std::string& queue_group) {
  auto* c = new subscription::closure;
  c->handler = std::move(handler);
  natsSubscription* sub = nullptr;
  natsStatus s = queue_group.empty()
                     ? natsConnection_Subscribe(&sub, nc_, subject.c_str(), deliver, c)
                     : natsConnection_QueueSubscribe(&sub, nc_, subject.c_str(), queue_group.c_str(), deliver, c);
  if (s != NATS_OK) {
    delete c;
    return nats_error(s, "subscribe to '" + subject + "'");
  }
  natsSubscription_SetOnCompleteCB(sub, on_complete, c);
  // Generous limits: a slow consumer drops messages instead of growing forever.
  natsSubscription_SetPendingLimits(sub, 1 << 20, 1 << 30);
  return subscription(sub, c, retired_);
}

result<nats_message> nats_connection::request(const std::string& subject, std::string_view data, int timeout_ms,
                                              std::string_view content_type) {
  natsMsg* m = nullptr;
  natsMsg* reply = nullptr;
  natsStatus s = natsMsg_Create(&m, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  if (s == NATS_OK && !content_type.empty()) s = natsMsgHeader_Set(m, "Content-Type", std::string(content_type).c_str());
  if (s == NATS_OK) s = natsConnection_RequestMsg(&reply, nc_, m, timeout_ms);
  natsMsg_Destroy(m);
  if (s != NATS_OK) return nats_error(s, "request on '" + subject + "'");
  nats_message out;
  out.subject = natsMsg_GetSubject(reply);
  out.data.assign(natsMsg_GetData(reply), static_cast<std::size_t>(natsMsg_GetDataLength(reply)));
  const char* ct = nullptr;
  if (natsMsgHeader_Get(reply, "Content-Type", &ct) == NATS_OK && ct) out.content_type = ct;
  natsMsg_Destroy(reply);
  return out;
}

status nats_connection::flush(int timeout_ms) {
  natsStatus s = natsConnection_FlushTimeout(nc_, timeout_ms);
  if (s != NATS_OK) return nats_error(s, "flush");
  return status::success();
}

std::string nats_connection::new_inbox() const {
  natsInbox* inbox = nullptr;
  if (natsInbox_Create(&inbox) != NATS_OK) return "_INBOX.fallback";
  std::string out(inbox);
  natsInbox_Destroy(inbox);
  // natsInbox_Create always says "_INBOX."; keep its unique part under our prefix.
  if (inbox_prefix_ != "_INBOX" && out.rfind("_INBOX.", 0) == 0) out = inbox_prefix_ + out.substr(6);
  return out;
}

bool nats_connection::connected() const { return natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED; }

std::string nats_connection::connected_url() const {
  char buf[256] = {0};
  if (natsConnection_GetConnectedUrl(nc_, buf, sizeof(buf)) != NATS_OK) return "";
  return buf;
}

}  // namespace yard::transport
