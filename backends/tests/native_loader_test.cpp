// Loader: dtypes, shards, tied embeddings, and every corrupt-file case.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "backends/native/model_weights.hpp"
#include "backends/tests/native_test_util.hpp"

namespace yard::backends::native {
namespace {

namespace fs = std::filesystem;
using testing::temp_dir;

std::string read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void write_all(const std::string& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

std::unique_ptr<model_weights> load_ok(const std::string& dir) {
  auto w = load_model_weights(dir);
  EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.err().describe());
  return w.ok() ? std::move(*w) : nullptr;
}

std::string error_of(const std::string& dir) {
  auto w = load_model_weights(dir);
  EXPECT_FALSE(w.ok());
  return w.ok() ? "" : w.err().describe();
}

TEST(native_loader, half_conversions) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 1e-5f, 3.14159f, -0.0001f}) {
    EXPECT_NEAR(f16_to_f32(f32_to_f16(f)), f, std::fabs(f) * 1e-3 + 1e-7) << f;
    EXPECT_NEAR(bf16_to_f32(f32_to_bf16(f)), f, std::fabs(f) * 1e-2 + 1e-30) << f;
  }
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(1e6f))));
}

TEST(native_loader, f32_f16_bf16_hold_the_same_weights) {
  temp_dir d;
  mkmodel_options o;
  auto w32 = load_ok(testing::make_model(d, "f32", o));
  o.type = dtype::f16;
  auto w16 = load_ok(testing::make_model(d, "f16", o));
  o.type = dtype::bf16;
  auto wb = load_ok(testing::make_model(d, "bf16", o));
  ASSERT_TRUE(w32 && w16 && wb);
  EXPECT_EQ(w16->config.torch_dtype, "float16");
  const auto& c = w32->config;
  std::size_t n = static_cast<std::size_t>(c.vocab_size) * c.hidden_size;
  auto e32 = w32->embed.to_f32(), e16 = w16->embed.to_f32(), eb = wb->embed.to_f32();
  for (std::size_t i = 0; i < n; i += 97) {
    EXPECT_NEAR(e16[i], e32[i], std::fabs(e32[i]) * 1e-3 + 1e-4);
    EXPECT_NEAR(eb[i], e32[i], std::fabs(e32[i]) * 1e-2 + 1e-3);
  }
  EXPECT_NEAR(w16->layers[1].w_down.to_f32()[5], w32->layers[1].w_down.to_f32()[5], 1e-3);
  // Matrices stay as stored, in place from the mmap; only the (small) norm vectors of half models are converted.
  EXPECT_EQ(w32->layers[1].w_down.type, wdtype::f32);
  EXPECT_EQ(w16->layers[1].w_down.type, wdtype::f16);
  EXPECT_EQ(wb->layers[1].w_down.type, wdtype::bf16);
  EXPECT_EQ(wb->lm_head.type, wdtype::bf16);
  EXPECT_TRUE(w32->owned.empty());
  EXPECT_FALSE(w16->owned.empty());
}

TEST(native_loader, sharded_equals_single_file) {
  temp_dir d;
  mkmodel_options o;
  o.tied = 0;
  auto one = load_ok(testing::make_model(d, "one", o));
  o.shards = 3;
  auto dir = testing::make_model(d, "three", o);
  EXPECT_TRUE(fs::exists(dir + "/model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(dir + "/model-00003-of-00003.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
  auto three = load_ok(dir);
  ASSERT_TRUE(one && three);
  EXPECT_EQ(one->num_params, three->num_params);
  const auto& c = one->config;
  EXPECT_EQ(std::memcmp(one->lm_head.data, three->lm_head.data, sizeof(float) * c.vocab_size * c.hidden_size), 0);
  EXPECT_EQ(std::memcmp(one->layers[1].wq.data, three->layers[1].wq.data, sizeof(float) * c.q_dim() * c.hidden_size), 0);
}

TEST(native_loader, tied_and_untied_embeddings) {
  temp_dir d;
  auto tied = load_ok(testing::make_model(d, "tied"));
  ASSERT_TRUE(tied);
  EXPECT_TRUE(tied->config.tie_word_embeddings);
  EXPECT_EQ(tied->lm_head.data, tied->embed.data);
  mkmodel_options o;
  o.tied = 0;
  auto untied = load_ok(testing::make_model(d, "untied", o));
  ASSERT_TRUE(untied);
  EXPECT_NE(untied->lm_head.data, untied->embed.data);
}

TEST(native_loader, mkmodel_is_deterministic_from_its_seed) {
  temp_dir d;
  mkmodel_options o;
  o.seed = 5;
  auto a = testing::make_model(d, "a", o), b = testing::make_model(d, "b", o);
  o.seed = 6;
  auto c = testing::make_model(d, "c", o);
  EXPECT_EQ(read_all(a + "/model.safetensors"), read_all(b + "/model.safetensors"));
  EXPECT_EQ(read_all(a + "/tokenizer.json"), read_all(b + "/tokenizer.json"));
  EXPECT_NE(read_all(a + "/model.safetensors"), read_all(c + "/model.safetensors"));
  mkmodel_options bad;
  bad.preset = "huge";
  bad.out = d.sub("x");
  EXPECT_EQ(write_random_model(bad).err().code, errc::bad_request);
}

class corrupt_test : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::make_model(d_, "m"); }
  std::string st() const { return dir_ + "/model.safetensors"; }
  std::string cfg() const { return dir_ + "/config.json"; }
  temp_dir d_;
  std::string dir_;
};

TEST_F(corrupt_test, truncated_safetensors) {
  auto s = read_all(st());
  write_all(st(), s.substr(0, s.size() / 2));
  auto e = error_of(dir_);
  EXPECT_NE(e.find("corrupt"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  EXPECT_NE(e.find("tensor '"), std::string::npos) << e;
  write_all(st(), s.substr(0, 5));
  EXPECT_NE(error_of(dir_).find("shorter than the 8-byte header"), std::string::npos);
  write_all(st(), s.substr(0, 100));
  EXPECT_NE(error_of(dir_).find("header length"), std::string::npos);
}

TEST_F(corrupt_test, bad_header_json) {
  auto s = read_all(st());
  s[8] = '[';
  s[9] = '!';
  write_all(st(), s);
  EXPECT_NE(error_of(dir_).find("header is not a valid JSON object"), std::string::npos);
}

TEST_F(corrupt_test, header_field_errors) {
  auto s = read_all(st());
  std::uint64_t hl;
  std::memcpy(&hl, s.data(), 8);
  auto header = s.substr(8, hl);
  auto pos = header.find("\"F32\"");
  ASSERT_NE(pos, std::string::npos);
  header.replace(pos, 5, "\"I64\"");
  write_all(st(), s.substr(0, 8) + header + s.substr(8 + hl));
  auto e = error_of(dir_);
  EXPECT_NE(e.find("unsupported dtype 'I64'"), std::string::npos) << e;
}

TEST_F(corrupt_test, missing_tensor) {
  auto set = tensor_set::open_file(st());
  ASSERT_TRUE(set.ok());
  std::vector<std::vector<float>> keep;
  std::vector<tensor_to_write> tw;
  for (const auto& [name, v] : (*set)->tensors()) {
    if (name == "model.layers.1.mlp.up_proj.weight") continue;
    keep.emplace_back(static_cast<std::size_t>(v.numel()));
    v.to_f32(keep.back().data());
    tw.push_back({name, v.shape, keep.back().data()});
  }
  ASSERT_TRUE(write_safetensors(dir_ + "/tmp.safetensors", tw, dtype::f32).ok());
  set->reset();
  fs::rename(dir_ + "/tmp.safetensors", st());
  auto e = error_of(dir_);
  EXPECT_NE(e.find("missing tensor 'model.layers.1.mlp.up_proj.weight'"), std::string::npos) << e;
}

TEST_F(corrupt_test, wrong_shape) {
  auto j = nlohmann::json::parse(read_all(cfg()));
  j["intermediate_size"] = j["intermediate_size"].get<int>() + 8;
  write_all(cfg(), j.dump());
  auto e = error_of(dir_);
  EXPECT_NE(e.find("tensor 'model.layers.0.mlp.gate_proj.weight' has shape"), std::string::npos) << e;
}

TEST_F(corrupt_test, unsupported_architecture_and_bad_fields) {
  auto orig = nlohmann::json::parse(read_all(cfg()));
  auto j = orig;
  j["architectures"] = {"GPT2LMHeadModel"};
  j["model_type"] = "gpt2";
  write_all(cfg(), j.dump());
  auto e = error_of(dir_);
  EXPECT_NE(e.find("unsupported"), std::string::npos) << e;
  EXPECT_NE(e.find("'architectures' = 'GPT2LMHeadModel'"), std::string::npos) << e;
  j = orig;
  j.erase("hidden_size");
  write_all(cfg(), j.dump());
  EXPECT_NE(error_of(dir_).find("field 'hidden_size' is missing"), std::string::npos);
  j = orig;
  j["num_key_value_heads"] = 3;
  write_all(cfg(), j.dump());
  EXPECT_NE(error_of(dir_).find("'num_key_value_heads'"), std::string::npos);
  j = orig;
  j["num_hidden_layers"] = 1000000000;  // under the 2^30 field bound: was a bad_alloc that aborted the process
  write_all(cfg(), j.dump());
  EXPECT_NE(error_of(dir_).find("'num_hidden_layers' must be at most 4096"), std::string::npos) << error_of(dir_);
  j = orig;
  j["hidden_act"] = "relu9";  // was served with SiLU, silently
  write_all(cfg(), j.dump());
  EXPECT_NE(error_of(dir_).find("'hidden_act' = \"relu9\" is not supported"), std::string::npos) << error_of(dir_);
  j = orig;
  j["eos_token_id"] = nlohmann::json::array({99999});  // could never be sampled: generation would never stop on it
  write_all(cfg(), j.dump());
  EXPECT_NE(error_of(dir_).find("'eos_token_id' 99999 is outside the vocabulary"), std::string::npos) << error_of(dir_);
  j = orig;
  j["rms_norm_eps"] = -1;
  write_all(cfg(), j.dump());
  EXPECT_NE(error_of(dir_).find("'rms_norm_eps' must be a positive number"), std::string::npos) << error_of(dir_);
  j = orig;
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4}};
  write_all(cfg(), j.dump());
  EXPECT_NE(error_of(dir_).find("rope_scaling.rope_type"), std::string::npos);
  write_all(cfg(), "{ not json");
  EXPECT_NE(error_of(dir_).find("config.json is not a valid JSON object"), std::string::npos);
  fs::remove(cfg());
  EXPECT_NE(error_of(dir_).find("config.json"), std::string::npos);
}

TEST_F(corrupt_test, sharded_index_problems) {
  temp_dir d;
  mkmodel_options o;
  o.shards = 2;
  auto dir = testing::make_model(d, "sh", o);
  fs::remove(dir + "/model-00002-of-00002.safetensors");
  auto e = error_of(dir);
  EXPECT_NE(e.find("model-00002-of-00002.safetensors"), std::string::npos) << e;
  write_all(dir + "/model.safetensors.index.json", "{\"weight_map\": 3}");
  EXPECT_NE(error_of(dir).find("'weight_map'"), std::string::npos);
  fs::remove(dir + "/model.safetensors.index.json");
  EXPECT_NE(error_of(dir).find("no model.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace yard::backends::native
