// actors/worker_engine.cpp — the engine actor: admission, cancel, steps, its behaviour (see worker_engine.hpp).
#include "actors/worker_engine.hpp"

#include <algorithm>
#include <random>

#include <caf/all.hpp>

#include "backends/output_rules.hpp"
#include "backends/sampling_checks.hpp"
#include "backends/tokenizer_fingerprint.hpp"
#include "kv/block_hash.hpp"
#include "messages/subjects.hpp"

namespace yard::actors::worker_detail {

namespace {

std::uint64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The context bound, checked before any token (also for a request headed for
// remote prefill, which the scheduler would otherwise check only later).
std::optional<std::string> context_error(const backends::engine& eng, const backends::engine_request& er) {
  const std::uint64_t ctx = eng.max_context();
  if (er.prompt.size() >= ctx)
    return "prompt of " + std::to_string(er.prompt.size()) + " tokens leaves no room in the context of " +
           std::to_string(ctx);
  if (er.max_tokens > 0 && er.prompt.size() + er.max_tokens > ctx)
    return "field 'max_tokens' (" + std::to_string(er.max_tokens) + ") plus the prompt of " +
           std::to_string(er.prompt.size()) + " tokens exceeds the context of " + std::to_string(ctx) +
           " tokens (at most " + std::to_string(ctx - er.prompt.size()) + " fit)";
  return std::nullopt;
}

// A decode worker asks its prefill_client about a long uncached prompt; every other request runs here.
bool may_prefill_remotely(worker_state& st, const backends::engine_request& er, const std::vector<kv::block_hash>& hashes) {
  if (st.cfg.role != msg::worker_role::decode || !st.xfer || !st.prefill_client || !er.resume_tokens.empty()) return false;
  const std::size_t cached = st.engine->cached_blocks(hashes) * st.engine->block_size();
  return er.prompt.size() - std::min(er.prompt.size(), cached) >= st.cfg.remote_prefill_min_tokens;
}

msg::remote_prefill_request remote_request(worker_state& st, const msg::generate_request& req,
                                           const backends::engine_request& er) {
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
  return pr;
}

// The full-block hashes of prompt + resume tokens: the router's when it sent
// them for this block size (tokens once), else computed here, once for both
// the remote-prefill check and the scheduler.
std::vector<kv::block_hash> block_hashes_of(const worker_state& st, msg::generate_request& req,
                                            const backends::engine_request& er) {
  const std::uint32_t bs = st.engine->block_size();
  const std::size_t full = (er.prompt.size() + er.resume_tokens.size()) / bs;
  if (req.hash_block_size == bs && !req.block_hashes.empty() && req.block_hashes.size() <= full)
    return std::move(req.block_hashes);
  return kv::hash_blocks(er.prompt, er.resume_tokens, bs,
                         er.cache_salt ? std::optional<std::string_view>(*er.cache_salt) : std::nullopt);
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
  auto fail = [&](const error& e) {
    st.cfg.metrics->rejected++;
    reply_error(st, m.reply, fmt, req->request_id, 0, e);
  };
  if (st.early_cancels.take(req->request_id, req->attempt, clock::now())) {  // its cancel came first
    st.log->info("{} (attempt {}) was cancelled before it arrived: ended at once", req->request_id, req->attempt);
    msg::token_chunk fin;
    fin.request_id = req->request_id;
    fin.worker_id = st.cfg.id;
    fin.finish_reason = msg::finish_kind::cancelled;
    fin.usage_info = msg::usage{};
    st.conn->publish(m.reply, msg::encode(fin, fmt), {}, msg::content_type_of(fmt));
    return;
  }
  if (st.draining) return fail(error{errc::unavailable, "worker " + st.cfg.id + " is draining"});
  if (auto why = st.engine->unavailable_reason())
    return fail(error{errc::unavailable, "worker " + st.cfg.id + " cannot serve now: " + *why});
  // The HTTP frontend checked these already; a body sent straight over NATS meets the same ranges here.
  if (auto s = backends::check_sampling(req->sampling, req->max_tokens); !s) return fail(s.err());
  auto tokens = backends::request_tokens(*st.engine, *req);
  if (!tokens) return fail(tokens.err());
  auto key = attempt_key(req->request_id, req->attempt);
  if (st.streams.count(key)) return fail(error{errc::conflict, "request id already running here"});
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
  er.latency = req->latency;
  // Structured output and tool calls (backends/output_rules.hpp).
  const auto tool_format = st.cfg.tool_call_format.value_or(st.engine->default_tool_format());
  auto rules = st.engine->constrains_by_schema()
                   ? backends::output_rules_upstream(*req, tool_format)
                   : backends::output_rules_for(*req, [&] { return st.engine->vocabulary(); }, tool_format);
  if (!rules) {
    st.log->info("request {} refused: {}", req->request_id, rules.err().describe());
    return fail(rules.err());
  }
  er.constraint = std::move(rules->constraint);
  er.output_schema = std::move(rules->upstream_schema);
  er.tool_format = rules->tool_format;
  if (auto why = context_error(*st.engine, er)) return fail(error{errc::bad_request, *why});
  auto hashes = block_hashes_of(st, *req, er);
  // A constrained request is prefilled here: the first token must pass its constraint.
  const bool remote = !er.constraint && !er.output_schema && may_prefill_remotely(st, er, hashes);
  auto ask = remote ? std::nullopt : tier_question(st, er, hashes);
  if (!remote && !ask) {
    if (auto s = st.engine->add_request_prehashed(er, hashes); !s) {
      st.log->warn("request {} rejected: {}", req->request_id, s.err().describe());
      return fail(s.err());
    }
  }
  st.cfg.metrics->admitted++;
  if (!req->resume_tokens.empty()) st.cfg.metrics->migrations_received++;
  auto& stream = st.streams[key];
  stream.request_id = req->request_id;
  stream.reply = m.reply;
  stream.format = fmt;
  stream.whole = !req->stream;
  // Acknowledge admission so the client knows who serves it.
  msg::token_chunk ack;
  send_chunk(st, stream, ack);
  if (ask) {
    stream.hashes = std::move(hashes);
    return onboard_then_run(self, key, std::move(er), std::move(*ask));
  }
  if (!remote) return kick(self);
  stream.phase = request_phase::remote_prefill;
  auto pr = remote_request(st, *req, er);
  stream.parked = std::move(er);
  stream.hashes = std::move(hashes);
  self->send(st.prefill_client, prefill_atom::value, key, std::move(pr));
}

void on_cancel(worker_actor* self, transport::nats_message& m) {
  auto& st = self->state;
  auto c = msg::decode_auto<msg::cancel_request>(m.data, m.content_type, st.cfg.limits);
  if (!c) {
    st.log->warn("bad cancel request: {}", c.err().describe());
    return;
  }
  bool matched = false;
  for (auto it = st.streams.begin(); it != st.streams.end();) {
    auto& [key, stream] = *it;
    if (stream.request_id != c->request_id || (c->attempt && key != attempt_key(c->request_id, *c->attempt))) {
      ++it;
      continue;
    }
    matched = true;
    st.log->info("cancelling {} ({})", key, c->reason);
    if (stream.phase == request_phase::running) {
      st.engine->cancel(key);
      ++it;
      continue;
    }
    // Still waiting for a remote prefill or its KV: end it here (a late reply or pull is released then).
    if (stream.phase == request_phase::remote_prefill) self->send(st.prefill_client, cancel_atom::value, key);
    msg::token_chunk fin;
    fin.finish_reason = msg::finish_kind::cancelled;
    fin.usage_info = msg::usage{};
    send_chunk(st, stream, fin);
    it = st.streams.erase(it);
  }
  // A remote prefill for it here is not useful any more either.
  for (const auto& [id, run] : st.prefill_runs)
    if (run.request_id == c->request_id && (!c->attempt || run.attempt == *c->attempt)) {
      st.engine->cancel(id);
      matched = true;
    }
  // Nothing here yet: the request may still be on its way through a router (see recent_cancels).
  if (!matched) st.early_cancels.remember(c->request_id, c->attempt, clock::now());
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
  auto& mx = *st.cfg.metrics;
  mx.steps++;
  mx.step_seconds.observe(std::max(spent, r.model_time_ms) / 1000.0);
  std::size_t produced = 0, tokens = 0;
  for (const auto& o : r.outputs) {
    produced += o.new_tokens.empty() ? 0 : 1;
    tokens += o.new_tokens.size();
  }
  if (produced > 0) mx.batch_size.observe(static_cast<double>(produced));
  mx.output_tokens += tokens;
  // An engine that lost its upstream ends streams `unavailable`: say we drain before their clients re-route them.
  if (std::any_of(r.outputs.begin(), r.outputs.end(), [](const auto& o) { return o.error_code == errc::unavailable; }))
    publish_heartbeat_now(st);
  double wait_ms = r.model_time_ms - spent;
  if (wait_ms > 0.05) {
    st.held = std::move(r);
    self->delayed_send(self, std::chrono::microseconds(static_cast<std::int64_t>(wait_ms * 1000)), publish_atom::value);
    return;
  }
  publish_outputs(st, r);
  continue_stepping(self);
}

// The heartbeat publisher's beat: flush events, answer the heartbeat. (Leases end
// by the prefill_server's timers: it tells us which slots to free.)
msg::heartbeat on_beat(worker_state& st) {
  publish_kv_events(st);  // events queued while idle (e.g. G3 blocks recovered at start) go out now
  st.last_heartbeat = clock::now();
  return make_heartbeat(st);
}

}  // namespace

msg::heartbeat make_heartbeat(worker_state& st) {
  msg::heartbeat hb;
  hb.instance_id = st.cfg.id;
  hb.component = msg::component_kind::worker;
  hb.role = st.cfg.role;
  hb.model = st.cfg.model;
  hb.generate_subject = subjects::worker_generate(st.cfg.ns, st.cfg.id);
  hb.lease_ms = static_cast<std::uint32_t>(st.cfg.lease_ms);
  hb.block_size = st.engine->block_size();
  auto load = st.engine->load();
  load.worker_id = st.cfg.id;
  load.timestamp_ms = now_ms();
  if (st.tiers.active()) load.tiers = st.tiers.load;  // the kv_block_manager's tiers
  hb.load = load;
  // An engine that cannot serve (an external engine's upstream is down) drains until it can again.
  auto why = st.engine->unavailable_reason();
  if (why.has_value() != st.engine_unavailable) {
    st.engine_unavailable = why.has_value();
    if (why) st.log->warn("worker {} drains: {}", st.cfg.id, *why);
    else st.log->info("worker {} serves again: its engine is available", st.cfg.id);
  }
  hb.draining = st.draining || st.engine_unavailable;
  st.cfg.metrics->set_load(load, hb.draining);
  hb.incarnation = st.incarnation;
  hb.kv_stream = st.cfg.kv_stream;
  hb.tokenizer_fingerprint = st.tokenizer_fingerprint;
  if (st.xfer) hb.leased_kv_blocks = static_cast<std::uint32_t>(st.xfer->leased_blocks());
  return hb;
}

void publish_heartbeat_now(worker_state& st) {
  st.last_heartbeat = clock::now();
  caf::anon_send(st.publisher, heartbeat_atom::value, make_heartbeat(st));
}

void publish_kv_events(worker_state& st) {
  if (st.tiers.active() && !st.tiers.evicted->empty()) {  // before G1's events: a block's lower tier is known as it leaves G1
    caf::anon_send(st.kv_manager, offload_atom::value, std::move(*st.tiers.evicted));
    st.tiers.evicted->clear();
  }
  auto events = st.engine->drain_kv_events();
  if (events.empty()) return;
  caf::anon_send(st.kv_manager, kv_events_atom::value, std::move(events));
}

void kick(worker_actor* self) {
  if (!self->state.stepping) {
    self->state.stepping = true;
    self->send(self, step_atom::value);
  }
}

void run_locally(worker_actor* self, const std::string& key, backends::engine_request er) {
  auto& st = self->state;
  auto it = st.streams.find(key);
  if (it == st.streams.end()) return;
  if (auto ask = tier_question(st, er, it->second.hashes)) return onboard_then_run(self, key, std::move(er), std::move(*ask));
  start_in_engine(self, key, std::move(er));
}

void start_in_engine(worker_actor* self, const std::string& key, backends::engine_request er) {
  auto& st = self->state;
  auto it = st.streams.find(key);
  if (it == st.streams.end()) return;
  auto& stream = it->second;
  stream.phase = request_phase::running;
  stream.parked.reset();
  auto hashes = std::move(stream.hashes);  // the prompt's: still a prefix of prompt + first tokens
  stream.hashes.clear();
  if (auto s = st.engine->add_request_prehashed(std::move(er), std::move(hashes)); !s) {
    st.log->warn("request {} rejected: {}", stream.request_id, s.err().describe());
    reply_error(st, stream.reply, stream.format, stream.request_id, stream.next_seq++, s.err());
    st.streams.erase(it);
    return;
  }
  kick(self);
}

caf::behavior engine_behavior(worker_actor* self, transport::nats_connection* conn,
                              std::shared_ptr<std::unique_ptr<backends::engine>> engine, worker_config cfg,
                              std::shared_ptr<std::unique_ptr<kv_transfer_agent>> xfer, heartbeat_publisher_actor publisher,
                              kv_block_manager_actor kv_manager, prefill_client_actor prefill_client,
                              prefill_server_actor prefill_server, tier_link tiers) {
  auto& st = self->state;
  st.conn = conn;
  st.engine = std::move(*engine);
  st.cfg = std::move(cfg);
  if (!st.cfg.metrics) st.cfg.metrics = std::make_shared<worker_metrics>();
  st.log = component_logger("worker");
  st.xfer = std::move(*xfer);
  st.tiers = std::move(tiers);
  st.tokenizer_fingerprint = backends::tokenizer_fingerprint(*st.engine);
  st.incarnation = std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ now_ms();
  // The worker's other actors live and die with this one.
  st.publisher = std::move(publisher);
  self->link_to(st.publisher);
  st.kv_manager = std::move(kv_manager);
  self->link_to(st.kv_manager);
  st.prefill_client = std::move(prefill_client);
  if (st.prefill_client) self->link_to(st.prefill_client);
  st.prefill_server = std::move(prefill_server);
  if (st.prefill_server) self->link_to(st.prefill_server);
  return {
      [=](generate_atom, transport::nats_message& m) { on_generate(self, m); },
      [=](cancel_atom, transport::nats_message& m) { on_cancel(self, m); },
      [=](step_atom) { on_step(self); },
      [=](publish_atom) {
        if (self->state.held) {
          publish_outputs(self->state, *self->state.held);
          self->state.held.reset();
        }
        continue_stepping(self);
      },
      // From the prefill_server: run a remote prefill's prompt for one token; free a lease's slots.
      [=](prefill_atom, std::uint64_t job, prefill_run& run) { on_prefill_run(self, job, run); },
      [=](release_atom, std::uint64_t lease_id) { free_lease(self->state, lease_id); },
      // From the prefill_client: prefill here (declined, failed or timed out), or the prefill worker's reply.
      // `fallback` (the remote path failed) is counted, with its cause, by the prefill_client itself.
      [=](local_atom, const std::string& key, bool /*fallback*/) {
        auto it = self->state.streams.find(key);
        if (it == self->state.streams.end() || it->second.phase != request_phase::remote_prefill) return;
        run_locally(self, key, std::move(*it->second.parked));
      },
      [=](prefilled_atom, const std::string& key, msg::remote_prefill_reply& r) { on_prefilled(self, key, r); },
      [=](forget_atom, const std::string& ucx_address) {
        if (self->state.xfer) self->state.xfer->forget_peer(ucx_address);
      },
      [=](pulled_atom, std::uint64_t id, std::int32_t code, const std::string& message) {
        on_pulled(self, id, code, message);
      },
      [=](heartbeat_atom) { return on_beat(self->state); },
      // From the kv_block_manager (it owns the tiers): bytes of hot G1 blocks, and the tiers' load.
      [=](export_atom, const std::vector<kv::block_hash>& hashes) { return copy_g1_blocks(self->state, hashes); },
      [=](tier_load_atom, const msg::kv_tier_load& load) { self->state.tiers.load = load; },
      [=](drain_atom) {
        self->state.draining = true;
        self->state.log->info("{} draining: {} streams in flight", self->state.cfg.id, self->state.streams.size());
        publish_heartbeat_now(self->state);
        if (self->state.prefill_server) caf::anon_send(self->state.prefill_server, drain_atom::value);
      },
      [=](drain_atom, caf::get_atom) { return static_cast<std::int64_t>(self->state.streams.size()); },
  };
}

}  // namespace yard::actors::worker_detail
