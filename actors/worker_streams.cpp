// actors/worker_streams.cpp — the engine actor's chunks to clients (see worker_engine.hpp).
#include <caf/all.hpp>

#include "actors/worker_engine.hpp"
#include "messages/error_chunk.hpp"

namespace yard::actors::worker_detail {

namespace {

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
  into.tool_calls.insert(into.tool_calls.end(), std::make_move_iterator(more.tool_calls.begin()),
                         std::make_move_iterator(more.tool_calls.end()));
  into.finish_reason = std::move(more.finish_reason);
  into.usage_info = std::move(more.usage_info);
  into.error = std::move(more.error);
}

}  // namespace

void reply_error(worker_state& st, const std::string& reply, msg::wire_format f, const std::string& request_id,
                 std::uint64_t seq, const error& err) {
  st.log->info("request {} answered with an error: {}", request_id.empty() ? "(no id)" : request_id, err.describe());
  auto c = msg::error_chunk(request_id, seq, err.code, err.message);
  c.worker_id = st.cfg.id;
  if (auto sent = st.conn->publish(reply, msg::encode(c, f), {}, msg::content_type_of(f)); !sent)
    st.log->warn("request {}: its error reply was not sent: {}", request_id.empty() ? "(no id)" : request_id,
                 sent.err().describe());
}

void send_chunk(worker_state& st, stream_state& s, msg::token_chunk& c) {
  c.request_id = s.request_id;
  c.seq = s.next_seq++;
  c.worker_id = st.cfg.id;
  s.sent_token = s.sent_token || !c.token_ids.empty();
  s.last_sent = clock::now();
  auto body = msg::encode(c, s.format);
  auto sent = st.conn->publish(s.reply, body, {}, msg::content_type_of(s.format));
  if (sent) return;
  st.log->warn("request {}: chunk {} ({} bytes) not sent: {}", s.request_id, c.seq, body.size(), sent.err().describe());
  if (sent.err().code != errc::payload_too_large) return;  // a closed connection: the client's frontend migrates
  // Too large for the bus every time: the client hears why in this chunk's place, not a gap in the stream.
  reply_error(st, s.reply, s.format, s.request_id, c.seq,
              error{errc::internal, "an output chunk of " + std::to_string(body.size()) +
                                        " bytes is over the NATS server's max_payload (" + sent.err().message + ")"});
  st.engine->cancel(s.request_id);
}

// Streams one step's outputs to their clients. The step's KV events go out
// first, so a router sees the blocks before the client sees the request end.
void publish_outputs(worker_state& st, backends::step_result& r) {
  publish_kv_events(st);
  bool finished = false;
  for (auto& out : r.outputs) {
    if (auto pr = st.prefill_runs.find(out.request_id); pr != st.prefill_runs.end()) {
      const bool last = out.finish_reason.has_value();
      hand_prefill_output(st, pr->second, out);
      if (last) st.prefill_runs.erase(pr);
      continue;
    }
    auto it = st.streams.find(out.request_id);
    if (it == st.streams.end()) continue;
    if (out.new_tokens.empty() && !out.finish_reason) continue;
    auto& stream = it->second;
    msg::token_chunk c;
    c.token_ids = std::move(out.new_tokens);
    c.text = std::move(out.text_delta);
    c.logprobs = std::move(out.logprobs);
    c.token_logprobs = std::move(out.token_logprobs);
    c.tool_calls = std::move(out.tool_calls);
    c.finish_reason = out.finish_reason;
    if (out.finish_reason) c.usage_info = out.usage_info;
    if (out.error_message) c.error = msg::error_reply{static_cast<std::int32_t>(out.error_code), *out.error_message};
    if (stream.whole && stream.sent_token && !c.finish_reason && !c.error &&
        clock::now() - stream.last_sent < whole_batch) {
      if (stream.held) append_chunk(*stream.held, c);
      else stream.held = std::move(c);
      continue;
    }
    if (stream.held) {
      append_chunk(*stream.held, c);
      c = std::move(*stream.held);
      stream.held.reset();
    }
    send_chunk(st, stream, c);
    if (out.finish_reason) {
      st.streams.erase(it);
      finished = true;
    }
  }
  // Routers only learn that work finished from our reports: send one now
  // (at most every 10 ms) instead of waiting for the next heartbeat.
  if (finished && clock::now() - st.last_heartbeat > std::chrono::milliseconds(10)) publish_heartbeat_now(st);
}

}  // namespace yard::actors::worker_detail
