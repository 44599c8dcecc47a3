#include "backends/native/model_weights.hpp"

#include <cstdint>

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
  std::size_t* counted_bytes = nullptr;

  result<const float*> get(const std::string& name, std::vector<std::int64_t> shape, bool optional = false) {
    const tensor_view* t = w.files->find(name);
    if (!t) {
      if (optional) return static_cast<const float*>(nullptr);
      return make_error(errc::corrupt, "missing tensor '" + name + "'");
    }
    if (t->shape != shape)
      return make_error(errc::corrupt, "tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected " +
                                           shape_str(shape) + " (from config.json)");
    w.num_params += static_cast<std::size_t>(t->numel());
    if (t->type == dtype::f32 && reinterpret_cast<std::uintptr_t>(t->data) % alignof(float) == 0)
      return reinterpret_cast<const float*>(t->data);
    auto buf = std::make_unique<float[]>(static_cast<std::size_t>(t->numel()));
    t->to_f32(buf.get());
    const float* p = buf.get();
    w.owned.push_back(std::move(buf));
    return p;
  }
};

}  // namespace

result<std::unique_ptr<model_weights>> load_model_weights(const model_config& c, std::unique_ptr<tensor_set> files) {
  auto w = std::make_unique<model_weights>();
  w->config = c;
  w->files = std::move(files);
  loader ld{*w};
  const std::int64_t H = c.hidden_size, V = c.vocab_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim();
#define YARD_GET(dst, ...)                     \
  do {                                         \
    auto r_ = ld.get(__VA_ARGS__);             \
    if (!r_) return r_.err();                  \
    dst = *r_;                                 \
  } while (0)
  YARD_GET(w->embed, "model.embed_tokens.weight", {V, H});
  YARD_GET(w->final_norm, "model.norm.weight", {H});
  bool has_head = w->files->find("lm_head.weight") != nullptr;
  if (c.tie_word_embeddings && !has_head) w->lm_head = w->embed;
  else YARD_GET(w->lm_head, "lm_head.weight", {V, H});
  w->layers.resize(static_cast<std::size_t>(c.num_hidden_layers));
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    auto p = "model.layers." + std::to_string(l) + ".";
    auto& L = w->layers[l];
    YARD_GET(L.attn_norm, p + "input_layernorm.weight", {H});
    YARD_GET(L.wq, p + "self_attn.q_proj.weight", {Q, H});
    YARD_GET(L.wk, p + "self_attn.k_proj.weight", {KV, H});
    YARD_GET(L.wv, p + "self_attn.v_proj.weight", {KV, H});
    YARD_GET(L.bq, p + "self_attn.q_proj.bias", {Q}, true);
    YARD_GET(L.bk, p + "self_attn.k_proj.bias", {KV}, true);
    YARD_GET(L.bv, p + "self_attn.v_proj.bias", {KV}, true);
    YARD_GET(L.wo, p + "self_attn.o_proj.weight", {H, Q});
    YARD_GET(L.ffn_norm, p + "post_attention_layernorm.weight", {H});
    YARD_GET(L.w_gate, p + "mlp.gate_proj.weight", {I, H});
    YARD_GET(L.w_up, p + "mlp.up_proj.weight", {I, H});
    YARD_GET(L.w_down, p + "mlp.down_proj.weight", {H, I});
  }
#undef YARD_GET
  std::size_t per_layer = static_cast<std::size_t>(2 * H + Q * H * 2 + KV * H * 2 + 3 * I * H);
  w->weight_bytes_f32 = 4 * (per_layer * c.num_hidden_layers + static_cast<std::size_t>(H + V * H));
  return w;
}

result<std::unique_ptr<model_weights>> load_model_weights(const std::string& dir) {
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
  auto w = load_model_weights(*cfg, std::move(*files));
  if (!w) log->error("loading '{}': {}", dir, w.err().describe());
  return w;
}

}  // namespace yard::backends::native
