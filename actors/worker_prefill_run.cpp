// actors/worker_prefill_run.cpp — the engine actor's half of serving remote prefills (see worker_engine.hpp).
//
// The prefill_server owns the requests, jobs, replies and leases; here a job's
// run enters the engine, each of its outputs goes back to the server, and at
// its last output the prompt's blocks are copied into staging slots — here,
// on the engine actor's thread, because the copy reads the engine's pool and
// the next step may evict the blocks (prefill_server.hpp).
#include <caf/all.hpp>

#include "actors/worker_engine.hpp"

namespace yard::actors::worker_detail {

namespace {

void refuse_run(worker_state& st, std::uint64_t job, error e) {
  prefill_output p;
  p.refused = std::move(e);
  caf::anon_send(st.prefill_server, prefilled_atom::value, job, std::move(p));
}

}  // namespace

void on_prefill_run(worker_actor* self, std::uint64_t job, prefill_run& run) {
  auto& st = self->state;
  // The server drains once told; a run already on its way is refused here with the same words.
  if (st.draining) return refuse_run(st, job, error{errc::unavailable, "worker " + st.cfg.id + " is draining"});
  if (auto ask = tier_question(st, run.request, run.hashes)) {  // part of the prompt is in G2/G3: bring it back first
    auto parked = std::make_shared<prefill_run>(std::move(run));
    return onboard_then(self, std::move(*ask), [job, parked](worker_actor* me) { start_prefill_run(me, job, *parked); });
  }
  start_prefill_run(self, job, run);
}

void start_prefill_run(worker_actor* self, std::uint64_t job, prefill_run& run) {
  auto& st = self->state;
  auto id = run.request.request_id;
  if (st.prefill_runs.count(id)) return refuse_run(st, job, error{errc::conflict, "already prefilling this request"});
  if (auto s = st.engine->add_request_prehashed(std::move(run.request), run.hashes); !s) return refuse_run(st, job, s.err());
  auto& r = st.prefill_runs[id];
  r.job = job;
  r.request_id = std::move(run.request_id);
  r.attempt = run.attempt;
  r.hashes = std::move(run.hashes);
  r.stage = run.stage;
  kick(self);
}

void hand_prefill_output(worker_state& st, prefill_run_state& run, backends::sequence_output& out) {
  prefill_output p;
  run.produced = run.produced || !out.new_tokens.empty();
  if (out.finish_reason && st.xfer && prefill_run_stages(run.stage, *out.finish_reason, run.produced)) {
    auto staged = st.xfer->stage(*st.engine, run.hashes);
    if (staged) p.staged = std::move(*staged);
    else p.stage_error = staged.err();
  }
  p.out = std::move(out);
  caf::anon_send(st.prefill_server, prefilled_atom::value, run.job, std::move(p));
}

void free_lease(worker_state& st, std::uint64_t lease_id) {
  if (!st.xfer || !st.xfer->release(lease_id)) st.log->debug("lease {:x} to free is not staged here", lease_id);
}

}  // namespace yard::actors::worker_detail
