// backends/engine_shell.cpp — see engine_shell.hpp.
#include "backends/engine_shell.hpp"

#include <chrono>

#include "backends/kv_exchange.hpp"
#include "backends/sampling/logits_processor.hpp"
#include "backends/tool_call_output.hpp"
#include "common/log.hpp"

namespace yard::backends {

engine_shell::engine_shell() = default;
engine_shell::~engine_shell() = default;

void engine_shell::set_core(std::unique_ptr<scheduler> sched, std::unique_ptr<executor> exec) {
  sched_ = std::move(sched);
  exec_ = std::move(exec);
}

status engine_shell::attach_tiers(const kv_tier_options& opts, std::function<double(std::size_t, std::size_t)> recompute_ms,
                                  bool overlapped) {
  auto t = kv_tiering::create(opts, sched_->pool(), *exec_, std::move(recompute_ms), overlapped);
  if (!t) return t.err();
  tiering_ = std::move(t.value());
  // Onboard when the scheduler admits a request (inside step()), so blocks
  // brought back are used at once, not evicted again while the request waits.
  sched_->set_admit_hook([this](std::span<const kv::block_hash> hashes, std::size_t tokens) {
    pending_onboard_ms_ += tiering_->onboard(hashes, tokens).modelled_ms;
  });
  return status::success();
}

status engine_shell::add_request_prehashed(engine_request req, std::vector<kv::block_hash> prompt_hashes) {
  if (req.request_id.empty()) return make_error(errc::bad_request, "empty request_id");
  if (req.prompt.empty()) return make_error(errc::bad_request, "empty prompt");
  if (requests_.count(req.request_id)) return make_error(errc::conflict, "duplicate request_id '" + req.request_id + "'");
  sequence_spec spec;
  spec.request_id = req.request_id;
  spec.num_prompt_tokens = static_cast<std::uint32_t>(req.prompt.size());
  spec.tokens = req.prompt;
  spec.tokens.insert(spec.tokens.end(), req.resume_tokens.begin(), req.resume_tokens.end());
  spec.max_output_tokens = req.max_tokens;
  spec.stop_token_ids = req.stop_token_ids;
  spec.cache_salt = req.cache_salt;
  spec.priority = req.priority;
  spec.latency = req.latency;
  spec.sampling = req.sampling;
  spec.block_hashes = std::move(prompt_hashes);
  spec.constraint = req.constraint;
  if (req.constraint)
    // A migrated request's delivered output already walked the constraint on the old worker.
    for (auto t : req.resume_tokens) req.constraint->advance(t);
  if (auto s = prepare(req, spec); !s) return s;
  auto id = sched_->add(std::move(spec));
  if (!id) return id.err();
  request_state st;
  st.stops = stop_strings(std::move(req.stop));
  st.prompt_tokens = static_cast<std::uint32_t>(req.prompt.size());
  st.completion_tokens = static_cast<std::uint32_t>(req.resume_tokens.size());
  st.min_tokens = req.sampling.min_tokens;
  st.constraint = std::move(req.constraint);
  if (req.tool_format && *req.tool_format != chat::tool_call_format::none) {
    // Ids depend on the request id alone, so a migrated request names its calls as before;
    // the delivered output is replayed so the parser stands where the old worker's stood.
    st.call_ids = std::make_unique<chat::id_source>(std::hash<std::string>{}(req.request_id));
    st.tool_calls = std::make_unique<chat::tool_call_stream_parser>(*req.tool_format, *st.call_ids);
    if (!req.resume_tokens.empty()) {
      utf8_stream u;
      std::string replay;
      for (auto t : req.resume_tokens) replay += u.push(token_bytes(t));
      st.tool_calls->feed(replay);
    }
  }
  requests_.emplace(req.request_id, std::move(st));
  return status::success();
}

std::shared_ptr<const structured::token_vocabulary> engine_shell::vocabulary() const {
  if (vocab_ || vocab_size() == 0) return vocab_;
  std::vector<std::string> bytes(vocab_size());
  for (std::size_t t = 0; t < bytes.size(); ++t) bytes[t] = token_bytes(static_cast<token_id>(t));
  vocab_ = std::make_shared<const structured::token_vocabulary>(std::move(bytes), end_of_text_ids());
  return vocab_;
}

void engine_shell::cancel(const std::string& request_id) { sched_->cancel(request_id); }

bool engine_shell::has_work() const { return sched_->has_work(); }

// One scheduler update as the client sees it; nothing for a sequence a stop
// string already ended (the scheduler reports it a step later).
std::optional<sequence_output> engine_shell::output_of(sequence_update& u) {
  auto it = requests_.find(u.request_id);
  if (it == requests_.end()) return std::nullopt;
  auto& st = it->second;
  if (st.finished) {
    if (u.finish_reason) requests_.erase(it);
    return std::nullopt;
  }
  sequence_output out;
  out.request_id = u.request_id;
  out.token_logprobs = make_token_logprobs(u.new_tokens, u.logprobs, u.top_logprobs,
                                           [this](token_id t) { return token_label(t); });
  out.logprobs = std::move(u.logprobs);
  st.completion_tokens += static_cast<std::uint32_t>(u.new_tokens.size());
  std::string text;
  for (std::size_t i = 0; i < u.new_tokens.size(); ++i) {
    // Like OpenAI and vLLM, the token that matched a stop id adds no text.
    const bool stop_token = i + 1 == u.new_tokens.size() && u.finish_reason == msg::finish_kind::stop;
    if (!stop_token) text += st.utf8.push(token_bytes(u.new_tokens[i]));
  }
  out.new_tokens = std::move(u.new_tokens);
  std::optional<msg::finish_kind> reason = u.finish_reason;
  if (reason) text += st.utf8.flush();
  // A constrained output (response_format, a forced tool call) ends when its value is complete: a stop string
  // inside it would cut a value that must parse, so stop strings wait while a constraint runs.
  const bool armed = reason != msg::finish_kind::cancelled && st.completion_tokens >= st.min_tokens && !st.constraint;
  auto cut = st.stops.feed(text, reason.has_value(), armed);
  // A constrained value that is complete ends the request as a stop string would.
  const bool value_done = !reason && !cut.matched && st.constraint && st.constraint->finished();
  if (st.tool_calls) {
    emit_through_tool_parser(*st.tool_calls, cut.text, reason || cut.matched || value_done, out);
  } else {
    out.text_delta = std::move(cut.text);
  }
  const bool called = st.tool_calls && st.tool_calls->saw_tool_call();
  if ((cut.matched || value_done) && !reason) {
    sched_->finish(out.request_id, msg::finish_kind::stop);
    st.finished = true;
    reason = called ? msg::finish_kind::tool_calls : msg::finish_kind::stop;
    out.usage_info.prompt_tokens = st.prompt_tokens;
    out.usage_info.completion_tokens = st.completion_tokens;
  } else if (reason) {
    if (cut.matched) reason = msg::finish_kind::stop;
    // A constrained value that closed on the budget's last token is complete: stop, not length.
    if (reason == msg::finish_kind::length && st.constraint && st.constraint->finished()) reason = msg::finish_kind::stop;
    if (called && reason == msg::finish_kind::stop) reason = msg::finish_kind::tool_calls;
    out.usage_info.prompt_tokens = u.prompt_tokens;
    out.usage_info.completion_tokens = u.completion_tokens;
    out.usage_info.cached_tokens = u.cached_tokens;
    requests_.erase(it);
  }
  out.finish_reason = std::move(reason);
  return out;
}

std::unique_ptr<kv_tier_store> engine_shell::release_tiers(evicted_block_sink evicted) {
  if (!tiering_) return nullptr;
  sched_->set_admit_hook({});
  auto store = tiering_->release();
  tiering_.reset();
  forward_evictions(sched_->pool(), *exec_, std::move(evicted));
  return store;
}

bool engine_shell::hand_over_g1(const g1_owner& owner) {
  if (tiering_) return false;  // kv_tiering holds the pool: release_tiers first
  return sched_->hand_over_pool(owner);
}

onboard_ask engine_shell::onboard_question(std::span<const kv::block_hash> hashes, std::size_t prompt_tokens) const {
  return make_onboard_ask(sched_->pool(), hashes, prompt_tokens);
}

result<std::size_t> engine_shell::onboard_kv(const onboard_ask& ask, const onboard_fetch& f) {
  auto r = import_onboarded(sched_->pool(), *exec_, ask, f);
  if (r && *r > 0) pending_onboard_ms_ += f.modelled_ms;
  return r;
}

step_result engine_shell::step() {
  const auto t0 = std::chrono::steady_clock::now();
  auto o = sched_->step(*exec_);
  const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  step_result r;
  r.model_time_ms = step_time_ms(o, wall_ms);
  for (auto& u : o.updates)
    if (auto out = output_of(u)) r.outputs.push_back(std::move(*out));
  if (!o.fault.empty()) end_faulted(o, r);
  else if (o.ran) fault_.reset();  // a step ran clean: serve again
  return r;
}

std::optional<std::string> engine_shell::unavailable_reason() const {
  if (fault_ && std::chrono::steady_clock::now() - fault_at_ < fault_hold) return fault_;
  return std::nullopt;
}

// The executor failed a step (a device fault): no garbage token reaches anyone. Each sequence of the step ends
// `unavailable` (the client's frontend resumes it on another worker from the tokens it has), and the engine says
// it cannot serve until a step runs clean, so its worker drains instead of taking new requests.
void engine_shell::end_faulted(const step_outcome& o, step_result& r) {
  fault_ = "the executor failed a step: " + o.fault;
  fault_at_ = std::chrono::steady_clock::now();
  component_logger("engine")->error("{}: ending the step's {} request(s) unavailable (they resume elsewhere); "
                                    "not serving until a step runs clean", *fault_, o.faulted.size());
  for (const auto& id : o.faulted) {
    auto it = requests_.find(id);
    if (it == requests_.end() || it->second.finished) continue;
    sched_->finish(id, msg::finish_kind::error);
    it->second.finished = true;  // the scheduler's own report of the end, a step later, is dropped
    sequence_output out;
    out.request_id = id;
    out.finish_reason = msg::finish_kind::error;
    out.error_code = errc::unavailable;
    out.error_message = *fault_;
    out.usage_info.prompt_tokens = it->second.prompt_tokens;
    out.usage_info.completion_tokens = it->second.completion_tokens;
    r.outputs.push_back(std::move(out));
  }
}

msg::load_report engine_shell::load() const {
  auto l = sched_->load();
  if (tiering_) l.tiers = tiering_->load();
  return l;
}

std::vector<msg::kv_event> engine_shell::drain_kv_events() {
  auto ev = sched_->pool().drain_events();
  if (tiering_)
    for (auto& e : tiering_->drain_events()) ev.push_back(std::move(e));
  return ev;
}

std::vector<msg::kv_event> engine_shell::kv_snapshot() const {
  auto ev = sched_->pool().snapshot();
  if (tiering_)
    for (auto& e : tiering_->snapshot()) ev.push_back(std::move(e));
  return ev;
}

std::uint32_t engine_shell::block_size() const { return sched_->pool().block_size(); }
std::uint32_t engine_shell::max_context() const { return sched_->config().max_model_len; }
std::size_t engine_shell::kv_block_bytes() const { return exec_->kv_block_bytes(); }

std::size_t engine_shell::cached_blocks(std::span<const kv::block_hash> hashes) const {
  return backends::cached_blocks(sched_->pool(), hashes);
}

std::size_t engine_shell::export_kv(std::span<const kv::block_hash> hashes, std::span<std::byte> out) const {
  return export_blocks(sched_->pool(), *exec_, hashes, out);
}

result<std::size_t> engine_shell::import_kv(std::span<const kv::block_hash> hashes, std::optional<kv::block_hash> parent,
                                            std::span<const std::byte> data) {
  return import_blocks(sched_->pool(), *exec_, hashes, parent, data);
}

}  // namespace yard::backends
