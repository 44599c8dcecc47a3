#include "backends/native/model_config.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace yard::backends::native {

using nlohmann::json;

namespace {

error field_error(const std::string& field, const std::string& what) {
  return make_error(errc::bad_request, "config.json: field '" + field + "' " + what);
}

}  // namespace

result<model_config> parse_model_config(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(errc::corrupt, "config.json is not a valid JSON object");
  model_config c;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    c.architecture = j["architectures"][0].get<std::string>();
  if (j.contains("model_type") && j["model_type"].is_string()) c.model_type = j["model_type"].get<std::string>();
  static const char* supported[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};
  bool ok = false;
  for (auto* s : supported) ok |= c.architecture == s;
  if (!ok && c.architecture.empty() && (c.model_type == "llama" || c.model_type == "qwen2" || c.model_type == "mistral")) ok = true;
  if (!ok)
    return make_error(errc::unsupported, "config.json: field 'architectures' = '" + c.architecture + "' (model_type '" +
                                             c.model_type + "') is not supported; supported: LlamaForCausalLM, "
                                             "MistralForCausalLM, Qwen2ForCausalLM");
  auto req_int = [&](const char* f, int& out) -> status {
    if (!j.contains(f)) return field_error(f, "is missing");
    if (!j[f].is_number_integer() || j[f].get<long long>() <= 0 || j[f].get<long long>() > (1LL << 30))
      return field_error(f, "must be a positive integer");
    out = j[f].get<int>();
    return status::success();
  };
  for (auto [f, p] : {std::pair{"vocab_size", &c.vocab_size}, {"hidden_size", &c.hidden_size},
                      {"intermediate_size", &c.intermediate_size}, {"num_hidden_layers", &c.num_hidden_layers},
                      {"num_attention_heads", &c.num_attention_heads}})
    if (auto st = req_int(f, *p); !st) return st.err();
  // Per-layer state is sized from these before any tensor is read: a count no model has (the largest
  // Llama-family models have a few hundred layers and heads) is a bad file, not a reason to allocate.
  if (c.num_hidden_layers > 4096) return field_error("num_hidden_layers", "must be at most 4096");
  if (c.num_attention_heads > 4096) return field_error("num_attention_heads", "must be at most 4096");
  c.num_key_value_heads = c.num_attention_heads;
  if (j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null())
    if (auto st = req_int("num_key_value_heads", c.num_key_value_heads); !st) return st.err();
  c.head_dim = c.hidden_size / c.num_attention_heads;
  if (j.contains("head_dim") && !j["head_dim"].is_null())
    if (auto st = req_int("head_dim", c.head_dim); !st) return st.err();
  if (c.num_attention_heads % c.num_key_value_heads)
    return field_error("num_key_value_heads", "must divide num_attention_heads");
  if (c.head_dim % 2) return field_error("head_dim", "must be even for RoPE");
  if (j.contains("max_position_embeddings"))
    if (auto st = req_int("max_position_embeddings", c.max_position_embeddings); !st) return st.err();
  auto opt_float = [&](const json& o, const char* f, float& out) -> status {
    if (!o.contains(f) || o[f].is_null()) return status::success();
    if (!o[f].is_number()) return field_error(f, "must be a number");
    out = o[f].get<float>();
    return status::success();
  };
  if (auto st = opt_float(j, "rms_norm_eps", c.rms_norm_eps); !st) return st.err();
  if (!(c.rms_norm_eps > 0) || !std::isfinite(c.rms_norm_eps)) return field_error("rms_norm_eps", "must be a positive number");
  // The MLP is SwiGLU: a config naming another activation describes a model this engine would run wrongly.
  if (j.contains("hidden_act") && !j["hidden_act"].is_null() &&
      !(j["hidden_act"].is_string() && (j["hidden_act"] == "silu" || j["hidden_act"] == "swish")))
    return make_error(errc::unsupported, "config.json: field 'hidden_act' = " + j["hidden_act"].dump() +
                                             " is not supported (the native engine runs SwiGLU: \"silu\")");
  if (auto st = opt_float(j, "rope_theta", c.rope_theta); !st) return st.err();
  if (c.rope_theta <= 0) return field_error("rope_theta", "must be positive");
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    auto& rs = j["rope_scaling"];
    std::string type;
    if (rs.contains("rope_type") && rs["rope_type"].is_string()) type = rs["rope_type"].get<std::string>();
    else if (rs.contains("type") && rs["type"].is_string()) type = rs["type"].get<std::string>();
    if (type != "llama3" && type != "linear" && type != "default")
      return make_error(errc::unsupported, "config.json: field 'rope_scaling.rope_type' = '" + type +
                                               "' is not supported (llama3, linear)");
    c.rope_scaling_type = type == "default" ? "" : type;
    if (auto st = opt_float(rs, "factor", c.rope_factor); !st) return st.err();
    if (auto st = opt_float(rs, "low_freq_factor", c.rope_low_freq_factor); !st) return st.err();
    if (auto st = opt_float(rs, "high_freq_factor", c.rope_high_freq_factor); !st) return st.err();
    if (rs.contains("original_max_position_embeddings") && rs["original_max_position_embeddings"].is_number_integer())
      c.rope_original_max_position = rs["original_max_position_embeddings"].get<int>();
    if (c.rope_factor <= 0) return field_error("rope_scaling.factor", "must be positive");
  }
  if (j.contains("tie_word_embeddings") && j["tie_word_embeddings"].is_boolean())
    c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bos_token_id = j["bos_token_id"].get<int>();
  if (j.contains("eos_token_id")) {
    auto& e = j["eos_token_id"];
    if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<int>());
    else if (e.is_array())
      for (auto& x : e)
        if (x.is_number_integer()) c.eos_token_ids.push_back(x.get<int>());
  }
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.torch_dtype = j["torch_dtype"].get<std::string>();
  // An end-of-text id outside the vocabulary can never be sampled: generation would never stop on it.
  for (int id : c.eos_token_ids)
    if (id < 0 || id >= c.vocab_size)
      return field_error("eos_token_id", std::to_string(id) + " is outside the vocabulary (vocab_size " +
                                             std::to_string(c.vocab_size) + ")");
  if (c.bos_token_id >= c.vocab_size)
    return field_error("bos_token_id", std::to_string(c.bos_token_id) + " is outside the vocabulary");
  return c;
}

result<model_config> load_model_config(const std::string& dir) {
  auto path = std::filesystem::path(dir) / "config.json";
  std::ifstream in(path);
  if (!in) return make_error(errc::not_found, "cannot read '" + path.string() + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_model_config(ss.str());
}

std::string model_config_json(const model_config& c) {
  // Floats as their shortest decimal (1e-05, not 9.999999747378752e-06).
  auto dec = [](float f) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.7g", static_cast<double>(f));
    return std::stod(buf);
  };
  json j = {{"architectures", {c.architecture}},
            {"model_type", c.model_type},
            {"vocab_size", c.vocab_size},
            {"hidden_size", c.hidden_size},
            {"intermediate_size", c.intermediate_size},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_attention_heads", c.num_attention_heads},
            {"num_key_value_heads", c.num_key_value_heads},
            {"head_dim", c.head_dim},
            {"max_position_embeddings", c.max_position_embeddings},
            {"rms_norm_eps", dec(c.rms_norm_eps)},
            {"rope_theta", dec(c.rope_theta)},
            {"tie_word_embeddings", c.tie_word_embeddings},
            {"hidden_act", "silu"},
            {"torch_dtype", c.torch_dtype}};
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  else if (!c.eos_token_ids.empty()) j["eos_token_id"] = c.eos_token_ids;
  if (!c.rope_scaling_type.empty())
    j["rope_scaling"] = {{"rope_type", c.rope_scaling_type},
                         {"factor", c.rope_factor},
                         {"low_freq_factor", c.rope_low_freq_factor},
                         {"high_freq_factor", c.rope_high_freq_factor},
                         {"original_max_position_embeddings", c.rope_original_max_position}};
  return j.dump(2);
}

std::vector<float> rope_inv_freq(const model_config& c) {
  int half = c.head_dim / 2;
  std::vector<float> f(half);
  for (int i = 0; i < half; ++i) {
    double freq = 1.0 / std::pow(static_cast<double>(c.rope_theta), (2.0 * i) / c.head_dim);
    if (c.rope_scaling_type == "linear") {
      freq /= c.rope_factor;
    } else if (c.rope_scaling_type == "llama3") {
      const double pi = 3.14159265358979323846;
      double low_wavelen = c.rope_original_max_position / c.rope_low_freq_factor;
      double high_wavelen = c.rope_original_max_position / c.rope_high_freq_factor;
      double wavelen = 2 * pi / freq;
      if (wavelen > low_wavelen) freq /= c.rope_factor;
      else if (wavelen >= high_wavelen) {
        double smooth = (c.rope_original_max_position / wavelen - c.rope_low_freq_factor) /
                        (c.rope_high_freq_factor - c.rope_low_freq_factor);
        freq = (1 - smooth) * freq / c.rope_factor + smooth * freq;
      }
    }
    f[i] = static_cast<float>(freq);
  }
  return f;
}

}  // namespace yard::backends::native
