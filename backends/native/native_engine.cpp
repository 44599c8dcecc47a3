#include "backends/native/native_engine.hpp"

#include "backends/native/blas_threads.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "backends/native/cuda/cuda_device.hpp"
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
  if (opts.quantize != weight_quant::none && opts.device == "cuda")
    return make_error(errc::bad_request, "--quantize " + std::string(weight_quant_name(opts.quantize)) +
                                             " is for the CPU engine; the CUDA executor runs f32 weights");
  load_options lo;
  lo.quantize = opts.quantize;
  auto w = load_model_weights(model_dir, lo);
  if (!w) return w.err();
  e->weights_ = std::shared_ptr<const model_weights>(std::move(*w));
  auto text = native_prompt_tokenizer::open(model_dir, opts.add_bos);
  if (!text) {
    log->error("loading '{}': {}", model_dir, text.err().describe());
    return text.err();
  }
  e->text_ = std::move(*text);
  const auto& c = e->weights_->config;
  if (e->text_.vocab().size() > static_cast<std::size_t>(c.vocab_size))
    return make_error(errc::corrupt, "tokenizer.json has " + std::to_string(e->text_.vocab().size()) +
                                         " tokens but config.json field 'vocab_size' is " + std::to_string(c.vocab_size));
  for (int id : c.eos_token_ids) e->eos_ids_.push_back(static_cast<token_id>(id));
  for (const auto& s : chat_end_tokens(e->text_.family()))
    if (auto id = e->text_.vocab().find(s)) e->eos_ids_.push_back(static_cast<token_id>(*id));
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
  std::unique_ptr<executor> exec;
  if (opts.device == "cuda") {
    auto ex = make_cuda_executor(e->weights_, shape);
    if (!ex) {
      log->error("opening '{}' on device cuda: {}", model_dir, ex.err().describe());
      return ex.err();
    }
    exec = std::move(*ex);
  } else if (opts.device == "cpu" || opts.device.empty()) {
    // --threads sizes the engine's pool, which runs every matrix product and attention; BLAS runs inside its
    // jobs, single-threaded: BLAS's own threads spin after each call and took the cores from the pool.
    if (!native::set_blas_threads(1))
      log->warn("the BLAS library has no thread-count knob: its own threads run beside the engine's {} threads",
                opts.threads);
    exec = std::make_unique<native_executor>(e->weights_, shape, opts.threads);
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
  e->set_core(std::make_unique<scheduler>(sc, po), std::move(exec));
  if (opts.tiers.enabled()) {
    // Recompute cost for the onboarding decision: the default profile's fit
    // (a model of the GPU deployment this engine stands in for). The import
    // runs before the step, not under it, inside step(): its time is the step's.
    kv_tier_options tiers = opts.tiers;
    if (opts.device == "cuda")  // G2's slab page-locked: G1<->G2 copies are DMA (cudaHostRegister)
      tiers.g2_pinning = {native::pin_host_memory, native::unpin_host_memory};
    auto t = e->attach_tiers(tiers, [](std::size_t prompt, std::size_t uncached) {
      return prefill_ms(default_profile(), double(uncached), double(prompt - uncached));
    }, /*overlapped=*/false);
    if (!t) {
      log->error("KV tiers for '{}': {}", model_dir, t.err().describe());
      return t.err();
    }
  }
  log->info("native engine: {} ({} {} layers, hidden {}, vocab {}, {:.1f}M params, {} weights, {:.1f} MiB read per "
            "decode step), chat template {}, KV {} blocks x {} tokens ({:.1f} MiB)",
            model_dir, c.architecture, c.num_hidden_layers, c.hidden_size, c.vocab_size,
            e->weights_->num_params / 1e6, wdtype_name(e->weights_->layers.empty() ? e->weights_->lm_head.type
                                                                                 : e->weights_->layers[0].w_up.type),
            static_cast<double>(e->weights_->weight_bytes) / (1 << 20), chat_family_name(e->text_.family()), nb, opts.block_size,
            static_cast<double>(nb) * block_bytes / (1 << 20));
  return e;
}

result<std::vector<token_id>> native_engine::tokenize(std::string_view text) const { return text_.tokenize(text); }

std::string native_engine::detokenize(const std::vector<token_id>& tokens) const {
  utf8_stream s;
  std::string out;
  for (auto t : tokens) out += s.push(text_.vocab().token_bytes(static_cast<tok_id>(t), true));
  return out + s.flush();
}

result<std::vector<token_id>> native_engine::apply_chat_template(const std::vector<msg::chat_message>& messages,
                                                                const msg::json_value* tools) const {
  return text_.apply_chat_template(messages, tools);
}

status native_engine::prepare(const engine_request& req, sequence_spec& s) {
  const auto V = static_cast<token_id>(config().vocab_size);
  for (const auto* v : {&req.prompt, &req.resume_tokens})
    for (auto t : *v)
      if (t >= V) return make_error(errc::bad_request, "token id " + std::to_string(t) + " is outside the vocabulary of " + std::to_string(V));
  s.stop_token_ids.insert(s.stop_token_ids.end(), eos_ids_.begin(), eos_ids_.end());
  if (!s.sampling.seed && s.sampling.temperature > 0) {  // engine-chosen seed
    seed_counter_ = seed_counter_ * 6364136223846793005ULL + 1442695040888963407ULL;
    s.sampling.seed = seed_counter_ ^ static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  return status::success();
}

std::string native_engine::token_bytes(token_id t) const { return text_.vocab().token_bytes(static_cast<tok_id>(t), true); }
std::string native_engine::token_label(token_id t) const { return text_.vocab().token_bytes(static_cast<tok_id>(t), false); }

// A real engine has spent its model time already: the step's wall time.
double native_engine::step_time_ms(const step_outcome& o, double wall_ms) {
  take_onboard_ms();  // modelled copy time: the import's real time is in wall_ms
  return o.ran ? wall_ms : 0.0;
}

result<std::unique_ptr<engine>> make_native_engine(const std::string& model_dir, const native_engine_options& opts) {
  auto e = native_engine::open(model_dir, opts);
  if (!e) return e.err();
  return std::unique_ptr<engine>(std::move(*e));
}

}  // namespace yard::backends
