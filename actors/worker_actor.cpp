#include "actors/worker_actor.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <random>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "backends/tokenizer_fingerprint.hpp"
#include "common/log.hpp"
#include "kv/block_hash.hpp"
#include "messages/disagg.hpp"
#include "messages/subjects.hpp"
#include "transport/actor_bridge.hpp"

namespace yard::actors {

namespace {

using clock = std::chrono::steady_clock;
using publish_atom = caf::atom_constant<caf::atom("publish")>;
using remote_timeout_atom = caf::atom_constant<caf::atom("rtimeout")>;
using pulled_atom = caf::atom_constant<caf::atom("pulled")>;

// Engine-side id of one dispatch attempt: a migrated request may come back to
// this worker while its earlier attempt is still being cancelled.
std::string attempt_key(const std::string& request_id, std::uint32_t attempt) {
  return request_id + "#" + std::to_string(attempt);
}

struct stream_state {
  std::string request_id;
  std::string reply;
  msg::wire_format format = msg::wire_format::msgpack;
  std::uint64_t next_seq = 0;
  // stream=false: the client reads one response, so tokens after the first go out in
  // batches (at most whole_batch_ms apart) instead of one message each. The first
  // token still goes at once (TTFT, and n > 1 opens its other choices on it).
  bool whole = false;
  bool sent_token = false;
  std::optional<msg::token_chunk> held;  // batched tokens not yet sent
  clock::time_point last_sent{};
};

// How long a whole (non-streamed) response's tokens may wait to be batched. Bounds
// what a migration recomputes: the frontend resumes from the tokens it has.
constexpr auto whole_batch = std::chrono::milliseconds(50);

// Appends a later chunk's tokens, text and logprobs to an earlier one.
void append_chunk(msg::token_chunk& into, msg::token_chunk& more) {
  into.token_ids.insert(into.token_ids.end(), more.token_ids.begin(), more.token_ids.end());
  into.text += more.text;
  into.logprobs.insert(into.logprobs.end(), more.logprobs.begin(), more.logprobs.end());
  into.token_logprobs.insert(into.token_logprobs.end(), std::make_move_iterator(more.token_logprobs.begin()),
                             std::make_move_iterator(more.token_logprobs.end()));
  into.finish_reason = std::move(more.finish_reason);
  into.usage_info = std::move(more.usage_info);
  into.error = std::move(more.error);
}

struct worker_state {
  transport::nats_connection* conn = nullptr;
  std::unique_ptr<backends::engine> engine;
  worker_config cfg;
  std::map<std::string, stream_state> streams;
  bool stepping = false;
  std::optional<backends::step_result> held;  // a step's outputs waiting for its model time
  bool draining = false;
  std::uint64_t kv_seq = 0;
  std::uint64_t incarnation = 0;
  std::uint64_t tokenizer_fingerprint = 0;  // announced in heartbeats: routers check they tokenize alike
  clock::time_point last_heartbeat;
  std::shared_ptr<spdlog::logger> log;
  // Disaggregation.
  std::unique_ptr<kv_transfer_agent> xfer;  // null: this worker moves no KV (no block bytes or no UCX)
  struct remote_wait {                      // decode side: a request waiting for its remote prefill
    backends::engine_request er;
    std::vector<kv::block_hash> hashes;
  };
  std::map<std::string, remote_wait> remote;  // attempt key -> waiting
  struct pull_wait {                          // decode side: KV bytes on their way
    std::string key;
    backends::engine_request er;
    msg::remote_prefill_reply reply;
    kv_transfer_agent::pull_job job;
  };
  std::map<std::uint64_t, pull_wait> pulls;   // pull id -> waiting
  struct prefill_job {                        // prefill side: a remote prefill being computed
    msg::remote_prefill_request req;
    std::string reply;
    msg::remote_prefill_reply out;
  };
  std::map<std::string, prefill_job> prefill_jobs;  // engine request id -> job
  struct prefill_peer {
    std::uint32_t in_flight = 0;
    clock::time_point seen;
    std::string ucx_address;  // from its replies: the cached UCX endpoint to drop when it leaves
  };
  std::map<std::string, prefill_peer> prefill_pool;  // decode side: prefill workers of our model
  std::string prefill_inbox;
  std::uint64_t remote_prefills = 0, local_fallbacks = 0;
  std::uint64_t named_requests = 0;  // ids made up for requests sent straight to us without one
  static inline const char* name = "worker";
};

using worker_actor = caf::stateful_actor<worker_state>;

std::uint64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void reply_error(worker_state& st, const std::string& reply, msg::wire_format f, const std::string& request_id,
                 std::uint64_t seq, const error& err) {
  msg::token_chunk c;
  c.request_id = request_id;
  c.seq = seq;
  c.finish_reason = "error";
  c.error = msg::error_reply{static_cast<std::int32_t>(err.code), err.message};
  c.worker_id = st.cfg.id;
  st.conn->publish(reply, msg::encode(c, f), {}, msg::content_type_of(f));
}

msg::heartbeat make_heartbeat(worker_state& st) {
  msg::heartbeat hb;
  hb.instance_id = st.cfg.id;
  hb.component = "worker";
  hb.role = st.cfg.role;
  hb.model = st.cfg.model;
  hb.generate_subject = subjects::worker_generate(st.cfg.ns, st.cfg.id);
  hb.lease_ms = static_cast<std::uint32_t>(st.cfg.lease_ms);
  hb.block_size = st.engine->block_size();
  auto load = st.engine->load();
  load.worker_id = st.cfg.id;
  load.timestamp_ms = now_ms();
  hb.load = load;
  hb.draining = st.draining;
  hb.incarnation = st.incarnation;
  hb.tokenizer_fingerprint = st.tokenizer_fingerprint;
  if (st.xfer) hb.leased_kv_blocks = static_cast<std::uint32_t>(st.xfer->leased_blocks());
  return hb;
}

void publish_heartbeat(worker_state& st) {
  st.last_heartbeat = clock::now();
  st.conn->publish(subjects::heartbeat(st.cfg.ns, st.cfg.id), msg::encode(make_heartbeat(st)));
}

void publish_kv_events(worker_state& st) {
  auto events = st.engine->drain_kv_events();
  if (events.empty()) return;
  msg::kv_event_batch b;
  b.worker_id = st.cfg.id;
  b.seq = st.kv_seq++;
  b.events = std::move(events);
  st.conn->publish(subjects::kv_events(st.cfg.ns, st.cfg.id), msg::encode(b));
}

result<std::vector<backends::token_id>> prompt_tokens(const backends::engine& eng, const msg::generate_request& r) {
  if (r.token_ids && !r.token_ids->empty()) return *r.token_ids;
  if (r.messages && !r.messages->empty()) return eng.apply_chat_template(*r.messages);
  if (r.prompt && !r.prompt->empty()) return eng.tokenize(*r.prompt);
  return make_error(errc::bad_request, "one of 'prompt', 'token_ids' or 'messages' is required and must not be empty");
}

void kick(worker_actor* self) {
  if (!self->state.stepping) {
    self->state.stepping = true;
    self->send(self, step_atom::value);
  }
}

// ---- disaggregation, decode side ----

// A prefill worker left (lease expired, draining): close our UCX endpoint to it.
void forget_prefill_peer(worker_state& st, const worker_state::prefill_peer& p) {
  if (st.xfer && !p.ucx_address.empty()) st.xfer->forget_peer(p.ucx_address);
}

// Remote prefill only pays off for a long uncached prompt and only while the
// prefill pool has room; anything else (and any failure later) is local.
bool wants_remote_prefill(worker_state& st, const backends::engine_request& er,
                          const std::vector<kv::block_hash>& hashes) {
  if (st.cfg.role != "decode" || !st.xfer || !er.resume_tokens.empty()) return false;
  std::size_t cached = st.engine->cached_blocks(hashes) * st.engine->block_size();
  std::size_t uncached = er.prompt.size() - std::min(er.prompt.size(), cached);
  if (uncached < st.cfg.remote_prefill_min_tokens) return false;
  auto now = clock::now();
  std::uint32_t best = UINT32_MAX;
  std::size_t fresh = 0;
  for (auto it = st.prefill_pool.begin(); it != st.prefill_pool.end();) {
    if (now - it->second.seen > std::chrono::milliseconds(st.cfg.lease_ms)) {
      forget_prefill_peer(st, it->second);
      it = st.prefill_pool.erase(it);
      continue;
    }
    best = std::min(best, it->second.in_flight);
    ++fresh;
    ++it;
  }
  if (fresh == 0) return false;
  // Heartbeats lag: count our own outstanding remote prefills, spread over the pool.
  std::size_t estimate = best + st.remote.size() / fresh;
  return estimate < st.cfg.prefill_queue_limit;
}

void start_remote_prefill(worker_actor* self, const std::string& key, const msg::generate_request& req,
                          backends::engine_request er, std::vector<kv::block_hash> hashes) {
  auto& st = self->state;
  msg::remote_prefill_request pr;
  pr.request_id = req.request_id;
  pr.attempt = req.attempt;
  pr.model = st.cfg.model;
  pr.token_ids = er.prompt;
  pr.sampling = er.sampling;
  pr.stop_token_ids = er.stop_token_ids;
  pr.stop = er.stop;
  pr.max_tokens = er.max_tokens;
  pr.cache_salt = er.cache_salt;
  pr.block_size = st.engine->block_size();
  pr.decode_worker_id = st.cfg.id;
  st.remote[key] = worker_state::remote_wait{std::move(er), std::move(hashes)};
  st.remote_prefills++;
  st.conn->publish(subjects::router_prefill(st.cfg.ns), msg::encode(pr), st.prefill_inbox);
  self->delayed_send(self, std::chrono::milliseconds(st.cfg.remote_prefill_timeout_ms), remote_timeout_atom::value, key);
}

// The request goes on here from the start (or after a first token that came from a prefill worker).
void run_locally(worker_actor* self, const std::string& key, backends::engine_request er) {
  auto& st = self->state;
  auto it = st.streams.find(key);
  if (it == st.streams.end()) return;
  if (auto s = st.engine->add_request(std::move(er)); !s) {
    st.log->warn("request {} rejected: {}", it->second.request_id, s.err().describe());
    reply_error(st, it->second.reply, it->second.format, it->second.request_id, it->second.next_seq++, s.err());
    st.streams.erase(it);
    return;
  }
  kick(self);
}

void send_release(worker_state& st, const msg::remote_prefill_reply& r) {
  if (r.lease_id == 0 || r.release_subject.empty()) return;
  msg::kv_release rel;
  rel.lease_id = r.lease_id;
  rel.request_id = r.request_id;
  st.conn->publish(r.release_subject, msg::encode(rel));
}

void on_prefill_reply(worker_actor* self, transport::nats_message& m) {
  auto& st = self->state;
  auto r = msg::decode_auto<msg::remote_prefill_reply>(m.data, m.content_type, st.cfg.limits);
  if (!r) {
    st.log->warn("bad remote prefill reply: {}", r.err().describe());
    return;  // the request's timeout falls back to local prefill
  }
  auto key = attempt_key(r->request_id, r->attempt);
  auto w = st.remote.find(key);
  if (w == st.remote.end()) {  // timed out or cancelled meanwhile: free the blocks at once
    send_release(st, *r);
    return;
  }
  auto wait = std::move(w->second);
  st.remote.erase(w);
  auto sit = st.streams.find(key);
  if (sit == st.streams.end()) {
    send_release(st, *r);
    return;
  }
  if (r->error) {
    st.log->info("remote prefill of {} failed ({}): prefilling locally", r->request_id, r->error->message);
    st.local_fallbacks++;
    run_locally(self, key, std::move(wait.er));
    return;
  }
  // The first token came from the prefill worker's logits: stream it now.
  auto& stream = sit->second;
  msg::token_chunk c;
  c.request_id = stream.request_id;
  c.seq = stream.next_seq++;
  c.token_ids = r->first_tokens;
  c.text = r->text;
  c.logprobs = r->logprobs;
  c.token_logprobs = r->token_logprobs;
  c.worker_id = st.cfg.id;
  c.finish_reason = r->finish_reason;
  stream.sent_token = !c.token_ids.empty();
  stream.last_sent = clock::now();
  if (r->finish_reason) {
    msg::usage u = r->usage_info;
    u.completion_tokens = static_cast<std::uint32_t>(r->first_tokens.size());
    c.usage_info = u;
  }
  st.conn->publish(stream.reply, msg::encode(c, stream.format), {}, msg::content_type_of(stream.format));
  if (r->finish_reason) {
    st.streams.erase(sit);
    send_release(st, *r);
    return;
  }
  wait.er.resume_tokens = r->first_tokens;
  if (r->region)
    if (auto peer = st.prefill_pool.find(r->prefill_worker_id); peer != st.prefill_pool.end())
      peer->second.ucx_address = r->region->worker_address;
  auto job = st.xfer->prepare_pull(*st.engine, *r, wait.hashes);
  if (!job || !*job) {
    if (!job)
      st.log->warn("KV of {} from {} unusable ({}): prefilling locally", r->request_id, r->prefill_worker_id,
                   job.err().describe());
    send_release(st, *r);
    run_locally(self, key, std::move(wait.er));
    return;
  }
  // The bytes move on the transfer thread; this worker keeps decoding meanwhile.
  auto id = (*job)->id;
  st.pulls[id] = worker_state::pull_wait{key, std::move(wait.er), std::move(*r), std::move(**job)};
  st.xfer->start_pull(st.pulls[id].job, [actor = caf::actor_cast<caf::actor>(self), id](status s) {
    caf::anon_send(actor, pulled_atom::value, id, s.ok() ? std::int32_t{0} : static_cast<std::int32_t>(s.err().code),
                   s.ok() ? std::string() : s.err().message);
  });
}

// A pull finished (on the transfer thread): import, release the lease, decode on.
void on_pulled(worker_actor* self, std::uint64_t id, std::int32_t code, const std::string& message) {
  auto& st = self->state;
  auto it = st.pulls.find(id);
  if (it == st.pulls.end()) return;
  auto p = std::move(it->second);
  st.pulls.erase(it);
  status pulled = code == 0 ? status::success() : status(error{static_cast<errc>(code), message});
  auto n = st.xfer->finish_pull(*st.engine, p.job, pulled);
  if (!n) {
    st.log->warn("KV pull of {} from {} failed ({}): prefilling locally", p.reply.request_id, p.reply.prefill_worker_id,
                 n.err().describe());
    st.local_fallbacks++;
  } else {
    st.log->debug("{}: {} KV blocks from {}", p.reply.request_id, *n, p.reply.prefill_worker_id);
    publish_kv_events(st);  // imported blocks are ours now: the router may route to them
  }
  send_release(st, p.reply);
  run_locally(self, p.key, std::move(p.er));  // no-op when the client cancelled meanwhile
}

void on_remote_timeout(worker_actor* self, const std::string& key) {
  auto& st = self->state;
  auto w = st.remote.find(key);
  if (w == st.remote.end()) return;
  st.log->warn("remote prefill of {} timed out after {} ms: prefilling locally", key, st.cfg.remote_prefill_timeout_ms);
  auto er = std::move(w->second.er);
  st.remote.erase(w);
  st.local_fallbacks++;
  run_locally(self, key, std::move(er));
}

// Prefill workers' heartbeats say how busy the prefill pool is.
void on_peer_heartbeat(worker_state& st, transport::nats_message& m) {
  auto hb = msg::decode_auto<msg::heartbeat>(m.data, m.content_type, st.cfg.limits);
  if (!hb || hb->component != "worker" || hb->role != "prefill" || hb->model != st.cfg.model) return;
  if (hb->instance_id != subjects::last_token(m.subject)) return;  // a heartbeat only speaks for its own subject
  if (hb->draining) {
    if (auto it = st.prefill_pool.find(hb->instance_id); it != st.prefill_pool.end()) {
      forget_prefill_peer(st, it->second);
      st.prefill_pool.erase(it);
    }
    return;
  }
  auto& p = st.prefill_pool[hb->instance_id];
  p.seen = clock::now();
  p.in_flight = hb->load ? hb->load->active_requests + hb->load->queued_requests : 0;
}

// ---- disaggregation, prefill side ----

void reply_prefill_error(worker_state& st, const std::string& reply, const msg::remote_prefill_request& req,
                         const error& err) {
  msg::remote_prefill_reply r;
  r.request_id = req.request_id;
  r.attempt = req.attempt;
  r.prefill_worker_id = st.cfg.id;
  r.error = msg::error_reply{static_cast<std::int32_t>(err.code), err.message};
  st.conn->publish(reply, msg::encode(r));
}

void on_prefill_request(worker_actor* self, transport::nats_message& m) {
  auto& st = self->state;
  if (m.reply.empty()) {
    st.log->warn("remote prefill request without a reply inbox: dropped");
    return;
  }
  auto req = msg::decode_auto<msg::remote_prefill_request>(m.data, m.content_type, st.cfg.limits);
  if (!req) {
    st.log->warn("bad remote prefill request: {}", req.err().describe());
    reply_prefill_error(st, m.reply, msg::remote_prefill_request{}, req.err());
    return;
  }
  auto refuse = [&](errc code, const std::string& why) { reply_prefill_error(st, m.reply, *req, error{code, why}); };
  if (st.cfg.role == "decode") return refuse(errc::bad_request, "worker " + st.cfg.id + " does not prefill for others");
  if (st.draining) return refuse(errc::unavailable, "worker " + st.cfg.id + " is draining");
  if (req->block_size != st.engine->block_size())
    return refuse(errc::bad_request, "block size " + std::to_string(req->block_size) + " != " +
                                         std::to_string(st.engine->block_size()));
  backends::engine_request er;
  er.request_id = "pf:" + attempt_key(req->request_id, req->attempt);
  er.prompt = req->token_ids;
  er.sampling = req->sampling;
  er.max_tokens = 1;
  er.stop_token_ids = req->stop_token_ids;
  er.stop = req->stop;
  er.cache_salt = req->cache_salt;
  if (st.prefill_jobs.count(er.request_id)) return refuse(errc::conflict, "already prefilling this request");
  auto id = er.request_id;
  if (auto s = st.engine->add_request(std::move(er)); !s) return refuse(s.err().code, s.err().message);
  auto& job = st.prefill_jobs[id];
  job.req = std::move(*req);
  job.reply = m.reply;
  job.out.request_id = job.req.request_id;
  job.out.attempt = job.req.attempt;
  job.out.prefill_worker_id = st.cfg.id;
  kick(self);
}

// A prefill job's engine output: on its end, stage the blocks and reply.
void on_prefill_output(worker_state& st, worker_state::prefill_job& job, backends::sequence_output& out) {
  auto& r = job.out;
  r.first_tokens.insert(r.first_tokens.end(), out.new_tokens.begin(), out.new_tokens.end());
  r.text += out.text_delta;
  r.logprobs.insert(r.logprobs.end(), out.logprobs.begin(), out.logprobs.end());
  r.token_logprobs.insert(r.token_logprobs.end(), out.token_logprobs.begin(), out.token_logprobs.end());
  if (!out.finish_reason) return;
  const auto& why = *out.finish_reason;
  if (why == "error" || why == "cancelled" || r.first_tokens.empty()) {
    r.error = msg::error_reply{static_cast<std::int32_t>(errc::internal),
                               out.error_message.value_or("prefill ended: " + why)};
    st.conn->publish(job.reply, msg::encode(r));
    return;
  }
  r.usage_info = out.usage_info;
  if (why == "stop") r.finish_reason = "stop";
  else if (job.req.max_tokens == 1) r.finish_reason = "length";  // 0 = until the context ends
  if (!r.finish_reason && st.xfer) {
    auto hashes = kv::hash_blocks(job.req.token_ids, st.engine->block_size(),
                                  job.req.cache_salt ? std::optional<std::string_view>(*job.req.cache_salt)
                                                     : std::nullopt);
    if (st.cfg.fault == "corrupt-block") st.xfer->corrupt_next_stage();
    auto staged = st.xfer->stage(*st.engine, hashes, clock::now());
    if (staged) {
      r.lease_id = staged->lease_id;
      r.lease_ms = static_cast<std::uint32_t>(st.xfer->options().lease_ms);
      r.region = std::move(staged->region);
      r.blocks = std::move(staged->blocks);
      r.release_subject = subjects::worker_kv_release(st.cfg.ns, st.cfg.id);
    } else {
      // Still worth a reply: the first token saves the decode worker a prefill's latency.
      st.log->warn("{}: KV not staged ({}): the decode worker recomputes", r.request_id, staged.err().describe());
    }
  }
  st.conn->publish(job.reply, msg::encode(r));
  if (st.cfg.fault == "exit-after-reply") {
    st.conn->flush();
    st.log->warn("fault injection: exiting right after the remote prefill reply of {}", r.request_id);
    std::_Exit(3);
  }
}

void on_kv_release(worker_state& st, transport::nats_message& m) {
  auto rel = msg::decode_auto<msg::kv_release>(m.data, m.content_type, st.cfg.limits);
  if (!rel) {
    st.log->warn("bad kv_release: {}", rel.err().describe());
    return;
  }
  if (st.cfg.fault == "drop-release") {
    st.log->warn("fault injection: ignoring kv_release of lease {:x}", rel->lease_id);
    return;
  }
  if (!st.xfer || !st.xfer->release(rel->lease_id))
    st.log->debug("kv_release of unknown lease {:x} ({}): already expired", rel->lease_id, rel->request_id);
}

void on_generate(worker_actor* self, transport::nats_message& m) {
  auto& st = self->state;
  if (m.reply.empty()) {
    st.log->warn("generate request on {} without a reply inbox: dropped", m.subject);
    return;
  }
  auto fmt = msg::detect_format(m.content_type, m.data);
  auto req = msg::decode<msg::generate_request>(m.data, fmt, st.cfg.limits);
  if (!req) {
    st.log->warn("bad generate request: {}", req.err().describe());
    reply_error(st, m.reply, fmt, "", 0, req.err());
    return;
  }
  if (req->request_id.empty()) req->request_id = st.cfg.id + "-" + std::to_string(st.incarnation % 1000000007u) + "-" +
                                                 std::to_string(++st.named_requests);
  if (st.draining) {
    reply_error(st, m.reply, fmt, req->request_id, 0, error{errc::unavailable, "worker " + st.cfg.id + " is draining"});
    return;
  }
  auto tokens = prompt_tokens(*st.engine, *req);
  if (!tokens) {
    reply_error(st, m.reply, fmt, req->request_id, 0, tokens.err());
    return;
  }
  auto key = attempt_key(req->request_id, req->attempt);
  backends::engine_request er;
  er.request_id = key;
  er.prompt = std::move(*tokens);
  er.resume_tokens = req->resume_tokens;
  er.sampling = req->sampling;
  er.max_tokens = req->max_tokens;
  er.stop_token_ids = req->stop_token_ids;
  er.stop = req->stop;
  er.cache_salt = req->cache_salt;
  er.priority = req->priority;
  if (st.streams.count(key)) {
    reply_error(st, m.reply, fmt, req->request_id, 0, error{errc::conflict, "request id already running here"});
    return;
  }
  // The context bound is checked here too, so a request headed for remote
  // prefill fails before any token, like a local one (scheduler::add).
  if (const std::uint64_t ctx = st.engine->max_context();
      er.prompt.size() >= ctx || (er.max_tokens > 0 && er.prompt.size() + er.max_tokens > ctx)) {
    std::string why = er.prompt.size() >= ctx
        ? "prompt of " + std::to_string(er.prompt.size()) + " tokens leaves no room in the context of " + std::to_string(ctx)
        : "field 'max_tokens' (" + std::to_string(er.max_tokens) + ") plus the prompt of " + std::to_string(er.prompt.size()) +
              " tokens exceeds the context of " + std::to_string(ctx) + " tokens (at most " +
              std::to_string(ctx - er.prompt.size()) + " fit)";
    reply_error(st, m.reply, fmt, req->request_id, 0, error{errc::bad_request, why});
    return;
  }
  auto hashes = kv::hash_blocks(er.prompt, st.engine->block_size(),
                                er.cache_salt ? std::optional<std::string_view>(*er.cache_salt) : std::nullopt);
  bool remote = wants_remote_prefill(st, er, hashes);
  if (!remote) {
    if (auto s = st.engine->add_request(er); !s) {
      st.log->warn("request {} rejected: {}", req->request_id, s.err().describe());
      reply_error(st, m.reply, fmt, req->request_id, 0, s.err());
      return;
    }
  }
  auto& stream = st.streams[key] = stream_state{req->request_id, m.reply, fmt, 0};
  stream.whole = !req->stream;
  // Acknowledge admission so the client knows who serves it.
  msg::token_chunk ack;
  ack.request_id = req->request_id;
  ack.seq = stream.next_seq++;
  ack.worker_id = st.cfg.id;
  st.conn->publish(m.reply, msg::encode(ack, fmt), {}, msg::content_type_of(fmt));
  if (remote) {
    start_remote_prefill(self, key, *req, std::move(er), std::move(hashes));
    return;
  }
  kick(self);
}

// Streams one step's outputs to their clients. The step's KV events go out
// first, so a router sees the blocks before the client sees the request end.
void publish_outputs(worker_state& st, backends::step_result& r) {
  publish_kv_events(st);
  bool finished = false;
  for (auto& out : r.outputs) {
    if (auto pj = st.prefill_jobs.find(out.request_id); pj != st.prefill_jobs.end()) {
      on_prefill_output(st, pj->second, out);
      if (out.finish_reason) st.prefill_jobs.erase(pj);
      continue;
    }
    auto it = st.streams.find(out.request_id);
    if (it == st.streams.end()) continue;
    if (out.new_tokens.empty() && !out.finish_reason) continue;
    auto& stream = it->second;
    msg::token_chunk c;
    c.request_id = stream.request_id;
    c.token_ids = std::move(out.new_tokens);
    c.text = std::move(out.text_delta);
    c.logprobs = std::move(out.logprobs);
    c.token_logprobs = std::move(out.token_logprobs);
    c.finish_reason = out.finish_reason;
    c.worker_id = st.cfg.id;
    if (out.finish_reason) c.usage_info = out.usage_info;
    if (out.error_message) c.error = msg::error_reply{static_cast<std::int32_t>(errc::internal), *out.error_message};
    auto now = clock::now();
    if (stream.whole && stream.sent_token && !c.finish_reason && !c.error && now - stream.last_sent < whole_batch) {
      if (stream.held) append_chunk(*stream.held, c);
      else stream.held = std::move(c);
      continue;
    }
    if (stream.held) {
      append_chunk(*stream.held, c);
      c = std::move(*stream.held);
      stream.held.reset();
    }
    c.seq = stream.next_seq++;
    stream.sent_token = stream.sent_token || !c.token_ids.empty();
    stream.last_sent = now;
    st.conn->publish(stream.reply, msg::encode(c, stream.format), {}, msg::content_type_of(stream.format));
    if (out.finish_reason) {
      st.streams.erase(it);
      finished = true;
    }
  }
  // Routers only learn that work finished from our reports: send one now
  // (at most every 10 ms) instead of waiting for the next heartbeat.
  if (finished && clock::now() - st.last_heartbeat > std::chrono::milliseconds(10)) publish_heartbeat(st);
}

// After a step's outputs are out: the next step now, or idle.
void continue_stepping(worker_actor* self) {
  if (self->state.engine->has_work()) self->send(self, step_atom::value);
  else self->state.stepping = false;
}

// One engine step. Its outputs are released when the step's model time has
// passed (an emulated engine computes instantly; a real one has already spent
// it), so clients see the step's true latency.
void on_step(worker_actor* self) {
  auto& st = self->state;
  auto t0 = clock::now();
  auto r = st.engine->step();
  auto spent = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  double wait_ms = r.model_time_ms - spent;
  if (wait_ms > 0.05) {
    st.held = std::move(r);
    self->delayed_send(self, std::chrono::microseconds(static_cast<std::int64_t>(wait_ms * 1000)), publish_atom::value);
    return;
  }
  publish_outputs(st, r);
  continue_stepping(self);
}

caf::behavior worker_behavior(worker_actor* self, transport::nats_connection* conn,
                              std::shared_ptr<std::unique_ptr<backends::engine>> engine, worker_config cfg,
                              std::shared_ptr<std::unique_ptr<kv_transfer_agent>> xfer, std::string prefill_inbox) {
  auto& st = self->state;
  st.conn = conn;
  st.engine = std::move(*engine);
  st.cfg = std::move(cfg);
  st.log = component_logger("worker");
  st.xfer = std::move(*xfer);
  st.prefill_inbox = std::move(prefill_inbox);
  st.tokenizer_fingerprint = backends::tokenizer_fingerprint(*st.engine);
  st.incarnation = std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ now_ms();
  // The first heartbeat comes from spawn_worker once every subscription is up: a router
  // that hears it may route or ask for a snapshot at once.
  self->set_down_handler([](const caf::down_msg&) {});
  return {
      [=](generate_atom, transport::nats_message& m) { on_generate(self, m); },
      [=](cancel_atom, transport::nats_message& m) {
        auto c = msg::decode_auto<msg::cancel_request>(m.data, m.content_type, self->state.cfg.limits);
        if (!c) {
          self->state.log->warn("bad cancel request: {}", c.err().describe());
          return;
        }
        auto& st = self->state;
        for (auto it = st.streams.begin(); it != st.streams.end();) {
          const auto& [key, stream] = *it;
          if (stream.request_id != c->request_id || (c->attempt && key != attempt_key(c->request_id, *c->attempt))) {
            ++it;
            continue;
          }
          st.log->info("cancelling {} ({})", key, c->reason);
          bool pulling = std::any_of(st.pulls.begin(), st.pulls.end(), [&](const auto& p) { return p.second.key == key; });
          // Still waiting for a remote prefill or its KV: end it here (a late reply or pull is released then).
          if (st.remote.erase(key) || pulling) {
            msg::token_chunk fin;
            fin.request_id = stream.request_id;
            fin.seq = it->second.next_seq++;
            fin.finish_reason = "cancelled";
            fin.worker_id = st.cfg.id;
            fin.usage_info = msg::usage{};
            st.conn->publish(stream.reply, msg::encode(fin, stream.format), {}, msg::content_type_of(stream.format));
            it = st.streams.erase(it);
            continue;
          }
          st.engine->cancel(key);
          ++it;
        }
        // A remote prefill for it here is not useful any more either.
        for (const auto& [id, job] : st.prefill_jobs)
          if (job.req.request_id == c->request_id && (!c->attempt || job.req.attempt == *c->attempt)) st.engine->cancel(id);
      },
      [=](step_atom) { on_step(self); },
      [=](publish_atom) {
        if (self->state.held) {
          publish_outputs(self->state, *self->state.held);
          self->state.held.reset();
        }
        continue_stepping(self);
      },
      [=](snapshot_atom, transport::nats_message& m) {
        auto& st = self->state;
        if (m.reply.empty()) return;
        publish_kv_events(st);  // whatever is pending goes out first, in order
        msg::kv_event_batch b;
        b.worker_id = st.cfg.id;
        b.seq = st.kv_seq - 1;  // covers every batch sent so far (wraps to "none yet" at 0)
        b.events = st.engine->kv_snapshot();
        st.conn->publish(m.reply, msg::encode(b));
      },
      [=](prefill_atom, transport::nats_message& m) { on_prefill_request(self, m); },
      [=](prefilled_atom, transport::nats_message& m) { on_prefill_reply(self, m); },
      [=](release_atom, transport::nats_message& m) { on_kv_release(self->state, m); },
      [=](remote_timeout_atom, const std::string& key) { on_remote_timeout(self, key); },
      [=](pulled_atom, std::uint64_t id, std::int32_t code, const std::string& message) {
        on_pulled(self, id, code, message);
      },
      [=](heartbeat_atom, transport::nats_message& m) { on_peer_heartbeat(self->state, m); },
      // A status probe (router, frontend): answer with our heartbeat, to the asker only.
      [=](status_atom, transport::nats_message& m) {
        if (!m.reply.empty()) self->state.conn->publish(m.reply, msg::encode(make_heartbeat(self->state)));
      },
      // A component just started and wants to know us now.
      [=](roster_atom, transport::nats_message&) { publish_heartbeat(self->state); },
      [=](heartbeat_atom) {
        auto& st = self->state;
        if (st.xfer)
          for (auto id : st.xfer->expire(clock::now()))
            st.log->warn("KV lease {:x} expired unreleased after {} ms: blocks freed", id, st.xfer->options().lease_ms);
        publish_kv_events(st);  // events queued while idle (e.g. G3 blocks recovered at start) go out now
        publish_heartbeat(self->state);
        self->delayed_send(self, std::chrono::milliseconds(self->state.cfg.heartbeat_ms), heartbeat_atom::value);
      },
      [=](drain_atom) {
        self->state.draining = true;
        self->state.log->info("{} draining: {} streams in flight", self->state.cfg.id, self->state.streams.size());
        publish_heartbeat(self->state);
      },
      [=](drain_atom, caf::get_atom) { return static_cast<std::int64_t>(self->state.streams.size()); },
  };
}

}  // namespace

result<caf::actor> spawn_worker(caf::actor_system& sys, transport::nats_connection& conn,
                                std::unique_ptr<backends::engine> engine, worker_config cfg) {
  auto ns = cfg.ns;
  auto id = cfg.id;
  // Prefill and decode workers move KV over UCX; "both" never needs to.
  auto xfer = std::make_shared<std::unique_ptr<kv_transfer_agent>>();
  bool disagg = cfg.role == "prefill" || cfg.role == "decode";
  if (disagg && engine->kv_block_bytes() > 0) {
    auto a = kv_transfer_agent::create(cfg.transfer, engine->kv_block_bytes());
    if (a) *xfer = std::move(*a);
    else component_logger("worker")->warn("{}: no KV transfer ({}): every prefill stays local", id, a.err().describe());
  } else if (disagg) {
    component_logger("worker")->warn("{}: engine {} has no KV block bytes: every prefill stays local", id, engine->name());
  }
  auto inbox = conn.new_inbox();
  auto holder = std::make_shared<std::unique_ptr<backends::engine>>(std::move(engine));
  auto actor = sys.spawn<caf::detached>(worker_behavior, &conn, holder, cfg, xfer, inbox);
  auto gen = transport::expose(conn, subjects::worker_generate(ns, id), actor, generate_atom::value);
  if (!gen) return gen.err();
  auto cancel = transport::expose(conn, subjects::worker_cancel(ns), actor, cancel_atom::value);
  if (!cancel) return cancel.err();
  auto snap = transport::expose(conn, subjects::kv_snapshot(ns, id), actor, snapshot_atom::value);
  if (!snap) return snap.err();
  auto status = transport::expose(conn, subjects::worker_status(ns, id), actor, status_atom::value);
  if (!status) return status.err();
  auto roster = transport::expose(conn, subjects::roster(ns), actor, roster_atom::value);
  if (!roster) return roster.err();
  // The subscriptions live as long as the actor: released when it exits.
  auto keep = std::make_shared<std::vector<transport::subscription>>();
  keep->push_back(std::move(*gen));
  keep->push_back(std::move(*cancel));
  keep->push_back(std::move(*snap));
  keep->push_back(std::move(*status));
  keep->push_back(std::move(*roster));
  if (disagg) {
    for (auto [subject, tag] : std::vector<std::pair<std::string, caf::atom_value>>{
             {subjects::worker_prefill(ns, id), prefill_atom::value},
             {subjects::worker_kv_release(ns, id), release_atom::value},
             {inbox, prefilled_atom::value},
             {subjects::heartbeat_all(ns), heartbeat_atom::value}}) {
      auto sub = transport::expose(conn, subject, actor, tag);
      if (!sub) return sub.err();
      keep->push_back(std::move(*sub));
    }
  }
  actor->attach_functor([keep]() mutable { keep->clear(); });
  conn.flush();
  caf::anon_send(actor, heartbeat_atom::value);  // announces the worker: its subjects are live now
  return actor;
}

}  // namespace yard::actors
