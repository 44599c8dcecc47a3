#include "backends/external/openai_upstream_engine.hpp"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "backends/chat/tool_calls/tool_call_stream_parser.hpp"
#include "backends/external/kv_event_subscriber.hpp"
#include "backends/external/openai_upstream_wire.hpp"
#include "backends/external/upstream_load.hpp"
#include "backends/external/upstream_output_guard.hpp"
#include "backends/tool_call_output.hpp"
#include "common/log.hpp"

namespace yard::backends::external {

namespace {

using clock = std::chrono::steady_clock;
using nlohmann::json;

// The base URL split into what httplib::Client takes and a path prefix.
struct base_url {
  std::string scheme_host_port;  // "http://host:port"
  std::string prefix;            // "" or "/something" (no trailing slash, no /v1)
};

result<base_url> split_url(std::string url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos || (url.compare(0, scheme_end, "http") != 0 && url.compare(0, scheme_end, "https") != 0))
    return make_error(errc::bad_request, "--upstream '" + url + "': expected http://host:port or https://host:port");
  auto path = url.find('/', scheme_end + 3);
  base_url b;
  b.scheme_host_port = url.substr(0, path);
  if (b.scheme_host_port.size() <= scheme_end + 3)
    return make_error(errc::bad_request, "--upstream '" + url + "': no host");
  if (path != std::string::npos) b.prefix = url.substr(path);
  while (!b.prefix.empty() && b.prefix.back() == '/') b.prefix.pop_back();
  if (b.prefix.size() >= 3 && b.prefix.compare(b.prefix.size() - 3, 3, "/v1") == 0) b.prefix.resize(b.prefix.size() - 3);
  return b;
}

// What a request thread hands the owner.
struct upstream_event {
  std::string id;
  std::optional<upstream_delta> delta{};
  std::optional<error> failure{};  // the stream failed (HTTP error, cut, server error)
  bool closed = false;           // the thread is done (after its last delta or failure)
  bool cancelled = false;        // closed because cancel() asked
};

class openai_upstream_engine final : public engine {
 public:
  openai_upstream_engine(openai_upstream_options o, base_url url)
      : o_(std::move(o)), url_(std::move(url)), log_(component_logger("upstream")) {}

  ~openai_upstream_engine() override {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    poll_cv_.notify_all();
    for (auto& [id, c] : calls_) stop_call(*c);
    for (auto& [id, c] : calls_)
      if (c->thread.joinable()) c->thread.join();
    if (poller_.joinable()) poller_.join();
  }

  status connect() {
    auto dialect = parse_schema_dialect(o_.structured_output);
    if (!dialect)
      return make_error(errc::bad_request, "--upstream-structured-output '" + o_.structured_output +
                                               "': must be response_format, sglang, llama.cpp or none");
    schemas_ = *dialect;
    if (o_.model.empty() || o_.max_context == 0) {
      auto cli = client(o_.connect_timeout_ms, 5000);
      auto res = cli->Get(url_.prefix + "/v1/models", headers());
      // A server that is up but lists no model yet (still loading it; a Switchyard whose workers have not answered
      // their first probe) is waited for a little, rather than refused at once.
      const auto lists_none = [](const httplib::Result& r) {
        if (!r || r->status / 100 != 2) return false;
        json j = json::parse(r->body, nullptr, false);
        return !(j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty());
      };
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      if (o_.model.empty() && lists_none(res)) log_->info("upstream {} lists no model yet: waiting up to 10 s", o_.upstream);
      while (o_.model.empty() && lists_none(res) && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        res = cli->Get(url_.prefix + "/v1/models", headers());
      }
      if (!res || res->status / 100 != 2) {
        std::string why = res ? "HTTP " + std::to_string(res->status) : httplib::to_string(res.error());
        if (res && (res->status == 401 || res->status == 403)) why += ", the API key was refused: check --upstream-api-key-file";
        if (o_.model.empty())
          return make_error(errc::unavailable, "upstream " + o_.upstream + " did not list its models (" + why +
                                                   "): start it first, or name its model with --upstream-model");
        log_->warn("upstream {}: GET /v1/models failed ({}); max context {}", o_.upstream, why,
                   o_.max_context ? o_.max_context : 8192);
      } else {
        json j = json::parse(res->body, nullptr, false);
        const json* first = nullptr;
        if (j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty()) first = &j["data"][0];
        if (o_.model.empty()) {
          if (!first || !first->contains("id") || !(*first)["id"].is_string())
            return make_error(errc::corrupt, "upstream " + o_.upstream + " /v1/models lists no model id: name it with --upstream-model");
          o_.model = (*first)["id"].get<std::string>();
          // It goes into request bodies and log lines: a newline or NUL in it is a broken (or hostile) listing.
          if (o_.model.empty() || o_.model.size() > 512 ||
              std::any_of(o_.model.begin(), o_.model.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f; }))
            return make_error(errc::corrupt, "upstream " + o_.upstream + " /v1/models lists a model id that is empty, "
                                             "over 512 bytes or holds control characters: name it with --upstream-model");
        }
        // vLLM and SGLang list max_model_len; some OpenAI-style listings name it context_length.
        for (const char* k : {"max_model_len", "context_length"}) {
          if (o_.max_context != 0 || !first || !first->contains(k)) continue;
          const json& v = (*first)[k];
          // A context of one token, or past 2^31, is not a model's: say so and use the default (or --max-context).
          if (v.is_number_unsigned() && v.get<std::uint64_t>() >= 2 && v.get<std::uint64_t>() <= (1ULL << 31))
            o_.max_context = static_cast<std::uint32_t>(v.get<std::uint64_t>());
          else
            log_->warn("upstream {}: /v1/models {} = {} is not a usable context: ignored (set --max-context)",
                       o_.upstream, k, v.dump(-1, ' ', false, json::error_handler_t::replace));
        }
      }
    }
    context_known_ = o_.max_context > 0;
    if (o_.max_context == 0) o_.max_context = 8192;
    if (!o_.kv_events_endpoint.empty()) {
      auto source = parse_kv_event_source(o_.kv_events_source);
      if (!source) return source.err();
      kv_event_subscriber_options ko;
      ko.source = *source;
      ko.endpoint = o_.kv_events_endpoint;
      ko.replay_endpoint = o_.kv_events_replay_endpoint;
      ko.topic = o_.kv_events_topic;
      ko.block_size = o_.block_size;
      auto sub = kv_event_subscriber::start(ko);
      if (!sub) return sub.err();
      kv_events_ = std::move(*sub);
      log_->info("upstream {}: KV events from {} ({} layout{})", o_.upstream, o_.kv_events_endpoint, o_.kv_events_source,
                 o_.kv_events_replay_endpoint.empty() ? ", no replay" : ", replay " + o_.kv_events_replay_endpoint);
    }
    check_health();  // the first verdict before any request
    poller_ = std::thread([this] { poll_loop(); });
    log_->info("upstream {} serving '{}' (context {}, at most {} streams)", o_.upstream, o_.model, o_.max_context,
               o_.max_inflight);
    return status::success();
  }

  // ---- prompt_tokenizer ----
  std::string name() const override { return "openai:" + o_.model; }
  bool constrains_by_schema() const override { return schemas_ != schema_dialect::none; }
  result<std::vector<token_id>> tokenize(std::string_view text) const override { return o_.tokenizer->tokenize(text); }
  result<std::vector<token_id>> apply_chat_template(const std::vector<msg::chat_message>& messages,
                                                    const msg::json_value* tools) const override {
    return o_.tokenizer->apply_chat_template(messages, tools);
  }
  std::string detokenize(const std::vector<token_id>& tokens) const override { return o_.detokenize(tokens); }

  // ---- engine ----
  status add_request(engine_request req) override {
    if (req.prompt.empty()) return make_error(errc::bad_request, "empty prompt");
    if (calls_.count(req.request_id)) return make_error(errc::conflict, "request id " + req.request_id + " already running");
    if (req.constraint)  // the worker asks for output_schema instead (constrains_by_schema)
      return make_error(errc::unsupported, "an external engine cannot apply a token constraint: it takes a JSON schema");
    if (req.output_schema && schemas_ == schema_dialect::none)
      return make_error(errc::unsupported, "structured output is off for upstream " + o_.upstream +
                                               " (--upstream-structured-output none)");
    if (req.output_schema && !req.resume_tokens.empty())
      return make_error(errc::unsupported, "a structured request cannot resume on an external engine: its server "
                                           "would start the JSON value over after the part already delivered");
    if (auto why = unavailable_reason()) return make_error(errc::unavailable, *why);
    auto c = std::make_unique<call>();
    c->req = std::move(req);
    c->completion_tokens = static_cast<std::uint32_t>(c->req.resume_tokens.size());
    c->guard.emplace(c->req, o_.max_context);
    c->last_heard = clock::now();
    if (c->req.tool_format && *c->req.tool_format != chat::tool_call_format::none) {
      c->call_ids = std::make_unique<chat::id_source>(std::hash<std::string>{}(c->req.request_id));
      c->tool_calls = std::make_unique<chat::tool_call_stream_parser>(*c->req.tool_format, *c->call_ids);
      if (!c->req.resume_tokens.empty()) c->tool_calls->feed(o_.detokenize(c->req.resume_tokens));
    }
    auto id = c->req.request_id;
    calls_.emplace(id, std::move(c));
    waiting_.push_back(id);
    start_waiting();
    return status::success();
  }

  void cancel(const std::string& request_id) override {
    auto it = calls_.find(request_id);
    if (it == calls_.end()) return;
    auto& c = *it->second;
    if (!c.thread.joinable()) {  // never started: nothing upstream to close
      waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), request_id), waiting_.end());
      c.ended = true;
      ready_.push_back(finished_output(c, msg::finish_kind::cancelled));
      calls_.erase(it);
      return;
    }
    stop_call(c);
  }

  bool has_work() const override { return !calls_.empty() || !ready_.empty(); }

  std::optional<std::string> unavailable_reason() const override {
    if (clock::now() < hold_until_) return "upstream " + o_.upstream + " failed " + hold_why_;
    std::lock_guard lk(mu_);
    if (healthy_) return std::nullopt;
    return "upstream " + o_.upstream + " is down (" + health_error_ + ")";
  }
  // How long a server that fails requests while its health check passes is kept out of routing.
  static constexpr std::chrono::seconds failure_hold{5};
  static constexpr int failures_before_hold = 3;

  step_result step() override {
    step_result r;
    r.outputs = std::move(ready_);
    ready_.clear();
    std::deque<upstream_event> events;
    {
      std::unique_lock lk(mu_);
      if (events_.empty() && r.outputs.empty() && running_ > 0)
        events_cv_.wait_for(lk, std::chrono::milliseconds(5), [&] { return !events_.empty(); });
      events.swap(events_);
    }
    for (auto& ev : events) on_event(ev, r.outputs);
    end_silent_streams_while_down(r.outputs);
    start_waiting();
    return r;
  }

  msg::load_report load() const override {
    msg::load_report l;
    std::uint64_t pending_prefill = 0;
    for (const auto& [id, c] : calls_)
      if (!c->got_token) pending_prefill += c->req.prompt.size() + c->req.resume_tokens.size();
    l.pending_prefill_tokens = pending_prefill;
    l.active_requests = static_cast<std::uint32_t>(calls_.size() - waiting_.size());
    l.queued_requests = static_cast<std::uint32_t>(waiting_.size());
    std::lock_guard lk(mu_);
    // The server's own counts include clients other than this worker; use them while they are fresh.
    if (load_at_ != clock::time_point{} && clock::now() - load_at_ < std::chrono::milliseconds(4 * o_.poll_ms)) {
      if (load_.running) l.active_requests = static_cast<std::uint32_t>(*load_.running);
      if (load_.waiting) l.queued_requests = static_cast<std::uint32_t>(*load_.waiting) + static_cast<std::uint32_t>(waiting_.size());
      if (load_.kv_used && load_.kv_capacity) {
        l.active_kv_blocks = static_cast<std::uint32_t>(*load_.kv_used);
        l.total_kv_blocks = static_cast<std::uint32_t>(*load_.kv_capacity);
      }
    }
    return l;
  }

  // The server's own KV events, hashed the Switchyard way (none without --kv-events-endpoint).
  std::vector<msg::kv_event> drain_kv_events() override { return kv_events_ ? kv_events_->drain() : std::vector<msg::kv_event>{}; }
  std::vector<msg::kv_event> kv_snapshot() const override {
    return kv_events_ ? kv_events_->snapshot() : std::vector<msg::kv_event>{};
  }

  std::uint32_t max_context() const override { return o_.max_context; }
  std::uint32_t block_size() const override { return o_.block_size; }
  chat::tool_call_format default_tool_format() const override { return chat::tool_call_format::hermes; }

 private:
  struct call {
    engine_request req;
    std::unique_ptr<httplib::Client> client;  // its own connection: stop() closes only this stream
    std::thread thread;
    std::atomic<bool> cancelled{false};
    std::uint32_t completion_tokens = 0;  // resume tokens included
    bool got_token = false;
    bool ended = false;
    std::optional<msg::finish_kind> finish;  // the server's finish reason, emitted when the stream closes
    std::optional<msg::usage> usage;
    std::optional<upstream_output_guard> guard;  // max_tokens and stop strings, whatever the server does
    clock::time_point last_heard{};              // the last event from its thread (silent streams end on a drain)
    std::unique_ptr<chat::id_source> call_ids;
    std::unique_ptr<chat::tool_call_stream_parser> tool_calls;
  };

  std::unique_ptr<httplib::Client> client(int connect_ms, int read_ms) const {
    auto cli = std::make_unique<httplib::Client>(url_.scheme_host_port);
    cli->set_connection_timeout(std::chrono::milliseconds(connect_ms));
    cli->set_read_timeout(std::chrono::milliseconds(read_ms));
    cli->set_write_timeout(std::chrono::milliseconds(std::max(connect_ms, 5000)));
    cli->set_keep_alive(false);
    return cli;
  }

  httplib::Headers headers() const {
    httplib::Headers h;
    if (!o_.api_key.empty()) h.emplace("Authorization", "Bearer " + o_.api_key);
    return h;
  }

  void stop_call(call& c) {
    c.cancelled = true;
    if (c.client) c.client->stop();
  }

  void push(upstream_event ev) {
    {
      std::lock_guard lk(mu_);
      events_.push_back(std::move(ev));
    }
    events_cv_.notify_one();
  }

  void start_waiting() {
    while (!waiting_.empty() && running_ < o_.max_inflight) {
      auto id = waiting_.front();
      waiting_.pop_front();
      auto it = calls_.find(id);
      if (it == calls_.end()) continue;
      auto& c = *it->second;
      c.client = client(o_.connect_timeout_ms, o_.idle_timeout_ms);
      auto body = completion_body(c.req, o_.model, context_known_ ? o_.max_context : 0, schemas_);
      {
        std::lock_guard lk(mu_);
        running_++;
      }
      c.thread = std::thread([this, &c, id, body = std::move(body)] { run_call(c, id, body); });
    }
  }

  // A request thread: one streamed POST; every payload goes to the owner as it arrives.
  void run_call(call& c, const std::string& id, const std::string& body) {
    httplib::Request req;
    req.method = "POST";
    req.path = url_.prefix + "/v1/completions";
    req.headers = headers();
    req.headers.emplace("Accept", "text/event-stream");
    req.body = body;
    req.set_header("Content-Type", "application/json");
    int http_status = 0;
    std::string error_body, content_type;
    sse_splitter sse;
    bool saw_finish = false, failed = false;
    req.response_handler = [&](const httplib::Response& res) {
      http_status = res.status;
      content_type = res.get_header_value("Content-Type");
      return !c.cancelled.load();
    };
    req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      if (c.cancelled) return false;
      if (http_status / 100 != 2) {
        if (error_body.size() < 65536) error_body.append(data, std::min<std::size_t>(n, 65536 - error_body.size()));
        return true;
      }
      auto payloads = sse.feed(std::string_view(data, n));
      if (sse.overflowed()) {
        push(upstream_event{.id = id, .failure = error{errc::unavailable, "upstream sent a stream event over " +
                                                                               std::to_string(sse.max_event_bytes()) +
                                                                               " bytes"}});
        failed = true;
        return false;
      }
      for (auto& payload : payloads) {
        auto d = parse_stream_payload(payload, c.req.sampling.logprobs ? c.req.sampling.top_logprobs : 0);
        if (!d) {
          push(upstream_event{.id = id, .failure = error{errc::unavailable, "upstream stream: " + d.err().message}});
          failed = true;
          return false;
        }
        if (d->server_error) {
          push(upstream_event{.id = id, .failure = *d->server_error});
          failed = true;
          return false;
        }
        if (d->finish) saw_finish = true;
        push(upstream_event{.id = id, .delta = std::move(*d)});
      }
      return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    bool sent = c.client->send(req, res, err);
    upstream_event end{.id = id, .closed = true};
    if (c.cancelled) {
      end.cancelled = true;
    } else if (!failed) {
      if (!sent && !saw_finish)  // cut after its finish (before usage or [DONE]): the output is whole
        end.failure = error{errc::unavailable, "upstream " + o_.upstream + " connection failed: " + httplib::to_string(err)};
      else if (http_status / 100 != 2)
        end.failure = http_error(http_status, error_body);
      else if (!saw_finish && content_type.find("event-stream") == std::string::npos)
        end.failure = error{errc::unavailable, "upstream " + o_.upstream + " answered " + std::to_string(http_status) +
                                                   " with Content-Type '" + content_type.substr(0, 100) +
                                                   "', not an event stream (is it an OpenAI-compatible server?)"};
      else if (!saw_finish)
        end.failure = error{errc::unavailable, "upstream " + o_.upstream + " ended the stream without a finish reason"};
      // The server may be gone: its health verdict comes before this stream's end reaches the worker, so the
      // worker drains (and says so) before the client's frontend sends the request on to another worker.
      if (end.failure && end.failure->code == errc::unavailable) check_health(/*after_cut=*/true);
    }
    push(std::move(end));
  }

  sequence_output finished_output(call& c, msg::finish_kind why) {
    sequence_output out;
    out.request_id = c.req.request_id;
    out.finish_reason = why;
    out.usage_info.prompt_tokens = static_cast<std::uint32_t>(c.req.prompt.size());
    out.usage_info.completion_tokens = c.completion_tokens;
    if (c.usage) out.usage_info.cached_tokens = c.usage->cached_tokens;
    return out;
  }

  static msg::finish_kind finish_with_tools(const call& c, msg::finish_kind why) {
    if (why == msg::finish_kind::stop && c.tool_calls && c.tool_calls->saw_tool_call()) return msg::finish_kind::tool_calls;
    return why;
  }

  void on_event(upstream_event& ev, std::vector<sequence_output>& outs) {
    auto it = calls_.find(ev.id);
    if (it == calls_.end()) return;
    auto& c = *it->second;
    c.last_heard = clock::now();
    if (ev.delta && !c.ended) {
      auto& d = *ev.delta;
      if (d.usage) c.usage = d.usage;
      std::vector<token_id> tokens;
      const bool exact = d.token_ids.has_value();
      if (d.token_ids) {
        tokens = std::move(*d.token_ids);
      } else if (!d.text.empty()) {
        // A server that sends no ids: our tokenizer's reading of the text (counts can differ from the server's).
        if (auto t = o_.tokenizer->tokenize(d.text)) tokens = std::move(*t);
      }
      auto v = c.guard->apply(std::move(tokens), std::move(d.text), d.finish.has_value(), exact, o_.detokenize);
      sequence_output out;
      out.request_id = c.req.request_id;
      out.new_tokens = std::move(v.tokens);
      out.token_logprobs = std::move(d.logprobs);
      if (v.end && out.token_logprobs.size() > out.new_tokens.size()) out.token_logprobs.resize(out.new_tokens.size());
      for (const auto& t : out.token_logprobs) out.logprobs.push_back(t.logprob);
      c.completion_tokens += static_cast<std::uint32_t>(out.new_tokens.size());
      if (!out.new_tokens.empty()) c.got_token = true;
      const bool ends = d.finish.has_value() || v.end.has_value();
      if (c.tool_calls) {
        emit_through_tool_parser(*c.tool_calls, v.text, ends, out);
      } else {
        out.text_delta = std::move(v.text);
      }
      if (d.finish && !c.finish) c.finish = d.finish;
      if (v.end) c.finish = v.end;  // a stop string at the server's last token is still a stop
      if (!out.new_tokens.empty() || !out.text_delta.empty() || !out.tool_calls.empty()) outs.push_back(std::move(out));
      if (v.end && !d.finish) {
        // The budget or a stop string ends it here while the server goes on: end it for the client, close upstream.
        log_->debug("request {}: ended here ({}), the upstream stream is closed", c.req.request_id,
                    *v.end == msg::finish_kind::length ? "max_tokens" : "stop string");
        c.ended = true;
        stop_call(c);
        outs.push_back(finished_output(c, finish_with_tools(c, *v.end)));
      }
    }
    if (ev.failure && !c.ended) {
      c.ended = true;
      auto out = finished_output(c, msg::finish_kind::error);
      out.error_code = ev.failure->code;
      out.error_message = ev.failure->message;
      if (ev.failure->code == errc::unavailable) {
        log_->warn("request {}: {}", c.req.request_id, ev.failure->message);
        count_failure(ev.failure->message);
      }
      outs.push_back(std::move(out));
    }
    if (!ev.closed) return;
    if (!c.ended) {
      c.ended = true;
      if (ev.cancelled) {
        outs.push_back(finished_output(c, msg::finish_kind::cancelled));
      } else {
        failures_in_a_row_ = 0;
        outs.push_back(finished_output(c, finish_with_tools(c, c.finish.value_or(msg::finish_kind::stop))));
      }
    }
    if (c.thread.joinable()) c.thread.join();
    {
      std::lock_guard lk(mu_);
      running_--;
    }
    calls_.erase(it);
  }

  // A request failed for the server's sake (unavailable). Enough in a row while the health check passes (a server
  // answering 5xx, refusing the API key): hold the worker out of routing, so retries go to other workers.
  void count_failure(const std::string& why) {
    if (++failures_in_a_row_ < failures_before_hold) return;
    failures_in_a_row_ = 0;
    hold_until_ = clock::now() + failure_hold;
    hold_why_ = std::to_string(failures_before_hold) + " requests in a row (last: " + why + ")";
    log_->error("upstream {} failed {}: draining for {} s", o_.upstream, hold_why_, failure_hold.count());
  }

  // While the server is called down, a stream that has been silent for the health timeout (or two poll periods)
  // ends with unavailable, so the client resumes it elsewhere; a hung server would otherwise hold it until the
  // idle timeout.
  void end_silent_streams_while_down(std::vector<sequence_output>& outs) {
    if (calls_.empty()) return;
    std::string why;
    {
      std::lock_guard lk(mu_);
      if (healthy_) return;
      why = "upstream " + o_.upstream + " is down (" + health_error_ + ")";
    }
    const auto silent = std::chrono::milliseconds(std::max(2 * o_.poll_ms, o_.health_timeout_ms));
    const auto now = clock::now();
    for (auto& [id, c] : calls_) {
      if (c->ended || !c->thread.joinable() || now - c->last_heard < silent) continue;
      c->ended = true;
      stop_call(*c);
      auto out = finished_output(*c, msg::finish_kind::error);
      out.error_code = errc::unavailable;
      out.error_message = why + "; its stream was silent for " +
                          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()) + " ms";
      log_->warn("request {}: {}", id, *out.error_message);
      outs.push_back(std::move(out));
    }
  }

  // ---- health and load ----
  // One health check (and, when healthy, a metrics read). `after_cut`: a stream was just cut, so one failure is
  // enough to call the server down; the poller's periodic checks need unhealthy_after in a row.
  void check_health(bool after_cut = false) {
    auto cli = client(o_.connect_timeout_ms, o_.health_timeout_ms);
    auto path = url_.prefix + (o_.health_path.empty() ? "/v1/models" : o_.health_path);
    const auto t0 = clock::now();
    auto res = cli->Get(path, headers());
    std::string why;
    if (!res) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0).count();
      why = "GET " + path + ": " +
            (res.error() == httplib::Error::Read && ms + 50 >= o_.health_timeout_ms
                 ? "no answer within " + std::to_string(o_.health_timeout_ms) + " ms (--upstream-health-timeout-ms)"
                 : httplib::to_string(res.error()));
    } else if (res->status / 100 != 2) {
      why = "GET " + path + ": HTTP " + std::to_string(res->status);
    }
    std::optional<upstream_load> load;
    if (why.empty() && !o_.metrics_path.empty()) load = read_metrics(*cli);
    std::lock_guard lk(mu_);
    if (why.empty()) {
      if (!healthy_) log_->info("upstream {} answers its health check again", o_.upstream);
      healthy_ = true;
      failures_ = 0;
      if (load) {
        load_ = *load;
        load_at_ = clock::now();
      }
      return;
    }
    failures_++;
    health_error_ = why;
    if (healthy_ && (failures_ >= o_.unhealthy_after || after_cut)) {
      healthy_ = false;
      log_->error("upstream {} is down: {}", o_.upstream, why);
    }
  }

  // The server's load from its metrics page, read up to max_metrics_bytes (a larger page is skipped, logged once).
  static constexpr std::size_t max_metrics_bytes = 4u << 20;
  std::optional<upstream_load> read_metrics(httplib::Client& cli) {
    std::string body;
    bool too_big = false;
    auto m = cli.Get(url_.prefix + o_.metrics_path, headers(), [&](const char* d, std::size_t n) {
      if (body.size() + n > max_metrics_bytes) {
        too_big = true;
        return false;
      }
      body.append(d, n);
      return true;
    });
    if (too_big) {
      if (!metrics_warned_.exchange(true))
        log_->warn("upstream {}{}: over {} bytes, not read (load from local counts)", o_.upstream, o_.metrics_path,
                   max_metrics_bytes);
      return std::nullopt;
    }
    if (!m || m->status / 100 != 2) return std::nullopt;
    auto sums = parse_prometheus_text(body);
    if (sums.malformed_lines > 0 && !metrics_warned_.exchange(true))
      log_->warn("upstream {}{}: {} malformed lines skipped (logged once)", o_.upstream, o_.metrics_path,
                 sums.malformed_lines);
    return load_from_metrics(sums);
  }

  void poll_loop() {
    std::unique_lock lk(mu_);
    while (!stopping_) {
      poll_cv_.wait_for(lk, std::chrono::milliseconds(o_.poll_ms), [&] { return stopping_; });
      if (stopping_) break;
      lk.unlock();
      check_health();
      lk.lock();
    }
  }

  openai_upstream_options o_;
  schema_dialect schemas_ = schema_dialect::response_format;  // from o_.structured_output
  base_url url_;
  std::shared_ptr<spdlog::logger> log_;
  // Owner-thread state.
  std::map<std::string, std::unique_ptr<call>> calls_;
  std::deque<std::string> waiting_;
  bool context_known_ = false;  // max_context came from the flag or the server (else a default of 8192)
  std::vector<sequence_output> ready_;
  // Shared with the request threads and the poller.
  mutable std::mutex mu_;
  std::condition_variable events_cv_, poll_cv_;
  std::deque<upstream_event> events_;
  std::uint32_t running_ = 0;
  bool stopping_ = false;
  bool healthy_ = true;
  int failures_ = 0;
  std::string health_error_;
  upstream_load load_;
  clock::time_point load_at_{};
  std::thread poller_;
  std::atomic<bool> metrics_warned_{false};  // the poller's and a cut stream's checks may run at once
  // Owner-thread state: requests failing while the health check passes.
  int failures_in_a_row_ = 0;
  clock::time_point hold_until_{};
  std::string hold_why_;
  std::unique_ptr<kv_event_subscriber> kv_events_;  // the server's ZeroMQ KV events (may be null)
};

}  // namespace

result<std::unique_ptr<engine>> make_openai_upstream_engine(openai_upstream_options o) {
  if (!o.tokenizer || !o.detokenize) return make_error(errc::bad_request, "an external engine needs a tokenizer");
  if (o.block_size == 0) return make_error(errc::bad_request, "--block-size must be at least 1");
  if (o.max_inflight == 0) o.max_inflight = 1;
  if (o.poll_ms <= 0) o.poll_ms = 500;
  if (o.health_timeout_ms <= 0) o.health_timeout_ms = 5000;
  auto url = split_url(o.upstream);
  if (!url) return url.err();
  if (!o.metrics_path.empty() && o.metrics_path.front() != '/') o.metrics_path = "/" + o.metrics_path;
  if (!o.health_path.empty() && o.health_path.front() != '/') o.health_path = "/" + o.health_path;
  auto e = std::make_unique<openai_upstream_engine>(std::move(o), std::move(*url));
  if (auto s = e->connect(); !s) return s.err();
  return std::unique_ptr<engine>(std::move(e));
}

}  // namespace yard::backends::external
