#include "backends/native/model_weights.hpp"

#include <cstdint>
#include <cstring>

#include "common/log.hpp"

namespace yard::backends::native {

namespace {

std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

struct loader {
  model_weights& w;
  const load_options& opts;

  result<const tensor_view*> find(const std::string& name, const std::vector<std::int64_t>& shape, bool optional) {
    const tensor_view* t = w.files->find(name);
    if (!t) {
      if (optional) return static_cast<const tensor_view*>(nullptr);
      return make_error(errc::corrupt, "missing tensor '" + name + "'");
    }
    if (t->shape != shape)
      return make_error(errc::corrupt, "tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected " +
                                           shape_str(shape) + " (from config.json)");
    w.num_params += static_cast<std::size_t>(t->numel());
    return t;
  }

  void* own(std::size_t bytes) {
    w.owned.push_back(std::make_unique<std::byte[]>(bytes));
    return w.owned.back().get();
  }

  const float* widen(const tensor_view& t) {
    if (t.type == dtype::f32 && reinterpret_cast<std::uintptr_t>(t.data) % alignof(float) == 0)
      return reinterpret_cast<const float*>(t.data);
    auto* buf = static_cast<float*>(own(sizeof(float) * static_cast<std::size_t>(t.numel())));
    t.to_f32(buf);
    return buf;
  }

  // A vector (norm weight, bias): always f32.
  result<const float*> vec(const std::string& name, std::vector<std::int64_t> shape, bool optional = false) {
    auto t = find(name, shape, optional);
    if (!t) return t.err();
    if (!*t) return static_cast<const float*>(nullptr);
    return widen(**t);
  }

  // A matrix: kept as stored unless widened; `quantizable` ones become int8 when asked.
  result<weight_matrix> mat(const std::string& name, std::vector<std::int64_t> shape, bool quantizable = true) {
    auto t = find(name, shape, false);
    if (!t) return t.err();
    const tensor_view& tv = **t;
    weight_matrix m;
    m.rows = static_cast<int>(shape[0]);
    m.cols = static_cast<int>(shape[1]);
    const bool half = tv.type != dtype::f32;
    if (half && !opts.widen_to_f32) {
      m.type = tv.type == dtype::f16 ? wdtype::f16 : wdtype::bf16;
      if (reinterpret_cast<std::uintptr_t>(tv.data) % 2 == 0) {
        m.data = tv.data;
      } else {
        void* buf = own(tv.nbytes);
        std::memcpy(buf, tv.data, tv.nbytes);
        m.data = buf;
      }
    } else {
      m.type = wdtype::f32;
      m.data = widen(tv);
    }
    if (quantizable && opts.quantize == weight_quant::int8) return quantize(m);
    return m;
  }

  weight_matrix quantize(const weight_matrix& m) {
    auto* q = static_cast<std::int8_t*>(own(m.numel()));
    auto* scales = static_cast<float*>(own(sizeof(float) * static_cast<std::size_t>(m.rows)));
    return quantize_int8(m, q, scales);
  }
};

}  // namespace

result<std::unique_ptr<model_weights>> load_model_weights(const model_config& c, std::unique_ptr<tensor_set> files,
                                                          const load_options& opts) {
  auto w = std::make_unique<model_weights>();
  w->config = c;
  w->files = std::move(files);
  w->options = opts;
  loader ld{*w, opts};
  const std::int64_t H = c.hidden_size, V = c.vocab_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim();
#define YARD_GET(dst, kind, ...)               \
  do {                                         \
    auto r_ = ld.kind(__VA_ARGS__);            \
    if (!r_) return r_.err();                  \
    dst = *r_;                                 \
  } while (0)
  // The embedding table is read one row per token: it stays as stored (int8 would only save memory).
  YARD_GET(w->embed, mat, "model.embed_tokens.weight", {V, H}, false);
  YARD_GET(w->final_norm, vec, "model.norm.weight", {H});
  bool has_head = w->files->find("lm_head.weight") != nullptr;
  if (c.tie_word_embeddings && !has_head) {
    w->lm_head = opts.quantize == weight_quant::int8 ? ld.quantize(w->embed) : w->embed;
  } else {
    YARD_GET(w->lm_head, mat, "lm_head.weight", {V, H});
  }
  w->layers.resize(static_cast<std::size_t>(c.num_hidden_layers));
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    auto p = "model.layers." + std::to_string(l) + ".";
    auto& L = w->layers[l];
    YARD_GET(L.attn_norm, vec, p + "input_layernorm.weight", {H});
    YARD_GET(L.wq, mat, p + "self_attn.q_proj.weight", {Q, H});
    YARD_GET(L.wk, mat, p + "self_attn.k_proj.weight", {KV, H});
    YARD_GET(L.wv, mat, p + "self_attn.v_proj.weight", {KV, H});
    YARD_GET(L.bq, vec, p + "self_attn.q_proj.bias", {Q}, true);
    YARD_GET(L.bk, vec, p + "self_attn.k_proj.bias", {KV}, true);
    YARD_GET(L.bv, vec, p + "self_attn.v_proj.bias", {KV}, true);
    YARD_GET(L.wo, mat, p + "self_attn.o_proj.weight", {H, Q});
    YARD_GET(L.ffn_norm, vec, p + "post_attention_layernorm.weight", {H});
    YARD_GET(L.w_gate, mat, p + "mlp.gate_proj.weight", {I, H});
    YARD_GET(L.w_up, mat, p + "mlp.up_proj.weight", {I, H});
    YARD_GET(L.w_down, mat, p + "mlp.down_proj.weight", {H, I});
  }
#undef YARD_GET
  std::size_t per_layer = static_cast<std::size_t>(2 * H + Q * H * 2 + KV * H * 2 + 3 * I * H);
  w->weight_bytes_f32 = 4 * (per_layer * c.num_hidden_layers + static_cast<std::size_t>(H + V * H));
  // As kept: matrices at their own width (int8 with their scales), norms f32; biases left out like above.
  std::size_t bytes = w->lm_head.bytes() + 4 * static_cast<std::size_t>(H);
  for (const auto& L : w->layers) {
    bytes += L.wq.bytes() + L.wk.bytes() + L.wv.bytes() + L.wo.bytes() + L.w_gate.bytes() + L.w_up.bytes() +
             L.w_down.bytes() + 4 * static_cast<std::size_t>(2 * H);
  }
  w->weight_bytes = bytes;
  return w;
}

result<std::unique_ptr<model_weights>> load_model_weights(const std::string& dir, const load_options& opts) {
  auto log = component_logger("native");
  auto cfg = load_model_config(dir);
  if (!cfg) {
    log->error("loading '{}': {}", dir, cfg.err().describe());
    return cfg.err();
  }
  auto files = tensor_set::open_dir(dir);
  if (!files) {
    log->error("loading '{}': {}", dir, files.err().describe());
    return files.err();
  }
  auto w = load_model_weights(*cfg, std::move(*files), opts);
  if (!w) log->error("loading '{}': {}", dir, w.err().describe());
  return w;
}

}  // namespace yard::backends::native
