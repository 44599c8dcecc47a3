// actors/http_generate.cpp — a connection serving one generate request (see http_connection.hpp).
//
// Parses the OpenAI body, opens the request on the frontend, and writes its
// chunks as they arrive: SSE events for stream=true, one JSON response
// otherwise; n > 1 opens the other choices on the first token; the deadline and
// a client that goes away cancel it.
#include "actors/http_connection.hpp"
#include "actors/http_wire.hpp"

#include <utility>
#include <algorithm>
#include <chrono>

#include <boost/asio/post.hpp>
#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/atoms.hpp"

namespace yard::actors {

namespace net = boost::asio;
namespace beast = boost::beast;
using http_wire::response_head;
using http_wire::unix_now;

// --- generate ------------------------------------------------------------------

void http_connection::serve_generate(openai::endpoint ep) {
  auto& m = *ctx_->metrics;
  m.requests_total++;
  // OpenAI's shapes: "chatcmpl-..." for chat completions, "cmpl-..." for completions.
  std::string id = (ep == openai::endpoint::chat ? "chat" : "") + ctx_->opts.id_prefix + "-" + std::to_string(unix_now()) +
                   "-" + std::to_string(ctx_->next_id++);
  auto parsed = openai::parse(body_, ep, id, hints_);
  std::string().swap(body_);
  if (!parsed) {
    ctx_->log->info("400 on a generate request: {}", parsed.err().message);
    return respond_error(parsed.err().code, parsed.err().message);
  }
  auto gen = std::move(parsed->gen);
  auto render_opts = parsed->render;
  auto& view = *ctx_->view;
  auto models = view.models();
  // With no live worker the router decides: it queues the request for a short while
  // when workers are starting or just went away (restarts), and answers 503 otherwise.
  const auto& dflt = ctx_->opts.default_model;
  if (gen.model.empty()) {
    // The default model, else the first served one, that this tenant may use.
    auto usable = [&](const std::string& m) { return !tenant_ || tenant_->allows(m); };
    if (!dflt.empty() && usable(dflt)) gen.model = dflt;
    else if (auto it = std::find_if(models.begin(), models.end(), usable); it != models.end()) gen.model = *it;
    else if (tenant_ && !tenant_->models.empty()) gen.model = tenant_->models.front();
    else gen.model = dflt;
  }
  if (!models.empty() && std::find(models.begin(), models.end(), gen.model) == models.end())
    return respond_error(errc::not_found, "model '" + gen.model + "' does not exist");
  if (tenant_) {
    // A model the tenant may not use looks like one that does not exist (as OpenAI answers).
    if (!tenant_->allows(gen.model)) return respond_error(errc::not_found, "model '" + gen.model + "' does not exist");
    std::chrono::milliseconds wait{0};
    if (auto ok = ctx_->opts.tenants->admit(*tenant_, std::chrono::steady_clock::now(), wait); !ok) {
      auto secs = std::max<std::int64_t>(1, (wait.count() + 999) / 1000);
      extra_headers_ += fmt::format("Retry-After: {}\r\n", secs);
      return respond_error(ok.err().code, ok.err().message + "; retry after " + std::to_string(secs) + " s");
    }
    // The tenant is bound here, whatever the body says: its salt keeps its prefix blocks its own.
    gen.tenant = tenant_->name;
    gen.cache_salt = tenant_table::salt_for(*tenant_, gen.cache_salt);
    // The tenant's priority is also the highest its requests may ask for.
    gen.priority = parsed->priority_given ? std::min(gen.priority, tenant_->priority) : tenant_->priority;
  }
  active_ = true;
  got_first_ = false;
  stream_mode_ = gen.stream;
  ep_ = ep;
  id_ = id;
  model_ = gen.model;
  created_ = unix_now();
  // Shapes the response (logprobs, echo, usage chunk): see openai_api.hpp.
  render_ = std::make_shared<openai::response_renderer>(ep, id, model_, created_, render_opts);
  queue_ = std::make_shared<chunk_queue>();
  // The frontend actor's push posts a drain here; ctx_ keeps the io_context alive for it.
  n_ = std::max<std::uint32_t>(1, render_opts.n);
  // A whole response with one choice is written once, at its final chunk: no wake-up per
  // token. (With n > 1, choice 0's first chunk opens the others, so every push wakes.)
  queue_->set_notify(
      [w = weak_from_this(), ctx = ctx_, ex = tcp_layer().get_executor()] {
        net::post(ex, [w] {
          if (auto self = w.lock()) self->on_chunks();
        });
      },
      !stream_mode_ && n_ == 1);
  m.in_flight++;
  choice_ids_.assign(1, id);
  if (n_ > 1) {
    // n choices: choice 0 goes now; the others once it has produced, so its prompt
    // blocks are in the prefix cache and the KV-aware router sends them there.
    for (std::uint32_t i = 1; i < n_; ++i) choice_ids_.push_back(id + "-c" + std::to_string(i));
    rest_ = gen;
  }
  ctx_->frontend.open(std::move(gen), queue_);
  deadline_.expires_after(std::chrono::milliseconds(ctx_->opts.request_timeout_ms));
  deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->on_deadline();
  });
  watch_client();
}

void http_connection::on_chunks() {
  if (!active_ || !queue_) return;
  for (auto& c : queue_->take_all()) {
    handle_chunk(c);
    if (!active_) break;
  }
}

void http_connection::handle_chunk(msg::token_chunk& c) {
  std::uint32_t index = 0;
  if (n_ > 1) {
    auto it = std::find(choice_ids_.begin(), choice_ids_.end(), c.request_id);
    if (it == choice_ids_.end()) return;
    index = static_cast<std::uint32_t>(it - choice_ids_.begin());
  }
  if (!got_first_) {
    // Nothing sent yet: an error before any token gets a real status code.
    if (c.error) {
      if (n_ > 1) cancel_choices();
      end_request();
      return respond_error(static_cast<errc>(c.error->code), c.error->message);
    }
    got_first_ = true;
    if (stream_mode_) {
      // HTTP/1.0 has no chunked coding (RFC 9112 6.1): the events go as they are and the close ends the body.
      if (http10_) keep_alive_ = false;
      write(response_head(200, "text/event-stream", keep_alive_) + std::exchange(extra_headers_, {}) +
            (http10_ ? "Cache-Control: no-cache\r\n\r\n" : "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"));
    }
  }
  if (index == 0 && rest_) open_other_choices();
  if (!stream_mode_) {
    if (c.error) {
      if (n_ > 1) cancel_choices();
      end_request();
      return respond_error(static_cast<errc>(c.error->code), c.error->message);
    }
    render_->add(c, index);
    if (!render_->all_done()) return;
    auto u = render_->usage();
    account_tenant(200, &u);
    auto body = render_->full_response();
    end_request();
    return respond(200, "application/json", body);
  }
  std::string event = c.error ? "data: " + openai::error_body(static_cast<errc>(c.error->code), c.error->message) + "\n\n"
                              : render_->sse(c, index);
  // An error ends the whole response (the other choices are cancelled); otherwise it ends with its last choice.
  bool last = c.error.has_value() || (c.finish_reason.has_value() && render_->all_done());
  if (last) {
    if (c.error) {
      if (n_ > 1) cancel_choices();
      account_tenant(openai::http_status_for(static_cast<errc>(c.error->code)), nullptr);
    } else {
      auto u = render_->usage();
      account_tenant(200, &u);
    }
    event += "data: [DONE]\n\n";
  }
  std::string framed = http10_ ? std::move(event) : fmt::format("{:x}\r\n", event.size()) + event + "\r\n";
  if (last) {
    if (!http10_) framed += "0\r\n\r\n";
    end_request();
    response_done_ = true;
  }
  write(std::move(framed));
}

void http_connection::open_other_choices() {
  auto base = std::move(*rest_);
  rest_.reset();
  for (std::uint32_t i = 1; i < n_; ++i) {
    auto g = base;
    g.request_id = choice_ids_[i];
    if (g.sampling.seed) g.sampling.seed = *g.sampling.seed + i;  // a seeded request gets n different, reproducible choices
    ctx_->frontend.open(std::move(g), queue_);
  }
}

void http_connection::cancel_choices() {
  for (const auto& cid : choice_ids_) ctx_->frontend.cancel(cid);
}

void http_connection::on_deadline() {
  if (!active_) return;
  cancel_choices();
  bool headers_sent = got_first_ && stream_mode_;
  if (headers_sent) account_tenant(504, nullptr);
  end_request();
  if (headers_sent) return close();
  respond_error(errc::timeout, "no response from the cluster in time");
}

void http_connection::end_request() {
  if (!active_) return;
  active_ = false;
  deadline_.cancel();
  ctx_->metrics->in_flight--;
  if (queue_) queue_->set_notify(nullptr);
  queue_.reset();
  rest_.reset();
  std::string().swap(text_);
}

// --- tenants ---------------------------------------------------------------------

bool http_connection::authenticate(const std::string& api_key) {
  tenant_ = nullptr;
  if (!ctx_->opts.tenants) return true;
  if (api_key.empty()) {
    extra_headers_ += "WWW-Authenticate: Bearer\r\n";
    respond_error(errc::unauthorized, "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.");
    return false;
  }
  tenant_ = ctx_->opts.tenants->authenticate(api_key);
  if (tenant_ == nullptr) {
    ctx_->log->info("401: an unknown API key");
    extra_headers_ += "WWW-Authenticate: Bearer\r\n";
    respond_error(errc::unauthorized, "Incorrect API key provided.");
    return false;
  }
  return true;
}

void http_connection::account_tenant(int http_status, const msg::usage* usage) {
  if (!tenant_) return;
  auto& m = *ctx_->metrics;
  m.count_tenant_request(tenant_->name, http_status);
  if (usage) {
    m.count_tenant_tokens(tenant_->name, usage->prompt_tokens, usage->completion_tokens);
    ctx_->opts.tenants->charge_tokens(*tenant_, std::uint64_t{usage->prompt_tokens} + usage->completion_tokens,
                                      std::chrono::steady_clock::now());
  }
  tenant_ = nullptr;
}

}  // namespace yard::actors
