#include "backends/native/mkmodel.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "backends/native/tokenizer.hpp"
#include "kv/block_hash.hpp"

namespace yard::backends::native {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* corpus =
    "The quick brown fox jumps over the lazy dog. A switchyard is a place where trains are sorted and sent on "
    "their way; here it sorts requests between workers that hold a model and its cache. Every request asks for "
    "text, and the answer comes back one token at a time while the user waits. The router looks at which worker "
    "already holds the beginning of the prompt and sends the request there, so the work is not done twice. "
    "When a worker is busy, the request goes to another one, and when the cache is full, old blocks are "
    "evicted in the order they were last used. Tokens, blocks, layers, heads and vectors: the model reads its "
    "weights for every step, and memory bandwidth sets the pace of decoding. Prefill is different, since it "
    "processes many tokens at once and the matrix units stay busy. Hello world! How are you today? I am fine, "
    "thank you. What is the time? It is 12:30 and the date is 2024-05-17. Numbers like 1, 22, 333, 4444 and "
    "3.14159 appear in text too. She said: \"it's the best thing we've seen, isn't it?\" They'll come later; "
    "I'd like to know where you're going. The weather is nice and the sun is shining on the river and the "
    "mountains in the distance. Data flows from the frontend to the router, then to the worker and back. "
    "Café, naïve, résumé, über, Straße, 東京, こんにちは, Привет, 🙂 are words from other languages and symbols.\n"
    "def main():\n    print(\"hello\")\n    return 0\n\nfor i in range(10):\n    total += i * 2\n";

constexpr const char* llama3_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* qwen2_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

std::vector<std::string> special_tokens(const std::string& family) {
  if (family == "qwen2") return {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  return {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
}

json pre_tokenizer_json(const std::string& family) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"},
             {"pattern", {{"Regex", family == "qwen2" ? qwen2_regex : llama3_regex}}},
             {"behavior", "Isolated"},
             {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
}

}  // namespace

std::string make_tokenizer_json(const std::string& family, int n_merges) {
  // Split the corpus with the family's own pre-tokenizer.
  json base = {{"model", {{"type", "BPE"}, {"vocab", json::object()}}}, {"pre_tokenizer", pre_tokenizer_json(family)}};
  auto splitter = tokenizer::parse(base.dump());
  std::map<std::vector<std::string>, int> words;
  for (const auto& w : splitter->pre_split(corpus)) {
    std::vector<std::string> sym;
    for (char ch : w) sym.push_back(byte_to_unicode(static_cast<std::uint8_t>(ch)));
    ++words[sym];
  }
  json vocab = json::object();
  int next_id = 0;
  for (int b = 0; b < 256; ++b) vocab[byte_to_unicode(static_cast<std::uint8_t>(b))] = next_id++;
  json merges = json::array();
  for (int m = 0; m < n_merges; ++m) {
    std::map<std::pair<std::string, std::string>, int> pairs;  // ordered: ties go to the smallest pair
    for (const auto& [sym, n] : words)
      for (std::size_t i = 0; i + 1 < sym.size(); ++i) pairs[{sym[i], sym[i + 1]}] += n;
    const std::pair<std::string, std::string>* best = nullptr;
    int best_n = 1;
    for (const auto& [pr, n] : pairs)
      if (n > best_n) { best_n = n; best = &pr; }
    if (!best) break;
    auto [a, b] = *best;
    merges.push_back(a + " " + b);
    if (!vocab.contains(a + b)) vocab[a + b] = next_id++;
    std::map<std::vector<std::string>, int> next;
    for (const auto& [sym, n] : words) {
      std::vector<std::string> s2;
      for (std::size_t i = 0; i < sym.size();) {
        if (i + 1 < sym.size() && sym[i] == a && sym[i + 1] == b) { s2.push_back(a + b); i += 2; }
        else s2.push_back(sym[i++]);
      }
      next[s2] += n;
    }
    words.swap(next);
  }
  json added = json::array();
  for (const auto& s : special_tokens(family))
    added.push_back({{"id", next_id++}, {"content", s}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  json j = {{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens", added},
            {"normalizer", nullptr},
            {"pre_tokenizer", pre_tokenizer_json(family)},
            {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
            {"model",
             {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"byte_fallback", false},
              {"ignore_merges", false}, {"vocab", vocab}, {"merges", merges}}}};
  if (family != "qwen2")
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                                       {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                           {"pair", json::array()},
                           {"special_tokens", json::object()}};
  else j["post_processor"] = nullptr;
  return j.dump();
}

result<model_config> preset_config(const mkmodel_options& o) {
  model_config c;
  if (o.family == "llama") {
    c.architecture = "LlamaForCausalLM";
    c.model_type = "llama";
  } else if (o.family == "qwen2") {
    c.architecture = "Qwen2ForCausalLM";
    c.model_type = "qwen2";
  } else {
    return make_error(errc::bad_request, "unknown family '" + o.family + "' (llama, qwen2)");
  }
  if (o.preset == "tiny") {
    c.hidden_size = 64; c.intermediate_size = 160; c.num_hidden_layers = 2;
    c.num_attention_heads = 4; c.num_key_value_heads = 2; c.head_dim = 16;
    c.max_position_embeddings = 1024; c.tie_word_embeddings = true;
  } else if (o.preset == "small") {
    c.hidden_size = 256; c.intermediate_size = 704; c.num_hidden_layers = 4;
    c.num_attention_heads = 8; c.num_key_value_heads = 4; c.head_dim = 32;
    c.max_position_embeddings = 2048; c.tie_word_embeddings = false;
  } else if (o.preset == "100m") {
    c.hidden_size = 768; c.intermediate_size = 2304; c.num_hidden_layers = 14;
    c.num_attention_heads = 12; c.num_key_value_heads = 4; c.head_dim = 64;
    c.max_position_embeddings = 4096; c.tie_word_embeddings = false;
    c.rope_theta = 500000.0f;
  } else {
    return make_error(errc::bad_request, "unknown preset '" + o.preset + "' (tiny, small, 100m)");
  }
  if (o.tied >= 0) c.tie_word_embeddings = o.tied == 1;
  if (o.intermediate_size > 0) c.intermediate_size = o.intermediate_size;
  if (!o.rope_scaling.empty()) {
    c.rope_scaling_type = o.rope_scaling;
    c.rope_factor = 8.0f;
    c.rope_low_freq_factor = 1.0f;
    c.rope_high_freq_factor = 4.0f;
    c.rope_original_max_position = 256;  // small, so the scaling band covers this head_dim's frequencies
  }
  c.torch_dtype = o.type == dtype::f32 ? "float32" : o.type == dtype::f16 ? "float16" : "bfloat16";
  return c;
}

namespace {

int preset_merges(const std::string& preset) { return preset == "tiny" ? 200 : preset == "small" ? 500 : 1000; }

// Deterministic values for one tensor: uniform with variance scale^2, plus offset.
std::vector<float> random_tensor(std::uint64_t seed, const std::string& name, std::size_t n, float scale, float offset) {
  std::uint64_t s = kv::hash_block(seed, nullptr, 0, 0);
  for (char ch : name) s = s * 1099511628211ULL ^ static_cast<std::uint8_t>(ch);
  std::mt19937_64 rng(s);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  const float a = scale * std::sqrt(3.0f);
  for (auto& x : v) x = offset + a * u(rng);
  return v;
}

}  // namespace

status write_random_model(const mkmodel_options& o) {
  auto cfg = preset_config(o);
  if (!cfg) return cfg.err();
  auto& c = *cfg;
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) return make_error(errc::io_error, "cannot create '" + o.out + "': " + ec.message());
  std::string tok_json = make_tokenizer_json(o.family, preset_merges(o.preset));
  auto tok = tokenizer::parse(tok_json);
  if (!tok) return tok.err();
  c.vocab_size = static_cast<int>(tok->size());
  if (o.family == "qwen2") {
    c.eos_token_ids = {*tok->find("<|im_end|>"), *tok->find("<|endoftext|>")};
  } else {
    c.bos_token_id = *tok->find("<|begin_of_text|>");
    c.eos_token_ids = {*tok->find("<|end_of_text|>"), *tok->find("<|eot_id|>")};
  }
  const std::size_t H = c.hidden_size, V = c.vocab_size, I = c.intermediate_size, Q = c.q_dim(), KV = c.kv_dim();
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> specs;
  std::vector<std::vector<float>> data;
  auto add = [&](const std::string& name, std::vector<std::int64_t> shape, float scale, float offset) {
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    data.push_back(random_tensor(o.seed, name, n, scale, offset));
    specs.emplace_back(name, std::move(shape));
  };
  auto lin = [](std::size_t fan_in) { return 1.0f / std::sqrt(static_cast<float>(fan_in)); };
  auto iH = static_cast<std::int64_t>(H), iV = static_cast<std::int64_t>(V), iI = static_cast<std::int64_t>(I),
       iQ = static_cast<std::int64_t>(Q), iKV = static_cast<std::int64_t>(KV);
  add("model.embed_tokens.weight", {iV, iH}, 1.0f, 0.0f);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    auto p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {iH}, 0.1f, 1.0f);
    add(p + "self_attn.q_proj.weight", {iQ, iH}, lin(H), 0.0f);
    add(p + "self_attn.k_proj.weight", {iKV, iH}, lin(H), 0.0f);
    add(p + "self_attn.v_proj.weight", {iKV, iH}, lin(H), 0.0f);
    if (o.family == "qwen2") {
      add(p + "self_attn.q_proj.bias", {iQ}, 0.1f, 0.0f);
      add(p + "self_attn.k_proj.bias", {iKV}, 0.1f, 0.0f);
      add(p + "self_attn.v_proj.bias", {iKV}, 0.1f, 0.0f);
    }
    add(p + "self_attn.o_proj.weight", {iH, iQ}, 4.0f * lin(Q), 0.0f);  // strong layers: a tied head must not just echo the input
    add(p + "post_attention_layernorm.weight", {iH}, 0.1f, 1.0f);
    add(p + "mlp.gate_proj.weight", {iI, iH}, lin(H), 0.0f);
    add(p + "mlp.up_proj.weight", {iI, iH}, lin(H), 0.0f);
    add(p + "mlp.down_proj.weight", {iH, iI}, 4.0f * lin(I), 0.0f);
  }
  add("model.norm.weight", {iH}, 0.1f, 1.0f);
  if (!c.tie_word_embeddings) add("lm_head.weight", {iV, iH}, lin(H) * 4.0f, 0.0f);
  std::vector<tensor_to_write> tw;
  for (std::size_t i = 0; i < specs.size(); ++i) tw.push_back({specs[i].first, specs[i].second, data[i].data()});
  if (auto st = write_safetensors_dir(o.out, tw, o.type, o.shards); !st) return st;
  auto write_text = [&](const char* name, const std::string& text) -> status {
    std::ofstream f(fs::path(o.out) / name);
    f << text;
    if (!f) return make_error(errc::io_error, std::string("cannot write ") + name + " in '" + o.out + "'");
    return status::success();
  };
  if (auto st = write_text("config.json", model_config_json(c)); !st) return st;
  if (auto st = write_text("tokenizer.json", tok_json); !st) return st;
  json tc = {{"tokenizer_class", "PreTrainedTokenizerFast"}, {"model_max_length", c.max_position_embeddings}};
  if (o.family == "qwen2") tc["eos_token"] = "<|im_end|>";
  else { tc["bos_token"] = "<|begin_of_text|>"; tc["eos_token"] = "<|eot_id|>"; }
  return write_text("tokenizer_config.json", tc.dump(2));
}

}  // namespace yard::backends::native
