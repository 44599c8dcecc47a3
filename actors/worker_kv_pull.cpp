// actors/worker_kv_pull.cpp — a remote prefill's result coming into the engine actor (see worker_engine.hpp).
//
// The prefill_client hands over a prefill worker's reply: its first token goes
// to the client at once, then the prompt's KV blocks are pulled over UCX on
// the transfer thread while this worker keeps decoding, imported into the
// engine's prefix cache, and the request runs here from there. Any failure
// prefills locally instead.
#include <caf/all.hpp>

#include "actors/worker_engine.hpp"

namespace yard::actors::worker_detail {

namespace {

// The stream of `key` when it still waits for the remote path; nullptr otherwise.
stream_state* waiting_stream(worker_state& st, const std::string& key, request_phase phase) {
  auto it = st.streams.find(key);
  return it != st.streams.end() && it->second.phase == phase ? &it->second : nullptr;
}

}  // namespace

void on_prefilled(worker_actor* self, const std::string& key, msg::remote_prefill_reply& r) {
  auto& st = self->state;
  auto* stream = waiting_stream(st, key, request_phase::remote_prefill);
  if (!stream) {  // cancelled meanwhile
    release_remote_lease(*st.conn, r);
    return;
  }
  // The first token came from the prefill worker's logits: stream it now.
  msg::token_chunk c;
  c.token_ids = r.first_tokens;
  c.text = r.text;
  c.logprobs = r.logprobs;
  c.token_logprobs = r.token_logprobs;
  c.finish_reason = r.finish_reason;
  if (r.finish_reason) {
    msg::usage u = r.usage_info;
    u.completion_tokens = static_cast<std::uint32_t>(r.first_tokens.size());
    c.usage_info = u;
  }
  send_chunk(st, *stream, c);
  if (r.finish_reason) {
    st.streams.erase(key);
    release_remote_lease(*st.conn, r);
    return;
  }
  auto er = std::move(*stream->parked);
  er.resume_tokens = r.first_tokens;
  auto job = st.xfer->prepare_pull(*st.engine, r, stream->hashes);
  if (!job || !*job) {
    if (!job) {
      st.log->warn("KV of {} from {} unusable ({}): prefilling locally", r.request_id, r.prefill_worker_id,
                   job.err().describe());
      st.cfg.metrics->local_fallbacks.add({fallback_pull_failed});
    }
    release_remote_lease(*st.conn, r);
    run_locally(self, key, std::move(er));
    return;
  }
  // The bytes move on the transfer thread; this worker keeps decoding meanwhile.
  stream->phase = request_phase::pulling_kv;
  stream->parked = std::move(er);
  auto id = (*job)->id;
  auto& p = st.pulls[id] = pull_wait{key, std::move(r), std::move(**job), clock::now()};
  st.xfer->start_pull(p.job, [actor = caf::actor_cast<caf::actor>(self), id](status s) {
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
    st.cfg.metrics->local_fallbacks.add({fallback_pull_failed});
    st.cfg.metrics->kv_transfer_failures++;
  } else {
    auto& mx = *st.cfg.metrics;
    mx.kv_transfer_blocks += *n;
    mx.kv_transfer_bytes += *n * st.xfer->block_bytes();
    mx.kv_transfer_seconds.observe(std::chrono::duration<double>(clock::now() - p.started).count());
    st.log->debug("{}: {} KV blocks from {}", p.reply.request_id, *n, p.reply.prefill_worker_id);
    publish_kv_events(st);  // imported blocks are ours now: the router may route to them
  }
  release_remote_lease(*st.conn, p.reply);
  auto* stream = waiting_stream(st, p.key, request_phase::pulling_kv);
  if (!stream) return;  // the client cancelled meanwhile
  run_locally(self, p.key, std::move(*stream->parked));
}

}  // namespace yard::actors::worker_detail
