// native_cuda: the CUDA executor (backends/native/cuda) against the CPU model on the tiny preset.
//
// Without a GPU (or in a build without CUDA) only the "no device" tests run:
// asking for device cuda must give a clear error value and cuda_available()
// must be false. The GPU tests GTEST_SKIP when no device is usable, and fail instead where YARD_REQUIRE_CUDA=1
// (a GPU runner: a driver too old for this build, or a container without /dev/nvidia*, must not pass as
// "skipped").
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <numeric>
#include <vector>

#include <unistd.h>

#include "backends/native/cuda/cuda_device.hpp"
#include "backends/native/cuda/cuda_executor.hpp"
#include "backends/native/model.hpp"
#include "backends/native/native_engine.hpp"
#include "kv/block_hash.hpp"
#include "backends/tests/native_test_util.hpp"

#ifdef YARD_HAVE_CUDA
#include "backends/native/cuda/cuda_model.hpp"
#endif

namespace yard::backends {
namespace {

using native::testing::temp_dir;

bool cuda_required() {
  const char* v = std::getenv("YARD_REQUIRE_CUDA");
  return v != nullptr && std::string(v) == "1";
}

#define YARD_NEED_CUDA()                                                                                      \
  do {                                                                                                        \
    if (!native::cuda_available()) {                                                                          \
      if (cuda_required()) FAIL() << "YARD_REQUIRE_CUDA=1 and no CUDA device: " << native::probe_cuda_device().reason; \
      GTEST_SKIP() << "no CUDA device: " << native::probe_cuda_device().reason;                               \
    }                                                                                                         \
  } while (0)

class native_cuda_test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new temp_dir();
    model_dir_ = new std::string(native::testing::make_model(*dir_, "tiny"));
  }
  static void TearDownTestSuite() {
    delete model_dir_;
    delete dir_;
  }
  static temp_dir* dir_;
  static std::string* model_dir_;
};
temp_dir* native_cuda_test::dir_ = nullptr;
std::string* native_cuda_test::model_dir_ = nullptr;

// Page-locking host memory (the KV staging region on a GPU host): done and undone with a device, a clean
// no-op (false, memory untouched) without one.
TEST(cuda_pinning, host_memory_is_pinned_with_a_device_and_left_alone_without) {
  std::vector<std::byte> buf(1 << 16, std::byte{7});
  const bool pinned = native::pin_host_memory(buf.data(), buf.size());
  EXPECT_EQ(pinned, native::cuda_available());
  EXPECT_FALSE(native::pin_host_memory(nullptr, 4096));
  EXPECT_FALSE(native::pin_host_memory(buf.data(), 0));
  // Over half of this host's memory is refused before the driver is asked (nothing is touched: the size is
  // checked first).
  const std::size_t phys = static_cast<std::size_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<std::size_t>(::sysconf(_SC_PAGE_SIZE));
  EXPECT_FALSE(native::pin_host_memory(buf.data(), phys / 2 + 4096));
  if (pinned) {
    EXPECT_FALSE(native::pin_host_memory(buf.data(), buf.size())) << "already registered";
    native::unpin_host_memory(buf.data());
  }
  EXPECT_EQ(buf[100], std::byte{7});
}

TEST_F(native_cuda_test, probe_never_aborts_and_agrees_with_available) {
  auto p = native::probe_cuda_device();
  EXPECT_EQ(p.available, native::cuda_available());
  if (!p.available) {
    EXPECT_FALSE(p.reason.empty());
  } else {
    EXPECT_GT(p.device_count, 0);
    EXPECT_TRUE(p.reason.empty());
  }
}

TEST_F(native_cuda_test, device_cuda_without_gpu_is_a_clear_error) {
  if (native::cuda_available()) GTEST_SKIP() << "a CUDA device is present; this test covers machines without one";
  native_engine_options o;
  o.device = "cuda";
  o.num_blocks = 16;
  auto e = native_engine::open(*model_dir_, o);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.err().code, native::cuda_built() ? errc::unavailable : errc::unsupported);
  EXPECT_NE(e.err().message.find("cuda"), std::string::npos) << e.err().message;
  // The CPU engine still opens from the same folder.
  o.device = "cpu";
  EXPECT_TRUE(native_engine::open(*model_dir_, o));
}

TEST_F(native_cuda_test, unknown_device_is_bad_request) {
  native_engine_options o;
  o.device = "tpu";
  o.num_blocks = 16;
  auto e = native_engine::open(*model_dir_, o);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.err().code, errc::bad_request);
}

TEST_F(native_cuda_test, factory_without_device_returns_error_value) {
  if (native::cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  auto w = native::load_model_weights(*model_dir_);
  ASSERT_TRUE(w) << w.err().describe();
  std::shared_ptr<const native::model_weights> sw(std::move(*w));
  native::kv_cache_shape s{sw->config.num_hidden_layers, 8, 16, sw->config.num_key_value_heads, sw->config.head_dim};
  auto ex = native::make_cuda_executor(sw, s);
  ASSERT_FALSE(ex);
  EXPECT_FALSE(ex.err().message.empty());
}

#ifdef YARD_HAVE_CUDA

// One model's weights on the CPU model and on the CUDA model side by side, with one KV cache shape
// (16 blocks of 4 tokens); step() runs a batch on both and compares every logits row.
struct side_by_side {
  std::shared_ptr<const native::model_weights> weights;
  native::kv_cache_shape shape;
  std::unique_ptr<native::model> cpu;
  std::unique_ptr<native::kv_cache> cpu_cache;
  std::unique_ptr<native::cuda_model> gpu;
  std::string error;  // why it could not be set up (empty: ready)

  explicit side_by_side(const std::string& dir, native::load_options lo = {}, int n_blocks = 16, int block_size = 4) {
    auto w = native::load_model_weights(dir, lo);
    if (!w) {
      error = w.err().describe();
      return;
    }
    weights = std::move(*w);
    const auto& c = weights->config;
    shape = native::kv_cache_shape{c.num_hidden_layers, n_blocks, block_size, c.num_key_value_heads, c.head_dim};
    cpu = std::make_unique<native::model>(weights, 1);
    cpu_cache = std::make_unique<native::kv_cache>(shape);
    gpu = native::cuda_model::create(*weights, shape, native::rope_inv_freq(c), error);
  }
  bool ready() const { return error.empty() && gpu; }

  // Logits rows within 1e-3 (relative) of the CPU's; `same_argmax`: and the same greedy token.
  void step(const std::vector<native::batch_item>& batch, bool same_argmax = true) {
    std::vector<float> lc, lg;
    cpu->forward(batch, *cpu_cache, lc);
    EXPECT_EQ(gpu->forward(batch, lg), "");
    ASSERT_EQ(lc.size(), lg.size());
    const std::size_t V = static_cast<std::size_t>(weights->config.vocab_size);
    for (std::size_t r = 0; r * V < lc.size(); ++r) {
      std::vector<float> ref(lc.begin() + r * V, lc.begin() + (r + 1) * V);
      EXPECT_LT(native::testing::rel_error(lg.data() + r * V, ref), 1e-3) << "row " << r;
      std::vector<float> got(lg.begin() + r * V, lg.begin() + (r + 1) * V);
      if (same_argmax) EXPECT_EQ(native::testing::argmax(got), native::testing::argmax(ref)) << "row " << r;
    }
  }
};

// Runs the same two-sequence batch (prefill, then chunked prefill + decode) on
// the CPU model and the CUDA model, with shuffled block ids.
TEST_F(native_cuda_test, logits_match_cpu_model) {
  YARD_NEED_CUDA();
  side_by_side m(*model_dir_);
  ASSERT_TRUE(m.ready()) << m.error;
  std::vector<std::uint32_t> a(11), b(6);
  std::iota(a.begin(), a.end(), 5u);
  std::iota(b.begin(), b.end(), 40u);
  std::vector<std::uint32_t> ta{7, 2, 12, 9}, tb{3, 14, 0};
  // step 1: a's first 8 tokens (no logits) + all of b
  m.step({{a.data(), 8, 0, ta, false}, {b.data(), 6, 0, tb, true}});
  // step 2: rest of a + one decode token of b
  std::uint32_t nb = 77;
  m.step({{a.data() + 8, 3, 8, ta, true}, {&nb, 1, 6, tb, true}});
}

// f16/bf16 weights stay 2 bytes on the device (about half the f32 upload) and give the CPU's logits from the
// same files: a prefill of 17 rows (tiles widened for sgemm), a 5-row prompt and a decode step of 2 (the gemv
// kernel), on an untied Qwen2 model (q/k/v biases, its own head) and a tied Llama one.
TEST_F(native_cuda_test, half_precision_weights_stay_half_on_the_device_and_match_the_cpu) {
  YARD_NEED_CUDA();
  for (auto type : {native::dtype::bf16, native::dtype::f16})
    for (std::string family : {"qwen2", "llama"}) {
      SCOPED_TRACE(family + (type == native::dtype::bf16 ? " bf16" : " f16"));
      native::mkmodel_options mo;
      mo.type = type;
      mo.family = family;
      mo.tied = family == "qwen2" ? 0 : 1;  // the tiny preset ties both by default
      const auto dir = native::testing::make_model(*dir_, family + "_half_" + std::to_string(int(type)), mo);
      side_by_side half(dir), wide(dir, native::load_options{.widen_to_f32 = true});
      ASSERT_TRUE(half.ready()) << half.error;
      ASSERT_TRUE(wide.ready()) << wide.error;
      EXPECT_LT(half.gpu->weight_bytes(), wide.gpu->weight_bytes() * 6 / 10)
          << "the matrices and the embedding are 2 bytes an element (a tied head shares the embedding's upload)";
      std::vector<std::uint32_t> a(17), b(5);
      std::iota(a.begin(), a.end(), 3u);
      std::iota(b.begin(), b.end(), 30u);
      std::vector<std::uint32_t> ta{7, 2, 12, 9, 0}, tb{3, 14};  // blocks of 4 tokens: 18 and 6 tokens
      half.step({{a.data(), 17, 0, ta, true}}, false);  // 17 rows: widened tiles + sgemm
      half.step({{b.data(), 5, 0, tb, true}}, false);   // 5 rows: the gemv kernel
      std::uint32_t na = 90, nb = 91;
      half.step({{&na, 1, 17, ta, true}, {&nb, 1, 5, tb, true}}, false);  // a decode step of 2
    }
}

TEST_F(native_cuda_test, bad_block_table_is_an_error_not_a_fault) {
  YARD_NEED_CUDA();
  auto w = native::load_model_weights(*model_dir_);
  ASSERT_TRUE(w);
  std::shared_ptr<const native::model_weights> sw(std::move(*w));
  const auto& c = sw->config;
  native::kv_cache_shape s{c.num_hidden_layers, 4, 4, c.num_key_value_heads, c.head_dim};
  std::string err;
  auto gpu = native::cuda_model::create(*sw, s, native::rope_inv_freq(c), err);
  ASSERT_TRUE(gpu) << err;
  std::vector<std::uint32_t> toks{1, 2, 3, 4, 5};
  std::vector<std::uint32_t> out_of_range{0, 9}, too_short{0};
  std::vector<float> lg;
  EXPECT_NE(gpu->forward({{toks.data(), 5, 0, out_of_range, true}}, lg), "");
  EXPECT_NE(gpu->forward({{toks.data(), 5, 0, too_short, true}}, lg), "");
}

// Greedy generation through the engine: identical tokens on cpu and cuda.
TEST_F(native_cuda_test, greedy_tokens_match_cpu_engine) {
  YARD_NEED_CUDA();
  auto generate = [&](const std::string& device) {
    native_engine_options o;
    o.device = device;
    o.num_blocks = 64;
    o.max_num_batched_tokens = 8;  // forces chunked prefill
    auto e = native_engine::open(*model_dir_, o);
    EXPECT_TRUE(e) << (e ? "" : e.err().describe());
    std::map<std::string, std::vector<token_id>> out;
    if (!e) return out;
    EXPECT_EQ((*e)->kv_on_gpu(), device == "cuda");  // what page-locks the worker's KV staging
    for (int i = 0; i < 3; ++i) {
      engine_request r;
      r.request_id = "r" + std::to_string(i);
      auto p = (*e)->tokenize("the quick brown fox number " + std::to_string(i) + " jumps over");
      r.prompt = *p;
      r.max_tokens = 12;
      r.sampling.temperature = 0;
      EXPECT_TRUE((*e)->add_request(std::move(r)));
    }
    for (int guard = 0; (*e)->has_work() && guard < 10000; ++guard)
      for (auto& o2 : (*e)->step().outputs)
        out[o2.request_id].insert(out[o2.request_id].end(), o2.new_tokens.begin(), o2.new_tokens.end());
    return out;
  };
  auto cpu = generate("cpu");
  auto gpu = generate("cuda");
  ASSERT_EQ(cpu.size(), 3u);
  EXPECT_EQ(cpu, gpu);
}

// Attention over more than one 256-position tile (the online softmax's rescale across tiles): a 300-token
// prefill in blocks of 16, then a decode step at position 300, against the CPU.
TEST_F(native_cuda_test, attention_across_tiles_matches_the_cpu) {
  YARD_NEED_CUDA();
  side_by_side m(*model_dir_, {}, 24, 16);
  ASSERT_TRUE(m.ready()) << m.error;
  const auto V = static_cast<std::uint32_t>(m.weights->config.vocab_size);
  std::vector<std::uint32_t> p(300);
  for (std::uint32_t i = 0; i < p.size(); ++i) p[i] = (i * 37 + 5) % (V - 8);
  std::vector<std::uint32_t> table(20);
  for (std::uint32_t i = 0; i < table.size(); ++i) table[i] = 23 - i;  // shuffled, the last block partly filled
  m.step({{p.data(), 300, 0, table, true}}, false);
  std::uint32_t next = 11;
  m.step({{&next, 1, 300, table, true}}, false);
}

// A decode batch of 10 sequences (over the 8 rows of the half-precision gemv: tiles widened for sgemm) in
// f32 and bf16, and llama3 rope scaling, against the CPU.
TEST_F(native_cuda_test, a_decode_batch_over_eight_rows_matches_the_cpu) {
  YARD_NEED_CUDA();
  for (auto type : {native::dtype::f32, native::dtype::bf16}) {
    SCOPED_TRACE(type == native::dtype::bf16 ? "bf16" : "f32");
    native::mkmodel_options mo;
    mo.type = type;
    mo.rope_scaling = "llama3";
    const auto dir = native::testing::make_model(*dir_, "batch10_" + std::to_string(int(type)), mo);
    side_by_side m(dir, {}, 40, 4);
    ASSERT_TRUE(m.ready()) << m.error;
    std::vector<std::vector<std::uint32_t>> prompts(10), tables(10);
    std::vector<native::batch_item> prefill, decode;
    std::vector<std::uint32_t> next(10);
    for (std::uint32_t s = 0; s < 10; ++s) {
      prompts[s] = {s + 3, s + 20, s + 40, 7};
      tables[s] = {s * 4, s * 4 + 1};  // 8 positions: the prompt and the decode token
      next[s] = 50 + s;
    }
    for (std::uint32_t s = 0; s < 10; ++s) prefill.push_back({prompts[s].data(), 4, 0, tables[s], true});
    m.step(prefill, false);
    for (std::uint32_t s = 0; s < 10; ++s) decode.push_back({&next[s], 1, 4, tables[s], true});
    m.step(decode, false);
  }
}

// A width that is not a multiple of 8 (intermediate 100: the down projection's rows end in a scalar tail of
// the half-precision gemv, and are not 16-byte aligned), in bf16 and f16, prefill and decode.
TEST_F(native_cuda_test, a_row_width_off_the_vector_size_matches_the_cpu) {
  YARD_NEED_CUDA();
  for (auto type : {native::dtype::bf16, native::dtype::f16}) {
    SCOPED_TRACE(type == native::dtype::bf16 ? "bf16" : "f16");
    native::mkmodel_options mo;
    mo.type = type;
    mo.intermediate_size = 100;
    const auto dir = native::testing::make_model(*dir_, "odd_width_" + std::to_string(int(type)), mo);
    side_by_side m(dir);
    ASSERT_TRUE(m.ready()) << m.error;
    std::vector<std::uint32_t> a(6);
    std::iota(a.begin(), a.end(), 9u);
    std::vector<std::uint32_t> ta{5, 1};
    m.step({{a.data(), 6, 0, ta, true}}, false);
    std::uint32_t next = 33;
    m.step({{&next, 1, 6, ta, true}}, false);
  }
}

// KV blocks computed on the GPU, exported through host memory, are byte-for-byte
// what a CPU engine can import and continue from (disaggregation, tiers).
TEST_F(native_cuda_test, exported_device_kv_continues_on_the_cpu_engine) {
  YARD_NEED_CUDA();
  native_engine_options og;
  og.device = "cuda";
  og.num_blocks = 64;
  auto gpu = native_engine::open(*model_dir_, og);
  ASSERT_TRUE(gpu) << gpu.err().describe();
  native_engine_options oc;
  oc.num_blocks = 64;
  auto cpu = native_engine::open(*model_dir_, oc);
  ASSERT_TRUE(cpu);
  auto prompt = *(*gpu)->tokenize("a prompt long enough to fill two or three sixteen-token blocks of the KV cache, at least");
  auto run = [](native_engine& e, engine_request r) {
    std::vector<token_id> out;
    EXPECT_TRUE(e.add_request(std::move(r)));
    for (int guard = 0; e.has_work() && guard < 10000; ++guard)
      for (auto& o2 : e.step().outputs) out.insert(out.end(), o2.new_tokens.begin(), o2.new_tokens.end());
    return out;
  };
  engine_request r;
  r.request_id = "ref";
  r.prompt = prompt;
  r.max_tokens = 8;
  r.sampling.temperature = 0;
  auto want = run(**cpu, r);
  r.request_id = "pf";
  r.max_tokens = 1;
  auto first = run(**gpu, r);
  ASSERT_EQ(first.size(), 1u);
  auto hashes = kv::hash_blocks(prompt, 16, std::nullopt);
  ASSERT_GE(hashes.size(), 2u);
  std::vector<std::byte> buf(hashes.size() * (*gpu)->kv_block_bytes());
  ASSERT_EQ((*gpu)->export_kv(hashes, buf), hashes.size());
  native_engine_options oc2 = oc;
  auto dec = native_engine::open(*model_dir_, oc2);
  ASSERT_TRUE(dec);
  ASSERT_TRUE((*dec)->import_kv(hashes, std::nullopt, buf));
  r.request_id = "dec";
  r.max_tokens = 8;
  r.resume_tokens = first;
  auto rest = run(**dec, r);
  first.insert(first.end(), rest.begin(), rest.end());
  EXPECT_EQ(first, want);
}

#endif  // YARD_HAVE_CUDA

}  // namespace
}  // namespace yard::backends
