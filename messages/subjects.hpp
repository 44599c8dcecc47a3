// messages/subjects.hpp — every NATS subject, defined once.
//
// Scheme: yard.<namespace>.<component>.<endpoint>[.<instance>]
//   yard.<ns>.router.generate          generate_request in, token_chunk stream to the reply inbox
//   yard.<ns>.worker.generate.<id>     the same, addressed to one worker (the router forwards here)
//   yard.<ns>.worker.cancel            cancel_request, broadcast to all workers
//   yard.<ns>.discovery.heartbeat.<id> heartbeat from instance <id> (its own subject: the id in the body must match)
//   yard.<ns>.discovery.roster         a starting router/frontend asks every worker to heartbeat now (any body)
//   yard.<ns>.worker.status.<id>       request: worker <id> answers with its current heartbeat (liveness proof)
//   yard.<ns>.kv.events.<id>           kv_event_batch from worker <id> (the worker_id in the body must match)
//   yard.<ns>.kv.snapshot.<id>         request: a worker's full block set as a kv_event_batch
//   yard.<ns>.router.inflight          router replicas share in-flight accounting
//   yard.<ns>.router.prefill           remote_prefill_request in (decode workers); forwarded KV-aware to a prefill worker
//   yard.<ns>.worker.prefill.<id>      remote_prefill_request for one prefill worker; remote_prefill_reply to the reply inbox
//   yard.<ns>.worker.kv_release.<id>   kv_release: a decode worker has pulled a lease's blocks
// Must not touch: anything else. Thread-safety: pure functions.
#pragma once

#include <string>

namespace yard::subjects {

inline std::string prefix(const std::string& ns) { return "yard." + ns; }
inline std::string router_generate(const std::string& ns) { return prefix(ns) + ".router.generate"; }
inline std::string router_inflight(const std::string& ns) { return prefix(ns) + ".router.inflight"; }
inline std::string router_prefill(const std::string& ns) { return prefix(ns) + ".router.prefill"; }
inline std::string worker_prefill(const std::string& ns, const std::string& id) { return prefix(ns) + ".worker.prefill." + id; }
inline std::string worker_kv_release(const std::string& ns, const std::string& id) { return prefix(ns) + ".worker.kv_release." + id; }
inline std::string worker_generate(const std::string& ns, const std::string& id) { return prefix(ns) + ".worker.generate." + id; }
inline std::string worker_cancel(const std::string& ns) { return prefix(ns) + ".worker.cancel"; }
inline std::string heartbeat(const std::string& ns, const std::string& id) { return prefix(ns) + ".discovery.heartbeat." + id; }
inline std::string heartbeat_all(const std::string& ns) { return prefix(ns) + ".discovery.heartbeat.*"; }
inline std::string roster(const std::string& ns) { return prefix(ns) + ".discovery.roster"; }
inline std::string worker_status(const std::string& ns, const std::string& id) { return prefix(ns) + ".worker.status." + id; }
inline std::string kv_events(const std::string& ns, const std::string& id) { return prefix(ns) + ".kv.events." + id; }
inline std::string kv_events_all(const std::string& ns) { return prefix(ns) + ".kv.events.*"; }
// The last token of a subject (the instance of a per-instance subject).
inline std::string last_token(const std::string& subject) {
  auto dot = subject.rfind('.');
  return dot == std::string::npos ? subject : subject.substr(dot + 1);
}
inline std::string kv_snapshot(const std::string& ns, const std::string& id) { return prefix(ns) + ".kv.snapshot." + id; }

}  // namespace yard::subjects
