#include "backends/native/native_engine.hpp"

#include "backends/kv_exchange.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "backends/native/cuda/cuda_executor.hpp"
#include "backends/sampling/logits_processor.hpp"
#include "backends/timing_model.hpp"
#include "common/log.hpp"

namespace yard::backends {

using namespace native;

result<std::unique_ptr<native_engine>> native_engine::open(const std::string& model_dir, native_engine_options opts) {
  auto log = component_logger("native");
  std::unique_ptr<native_engine> e(new native_engine());
  if (opts.block_size == 0) return make_error(errc::bad_request, "block_size must be positive");
  e->opts_ = opts;
  auto w = load_model_weights(model_dir);
  if (!w) return w.err();
  e->weights_ = std::shared_ptr<const model_weights>(std::move(*w));
  auto tok = tokenizer::load((std::filesystem::path(model_dir) / "tokenizer.json").string());
  if (!tok) {
    log->error("loading '{}': {}", model_dir, tok.err().describe());
    return tok.err();
  }
  e->tok_ = std::move(*tok);
  const auto& c = e->weights_->config;
  if (e->tok_.size() > static_cast<std::size_t>(c.vocab_size))
    return make_error(errc::corrupt, "tokenizer.json has " + std::to_string(e->tok_.size()) +
                                         " tokens but config.json field 'vocab_size' is " + std::to_string(c.vocab_size));
  e->family_ = detect_chat_family(e->tok_, read_chat_template(model_dir));
  for (int id : c.eos_token_ids) e->eos_ids_.push_back(static_cast<token_id>(id));
  for (const auto& s : chat_end_tokens(e->family_))
    if (auto id = e->tok_.find(s)) e->eos_ids_.push_back(static_cast<token_id>(*id));
  std::sort(e->eos_ids_.begin(), e->eos_ids_.end());
  e->eos_ids_.erase(std::unique(e->eos_ids_.begin(), e->eos_ids_.end()), e->eos_ids_.end());

  kv_cache_shape shape;
  shape.n_layers = c.num_hidden_layers;
  shape.block_size = static_cast<int>(opts.block_size);
  shape.n_kv_heads = c.num_key_value_heads;
  shape.head_dim = c.head_dim;
  std::size_t block_bytes = 2ull * shape.n_layers * shape.block_size * c.kv_dim() * sizeof(float);
  std::uint32_t nb = opts.num_blocks ? opts.num_blocks
                                     : static_cast<std::uint32_t>(std::max<std::size_t>(4, (opts.kv_cache_mb << 20) / block_bytes));
  shape.n_blocks = static_cast<int>(nb);
  if (opts.device == "cuda") {
    auto ex = make_cuda_executor(e->weights_, shape);
    if (!ex) {
      log->error("opening '{}' on device cuda: {}", model_dir, ex.err().describe());
      return ex.err();
    }
    e->exec_ = std::move(*ex);
  } else if (opts.device == "cpu" || opts.device.empty()) {
    e->exec_ = std::make_unique<native_executor>(e->weights_, shape, opts.threads);
  } else {
    return make_error(errc::bad_request, "unknown device '" + opts.device + "' (expected cpu or cuda)");
  }

  scheduler_config sc;
  sc.max_num_seqs = opts.max_num_seqs;
  sc.max_num_batched_tokens = opts.max_num_batched_tokens;
  sc.enable_chunked_prefill = opts.enable_chunked_prefill;
  sc.max_model_len = static_cast<std::uint32_t>(c.max_position_embeddings);
  sc.watermark = 0.0;
  kv::block_pool_options po;
  po.num_blocks = nb;
  po.block_size = opts.block_size;
  po.enable_prefix_caching = opts.enable_prefix_caching;
  e->sched_ = std::make_unique<scheduler>(sc, po);
  if (opts.tiers.enabled()) {
    // Recompute cost for the onboarding decision: the default profile's fit
    // (a model of the GPU deployment this engine stands in for).
    auto t = kv_tiering::create(opts.tiers, e->sched_->pool(), *e->exec_, [](std::size_t prompt, std::size_t uncached) {
      return prefill_ms(default_profile(), double(uncached), double(prompt - uncached));
    }, /*overlapped=*/false);  // the import runs before the step, not under it
    if (!t) {
      log->error("KV tiers for '{}': {}", model_dir, t.err().describe());
      return t.err();
    }
    e->tiering_ = std::move(t.value());
    // Onboard when the scheduler admits a request (inside step(), so the import's time is part of the step's).
    e->sched_->set_admit_hook([p = e.get()](std::span<const kv::block_hash> hashes, std::size_t tokens) {
      p->tiering_->onboard(hashes, tokens);
    });
  }
  e->model_name_ = std::filesystem::path(model_dir).filename().string();
  if (e->model_name_.empty()) e->model_name_ = std::filesystem::path(model_dir).parent_path().filename().string();
  log->info("native engine: {} ({} {} layers, hidden {}, vocab {}, {:.1f}M params), chat template {}, KV {} blocks x {} tokens ({:.1f} MiB)",
            model_dir, c.architecture, c.num_hidden_layers, c.hidden_size, c.vocab_size,
            e->weights_->num_params / 1e6, chat_family_name(e->family_), nb, opts.block_size,
            static_cast<double>(nb) * block_bytes / (1 << 20));
  return e;
}

result<std::vector<token_id>> native_engine::tokenize(std::string_view text) const {
  auto ids = tok_.encode(text, true, opts_.add_bos);
  return std::vector<token_id>(ids.begin(), ids.end());
}

std::string native_engine::detokenize(const std::vector<token_id>& tokens) const {
  utf8_stream s;
  std::string out;
  for (auto t : tokens) out += s.push(tok_.token_bytes(static_cast<tok_id>(t), true));
  return out + s.flush();
}

result<std::vector<token_id>> native_engine::apply_chat_template(const std::vector<msg::chat_message>& messages) const {
  auto ids = tok_.encode(render_chat(family_, messages), true, false);
  return std::vector<token_id>(ids.begin(), ids.end());
}

status native_engine::add_request(engine_request req) {
  if (states_.count(req.request_id)) return make_error(errc::conflict, "duplicate request_id '" + req.request_id + "'");
  const auto V = static_cast<token_id>(config().vocab_size);
  for (const auto* v : {&req.prompt, &req.resume_tokens})
    for (auto t : *v)
      if (t >= V) return make_error(errc::bad_request, "token id " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(V));
  sequence_spec s;
  s.request_id = req.request_id;
  s.tokens = req.prompt;
  s.num_prompt_tokens = static_cast<std::uint32_t>(req.prompt.size());
  s.tokens.insert(s.tokens.end(), req.resume_tokens.begin(), req.resume_tokens.end());
  s.max_output_tokens = req.max_tokens;
  s.stop_token_ids = req.stop_token_ids;
  s.stop_token_ids.insert(s.stop_token_ids.end(), eos_ids_.begin(), eos_ids_.end());
  s.cache_salt = req.cache_salt;
  s.priority = req.priority;
  s.sampling = req.sampling;
  if (!s.sampling.seed && s.sampling.temperature > 0) {  // engine-chosen seed
    seed_counter_ = seed_counter_ * 6364136223846793005ULL + 1442695040888963407ULL;
    s.sampling.seed = seed_counter_ ^ static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  if (req.prompt.empty()) return make_error(errc::bad_request, "empty prompt");
  auto id = sched_->add(std::move(s));
  if (!id) return id.err();
  request_state st;
  st.prompt_tokens = static_cast<std::uint32_t>(req.prompt.size());
  st.completion_tokens = static_cast<std::uint32_t>(req.resume_tokens.size());
  st.min_tokens = req.sampling.min_tokens;
  for (auto& x : req.stop)
    if (!x.empty()) st.stop.push_back(std::move(x));
  states_.emplace(req.request_id, std::move(st));
  return status::success();
}

void native_engine::cancel(const std::string& request_id) { sched_->cancel(request_id); }

step_result native_engine::step() {
  auto t0 = std::chrono::steady_clock::now();
  auto outcome = sched_->step(*exec_);
  step_result r;
  for (auto& u : outcome.updates) {
    auto it = states_.find(u.request_id);
    if (it == states_.end()) continue;
    auto& st = it->second;
    if (st.finished) {  // already reported as stopped by a stop string
      if (u.finish_reason) states_.erase(it);
      continue;
    }
    sequence_output out;
    out.request_id = u.request_id;
    out.new_tokens = u.new_tokens;
    out.logprobs = u.logprobs;
    out.token_logprobs = make_token_logprobs(u.new_tokens, u.logprobs, u.top_logprobs, [&](token_id t) {
      return tok_.token_bytes(static_cast<tok_id>(t), false);
    });
    st.completion_tokens += static_cast<std::uint32_t>(u.new_tokens.size());
    for (std::size_t i = 0; i < u.new_tokens.size(); ++i) {
      // Like OpenAI/vLLM, the token that matched a stop id adds no text.
      bool stop_tok = i + 1 == u.new_tokens.size() && u.finish_reason && *u.finish_reason == "stop";
      if (!stop_tok) st.text += st.utf8.push(tok_.token_bytes(static_cast<tok_id>(u.new_tokens[i]), true));
    }
    std::optional<std::string> reason = u.finish_reason;
    if (reason) st.text += st.utf8.flush();
    std::size_t end = st.text.size();
    // Stop strings: the earliest match ends the text there.
    std::size_t max_stop = 0;
    for (const auto& s : st.stop) max_stop = std::max(max_stop, s.size());
    if (!st.stop.empty() && !(reason && *reason == "cancelled") && st.completion_tokens >= st.min_tokens) {
      std::size_t from = st.emitted > max_stop ? st.emitted - max_stop : 0;
      std::size_t best = std::string::npos;
      for (const auto& s : st.stop) best = std::min(best, st.text.find(s, from));
      if (best != std::string::npos) {
        end = std::max(best, st.emitted);
        if (!reason) {
          sched_->finish(u.request_id, "stop");
          st.finished = true;
        }
        reason = "stop";
      } else if (!reason) {
        // Hold back a tail that may be the start of a stop string.
        for (const auto& s : st.stop)
          for (std::size_t k = std::min(s.size() - 1, st.text.size() - st.emitted); k > 0; --k)
            if (st.text.compare(st.text.size() - k, k, s, 0, k) == 0) {
              end = std::min(end, st.text.size() - k);
              break;
            }
      }
    }
    out.text_delta = st.text.substr(st.emitted, end - st.emitted);
    st.emitted = end;
    if (reason) {
      out.finish_reason = reason;
      if (u.finish_reason) {
        out.usage_info.prompt_tokens = u.prompt_tokens;
        out.usage_info.completion_tokens = u.completion_tokens;
        out.usage_info.cached_tokens = u.cached_tokens;
      } else {  // stop string: the scheduler reports the sequence a step later
        out.usage_info.prompt_tokens = st.prompt_tokens;
        out.usage_info.completion_tokens = st.completion_tokens;
      }
      if (!st.finished) states_.erase(it);
    }
    r.outputs.push_back(std::move(out));
  }
  r.model_time_ms = outcome.ran ? std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() : 0.0;
  return r;
}

std::vector<msg::kv_event> native_engine::drain_kv_events() {
  auto ev = sched_->pool().drain_events();
  if (tiering_)
    for (auto& e : tiering_->drain_events()) ev.push_back(std::move(e));
  return ev;
}

msg::load_report native_engine::load() const {
  auto l = sched_->load();
  if (tiering_) tiering_->fill_load(l);
  return l;
}

std::vector<msg::kv_event> native_engine::kv_snapshot() const {
  auto ev = sched_->pool().snapshot();
  if (tiering_)
    for (auto& e : tiering_->snapshot()) ev.push_back(std::move(e));
  return ev;
}

std::size_t native_engine::cached_blocks(std::span<const kv::block_hash> hashes) const {
  return backends::cached_blocks(sched_->pool(), hashes);
}

std::size_t native_engine::export_kv(std::span<const kv::block_hash> hashes, std::span<std::byte> out) const {
  return export_blocks(sched_->pool(), *exec_, hashes, out);
}

result<std::size_t> native_engine::import_kv(std::span<const kv::block_hash> hashes,
                                             std::optional<kv::block_hash> parent, std::span<const std::byte> data) {
  return import_blocks(sched_->pool(), *exec_, hashes, parent, data);
}

result<std::unique_ptr<engine>> make_native_engine(const std::string& model_dir, const native_engine_options& opts) {
  auto e = native_engine::open(model_dir, opts);
  if (!e) return e.err();
  return std::unique_ptr<engine>(std::move(*e));
}

}  // namespace yard::backends
