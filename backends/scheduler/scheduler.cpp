// backends/scheduler/scheduler.cpp — see scheduler.hpp.
#include "backends/scheduler/scheduler.hpp"

#include <algorithm>
#include <limits>
#include <cassert>
#include <cmath>

namespace yard::backends {

scheduler::scheduler(scheduler_config cfg, kv::block_pool_options pool_opts)
    : cfg_(cfg), local_pool_(std::make_unique<kv::block_pool>(pool_opts)), pool_(local_pool_.get()),
      block_size_(pool_->block_size()) {
  if (cfg_.max_num_seqs == 0) cfg_.max_num_seqs = 1;
  if (cfg_.max_num_batched_tokens == 0) cfg_.max_num_batched_tokens = 1;
}

bool scheduler::hand_over_pool(const pool_owner& owner) {
  if (!local_pool_) return false;
  auto evict = local_pool_->take_evict_callback();
  remote_pool_ = owner(std::move(local_pool_));
  assert(remote_pool_ && "a pool owner must give a client back");
  remote_pool_->set_evict_callback(std::move(evict));
  pool_ = remote_pool_.get();
  return true;
}

result<std::uint64_t> scheduler::add(sequence_spec spec) {
  if (spec.request_id.empty()) return make_error(errc::bad_request, "empty request_id");
  if (by_request_.count(spec.request_id))
    return make_error(errc::conflict, "duplicate request_id '" + spec.request_id + "'");
  if (spec.tokens.empty()) return make_error(errc::bad_request, "empty prompt");
  if (spec.num_prompt_tokens == 0 || spec.num_prompt_tokens > spec.tokens.size())
    spec.num_prompt_tokens = static_cast<std::uint32_t>(spec.tokens.size());
  std::uint64_t resume = spec.tokens.size() - spec.num_prompt_tokens;
  if (spec.num_prompt_tokens >= cfg_.max_model_len)
    return make_error(errc::bad_request, "prompt of " + std::to_string(spec.num_prompt_tokens) +
                                             " tokens leaves no room in the context of " + std::to_string(cfg_.max_model_len));
  const bool until_context = spec.max_output_tokens == 0;
  if (until_context) spec.max_output_tokens = cfg_.max_model_len - spec.num_prompt_tokens;
  std::uint64_t total = std::uint64_t(spec.num_prompt_tokens) + std::max<std::uint64_t>(spec.max_output_tokens, resume);
  if (total > cfg_.max_model_len && resume > spec.max_output_tokens)
    return make_error(errc::bad_request, "field 'resume_tokens' (" + std::to_string(resume) +
                                             " tokens already delivered) plus the prompt of " +
                                             std::to_string(spec.num_prompt_tokens) + " tokens exceeds the context of " +
                                             std::to_string(cfg_.max_model_len) + " tokens");
  if (total > cfg_.max_model_len)
    return make_error(errc::bad_request, "field 'max_tokens' (" + std::to_string(spec.max_output_tokens) +
                                             ") plus the prompt of " + std::to_string(spec.num_prompt_tokens) +
                                             " tokens exceeds the context of " + std::to_string(cfg_.max_model_len) +
                                             " tokens (at most " + std::to_string(cfg_.max_model_len - spec.num_prompt_tokens) +
                                             " fit)");
  // min_tokens bans the stop tokens until that many outputs: one the context cannot hold would end at the context
  // with 'length', never honoured.
  if (spec.sampling.min_tokens > spec.max_output_tokens)
    return make_error(errc::bad_request,
                      "field 'min_tokens' (" + std::to_string(spec.sampling.min_tokens) + ") exceeds " +
                          (until_context ? "the " + std::to_string(spec.max_output_tokens) + " tokens the context of " +
                                               std::to_string(cfg_.max_model_len) + " leaves after the prompt"
                                         : "'max_tokens' (" + std::to_string(spec.max_output_tokens) + ")"));
  auto watermark_blocks = static_cast<std::uint64_t>(cfg_.watermark * pool_->num_blocks());
  if (blocks_for(static_cast<std::uint32_t>(std::min<std::uint64_t>(total, 0xffffffffu))) + watermark_blocks > pool_->num_blocks())
    // Never admissible here, however long it waits: a 400 (a retry cannot help), not a 429.
    return make_error(errc::bad_request, "request needs " + std::to_string(total) +
                                             " tokens of KV (prompt + max_tokens), over the context of " +
                                             std::to_string(std::uint64_t(pool_->num_blocks()) * block_size_) +
                                             " tokens this worker's KV pool holds");
  auto s = std::make_unique<sequence>();
  s->id = next_id_++;
  s->num_prompt = spec.num_prompt_tokens;
  s->produced = static_cast<std::uint32_t>(resume);
  s->root = kv::salt_root(spec.cache_salt ? std::optional<std::string_view>(*spec.cache_salt) : std::nullopt);
  s->hashes = std::move(spec.block_hashes);
  if (s->hashes.size() > spec.tokens.size() / block_size_) s->hashes.resize(spec.tokens.size() / block_size_);
  s->spec = std::move(spec);
  if (s->produced >= s->spec.max_output_tokens) s->pending_finish = msg::finish_kind::length;
  auto id = s->id;
  by_request_[s->spec.request_id] = id;
  if (s->pending_finish) pending_finish_.push_back(s.get());
  else {
    s->enqueued_at = schedules_;
    waiting_.push_back(s.get());  // ordered by order_waiting() at the next schedule()
  }
  seqs_.emplace(id, std::move(s));
  return id;
}

void scheduler::cancel(const std::string& request_id) { finish(request_id, msg::finish_kind::cancelled); }

void scheduler::finish(const std::string& request_id, msg::finish_kind reason) {
  auto it = by_request_.find(request_id);
  if (it == by_request_.end()) return;
  auto& s = *seqs_.at(it->second);
  if (s.pending_finish) return;
  s.pending_finish = reason;
  pending_finish_.push_back(&s);
}

void scheduler::ensure_hashes(sequence& s, std::size_t n_blocks) {
  const auto& toks = s.spec.tokens;
  while (s.hashes.size() < n_blocks) {
    std::size_t i = s.hashes.size();
    assert((i + 1) * block_size_ <= toks.size());
    kv::block_hash parent = i == 0 ? s.root : s.hashes[i - 1];
    s.hashes.push_back(kv::hash_block(parent, toks.data() + i * block_size_, block_size_));
  }
}

void scheduler::free_sequence(sequence& s) {
  pool_->release_all(s.blocks);
  s.blocks.clear();
  s.num_computed = 0;
  s.committed_blocks = 0;
  if (freed_listener_) freed_listener_->on_sequence_freed(s.id);
}

void scheduler::preempt(sequence& s) {
  free_sequence(s);
  ++stats_.preemptions;
  running_.erase(std::find(running_.begin(), running_.end(), &s));
  s.requeued = true;
  waiting_.push_front(&s);
}

std::int64_t scheduler::waiting_rank(const sequence& s) const {
  if (s.requeued) return std::numeric_limits<std::int64_t>::max();
  std::int64_t rank = s.spec.priority;
  if (cfg_.aging_steps > 0) rank += static_cast<std::int64_t>((schedules_ - s.enqueued_at) / cfg_.aging_steps);
  if (s.spec.latency == msg::latency_class::batch) rank -= cfg_.batch_penalty;
  return rank;
}

void scheduler::order_waiting() {
  if (waiting_.size() < 2) return;
  std::stable_sort(waiting_.begin(), waiting_.end(), [this](const sequence* a, const sequence* b) {
    auto ra = waiting_rank(*a), rb = waiting_rank(*b);
    if (ra != rb) return ra > rb;
    return a->spec.latency == msg::latency_class::interactive && b->spec.latency == msg::latency_class::batch;
  });
}

void scheduler::add_to_plan(sequence& s, std::uint32_t n_new, batch_plan& plan) {
  scheduled_sequence e;
  e.seq_id = s.id;
  e.request_id = s.spec.request_id;
  const auto& toks = s.spec.tokens;
  e.tokens = std::span<const token_id>(toks.data() + s.num_computed, n_new);
  e.start_pos = s.num_computed;
  e.block_table = s.blocks;
  e.all_tokens = toks;
  e.num_prompt_tokens = s.num_prompt;
  e.output_index = s.produced;
  e.sample = s.num_computed + n_new == toks.size();
  e.is_prefill = s.num_computed < s.prefill_end;
  e.sampling = &s.spec.sampling;
  e.stop_token_ids = s.spec.stop_token_ids;
  e.user_tag = s.spec.user_tag;
  s.planned = plans_;
  e.constraint = s.spec.constraint.get();
  e.tokens_left = s.spec.max_output_tokens > s.produced ? s.spec.max_output_tokens - s.produced : 0;
  if (e.is_prefill) plan.num_prefill_tokens += n_new;
  else ++plan.num_decode_seqs;
  plan.active_kv_tokens += s.num_computed + n_new;
  plan.seqs.push_back(e);
}

bool scheduler::try_admit(sequence& s, std::uint32_t& budget, batch_plan& plan) {
  auto total = static_cast<std::uint32_t>(s.spec.tokens.size());
  // Prefix-cache lookup over full blocks, always leaving at least one token to compute.
  std::size_t full = (total - 1) / block_size_;
  ensure_hashes(s, std::min<std::size_t>(full, s.spec.tokens.size() / block_size_));
  // Onboard only when the whole sequence fits the free pool: under block
  // pressure imported blocks would be evicted again before they are used.
  if (admit_hook_ && pool_->num_free() >= blocks_for(total) + static_cast<std::uint32_t>(cfg_.watermark * pool_->num_blocks()))
    admit_hook_(std::span<const kv::block_hash>(s.hashes.data(), std::min(full, s.hashes.size())), total);
  std::size_t matched = pool_->match_prefix(std::span<const kv::block_hash>(s.hashes.data(), full));
  std::uint32_t cached = static_cast<std::uint32_t>(matched) * block_size_;
  std::uint32_t n_new = total - cached;
  if (n_new > budget) {
    if (!cfg_.enable_chunked_prefill) return false;
    n_new = budget;
  }
  std::uint32_t need = blocks_for(cached + n_new) - static_cast<std::uint32_t>(matched);
  // Blocks taken from the evictable set by the prefix hit also reduce what is free.
  std::vector<kv::block_id> blocks;
  blocks.reserve(blocks_for(total));
  pool_->acquire_cached(s.hashes, matched, s.admitted_once ? 0 : full, blocks);
  auto watermark_blocks = static_cast<std::uint32_t>(cfg_.watermark * pool_->num_blocks());
  if (pool_->num_free() < need + watermark_blocks || !pool_->allocate(need, blocks)) {
    pool_->release_all(blocks);
    return false;
  }
  s.blocks = std::move(blocks);
  s.num_computed = cached;
  s.committed_blocks = static_cast<std::uint32_t>(matched);
  s.prefill_end = total;
  if (!s.admitted_once) {
    s.admitted_once = true;
    s.cached_tokens = std::min(cached, s.num_prompt);
    stats_.prompt_tokens += s.num_prompt;
    stats_.cached_prompt_tokens += s.cached_tokens;
  }
  running_.push_back(&s);
  add_to_plan(s, n_new, plan);
  budget -= n_new;
  return true;
}

// Schedules `seqs` (running, in order) into `plan` while the budget lasts,
// preempting (the most recent batch-class sequence not yet in this plan, else
// the most recent one) when blocks run out. False when a sequence had to
// preempt itself: nothing else could give up blocks, running stops here.
bool scheduler::run_pass(const std::vector<sequence*>& seqs, std::uint32_t& budget, batch_plan& plan, bool& preempted) {
  for (sequence* sp : seqs) {
    if (budget == 0) return true;
    sequence& s = *sp;
    if (s.requeued) continue;  // preempted earlier in this step
    auto total = static_cast<std::uint32_t>(s.spec.tokens.size());
    std::uint32_t n_new = std::min(total - s.num_computed, budget);
    if (n_new == 0) continue;
    std::uint32_t have = static_cast<std::uint32_t>(s.blocks.size());
    std::uint32_t want = blocks_for(s.num_computed + n_new);
    while (want > have && !pool_->allocate(want - have, s.blocks)) {
      sequence* victim = nullptr;
      for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
        if ((*it)->planned == plans_) continue;
        if (!victim) victim = *it;
        if ((*it)->spec.latency == msg::latency_class::batch) {
          victim = *it;
          break;
        }
      }
      preempt(*victim);
      preempted = true;
      ++plan.num_preempted;
      if (victim == &s) return false;
    }
    add_to_plan(s, n_new, plan);
    budget -= n_new;
  }
  return true;
}

batch_plan scheduler::schedule() {
  batch_plan plan;
  plan.block_size = block_size_;
  plan.num_blocks = pool_->num_blocks();
  std::uint32_t budget = cfg_.max_num_batched_tokens;
  bool preempted = false;
  // Passes: (1) running decodes and interactive prefills, in admission order;
  // (2) waiting interactive requests at the head of the ranked queue; (3)
  // running batch-class prefill chunks; (4) the rest of the waiting queue. With
  // one class this is vLLM's order: running first, then admission. No
  // admission in a step that preempted.
  ++plans_;
  ++schedules_;
  order_waiting();
  auto prefilling_batch = [](const sequence* q) {
    return q->spec.latency == msg::latency_class::batch && q->spec.tokens.size() - q->num_computed > 1;
  };
  pass_first_.clear();
  pass_later_.clear();
  for (auto* q : running_) (prefilling_batch(q) ? pass_later_ : pass_first_).push_back(q);
  const bool went_through = run_pass(pass_first_, budget, plan, preempted);
  auto admit = [&](bool interactive_only) {
    while (!preempted && !waiting_.empty() && running_.size() < cfg_.max_num_seqs && budget > 0) {
      sequence* w = waiting_.front();
      if (interactive_only && (w->requeued || w->spec.latency != msg::latency_class::interactive)) break;
      if (!try_admit(*w, budget, plan)) break;
      w->requeued = false;
      waiting_.pop_front();
    }
  };
  if (went_through) {
    admit(true);
    run_pass(pass_later_, budget, plan, preempted);  // a stop here also preempted: no more admissions
  }
  admit(false);
  // Spans into block tables may have been invalidated by allocations after
  // they were taken: refresh them now that the plan is final.
  for (auto& e : plan.seqs) {
    auto& s = *seqs_.at(e.seq_id);
    e.block_table = s.blocks;
  }
  return plan;
}

sequence_update scheduler::make_finished(sequence& s, msg::finish_kind reason) {
  sequence_update u;
  u.seq_id = s.id;
  u.request_id = s.spec.request_id;
  u.finish_reason = reason;
  u.prompt_tokens = s.num_prompt;
  u.completion_tokens = s.produced;
  u.cached_tokens = s.cached_tokens;
  u.user_tag = s.spec.user_tag;
  return u;
}

std::vector<sequence_update> scheduler::update(const batch_plan& plan, const execution_result& res) {
  std::vector<sequence_update> out;
  out.reserve(plan.seqs.size());
  std::vector<sequence*> done;
  for (std::size_t i = 0; i < plan.seqs.size(); ++i) {
    const auto& e = plan.seqs[i];
    auto it = seqs_.find(e.seq_id);
    if (it == seqs_.end()) continue;
    sequence& s = *it->second;
    s.num_computed += static_cast<std::uint32_t>(e.tokens.size());
    stats_.computed_tokens += e.tokens.size();
    // Commit blocks whose every position now has KV.
    std::uint32_t full = s.num_computed / block_size_;
    if (full > s.committed_blocks) {
      ensure_hashes(s, full);
      for (std::uint32_t b = s.committed_blocks; b < full; ++b)
        pool_->commit(s.blocks[b], s.hashes[b], b == 0 ? std::optional<kv::block_hash>() : s.hashes[b - 1]);
      s.committed_blocks = full;
    }
    if (!e.sample || i >= res.sampled.size()) continue;
    token_id tok = res.sampled[i];
    s.spec.tokens.push_back(tok);
    ++s.produced;
    sequence_update u;
    u.seq_id = s.id;
    u.request_id = s.spec.request_id;
    u.user_tag = s.spec.user_tag;
    u.new_tokens.push_back(tok);
    if (i < res.logprobs.size() && s.spec.sampling.logprobs) u.logprobs.push_back(res.logprobs[i]);
    if (i < res.top_logprobs.size() && s.spec.sampling.logprobs && s.spec.sampling.top_logprobs > 0)
      u.top_logprobs.push_back(res.top_logprobs[i]);
    const auto& stops = s.spec.stop_token_ids;
    std::optional<msg::finish_kind> reason;
    // A stop token ends the sequence only once min_tokens came before it.
    if (s.produced > s.spec.sampling.min_tokens && std::find(stops.begin(), stops.end(), tok) != stops.end()) reason = msg::finish_kind::stop;
    else if (s.produced >= s.spec.max_output_tokens) reason = msg::finish_kind::length;
    if (reason) {
      auto f = make_finished(s, *reason);
      u.finish_reason = f.finish_reason;
      u.prompt_tokens = f.prompt_tokens;
      u.completion_tokens = f.completion_tokens;
      u.cached_tokens = f.cached_tokens;
      done.push_back(&s);
    }
    out.push_back(std::move(u));
  }
  for (auto* s : done) {
    free_sequence(*s);
    running_.erase(std::find(running_.begin(), running_.end(), s));
    by_request_.erase(s->spec.request_id);
    seqs_.erase(s->id);
  }
  ++stats_.steps;
  return out;
}

step_outcome scheduler::step(executor& ex) {
  freed_listener_ = &ex;
  step_outcome o;
  // Sequences finished from outside (cancel, stop string, zero budget) first.
  for (auto* s : pending_finish_) {
    o.updates.push_back(make_finished(*s, *s->pending_finish));
    auto r = std::find(running_.begin(), running_.end(), s);
    if (r != running_.end()) running_.erase(r);
    auto w = std::find(waiting_.begin(), waiting_.end(), s);
    if (w != waiting_.end()) waiting_.erase(w);
    free_sequence(*s);
    by_request_.erase(s->spec.request_id);
    seqs_.erase(s->id);
  }
  pending_finish_.clear();
  auto plan = schedule();
  if (!plan.empty()) {
    auto res = ex.execute(plan);
    o.ran = true;
    if (!res.fault.empty()) {  // nothing computed: no token, no commit, the KV positions stay uncomputed
      o.fault = std::move(res.fault);
      for (const auto& e : plan.seqs) o.faulted.emplace_back(e.request_id);
    } else {
      auto ups = update(plan, res);
      o.model_time_ms = res.model_time_ms;
      for (auto& u : ups) o.updates.push_back(std::move(u));
    }
  }
  freed_listener_ = nullptr;
  return o;
}

msg::load_report scheduler::load() const {
  msg::load_report l;
  l.active_requests = static_cast<std::uint32_t>(running_.size());
  l.queued_requests = static_cast<std::uint32_t>(waiting_.size());
  for (const auto* s : waiting_) l.pending_prefill_tokens += s->spec.tokens.size() - s->num_computed;
  for (const auto* s : running_)
    if (s->num_computed < s->prefill_end) l.pending_prefill_tokens += s->prefill_end - s->num_computed;
  l.active_kv_blocks = pool_->num_referenced();
  l.total_kv_blocks = pool_->num_blocks();
  return l;
}

}  // namespace yard::backends
