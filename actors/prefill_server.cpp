// actors/prefill_server.cpp — the engine actor serving remote prefills (see worker_engine.hpp).
//
// A prefill worker runs a decode worker's prompt for one token on its own
// engine, stages the prompt's KV blocks under a lease (kv_transfer_agent) and
// replies with the first token, the lease and where to pull from; the blocks
// are freed on kv_release or when the lease expires.
#include <caf/all.hpp>

#include "actors/worker_engine.hpp"
#include "kv/block_hash.hpp"
#include "messages/subjects.hpp"

namespace yard::actors::worker_detail {

namespace {

void reply_prefill_error(worker_state& st, const std::string& reply, const msg::remote_prefill_request& req,
                         const error& err) {
  msg::remote_prefill_reply r;
  r.request_id = req.request_id;
  r.attempt = req.attempt;
  r.prefill_worker_id = st.cfg.id;
  r.error = msg::error_reply{static_cast<std::int32_t>(err.code), err.message};
  st.conn->publish(reply, msg::encode(r));
}

}  // namespace

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
  if (st.cfg.role == msg::worker_role::decode) return refuse(errc::bad_request, "worker " + st.cfg.id + " does not prefill for others");
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
  auto hashes = kv::hash_blocks(er.prompt, st.engine->block_size(),
                                er.cache_salt ? std::optional<std::string_view>(*er.cache_salt) : std::nullopt);
  if (auto s = st.engine->add_request_prehashed(std::move(er), hashes); !s) return refuse(s.err().code, s.err().message);
  auto& job = st.prefill_jobs[id];
  job.hashes = std::move(hashes);
  job.req = std::move(*req);
  job.reply = m.reply;
  job.out.request_id = job.req.request_id;
  job.out.attempt = job.req.attempt;
  job.out.prefill_worker_id = st.cfg.id;
  kick(self);
}

// A prefill job's engine output: on its end, stage the blocks and reply.
void on_prefill_output(worker_state& st, prefill_job& job, backends::sequence_output& out) {
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
    return;
  }
  r.usage_info = out.usage_info;
  if (why == msg::finish_kind::stop) r.finish_reason = msg::finish_kind::stop;
  else if (job.req.max_tokens == 1) r.finish_reason = msg::finish_kind::length;  // 0 = until the context ends
  if (!r.finish_reason && st.xfer) {
    if (st.cfg.faults && st.cfg.faults->corrupt_stage()) st.xfer->corrupt_next_stage();
    auto staged = st.xfer->stage(*st.engine, job.hashes, clock::now());
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
  st.cfg.metrics->remote_prefills_served++;
  if (st.cfg.faults) {
    st.conn->flush();
    st.cfg.faults->after_reply();
  }
}

void on_kv_release(worker_state& st, transport::nats_message& m) {
  auto rel = msg::decode_auto<msg::kv_release>(m.data, m.content_type, st.cfg.limits);
  if (!rel) {
    st.log->warn("bad kv_release: {}", rel.err().describe());
    return;
  }
  if (st.cfg.faults && st.cfg.faults->drop_release()) {
    st.log->warn("fault injection: ignoring kv_release of lease {:x}", rel->lease_id);
    return;
  }
  if (!st.xfer || !st.xfer->release(rel->lease_id))
    st.log->debug("kv_release of unknown lease {:x} ({}): already expired", rel->lease_id, rel->request_id);
}

}  // namespace yard::actors::worker_detail
