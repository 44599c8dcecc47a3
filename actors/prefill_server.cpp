// actors/prefill_server.cpp — see prefill_server.hpp.
//
// A job's life: a remote_prefill_request is checked and handed to the engine
// actor as a one-token run (running); its outputs come back one by one; the
// last one ends it with a reply to the decode worker: an error, the first
// token alone (the request is done, or nothing was staged), or the first token
// with a lease on the staged blocks (leased) until kv_release or lease_ms.
#include "actors/prefill_server.hpp"

#include <chrono>
#include <map>

#include <caf/all.hpp>

#include "actors/prefill_client.hpp"  // attempt_key
#include "common/log.hpp"
#include "kv/block_hash.hpp"
#include "messages/subjects.hpp"

namespace yard::actors {

namespace {

enum class job_phase : std::uint8_t {
  running,  // in the engine: outputs accumulate into the reply
  leased,   // replied; its blocks stay staged until kv_release or lease_ms
};

struct prefill_job {
  job_phase phase = job_phase::running;
  std::string engine_id;  // the run's engine request id ("pf:<request id>#<attempt>")
  msg::remote_prefill_request req;
  std::string reply;      // the decode worker's inbox
  msg::remote_prefill_reply out;
  std::uint64_t lease_id = 0;  // leased
};

struct server_state {
  transport::nats_connection* conn = nullptr;
  prefill_server_config cfg;
  caf::actor engine;
  bool draining = false;
  std::map<std::uint64_t, prefill_job> jobs;      // job number -> job
  std::map<std::uint64_t, std::uint64_t> leases;  // lease id -> job number (leased jobs)
  std::uint64_t next_job = 1;
  std::shared_ptr<spdlog::logger> log;
  static inline const char* name = "prefill_server";
};

using server = prefill_server_actor::stateful_pointer<server_state>;

void reply_prefill_error(server_state& st, const std::string& reply, const msg::remote_prefill_request& req,
                         const error& err) {
  msg::remote_prefill_reply r;
  r.request_id = req.request_id;
  r.attempt = req.attempt;
  r.prefill_worker_id = st.cfg.worker_id;
  r.error = msg::error_reply{static_cast<std::int32_t>(err.code), err.message};
  st.conn->publish(reply, msg::encode(r));
}

bool running_here(const server_state& st, const std::string& engine_id) {
  for (const auto& [n, job] : st.jobs)
    if (job.phase == job_phase::running && job.engine_id == engine_id) return true;
  return false;
}

void on_request(server self, const transport::nats_message& m) {
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
  const auto& id = st.cfg.worker_id;
  if (st.cfg.role == msg::worker_role::decode) return refuse(errc::bad_request, "worker " + id + " does not prefill for others");
  if (st.draining) return refuse(errc::unavailable, "worker " + id + " is draining");
  if (req->block_size != st.cfg.block_size)
    return refuse(errc::bad_request, "block size " + std::to_string(req->block_size) + " != " +
                                         std::to_string(st.cfg.block_size));
  prefill_run run;
  auto& er = run.request;
  er.request_id = "pf:" + attempt_key(req->request_id, req->attempt);
  er.prompt = req->token_ids;
  er.sampling = req->sampling;
  er.max_tokens = 1;
  er.stop_token_ids = req->stop_token_ids;
  er.stop = req->stop;
  er.cache_salt = req->cache_salt;
  if (running_here(st, er.request_id)) return refuse(errc::conflict, "already prefilling this request");
  run.hashes = kv::hash_blocks(er.prompt, st.cfg.block_size,
                               er.cache_salt ? std::optional<std::string_view>(*er.cache_salt) : std::nullopt);
  run.request_id = req->request_id;
  run.attempt = req->attempt;
  run.stage = req->max_tokens != 1;  // max_tokens 1: this token ends the request (0 = until the context ends)
  const auto n = st.next_job++;
  auto& job = st.jobs[n];
  job.engine_id = er.request_id;
  job.req = std::move(*req);
  job.reply = m.reply;
  job.out.request_id = job.req.request_id;
  job.out.attempt = job.req.attempt;
  job.out.prefill_worker_id = id;
  self->anon_send(st.engine, prefill_atom::value, n, std::move(run));
}

// Frees a leased job's staging slots (in the engine actor) and forgets the job.
void end_lease(server self, std::map<std::uint64_t, std::uint64_t>::iterator it) {
  auto& st = self->state;
  self->anon_send(st.engine, release_atom::value, it->first);
  st.jobs.erase(it->second);
  st.leases.erase(it);
}

// A job's output from the engine actor: on its last one, reply (and hold the lease, if any).
void on_output(server self, std::uint64_t n, prefill_output& p) {
  auto& st = self->state;
  auto it = st.jobs.find(n);
  if (it == st.jobs.end() || it->second.phase != job_phase::running) {
    st.log->error("output for prefill job {} that is not running here: dropped", n);
    if (p.staged && p.staged->lease_id)
      self->anon_send(st.engine, release_atom::value, p.staged->lease_id);
    return;
  }
  auto& job = it->second;
  if (p.refused) {
    reply_prefill_error(st, job.reply, job.req, *p.refused);
    st.jobs.erase(it);
    return;
  }
  auto& out = p.out;
  auto& r = job.out;
  r.first_tokens.insert(r.first_tokens.end(), out.new_tokens.begin(), out.new_tokens.end());
  r.text += out.text_delta;
  r.logprobs.insert(r.logprobs.end(), out.logprobs.begin(), out.logprobs.end());
  r.token_logprobs.insert(r.token_logprobs.end(), out.token_logprobs.begin(), out.token_logprobs.end());
  if (!out.finish_reason) return;
  const auto why = *out.finish_reason;
  if (why == msg::finish_kind::error || why == msg::finish_kind::cancelled || r.first_tokens.empty()) {
    r.error = msg::error_reply{static_cast<std::int32_t>(errc::internal),
                               out.error_message.value_or("prefill ended: " + std::string(msg::wire_name(why)))};
    st.conn->publish(job.reply, msg::encode(r));
    st.jobs.erase(it);
    return;
  }
  r.usage_info = out.usage_info;
  if (why == msg::finish_kind::stop) r.finish_reason = msg::finish_kind::stop;
  else if (job.req.max_tokens == 1) r.finish_reason = msg::finish_kind::length;  // 0 = until the context ends
  if (!r.finish_reason && p.staged) {
    r.lease_id = p.staged->lease_id;
    r.lease_ms = static_cast<std::uint32_t>(st.cfg.lease_ms);
    r.region = std::move(p.staged->region);
    r.blocks = std::move(p.staged->blocks);
    r.release_subject = subjects::worker_kv_release(st.cfg.ns, st.cfg.worker_id);
  } else if (!r.finish_reason && p.stage_error) {
    // Still worth a reply: the first token saves the decode worker a prefill's latency.
    st.log->warn("{}: KV not staged ({}): the decode worker recomputes", r.request_id, p.stage_error->describe());
  }
  st.conn->publish(job.reply, msg::encode(r));
  st.cfg.metrics->remote_prefills_served++;
  if (r.lease_id) {
    job.phase = job_phase::leased;
    job.lease_id = r.lease_id;
    job.out = msg::remote_prefill_reply{};  // sent: only the lease matters now
    st.leases[job.lease_id] = n;
    self->delayed_send(self, std::chrono::milliseconds(st.cfg.lease_ms), lease_end_atom::value, job.lease_id);
  } else {
    st.jobs.erase(it);
  }
  if (st.cfg.faults) {
    st.conn->flush();
    st.cfg.faults->after_reply();
  }
}

void on_release(server self, const transport::nats_message& m) {
  auto& st = self->state;
  auto rel = msg::decode_auto<msg::kv_release>(m.data, m.content_type, st.cfg.limits);
  if (!rel) {
    st.log->warn("bad kv_release: {}", rel.err().describe());
    return;
  }
  if (st.cfg.faults && st.cfg.faults->drop_release()) {
    st.log->warn("fault injection: ignoring kv_release of lease {:x}", rel->lease_id);
    return;
  }
  auto it = st.leases.find(rel->lease_id);
  if (it == st.leases.end()) {
    st.log->debug("kv_release of unknown lease {:x} ({}): already expired", rel->lease_id, rel->request_id);
    return;
  }
  end_lease(self, it);
}

prefill_server_actor::behavior_type server_behavior(server self, transport::nats_connection* conn,
                                                    prefill_server_config cfg) {
  auto& st = self->state;
  st.conn = conn;
  st.cfg = std::move(cfg);
  if (!st.cfg.metrics) st.cfg.metrics = std::make_shared<worker_metrics>();
  st.log = component_logger("worker");
  return {
      [=](open_atom, caf::actor engine) { self->state.engine = std::move(engine); },
      [=](prefill_atom, const transport::nats_message& m) { on_request(self, m); },
      [=](release_atom, const transport::nats_message& m) { on_release(self, m); },
      [=](prefilled_atom, std::uint64_t n, prefill_output& p) { on_output(self, n, p); },
      [=](lease_end_atom, std::uint64_t lease_id) {
        auto it = self->state.leases.find(lease_id);
        if (it == self->state.leases.end()) return;  // released in time
        self->state.log->warn("KV lease {:x} expired unreleased after {} ms: blocks freed", lease_id,
                              self->state.cfg.lease_ms);
        end_lease(self, it);
      },
      [=](drain_atom) { self->state.draining = true; },
  };
}

}  // namespace

prefill_server_actor spawn_prefill_server(caf::actor_system& sys, transport::nats_connection& conn,
                                          prefill_server_config cfg) {
  return sys.spawn(server_behavior, &conn, std::move(cfg));
}

bool prefill_run_stages(bool stage, msg::finish_kind why, bool produced) {
  return stage && produced && why != msg::finish_kind::stop && why != msg::finish_kind::error &&
         why != msg::finish_kind::cancelled;
}

}  // namespace yard::actors
