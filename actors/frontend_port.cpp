// actors/frontend_port.cpp — see frontend_port.hpp.
#include "actors/frontend_port.hpp"

#include <algorithm>

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "messages/codec.hpp"
#include "messages/error_chunk.hpp"

namespace yard::actors {

frontend_port::frontend_port(caf::actor actor, transport::nats_connection* conn, std::string subject,
                             std::string inbox_prefix, std::shared_ptr<std::atomic<std::uint64_t>> next_key)
    : binding_(std::make_shared<binding>()), conn_(conn), subject_(std::move(subject)) {
  binding_->now = {std::move(actor), std::move(inbox_prefix), std::move(next_key)};
}

frontend_port::bound frontend_port::current() const {
  std::lock_guard<std::mutex> lock(binding_->mu);
  return binding_->now;
}

caf::actor frontend_port::actor() const { return binding_ ? current().actor : caf::actor{}; }

void frontend_port::rebind(const frontend_port& fresh) const {
  auto b = fresh.current();
  std::vector<binding::told> lost;
  {
    std::lock_guard<std::mutex> lock(binding_->mu);
    binding_->now = std::move(b);
    lost.swap(binding_->unclaimed);
    binding_->prune_at = 64;
  }
  // The old actor has ended (the supervisor rebinds after its down): what it never claimed, it never will.
  for (auto& t : lost)
    if (auto sink = t.sink.lock(); sink && !sink->claimed())
      sink->push(msg::error_chunk(t.request_id, 0, errc::unavailable,
                                  "the frontend restarted before taking this request: retry"));
}

frontend_port::bound frontend_port::current_remembering(const chunk_queue_ptr& sink, const std::string& request_id) const {
  std::lock_guard<std::mutex> lock(binding_->mu);
  auto& v = binding_->unclaimed;
  if (v.size() >= binding_->prune_at) {  // amortised: the list holds about the opens still in the mailbox
    v.erase(std::remove_if(v.begin(), v.end(),
                           [](const binding::told& t) {
                             auto s = t.sink.lock();
                             return !s || s->claimed();
                           }),
            v.end());
    binding_->prune_at = std::max<std::size_t>(64, 2 * v.size());
  }
  v.push_back({sink, request_id});
  return binding_->now;
}

void frontend_port::open(msg::generate_request req, chunk_queue_ptr sink) const {
  auto b = current_remembering(sink, req.request_id);
  // The bound incarnation has ended and its supervisor has not rebound the port
  // yet: a message sent to it now would be dropped and the client left to its
  // deadline, so it hears at once instead (the next request reaches the new one).
  auto* target = caf::actor_cast<caf::abstract_actor*>(b.actor);
  if (target == nullptr ||
      target->getf(caf::abstract_actor::is_terminated_flag | caf::abstract_actor::is_cleaned_up_flag)) {
    sink->claim();  // answered here: the rebind has nothing to say to it
    sink->push(msg::error_chunk(req.request_id, 0, errc::unavailable, "the frontend is restarting: retry"));
    return;
  }
  auto key = std::to_string(b.next_key->fetch_add(1));
  req.attempt = 0;
  req.resume_tokens.clear();
  auto body = msg::encode(req);  // attempt 0, no resume tokens: as dispatch() would send it
  auto reply = b.inbox_prefix + "." + key;
  const auto request_id = req.request_id;
  caf::anon_send(b.actor, open_atom::value, std::move(req), sink, std::move(key));
  // A failed publish (closed connection) is the actor's to handle: no worker acknowledges,
  // and its tick re-sends after the ack timeout. One over the NATS server's max_payload would fail
  // the same way every time: the client hears 413 now, and the actor forgets the stream.
  auto sent = conn_->publish(subject_, body, reply, msg::content_type_of(msg::wire_format::msgpack));
  if (!sent && sent.err().code == errc::payload_too_large) {
    sink->push(msg::error_chunk(request_id, 0, errc::payload_too_large,
                                "the request (" + std::to_string(body.size()) +
                                    " bytes on the bus) is over the NATS server's max_payload: send a smaller "
                                    "prompt, or raise max_payload in nats-server's configuration"));
    caf::anon_send(b.actor, cancel_atom::value, request_id);
  }
}

void frontend_port::cancel(const std::string& request_id) const {
  caf::anon_send(current().actor, cancel_atom::value, request_id);
}

}  // namespace yard::actors
