// actors/router_actor.cpp — the router actor: dispatch, held requests, its behaviour (see router_actor.hpp).
#include "actors/router_actor.hpp"
#include "actors/service_face.hpp"
#include "actors/router_state.hpp"

#include <chrono>
#include <deque>
#include <map>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "backends/tokenizer_fingerprint.hpp"
#include "actors/worker_liveness.hpp"
#include "actors/worker_registry.hpp"
#include "common/log.hpp"
#include "kv/block_hash.hpp"
#include "kv/kv_router_core.hpp"
#include "messages/cluster_subjects.hpp"
#include "messages/disagg.hpp"
#include "messages/error_chunk.hpp"
#include "messages/router.hpp"
#include "messages/subjects.hpp"
#include "transport/actor_bridge.hpp"

namespace yard::actors {

namespace {

using namespace router_detail;
double now_ms(const router_state& st) {
  return std::chrono::duration<double, std::milli>(clock::now() - st.started).count();
}

// `reason` labels the failure in yard_router_request_failures_total.
void reply_error(router_state& st, const transport::nats_message& m, msg::wire_format f, const std::string& request_id,
                 const error& err, const char* reason) {
  st.metrics->failures.add({reason});
  st.log->info("request {} answered with an error ({}): {}", request_id.empty() ? "(no id)" : request_id, reason,
               err.describe());
  auto c = msg::error_chunk(request_id, 0, err.code, err.message);
  st.conn->publish(m.reply, msg::encode(c, f), {}, msg::content_type_of(f));
}

// How long a request that finds no worker should wait rather than fail (0: fail now):
// the router just started (it has not heard a full lease period of heartbeats),
// workers it knows have not answered their probe yet, or a worker just went away
// (a crash or a rolling update: it is likely restarting, so a short total outage
// queues requests instead of failing them).
std::chrono::milliseconds hold_for(const router_state& st) {
  auto now = clock::now();
  auto startup = std::chrono::milliseconds(st.cfg.startup_wait_ms);
  auto outage = std::chrono::milliseconds(st.cfg.outage_wait_ms);
  if (now - st.last_loss < outage) return std::max(outage, startup);
  if (now - st.started < startup) return startup;
  for (const auto& [id, w] : st.workers.all())
    if (!w.answered && !w.last.draining) return startup;
  return std::chrono::milliseconds{0};
}

// The router's tokens are the worker's only when both tokenizers are known and
// alike (fingerprints in heartbeats); otherwise the worker gets the request as
// sent and tokenizes it itself.
bool tokenizers_agree(const router_state& st, const worker_entry& w) {
  return st.fingerprint != 0 && w.last.tokenizer_fingerprint == st.fingerprint && !st.mismatched.count(w.last.instance_id);
}

void on_generate(router_actor* self, transport::nats_message& m, bool held = false) {
  auto& st = self->state;
  if (m.reply.empty()) {
    st.log->warn("generate request without a reply inbox on {}: dropped", m.subject);
    return;
  }
  auto fmt = msg::detect_format(m.content_type, m.data);
  auto req = msg::decode<msg::generate_request>(m.data, fmt, st.cfg.limits);
  if (!req) {
    st.log->warn("bad generate request: {}", req.err().describe());
    reply_error(st, m, fmt, "", req.err(), "bad_request");
    return;
  }
  if (req->request_id.empty()) {
    // A caller may omit the id: name it here, and forward a body that carries it so the
    // worker's chunks (and the client's reply) say which id it got.
    req->request_id = st.cfg.id + "-" + std::to_string(st.id_nonce) + "-" + std::to_string(++st.named);
    m.data = msg::encode(*req, fmt);
  }
  if (!req->model.empty() && !st.workers.knows_model(req->model) && st.workers.size() > 0) {
    reply_error(st, m, fmt, req->request_id, error{errc::not_found, "model '" + req->model + "' is not served"}, "unknown_model");
    return;
  }
  auto candidates = st.workers.eligible(req->model);
  if (candidates.empty()) {
    auto wait = held ? std::chrono::milliseconds{0} : hold_for(st);
    if (wait.count() > 0 && st.held.size() < st.cfg.max_held) {
      st.held.push_back(held_request{std::move(m), req->model, clock::now() + wait});
      return;
    }
    reply_error(st, m, fmt, req->request_id, error{errc::unavailable, "no worker available"}, "no_worker");
    return;
  }
  const std::string& model = candidates.front()->last.model;
  auto* core = core_for(st, model, candidates.front()->last.block_size);
  if (core == nullptr) {
    reply_error(st, m, fmt, req->request_id, error{errc::internal, "router core unavailable"}, "internal");
    return;
  }
  pump(st);
  auto tokens = backends::request_tokens(*st.cfg.tokenizer, *req);
  kv::route_input in;
  in.request_id = req->request_id + "#" + std::to_string(req->attempt);
  in.now_ms = now_ms(st);
  in.max_tokens = req->max_tokens;
  if (req->session_id) in.session_id = *req->session_id;
  const std::uint32_t block_size = core->block_size();  // the pool's: every worker in it hashes alike
  if (tokens) {
    // A migrated request is prefilled with the tokens already delivered too.
    in.prompt_tokens = static_cast<std::uint32_t>(tokens->size() + req->resume_tokens.size());
    in.hashes = kv::hash_blocks(*tokens, req->resume_tokens, block_size,
                                req->cache_salt ? std::optional<std::string_view>(*req->cache_salt) : std::nullopt);
  }
  auto out = core->route(in);
  if (!out) {
    reply_error(st, m, fmt, req->request_id, out.err(), "no_worker");
    return;
  }
  const worker_entry* chosen = nullptr;
  for (const auto* c : candidates)
    if (c->last.instance_id == out->worker_id) chosen = c;
  if (chosen == nullptr) {
    // The core knew a worker the registry no longer offers (draining, leaving): fall back.
    chosen = candidates[st.routed % candidates.size()];
  }
  st.routed++;
  st.metrics->decisions.add({"decode", chosen->last.instance_id});
  st.metrics->overlap_blocks.observe(out->overlap_blocks);
  if (st.cfg.policy == "ttft" && out->worker_id == chosen->last.instance_id)
    st.metrics->predicted_ttft_seconds.observe(out->score / 1000.0);  // the ttft policy's score is its prediction in ms
  const bool came_as_ids = req->token_ids && !req->token_ids->empty();
  if (tokens && (came_as_ids || tokenizers_agree(st, *chosen))) {
    // Tokens once: the worker gets the prompt as token ids and the block hashes computed here.
    if (!came_as_ids) {
      req->token_ids = std::move(*tokens);
      req->prompt.reset();
      req->messages.reset();
    }
    req->block_hashes.assign(in.hashes.begin(), in.hashes.end());
    req->hash_block_size = block_size;
    // Ids and hashes can make a body several times its text (JSON spells each id out). Over the size a worker
    // takes, the request goes as the client sent it and the worker tokenizes it: the client's size is what
    // counts against the limit, never one it did not send.
    auto with_tokens = msg::encode(*req, fmt);
    if (with_tokens.size() <= st.cfg.limits.max_bytes) m.data = std::move(with_tokens);
    else
      st.log->debug("{}: forwarded as sent (as token ids it would be {} bytes, over {})", req->request_id,
                    with_tokens.size(), st.cfg.limits.max_bytes);
  }
  auto ct = m.content_type.empty() ? std::string(msg::content_type_of(fmt)) : m.content_type;
  if (auto s = st.conn->publish(chosen->last.generate_subject, m.data, m.reply, ct); !s) {
    reply_error(st, m, fmt, req->request_id, s.err(), "publish_failed");
    return;
  }
  msg::route_notice note;
  note.router_id = st.cfg.id;
  note.request_id = in.request_id;
  note.worker_id = chosen->last.instance_id;
  note.model = model;
  note.prompt_tokens = in.prompt_tokens;
  note.cached_tokens = out->overlap_blocks * block_size;
  note.max_tokens = in.max_tokens;
  st.conn->publish(subjects::router_inflight(st.cfg.ns), msg::encode(note));
  st.log->debug("{} -> {} (overlap {} blocks, score {:.2f})", req->request_id, chosen->last.instance_id,
                out->overlap_blocks, out->score);
}

// Routes held requests that a worker can take now; fails those past their deadline.
void release_held(router_actor* self) {
  auto& st = self->state;
  if (st.held.empty()) return;
  auto now = clock::now();
  std::deque<held_request> keep;
  // on_generate(held = true) routes or fails; it never holds again, so st.held stays empty meanwhile.
  auto pending = std::move(st.held);
  st.held.clear();
  for (auto& h : pending) {
    if (!st.workers.eligible(h.model).empty() || now >= h.deadline) on_generate(self, h.m, true);
    else keep.push_back(std::move(h));
  }
  st.held = std::move(keep);
}

// A decode worker asks for a remote prefill: pick a prefill worker KV-aware and
// forward the request unchanged; its reply goes straight to the decode worker.
void on_prefill(router_actor* self, transport::nats_message& m) {
  auto& st = self->state;
  if (m.reply.empty()) return;
  auto fail = [&](const std::string& request_id, std::uint32_t attempt, const error& err) {
    msg::remote_prefill_reply r;
    r.request_id = request_id;
    r.attempt = attempt;
    r.error = msg::error_reply{static_cast<std::int32_t>(err.code), err.message};
    st.conn->publish(m.reply, msg::encode(r));
  };
  auto req = msg::decode_auto<msg::remote_prefill_request>(m.data, m.content_type, st.cfg.limits);
  if (!req) {
    st.log->warn("bad remote prefill request: {}", req.err().describe());
    fail("", 0, req.err());
    return;
  }
  auto candidates = st.workers.eligible_prefill(req->model);
  if (candidates.empty()) {
    fail(req->request_id, req->attempt, error{errc::unavailable, "no prefill worker available"});
    return;
  }
  const auto& first = candidates.front()->last;
  auto* core = core_for(st, pool_key(first.model, true), first.block_size);
  if (core == nullptr) {
    fail(req->request_id, req->attempt, error{errc::internal, "router core unavailable"});
    return;
  }
  pump(st);
  kv::route_input in;
  in.request_id = "pf:" + req->request_id + "#" + std::to_string(req->attempt);
  in.now_ms = now_ms(st);
  in.max_tokens = 1;
  in.prompt_tokens = static_cast<std::uint32_t>(req->token_ids.size());
  in.hashes = kv::hash_blocks(req->token_ids, core->block_size(),
                              req->cache_salt ? std::optional<std::string_view>(*req->cache_salt) : std::nullopt);
  auto out = core->route(in);
  const worker_entry* chosen = nullptr;
  if (out)
    for (const auto* c : candidates)
      if (c->last.instance_id == out->worker_id) chosen = c;
  if (chosen == nullptr) chosen = candidates[st.routed % candidates.size()];
  st.routed++;
  st.metrics->decisions.add({"prefill", chosen->last.instance_id});
  if (auto s = st.conn->publish(subjects::worker_prefill(st.cfg.ns, chosen->last.instance_id), m.data, m.reply,
                                m.content_type);
      !s) {
    fail(req->request_id, req->attempt, s.err());
    return;
  }
  st.log->debug("remote prefill {} -> {} (overlap {} blocks)", req->request_id, chosen->last.instance_id,
                out ? out->overlap_blocks : 0);
}

caf::behavior router_behavior(router_actor* self, transport::nats_connection* conn, router_config cfg,
                              std::string snapshot_inbox) {
  auto& st = self->state;
  st.conn = conn;
  st.cfg = std::move(cfg);
  if (!st.cfg.tokenizer) st.cfg.tokenizer = std::make_shared<backends::byte_tokenizer>();
  st.fingerprint = backends::tokenizer_fingerprint(*st.cfg.tokenizer);
  st.snapshot_inbox = std::move(snapshot_inbox);
  st.log = component_logger("router");
  if (!st.cfg.metrics) st.cfg.metrics = std::make_shared<router_metrics>();
  st.metrics = st.cfg.metrics;
  st.metrics->router_id = st.cfg.id;
  st.metrics->policy = st.cfg.use_kv_events ? st.cfg.policy : st.cfg.policy + "+approximate";
  st.cfg.registry.ns = st.cfg.ns;
  st.cfg.registry.require_answer = true;
  st.workers = worker_registry(st.cfg.registry);
  st.liveness = std::make_unique<worker_liveness>(conn, st.cfg.ns, st.snapshot_inbox + "-status", st.log, st.cfg.limits);
  self->send(self, tick_atom::value);
  return {
      [=](generate_atom, transport::nats_message& m) { on_generate(self, m); },
      [=](heartbeat_atom, transport::nats_message& m) { on_heartbeat(self, m); },
      [=](kv_events_atom, transport::nats_message& m) { on_kv_events(self, m); },
      [=](snapshot_atom, transport::nats_message& m) { on_snapshot_reply(self, m); },
      [=](snapshot_atom, const std::string& worker_id) {
        if (self->state.model_of.count(worker_id)) request_snapshot(self->state, worker_id);
      },
      [=](route_notice_atom, transport::nats_message& m) { on_route_notice(self, m); },
      [=](latency_atom, transport::nats_message& m) { on_latency_report(self, m); },
      [=](prefill_atom, transport::nats_message& m) { on_prefill(self, m); },
      [=](status_atom, transport::nats_message& m) {
        self->state.liveness->on_status_reply(self->state.workers, m);
        join_pool(self->state, subjects::last_token(m.subject));  // answered now: into its routing pool
        release_held(self);
      },
      [=](caf::get_atom) { return stats_of(self->state); },
      [=](tick_atom) {
        auto& st = self->state;
        for (const auto& id : st.workers.expire(clock::now())) {
          st.log->warn("worker {} missed its lease: removed from routing", id);
          drop_worker(st, id);
        }
        pump(st);
        st.liveness->probe(st.workers, clock::now());
        release_held(self);
        refresh_gauges(st);
        self->delayed_send(self, std::chrono::milliseconds(st.cfg.tick_ms), tick_atom::value);
      },
  };
}

}  // namespace

status validate_router_config(const router_config& cfg) {
  auto p = kv::make_policy(cfg.policy, cfg.policy_cfg, cfg.seed);
  if (!p) return p.err();
  return status::success();
}

result<caf::actor> spawn_router(caf::actor_system& sys, transport::nats_connection& conn, router_config cfg) {
  if (auto s = validate_router_config(cfg); !s) return s.err();
  auto ns = cfg.ns;
  auto inbox = conn.new_inbox();
  auto actor = sys.spawn(router_behavior, &conn, cfg, inbox);
  auto probe_inbox = inbox + "-status";
  auto keep = std::make_shared<std::vector<transport::subscription>>();
  // The NATS services face ($SRV.PING/INFO/STATS): discoverable with `nats micro ls`.
  service_face_config fc;
  fc.kind = component_kind::router;
  fc.ns = ns;
  fc.endpoints = {{"generate", subjects::router_generate(ns), "routers", {{"format", "msgpack or JSON generate_request"}}, {}},
                  {"prefill", subjects::router_prefill(ns), "routers", {}, {}}};
  auto face = start_service_face(conn, std::move(fc));
  if (!face) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    return face.err();
  }
  auto sub = [&](const std::string& subject, auto tag, const std::string& group = {}, const std::string& endpoint = {}) -> status {
    auto s = expose_counted(conn, subject, actor, tag, group, *face, endpoint);
    if (!s) return s.err();
    keep->push_back(std::move(*s));
    return status::success();
  };
  for (auto s : {sub(subjects::router_generate(ns), generate_atom::value, "routers", "generate"),
                 sub(subjects::heartbeat_all(ns), heartbeat_atom::value),
                 sub(subjects::kv_events_all(ns), kv_events_atom::value), sub(inbox + ".*", snapshot_atom::value),
                 sub(probe_inbox + ".*", status_atom::value), sub(subjects::router_inflight(ns), route_notice_atom::value),
                 sub(subjects::latency_metrics(ns), latency_atom::value),
                 sub(subjects::router_prefill(ns), prefill_atom::value, "routers", "prefill")}) {
    if (!s) {
      caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
      return s.err();
    }
  }
  actor->attach_functor([keep, face = *face]() mutable {
    keep->clear();
    face->stop();
  });
  conn.flush();
  request_roster(conn, ns);  // a restarted router routes at once
  return actor;
}

}  // namespace yard::actors
